package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/config"
)

// running is a vpipe process started in the test.
type running struct {
	p    *proc
	stop context.CancelFunc
	done chan error
	logs *syncBuffer
	once sync.Once
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

// testConfig is the default configuration on free loopback ports with the
// embedded broker's data under dir.
func testConfig(dir string) *config.Config {
	cfg := config.Default()
	cfg.Kafka.Embedded.Listen = "127.0.0.1:0"
	cfg.Kafka.Embedded.DataDir = dir
	cfg.Syslog[0].Address = "127.0.0.1:0"
	cfg.Syslog[1].Address = "127.0.0.1:0"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Kafka.ShutdownTimeout = config.Duration(10 * time.Second)
	return cfg
}

func startVpipe(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	return startVpipeRoles(t, cfg, map[string]bool{roleIngest: true})
}

func startVpipeRoles(t *testing.T, cfg *config.Config, roles map[string]bool) *running {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	p, err := start(cfg, roles, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, stop: cancel, done: make(chan error, 1), logs: logs}
	go func() { r.done <- p.serve(ctx) }()
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

func (r *running) shutdown(t *testing.T) {
	r.once.Do(func() {
		r.stop()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("vpipe stopped with: %v\nlogs:\n%s", err, r.logs)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("vpipe did not stop\nlogs:\n%s", r.logs)
		}
	})
}

func (r *running) kafka() string { return r.p.brokers[0] }
func (r *running) udp() string   { return r.p.listeners[0].Addr().String() }
func (r *running) tcp() string   { return r.p.listeners[1].Addr().String() }
func (r *running) http() string  { return "http://" + r.p.serverLns[0].Addr().String() }

// events reads n events from topic and decodes them as generic JSON.
func events(t *testing.T, addr, topic string, n int) []map[string]any {
	t.Helper()
	msgs := brokertest.ReadN(t, addr, topic, n, 20*time.Second)
	out := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Value, &out[i]); err != nil {
			t.Fatalf("record %d is not JSON: %v\n%s", i, err, m.Value)
		}
	}
	return out
}

