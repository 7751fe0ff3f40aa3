package httpin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/vpipe/vpipe/pipeline"
)

// recorded is what the test publisher keeps of one event.
type recorded struct {
	Dataset, Original, Message, LogSource, Error, ID, Hostname string
	Created, Timestamp                                         time.Time
}

// testPublisher records events and acknowledges them asynchronously: each
// done callback runs on its own goroutine, after hold (when set) lets it.
type testPublisher struct {
	mu     sync.Mutex
	events []recorded
	// pubErr, when set, is returned by Publish for the event of that index
	// (0-based over the publisher's life).
	pubErr map[int]error
	// ackErr, when set, is passed to done for the event of that index.
	ackErr map[int]error
	// hold, when set, is received from before each done call.
	hold  chan struct{}
	acked atomic.Int64
}

func (p *testPublisher) Publish(ctx context.Context, e *pipeline.Event, done func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	i := len(p.events)
	if err := p.pubErr[i]; err != nil {
		p.mu.Unlock()
		return err
	}
	p.events = append(p.events, recorded{
		Dataset:   strings.Clone(e.Dataset),
		Original:  string(e.Original),
		Message:   strings.Clone(e.Message),
		LogSource: strings.Clone(e.LogSource),
		Error:     strings.Clone(e.Error),
		ID:        strings.Clone(e.ID),
		Hostname:  strings.Clone(e.Host.Hostname),
		Created:   e.Created,
		Timestamp: e.Timestamp,
	})
	ackErr := p.ackErr[i]
	p.mu.Unlock()
	go func() {
		if p.hold != nil {
			<-p.hold
		}
		p.acked.Add(1)
		done(ackErr)
	}()
	return nil
}

func (p *testPublisher) published() []recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]recorded(nil), p.events...)
}

// lineParser is a trivial RecordParser: every line is a generic syslog
// event whose message is the whole line.
type lineParser struct{}

func (lineParser) ParseRecord(e *pipeline.Event) {
	e.Dataset = pipeline.DatasetSyslogGeneric
	e.Message = e.Alias(e.Original)
}

type env struct {
	h    *Handler
	srv  *httptest.Server
	pub  *testPublisher
	reg  *prometheus.Registry
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB, cfg Config, pub *testPublisher, ready func() error) *env {
	t.Helper()
	if pub == nil {
		pub = &testPublisher{}
	}
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	h := NewHandler(cfg, Deps{
		Parser:    lineParser{},
		Publisher: pub,
		Ready:     ready,
		Log:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:   NewMetrics(reg),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{h: h, srv: srv, pub: pub, reg: reg, logs: logs}
}

type answer struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request; body may be a string (sent with Content-Length) or
// an io.Reader (sent chunked). Headers come in name, value pairs.
func (v *env) do(t testing.TB, method, path string, body any, headers ...string) answer {
	t.Helper()
	a, err := v.try(method, path, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// try is do for goroutines other than the test's: it returns its error.
func (v *env) try(method, path string, body any, headers ...string) (answer, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = struct{ io.Reader }{b} // hide the length: chunked
	}
	req, err := http.NewRequest(method, v.srv.URL+path, rd)
	if err != nil {
		return answer{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := v.srv.Client().Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if method != http.MethodHead {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			return a, fmt.Errorf("answer %d is not a JSON object: %q", resp.StatusCode, raw)
		}
	}
	return a, nil
}

func (v *env) post(t testing.TB, path, ctype, body string, headers ...string) answer {
	t.Helper()
	return v.do(t, http.MethodPost, path, body, append([]string{"Content-Type", ctype}, headers...)...)
}

// counter returns the value of a counter or the sample count of a
// histogram with the given labels.
func (v *env) counter(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	fams, err := v.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue metrics
				}
			}
			if m.Histogram != nil {
				return float64(m.Histogram.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func wantAccepted(t testing.TB, a answer, n int) {
	t.Helper()
	if a.code != http.StatusAccepted || a.body["accepted"] != float64(n) {
		t.Fatalf("answer %d %s, want 202 {\"accepted\":%d}", a.code, a.raw, n)
	}
}

func wantError(t testing.TB, a answer, code int, substrings ...string) {
	t.Helper()
	msg, _ := a.body["error"].(string)
	if a.code != code || msg == "" {
		t.Fatalf("answer %d %s, want %d with an error", a.code, a.raw, code)
	}
	for _, s := range substrings {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not say %q", msg, s)
		}
	}
}

// waitFor polls cond until it holds or 5s passed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBodyKinds(t *testing.T) {
	obj1 := `{"message":"disk full","host":{"name":"esx1"}}`
	obj2 := `{"message":"say \"hi\" \u00e9\ud83d\ude00\n","n":[1,2.5e3,-0,true,false,null]}`
	obj3 := `{"no_message":1,"message":42}`
	type want struct{ dataset, original, message string }
	tests := []struct {
		name, path, ctype, body string
		want                    []want
	}{
		{"one object", RouteEvents, "application/json", obj1,
			[]want{{"http.generic", obj1, "disk full"}}},
		{"one object with charset and white space", RouteEvents, "application/json; charset=UTF-8", "\r\n  " + obj1 + "\n\n",
			[]want{{"http.generic", obj1, "disk full"}}},
		{"object with byte order mark", RouteEvents, "application/json", "\xef\xbb\xbf" + obj1,
			[]want{{"http.generic", obj1, "disk full"}}},
		{"array", RouteEvents, "application/json", "[ " + obj1 + ",\n\t" + obj2 + " , " + obj3 + "]",
			[]want{{"http.generic", obj1, "disk full"}, {"http.generic", obj2, "say \"hi\" é😀\n"}, {"http.generic", obj3, ""}}},
		{"empty array", RouteEvents, "application/json", " [ ] ", nil},
		{"ndjson LF", RouteEvents, "application/x-ndjson", obj1 + "\n" + obj2 + "\n",
			[]want{{"http.generic", obj1, "disk full"}, {"http.generic", obj2, "say \"hi\" é😀\n"}}},
		{"ndjson CRLF blank lines no final newline", RouteEvents, "application/x-ndjson", "\r\n" + obj1 + "\r\n  \r\n" + obj3,
			[]want{{"http.generic", obj1, "disk full"}, {"http.generic", obj3, ""}}},
		{"jsonl", RouteEvents, "application/jsonl", obj3 + "\n",
			[]want{{"http.generic", obj3, ""}}},
		{"empty ndjson", RouteEvents, "application/x-ndjson", "", nil},
		{"syslog LF", RouteSyslog, "text/plain", "<13>1 - h a - - - one\n<13>Oct 11 22:14:15 h a: two\n",
			[]want{{"syslog.generic", "<13>1 - h a - - - one", "<13>1 - h a - - - one"}, {"syslog.generic", "<13>Oct 11 22:14:15 h a: two", "<13>Oct 11 22:14:15 h a: two"}}},
		{"syslog CRLF blank lines no final newline", RouteSyslog, "text/plain; charset=utf-8", "one\r\n\r\n\ntwo \r\nthree",
			[]want{{"syslog.generic", "one", "one"}, {"syslog.generic", "two ", "two "}, {"syslog.generic", "three", "three"}}},
		{"syslog octet-stream not UTF-8", RouteSyslog, "application/octet-stream", "caf\xe9\n",
			[]want{{"syslog.generic", "caf\xe9", "caf\xe9"}}},
		{"syslog without content type", RouteSyslog, "", "x\n",
			[]want{{"syslog.generic", "x", "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, Config{}, nil, nil)
			before := time.Now()
			var a answer
			if tt.ctype == "" {
				a = v.do(t, http.MethodPost, tt.path, tt.body)
			} else {
				a = v.post(t, tt.path, tt.ctype, tt.body)
			}
			wantAccepted(t, a, len(tt.want))
			got := v.pub.published()
			if len(got) != len(tt.want) {
				t.Fatalf("published %d events, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Dataset != w.dataset || g.Original != w.original || g.Message != w.message {
					t.Errorf("event %d: dataset %q original %q message %q\nwant dataset %q original %q message %q",
						i, g.Dataset, g.Original, g.Message, w.dataset, w.original, w.message)
				}
				if !strings.HasPrefix(g.LogSource, "127.0.0.1:") {
					t.Errorf("event %d: log source %q, want the client's 127.0.0.1:port", i, g.LogSource)
				}
				if g.Created.Before(before) || g.Created.After(time.Now()) {
					t.Errorf("event %d: created %v, not during the request", i, g.Created)
				}
			}
			if n := v.counter(t, "vpipe_http_events_total", "route", tt.path); n != float64(len(tt.want)) {
				t.Errorf("vpipe_http_events_total = %v, want %d", n, len(tt.want))
			}
			if n := v.counter(t, "vpipe_http_requests_total", "route", tt.path, "code", "202"); n != 1 {
				t.Errorf("vpipe_http_requests_total{code=202} = %v, want 1", n)
			}
		})
	}
}

// TestVPipeEvents posts objects in vpipe's own encoding: their fields are
// kept, and e.Original is still the posted object.
func TestVPipeEvents(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	src := pipeline.Event{
		Timestamp: ts,
		Created:   ts.Add(time.Second),
		ID:        "abc123",
		Dataset:   pipeline.DatasetNSXDFW,
		Original:  []byte("<13>1 - nsx1 - - - INET match PASS"),
		Message:   "INET match PASS",
		LogSource: "10.0.0.9:514",
	}
	vpipeObj := string(src.AppendJSON(nil))
	sameTimes := src
	sameTimes.Created = ts
	sameObj := string(sameTimes.AppendJSON(nil))
	ecsObj := `{"@timestamp":"2024-05-01T12:00:00Z","message":"from a beat","host":{"hostname":"esx7"}}`
	otherObj := `{"event":"EDGE_UP","message":"edge up","host":"esx7"}`

	v := newEnv(t, Config{}, nil, nil)
	wantAccepted(t, v.post(t, RouteEvents, "application/x-ndjson", vpipeObj+"\n"+sameObj+"\n"+ecsObj+"\n"+otherObj+"\n"), 4)
	got := v.pub.published()
	if len(got) != 4 {
		t.Fatalf("published %d events, want 4", len(got))
	}
	for i, want := range []struct {
		original, dataset, message, hostname, id string
		timestamp                                time.Time
	}{
		{vpipeObj, "nsx.dfw", "INET match PASS", "", "abc123", ts},
		{sameObj, "nsx.dfw", "INET match PASS", "", "abc123", ts},
		{ecsObj, "http.generic", "from a beat", "esx7", "", ts},
		{otherObj, "http.generic", "edge up", "", "", time.Time{}},
	} {
		g := got[i]
		if g.Original != want.original || g.Dataset != want.dataset || g.Message != want.message || g.Hostname != want.hostname || !g.Timestamp.Equal(want.timestamp) {
			t.Errorf("event %d: %+v\nwant %+v", i, g, want)
		}
		if want.id != "" && g.ID != want.id {
			t.Errorf("event %d: id %q, want the posted %q", i, g.ID, want.id)
		}
		if len(g.ID) != 16 && want.id == "" {
			t.Errorf("event %d: id %q, want a derived one", i, g.ID)
		}
		if !strings.HasPrefix(g.LogSource, "127.0.0.1:") {
			t.Errorf("event %d: log source %q, want the client's address", i, g.LogSource)
		}
	}

	// A retry of the same request yields the same ids.
	wantAccepted(t, v.post(t, RouteEvents, "application/x-ndjson", ecsObj+"\n"+otherObj+"\n"), 2)
	again := v.pub.published()[4:]
	if again[0].ID != got[2].ID || again[1].ID != got[3].ID {
		t.Errorf("ids changed on retry: %q %q, then %q %q", got[2].ID, got[3].ID, again[0].ID, again[1].ID)
	}
}

func TestBadBodies(t *testing.T) {
	tests := []struct {
		name, ctype, body, reason string
		code                      int
		says                      []string
	}{
		{"array with one bad element", "application/json", `[{"a":1},{"b":},{"c":3}]`, "malformed", 400,
			[]string{"element 2", "byte 14", "want a value"}},
		{"array with a non-object element", "application/json", `[{"a":1}, "x"]`, "malformed", 400,
			[]string{"element 2", "byte 10", "not a JSON object"}},
		{"array not closed", "application/json", `[{"a":1}`, "malformed", 400,
			[]string{"byte 8", "end of body"}},
		{"truncated object", "application/json", `{"a":"b`, "malformed", 400,
			[]string{"byte 7", "end of input in string"}},
		{"bad literal", "application/json", `{"a":tru}`, "malformed", 400,
			[]string{"byte 8", "literal true"}},
		{"trailing garbage", "application/json", `{"a":1} x`, "malformed", 400,
			[]string{"byte 8", "'x'"}},
		{"two objects as application/json", "application/json", "{}\n{}", "malformed", 400,
			[]string{"byte 3"}},
		{"scalar body", "application/json", `42`, "malformed", 400,
			[]string{"byte 0"}},
		{"empty body", "application/json", ``, "malformed", 400,
			[]string{"empty body"}},
		{"control character in string", "application/json", "{\"a\":\"x\ty\"}", "malformed", 400,
			[]string{"byte 7", "control character"}},
		{"bad escape", "application/json", `{"a":"\x"}`, "malformed", 400,
			[]string{"byte 7", "escape"}},
		{"leading zero", "application/json", `{"a":01}`, "malformed", 400,
			[]string{"byte 6"}},
		{"invalid UTF-8 in a string", "application/json", "{\"a\":\"caf\xe9\"}", "invalid_utf8", 400,
			[]string{"byte 9", "invalid UTF-8"}},
		{"invalid UTF-8 in an array element", "application/json", "[{},{\"a\xff\":1}]", "invalid_utf8", 400,
			[]string{"element 2", "byte 7", "invalid UTF-8"}},
		{"invalid UTF-8 outside strings", "application/json", "{\xc0}", "invalid_utf8", 400,
			[]string{"byte 1", "invalid UTF-8"}},
		{"ndjson bad line", "application/x-ndjson", "{\"a\":1}\r\n\r\n{\"b\" 2}\n{}\n", "malformed", 400,
			[]string{"line 3", "byte 16", "':'"}},
		{"ndjson two objects on a line", "application/x-ndjson", "{}\n{} {}\n", "malformed", 400,
			[]string{"line 2", "byte 6", "end of line"}},
		{"ndjson array line", "application/x-ndjson", "{}\n[{}]\n", "malformed", 400,
			[]string{"line 2", "byte 3", "not a JSON object"}},
		{"ndjson object across lines", "application/x-ndjson", "{\n\"a\":1}\n", "malformed", 400,
			[]string{"line 1", "byte 1", "end of input"}},
		{"ndjson invalid UTF-8", "application/x-ndjson", "{}\n{\"m\":\"\xed\xa0\x80\"}\n", "invalid_utf8", 400,
			[]string{"line 2", "byte 9", "invalid UTF-8"}},
		{"deep nesting", "application/json", "{\"a\":" + strings.Repeat("[", 600) + strings.Repeat("]", 600) + "}", "malformed", 400,
			[]string{"nested too deeply"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, Config{}, nil, nil)
			a := v.post(t, RouteEvents, tt.ctype, tt.body)
			wantError(t, a, tt.code, tt.says...)
			if got := v.pub.published(); len(got) != 0 {
				t.Errorf("published %d events of a rejected request", len(got))
			}
			if n := v.counter(t, "vpipe_http_rejected_total", "route", RouteEvents, "reason", tt.reason); n != 1 {
				t.Errorf("vpipe_http_rejected_total{reason=%q} = %v, want 1", tt.reason, n)
			}
			if !strings.Contains(v.logs.String(), `"component":"httpin"`) || !strings.Contains(v.logs.String(), `"level":"INFO"`) {
				t.Errorf("rejection not logged at info level with component=httpin: %s", v.logs)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	cfg := Config{MaxBodyBytes: 64, MaxEvents: 2}
	big := `{"message":"` + strings.Repeat("x", 64) + `"}`
	tests := []struct {
		name, path, ctype string
		body              any
		code              int
		reason            string
		says              string
	}{
		{"body over the limit with Content-Length", RouteEvents, "application/json", big, 413, "too_large", "larger than 64 bytes"},
		{"body over the limit chunked", RouteEvents, "application/json", strings.NewReader(big), 413, "too_large", "larger than 64 bytes"},
		{"syslog body over the limit chunked", RouteSyslog, "text/plain", strings.NewReader(strings.Repeat("line\n", 20)), 413, "too_large", "larger than 64 bytes"},
		{"too many array elements", RouteEvents, "application/json", `[{},{},{}]`, 413, "too_many_events", "more than 2 events"},
		{"too many ndjson lines", RouteEvents, "application/x-ndjson", "{}\n{}\n{}\n", 413, "too_many_events", "more than 2 events"},
		{"too many syslog lines", RouteSyslog, "text/plain", "a\nb\nc\n", 413, "too_many_events", "more than 2 events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, cfg, nil, nil)
			a := v.do(t, http.MethodPost, tt.path, tt.body, "Content-Type", tt.ctype)
			wantError(t, a, tt.code, tt.says)
			if len(v.pub.published()) != 0 {
				t.Error("published events of a rejected request")
			}
			if n := v.counter(t, "vpipe_http_rejected_total", "route", tt.path, "reason", tt.reason); n != 1 {
				t.Errorf("vpipe_http_rejected_total{reason=%q} = %v, want 1", tt.reason, n)
			}
		})
	}
	t.Run("exactly at the limits", func(t *testing.T) {
		v := newEnv(t, cfg, nil, nil)
		body := `[{"message":"` + strings.Repeat("y", 64-len(`[{"message":""},{}]`)) + `"},{}]`
		wantAccepted(t, v.post(t, RouteEvents, "application/json", body), 2)
	})
}

func TestAuth(t *testing.T) {
	const token = "s3cret-token"
	tests := []struct {
		name, auth string
		code       int
		challenge  string
	}{
		{"missing", "", 401, `Bearer realm="vpipe"`},
		{"wrong token", "Bearer nope", 401, `Bearer realm="vpipe", error="invalid_token"`},
		{"token prefix", "Bearer s3cret", 401, `Bearer realm="vpipe", error="invalid_token"`},
		{"wrong scheme", "Basic " + token, 401, `Bearer realm="vpipe", error="invalid_token"`},
		{"no token after scheme", "Bearer", 401, `Bearer realm="vpipe", error="invalid_token"`},
		{"valid", "Bearer " + token, 202, ""},
		{"valid, scheme in lower case", "bearer " + token, 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, Config{BearerToken: token}, nil, nil)
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			a := v.post(t, RouteEvents, "application/json", `{"message":"x"}`, hdr...)
			if a.code != tt.code {
				t.Fatalf("answer %d %s, want %d", a.code, a.raw, tt.code)
			}
			if got := a.header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.code == 202]; len(v.pub.published()) != want {
				t.Errorf("published %d events, want %d", len(v.pub.published()), want)
			}
		})
	}
	t.Run("probes need no token", func(t *testing.T) {
		v := newEnv(t, Config{BearerToken: token}, nil, nil)
		for _, p := range []string{RouteHealthz, RouteReadyz} {
			if a := v.do(t, http.MethodGet, p, nil); a.code != 200 {
				t.Errorf("GET %s: %d %s", p, a.code, a.raw)
			}
		}
	})
	t.Run("checked before the body", func(t *testing.T) {
		v := newEnv(t, Config{BearerToken: token}, nil, nil)
		a := v.post(t, RouteSyslog, "text/plain", "x\n")
		wantError(t, a, 401, "missing bearer token")
		if v.counter(t, "vpipe_http_rejected_total", "route", RouteSyslog, "reason", "unauthorized") != 1 {
			t.Error("401 not counted")
		}
	})
}

func TestRequestShape(t *testing.T) {
	tests := []struct {
		name, method, path string
		headers            []string
		code               int
		says               string
		allow              string
	}{
		{"unknown content type", "POST", RouteEvents, []string{"Content-Type", "text/xml"}, 415, `"text/xml"`, ""},
		{"missing content type", "POST", RouteEvents, nil, 415, "missing Content-Type", ""},
		{"form content type", "POST", RouteEvents, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported Content-Type", ""},
		{"bad charset", "POST", RouteEvents, []string{"Content-Type", "application/json; charset=latin1"}, 415, "charset", ""},
		{"unparsable content type", "POST", RouteEvents, []string{"Content-Type", "application/json; ="}, 415, "bad Content-Type", ""},
		{"json to syslog", "POST", RouteSyslog, []string{"Content-Type", "application/json"}, 415, "text/plain", ""},
		{"gzip", "POST", RouteEvents, []string{"Content-Type", "application/json", "Content-Encoding", "gzip"}, 415, "Content-Encoding", ""},
		{"GET events", "GET", RouteEvents, nil, 405, "method GET", "POST"},
		{"PUT syslog", "PUT", RouteSyslog, nil, 405, "method PUT", "POST"},
		{"POST healthz", "POST", RouteHealthz, nil, 405, "method POST", "GET, HEAD"},
		{"DELETE readyz", "DELETE", RouteReadyz, nil, 405, "method DELETE", "GET, HEAD"},
		{"unknown path", "GET", "/v2/events", nil, 404, "not found", ""},
		{"trailing slash", "POST", RouteEvents + "/", nil, 404, "not found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, Config{}, nil, nil)
			a := v.do(t, tt.method, tt.path, `{}`, tt.headers...)
			wantError(t, a, tt.code, tt.says)
			if got := a.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			if got := a.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q, want application/json", got)
			}
			if len(v.pub.published()) != 0 {
				t.Error("published events of a rejected request")
			}
		})
	}
}

func TestProbes(t *testing.T) {
	var down atomic.Pointer[error]
	ready := func() error {
		if p := down.Load(); p != nil {
			return *p
		}
		return nil
	}
	v := newEnv(t, Config{RetryAfter: 1500 * time.Millisecond}, nil, ready)

	if a := v.do(t, "GET", RouteHealthz, nil); a.code != 200 || a.body["status"] != "ok" {
		t.Fatalf("healthz: %d %s", a.code, a.raw)
	}
	if a := v.do(t, "HEAD", RouteHealthz, nil); a.code != 200 {
		t.Fatalf("HEAD healthz: %d", a.code)
	}
	if a := v.do(t, "GET", RouteReadyz, nil); a.code != 200 || a.body["status"] != "ready" {
		t.Fatalf("readyz while ready: %d %s", a.code, a.raw)
	}

	brokerErr := errors.New("kafka: dial tcp 127.0.0.1:9092: connection refused")
	down.Store(&brokerErr)
	a := v.do(t, "GET", RouteReadyz, nil)
	wantError(t, a, 503, "connection refused")
	if a.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want 2 (1.5s rounded up)", a.header.Get("Retry-After"))
	}
	if a := v.do(t, "GET", RouteHealthz, nil); a.code != 200 {
		t.Errorf("healthz while Kafka is down: %d, want 200 (the process is alive)", a.code)
	}
	for _, tc := range []struct{ path, ctype, body string }{
		{RouteEvents, "application/json", `{"message":"x"}`},
		{RouteSyslog, "text/plain", "x\n"},
	} {
		a := v.post(t, tc.path, tc.ctype, tc.body)
		wantError(t, a, 503, "not ready", "connection refused")
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", tc.path)
		}
	}
	if len(v.pub.published()) != 0 {
		t.Error("published while not ready")
	}
	if n := strings.Count(v.logs.String(), "kafka not ready"); n != 1 {
		t.Errorf("logged %d times that Kafka is not ready, want once (on the change)", n)
	}

	down.Store(nil)
	if a := v.do(t, "GET", RouteReadyz, nil); a.code != 200 {
		t.Errorf("readyz after recovery: %d %s", a.code, a.raw)
	}
	wantAccepted(t, v.post(t, RouteEvents, "application/json", `{"message":"x"}`), 1)
	if !strings.Contains(v.logs.String(), "kafka ready again") {
		t.Error("recovery not logged")
	}
}