// field walks a dotted path through decoded JSON.
func field(ev map[string]any, path string) any {
	var cur any = ev
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func readSamples(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestEndToEndSyslogAndHTTP(t *testing.T) {
	r := startVpipe(t, testConfig(t.TempDir()))
	if !strings.Contains(r.logs.String(), `"msg":"vpipe running"`) {
		t.Fatalf("no startup line: %s", r.logs)
	}

	// RFC 5424 over UDP.
	u, err := net.Dial("udp", r.udp())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(u, "<14>1 2024-05-15T19:41:25.001Z host1 myapp 42 ID7 - hello over udp")
	u.Close()

	// Both framings mixed on one TCP connection, RFC 3164 and 5424.
	c, err := net.Dial("tcp", r.tcp())
	if err != nil {
		t.Fatal(err)
	}
	line5424 := "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] octet counted"
	fmt.Fprintf(c, "%d %s", len(line5424), line5424)
	fmt.Fprint(c, "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n")
	c.Close()

	// HTTP: NDJSON of two events.
	body := "{\"message\":\"one\"}\n{\"message\":\"two\"}\n"
	resp, err := http.Post(r.http()+"/v1/events", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %d %s", resp.StatusCode, b)
	}

	got := events(t, r.kafka(), "vpipe.other", 5)
	if len(got) != 5 {
		t.Fatalf("%d events on vpipe.other, want 5", len(got))
	}
	byMsg := map[string]map[string]any{}
	for _, ev := range got {
		m, _ := field(ev, "message").(string)
		byMsg[m] = ev
	}
	if ev := byMsg["hello over udp"]; ev == nil || field(ev, "log.syslog.appname") != "myapp" || field(ev, "event.dataset") != "syslog.generic" {
		t.Errorf("udp event: %v", ev)
	}
	if ev := byMsg["octet counted"]; ev == nil || field(ev, "log.syslog.structured_data.exampleSDID@32473.iut") != "3" {
		t.Errorf("octet-counted event: %v", ev)
	}
	if ev := byMsg["'su root' failed for lonvick on /dev/pts/8"]; ev == nil || field(ev, "log.syslog.hostname") != "mymachine" {
		t.Errorf("rfc3164 event: %v", ev)
	}
	for _, m := range []string{"one", "two"} {
		if ev := byMsg[m]; ev == nil || field(ev, "event.dataset") != "http.generic" {
			t.Errorf("http event %q: %v", m, ev)
		}
	}
	for _, ev := range got {
		if field(ev, "event.id") == nil || field(ev, "event.original") == nil || field(ev, "log.source.address") == nil {
			t.Errorf("event lacks id, original or source address: %v", ev)
		}
	}

	// /metrics counts them; /readyz is ready.
	resp, err = http.Get(r.http() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `vpipe_producer_records_total{topic="other"} 5`) {
		t.Errorf("metrics lack the produced count:\n%s", grep(string(b), "vpipe_producer_records_total"))
	}
	resp, err = http.Get(r.http() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d", resp.StatusCode)
	}
}

// TestEndToEndVMwareLines sends every real sample line over syslog TCP
// and checks that each lands on its topic, parsed, with the key DESIGN.md
// names: the log label or rule tag for firewall events (else the sender),
// vCenter/object for vCenter events, the sender for VeloCloud Edge lines.
func TestEndToEndVMwareLines(t *testing.T) {
	r := startVpipe(t, testConfig(t.TempDir()))
	files := []struct {
		file, topic string
		datasets    []string
	}{
		{"nsxt-dfw.log", "vpipe.firewall", []string{"nsx.dfw"}},
		{"nsxt-gateway-fw.log", "vpipe.firewall", []string{"nsx.gateway_firewall"}},
		{"nsxv-dfw.log", "vpipe.firewall", []string{"nsxv.dfw"}},
		{"vcenter-events.log", "vpipe.vcenter", []string{"vcenter.event"}},
		{"velocloud-edge-fw.log", "vpipe.velocloud", []string{"velocloud.firewall"}},
	}
	c, err := net.Dial("tcp", r.tcp())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, f := range files {
		for _, l := range readSamples(t, f.file) {
			fmt.Fprintf(c, "%s\n", l)
			want[f.topic]++
		}
	}
	c.Close()
	peer := strings.Split(c.LocalAddr().String(), ":")[0]
	datasets := map[string][]string{}
	for _, f := range files {
		datasets[f.topic] = append(datasets[f.topic], f.datasets...)
	}
	for _, f := range files {
		n := want[f.topic]
		want[f.topic] = 0
		if n == 0 {
			continue
		}
		msgs := brokertest.ReadN(t, r.kafka(), f.topic, n, 20*time.Second)
		if len(msgs) != n {
			t.Fatalf("%s: %d records, want %d", f.topic, len(msgs), n)
		}
		for _, m := range msgs {
			var ev map[string]any
			if err := json.Unmarshal(m.Value, &ev); err != nil {
				t.Fatal(err)
			}
			ds, _ := field(ev, "event.dataset").(string)
			if !slices.Contains(datasets[f.topic], ds) {
				t.Errorf("%s: dataset %q, want one of %v, for %s", f.topic, ds, datasets[f.topic], field(ev, "event.original"))
			}
			if e, _ := field(ev, "error.message").(string); e != "" {
				t.Errorf("%s: parse error %q on %s", f.topic, e, field(ev, "event.original"))
			}
			key := string(m.Key)
			var wantKey string
			switch f.topic {
			case "vpipe.firewall":
				wantKey = firstString(ev, "vmware.nsx.log_label", "vmware.nsxv.rule_tag")
			case "vpipe.vcenter":
				server, obj := firstString(ev, "vmware.vcenter.server"), firstString(ev, "vmware.vcenter.object.ref", "vmware.vcenter.object.name")
				if server != "" || obj != "" {
					wantKey = server + "/" + obj
				}
			}
			if wantKey == "" { // the sender
				wantKey = firstString(ev, "observer.hostname", "log.syslog.hostname")
			}
			if wantKey == "" {
				wantKey = peer
			}
			if key != wantKey {
				t.Errorf("%s: key %q, want %q for %s", f.topic, key, wantKey, field(ev, "event.original"))
			}
		}
	}
	// Spot checks of the keys the tenant routing depends on.
	keys := map[string]bool{}
	for _, m := range brokertest.ReadN(t, r.kafka(), "vpipe.firewall", 1, time.Second) {
		keys[string(m.Key)] = true
	}
	for _, k := range []string{"DR-Allow", "RULE_TAG"} {
		if !keys[k] {
			t.Errorf("no firewall record keyed %q; keys: %v", k, keys)
		}
	}
}

// firstString returns the first of the dotted paths that holds a string.
func firstString(ev map[string]any, paths ...string) string {
	for _, p := range paths {
		if s, ok := field(ev, p).(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// TestRestartKeepsData stops vpipe and starts it again on the same data
// directory: what was produced before is still there.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	r := startVpipe(t, cfg)
	c, err := net.Dial("tcp", r.tcp())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		fmt.Fprintf(c, "<14>1 2024-05-15T19:41:25.001Z host1 app - - - restart %d\n", i)
	}
	c.Close()
	events(t, r.kafka(), "vpipe.other", 100)
	r.shutdown(t)

	r2 := startVpipe(t, testConfig(dir))
	if got := events(t, r2.kafka(), "vpipe.other", 100); len(got) != 100 {
		t.Fatalf("after restart: %d events, want 100", len(got))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestTap runs `vpipe tap` against a running vpipe and sees an event sent
// by syslog.
func TestTap(t *testing.T) {
	r := startVpipe(t, testConfig(t.TempDir()))
	c, err := net.Dial("tcp", r.tcp())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "<14>1 2024-05-15T19:41:25.001Z host1 app - - - tapped line\n")
	c.Close()
	events(t, r.kafka(), "vpipe.other", 1)

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, []string{"tap", "--brokers", r.kafka(), "--from-beginning", "other"}, out, io.Discard)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), `"message":"tapped line"`) {
		if time.Now().After(deadline) {
			t.Fatalf("tap printed: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tap exit %d", code)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &ev); err != nil {
		t.Fatalf("tap line is not JSON: %v", err)
	}
}

// TestFileStage runs ingest and the file stage in one process: events sent
// by syslog end up in the file.
func TestFileStage(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	out := filepath.Join(dir, "events.ndjson")
	cfg.Stages.File = &config.FileStage{Path: out, Topics: []string{"other", "firewall"}, GroupID: "vpipe-file", BatchSize: 50}
	r := startVpipeRoles(t, cfg, map[string]bool{roleIngest: true, roleFile: true})
	c, err := net.Dial("tcp", r.tcp())
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		fmt.Fprintf(c, "<14>1 2024-05-15T19:41:25.001Z host1 app - - - file stage %d\n", i)
	}
	c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		lines := strings.Count(string(b), "\n")
		if lines >= n {
			seen := map[string]bool{}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var ev map[string]any
				if err := json.Unmarshal([]byte(l), &ev); err != nil {
					t.Fatalf("bad line %q: %v", l, err)
				}
				seen[field(ev, "message").(string)] = true
			}
			if len(seen) != n {
				t.Fatalf("%d distinct events in the file, want %d", len(seen), n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines in %s after 60s, want %d\nlogs:\n%s", lines, out, n, r.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEndWebhooks posts the vendor payloads to their webhook routes:
// a vCenter tagging EventEx, a VCO event and a Log Insight tag alert.
func TestEndToEndWebhooks(t *testing.T) {
	r := startVpipe(t, testConfig(t.TempDir()))
	post := func(name string, body []byte) {
		t.Helper()
		resp, err := http.Post(r.http()+"/v1/webhooks/"+name, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", name, resp.StatusCode, b)
		}
	}
	sample := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "samples", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	post("vcenter", sample("vcenter-tag-attach-event.json"))
	post("velocloud", sample("velocloud-events.ndjson"))
	post("loginsight", []byte(`{"AlertType":1,"AlertName":"vTagSync","messages":[{"text":"User VSPHERE.LOCAL\\Administrator attached tag quarantine to object web-01","timestamp":1451940578545,"fields":[]}]}`))

	vc := events(t, r.kafka(), "vpipe.vcenter", 2)
	tags := map[string]string{}
	for _, ev := range vc {
		if field(ev, "vmware.vcenter.event_type") != "com.vmware.cis.tagging.attach" {
			t.Errorf("not a tag attach: %v", ev)
		}
		tags[firstString(ev, "vmware.vcenter.object.name")] = firstString(ev, "vmware.vcenter.tag")
	}
	if tags["example-vm"] != "example-tag" || tags["web-01"] != "quarantine" {
		t.Errorf("tags by object: %v", tags)
	}
	vco := brokertest.ReadN(t, r.kafka(), "vpipe.velocloud", 1, 20*time.Second)[0]
	var ev map[string]any
	json.Unmarshal(vco.Value, &ev)
	if field(ev, "vmware.velocloud.event") != "VPN_DATACENTER_STATUS" || field(ev, "vmware.velocloud.detail.ikeState") != "DOWN" {
		t.Errorf("velocloud event: %s", vco.Value)
	}
}