func TestPublishFailure(t *testing.T) {
	body := "{\"message\":\"a\"}\n{\"message\":\"b\"}\n{\"message\":\"c\"}\n"
	t.Run("done reports an error", func(t *testing.T) {
		pub := &testPublisher{ackErr: map[int]error{1: errors.New("kafka: not enough replicas")}}
		v := newEnv(t, Config{}, pub, nil)
		a := v.post(t, RouteEvents, "application/x-ndjson", body)
		wantError(t, a, 503, "did not acknowledge 1 of 3", "not enough replicas", "2 acknowledged")
		if a.body["accepted"] != float64(2) {
			t.Errorf("accepted %v, want 2", a.body["accepted"])
		}
		if a.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if n := v.counter(t, "vpipe_http_events_total", "route", RouteEvents); n != 2 {
			t.Errorf("vpipe_http_events_total = %v, want 2", n)
		}
		if n := v.counter(t, "vpipe_http_rejected_total", "route", RouteEvents, "reason", "publish_failed"); n != 1 {
			t.Errorf("vpipe_http_rejected_total{reason=publish_failed} = %v, want 1", n)
		}
		if !strings.Contains(v.logs.String(), `"level":"WARN"`) {
			t.Errorf("publish failure not logged as a warning: %s", v.logs)
		}
	})
	t.Run("Publish returns an error", func(t *testing.T) {
		pub := &testPublisher{pubErr: map[int]error{2: errors.New("producer closed")}}
		v := newEnv(t, Config{}, pub, nil)
		a := v.post(t, RouteEvents, "application/x-ndjson", body)
		wantError(t, a, 503, "publish event 3 of 3", "producer closed", "2 acknowledged")
		if a.body["accepted"] != float64(2) {
			t.Errorf("accepted %v, want 2", a.body["accepted"])
		}
	})
	t.Run("no acknowledgement in time", func(t *testing.T) {
		hold := make(chan struct{})
		t.Cleanup(func() { close(hold) }) // late callbacks must be harmless
		pub := &testPublisher{hold: hold}
		v := newEnv(t, Config{AckTimeout: 200 * time.Millisecond}, pub, nil)
		a := v.post(t, RouteSyslog, "text/plain", "a\nb\n")
		wantError(t, a, 503, "did not acknowledge 2 of 2 events within 200ms", "0 acknowledged")
	})
}

// TestAnswerAfterAcks checks that 202 comes only after Kafka acknowledged
// every event: acks are held back and released one at a time.
func TestAnswerAfterAcks(t *testing.T) {
	hold := make(chan struct{})
	pub := &testPublisher{hold: hold}
	v := newEnv(t, Config{}, pub, nil)
	answered := make(chan answer, 1)
	go func() {
		a, err := v.try(http.MethodPost, RouteEvents, `[{"message":"a"},{"message":"b"},{"message":"c"}]`, "Content-Type", "application/json")
		if err != nil {
			a.raw = err.Error()
		}
		answered <- a
	}()
	waitFor(t, "3 events published", func() bool { return len(pub.published()) == 3 })
	for i := 0; i < 2; i++ {
		hold <- struct{}{}
	}
	waitFor(t, "2 acks", func() bool { return pub.acked.Load() == 2 })
	select {
	case a := <-answered:
		t.Fatalf("answered %d %s with one event unacknowledged", a.code, a.raw)
	case <-time.After(100 * time.Millisecond):
	}
	hold <- struct{}{}
	a := <-answered
	wantAccepted(t, a, 3)
	if pub.acked.Load() != 3 {
		t.Errorf("answered with %d acks, want 3", pub.acked.Load())
	}
}

func TestConcurrentRequests(t *testing.T) {
	v := newEnv(t, Config{MaxConcurrent: 4}, nil, nil)
	const clients, requests = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, clients*requests)
	for c := range clients {
		wg.Go(func() {
			for r := range requests {
				var path, ctype, body string
				var want int
				switch r % 3 {
				case 0:
					path, ctype, want = RouteEvents, "application/x-ndjson", 2
					body = fmt.Sprintf("{\"message\":\"c%d r%d a\"}\n{\"message\":\"c%d r%d b\"}\n", c, r, c, r)
				case 1:
					path, ctype, want = RouteEvents, "application/json", 1
					body = fmt.Sprintf(`{"message":"c%d r%d"}`, c, r)
				case 2:
					path, ctype, want = RouteSyslog, "text/plain", 3
					body = fmt.Sprintf("c%d r%d x\r\nc%d r%d y\r\nc%d r%d z\r\n", c, r, c, r, c, r)
				}
				a, err := v.try(http.MethodPost, path, body, "Content-Type", ctype)
				if err != nil {
					errs <- err
				} else if a.code != 202 || a.body["accepted"] != float64(want) {
					errs <- fmt.Errorf("client %d request %d: %d %s", c, r, a.code, a.raw)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := v.pub.published()
	seen := map[string]bool{}
	for _, e := range got {
		if e.Original != e.Message && e.Dataset == "syslog.generic" {
			t.Errorf("syslog event mixed up: original %q message %q", e.Original, e.Message)
		}
		if seen[e.Original] {
			t.Errorf("event %q published twice", e.Original)
		}
		seen[e.Original] = true
	}
	perClient := (requests/3+1)*2 + (requests/3)*1 + (requests/3)*3
	if len(got) != clients*perClient {
		t.Errorf("published %d events, want %d", len(got), clients*perClient)
	}
}

func TestTurns(t *testing.T) {
	t.Run("busy", func(t *testing.T) {
		v := newEnv(t, Config{MaxConcurrent: 1, AckTimeout: 100 * time.Millisecond}, nil, nil)
		v.h.slots <- struct{}{} // another request holds the only turn
		a := v.post(t, RouteEvents, "application/json", `{}`)
		wantError(t, a, 503, "busy")
		if a.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		<-v.h.slots
		wantAccepted(t, v.post(t, RouteEvents, "application/json", `{}`), 1)
	})
	t.Run("slow body", func(t *testing.T) {
		v := newEnv(t, Config{MaxConcurrent: 1, AckTimeout: 200 * time.Millisecond}, nil, nil)
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.Close() })
		go pw.Write([]byte(`[{"message":"a"},`)) // and nothing more
		a := v.do(t, http.MethodPost, RouteEvents, pr, "Content-Type", "application/json")
		wantError(t, a, 408, "did not arrive within 200ms")
		if n := v.counter(t, "vpipe_http_rejected_total", "route", RouteEvents, "reason", "read_timeout"); n != 1 {
			t.Errorf("vpipe_http_rejected_total{reason=read_timeout} = %v, want 1", n)
		}
		// The turn is free again, and the next request on a keep-alive
		// connection is not hit by the old read deadline.
		wantAccepted(t, v.post(t, RouteEvents, "application/json", `{}`), 1)
		time.Sleep(250 * time.Millisecond) // past the old deadline, on purpose
		wantAccepted(t, v.post(t, RouteEvents, "application/json", `{}`), 1)
	})
	t.Run("client goes away", func(t *testing.T) {
		hold := make(chan struct{})
		t.Cleanup(func() { close(hold) })
		pub := &testPublisher{hold: hold}
		v := newEnv(t, Config{}, pub, nil)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, v.srv.URL+RouteEvents, strings.NewReader(`{"message":"a"}`))
		req.Header.Set("Content-Type", "application/json")
		go func() {
			if resp, err := v.srv.Client().Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		waitFor(t, "the event published", func() bool { return len(pub.published()) == 1 })
		cancel()
		waitFor(t, "the request counted as canceled", func() bool {
			return v.counter(t, "vpipe_http_rejected_total", "route", RouteEvents, "reason", "canceled") == 1
		})
	})
}

func TestConfig(t *testing.T) {
	err := Config{MaxBodyBytes: -1, MaxEvents: -1, AckTimeout: -time.Second, BearerToken: " x"}.Validate()
	if err == nil {
		t.Fatal("no error for a bad config")
	}
	for _, key := range []string{"max_body_bytes", "max_events", "ack_timeout", "bearer_token"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("the zero Config does not validate: %v", err)
	}
	h := NewHandler(Config{MaxBodyBytes: -5}, Deps{Parser: lineParser{}, Publisher: &testPublisher{}})
	if h.cfg.MaxBodyBytes != DefaultMaxBodyBytes || h.cfg.MaxEvents != DefaultMaxEvents || h.cfg.AckTimeout != DefaultAckTimeout {
		t.Errorf("defaults not applied: %+v", h.cfg)
	}
	defer func() {
		if recover() == nil {
			t.Error("NewHandler without a Publisher did not panic")
		}
	}()
	NewHandler(Config{}, Deps{Parser: lineParser{}})
}
