package pipeline

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The -update flag (go test ./... -update) rewrites golden files. Another
// test file of this package may define it as well, so look it up first.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata")
	}
}

func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// eventjsonCases are the round-trip cases: each sets a few fields.
func eventjsonCases() []struct {
	name string
	e    *Event
} {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	return []struct {
		name string
		e    *Event
	}{
		{"zero event", &Event{}},
		{"dfw", eventjsonDFW()},
		{"generic syslog", eventjsonGeneric()},
		{"gateway firewall with structured data", eventjsonGateway()},
		{"every field", eventjsonEveryField()},
		{"timestamp only created", &Event{Created: ts}},
		{"timestamp only timestamp", &Event{Timestamp: ts}},
		{"timestamp equals created", &Event{Timestamp: ts, Created: ts}},
		{"timestamp in local zone", &Event{Timestamp: ts.In(time.FixedZone("X", -7*3600-1800))}},
		{"timestamp whole second", &Event{Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{"timestamp after year 9999", &Event{Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Created: ts}},
		{"timestamp before year 0", &Event{Timestamp: time.Date(-1, 12, 31, 23, 0, 0, 0, time.UTC)}},
		{"timestamp year 0", &Event{Timestamp: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"timestamp year 9999", &Event{Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		{"created after year 9999", &Event{Timestamp: ts, Created: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"both out of range", &Event{Timestamp: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), Created: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"kind event", &Event{Kind: "event"}},
		{"kind alert", &Event{Kind: "alert"}},
		{"severity zero valid", &Event{SeverityValid: true}},
		{"severity ignored when not valid", &Event{Severity: 7}},
		{"priority zero valid", &Event{Syslog: Syslog{PriorityValid: true}}},
		{"priority ignored when not valid", &Event{Syslog: Syslog{Priority: 13, Facility: 1, Severity: 5}}},
		{"facility outside table", &Event{Syslog: Syslog{PriorityValid: true, Priority: 255, Facility: 31, Severity: 7}}},
		{"syslog version 3164", &Event{Syslog: Syslog{Hostname: "h", Version: 0}}},
		{"syslog version 1", &Event{Syslog: Syslog{Version: 1}}},
		{"structured data empty element", &Event{Syslog: Syslog{StructuredData: []SDElement{{ID: "x@1"}}}}},
		{"structured data repeated id", &Event{Syslog: Syslog{StructuredData: []SDElement{
			{ID: "a", Params: []SDParam{{Name: "n", Value: "1"}}},
			{ID: "b", Params: []SDParam{{Name: "n", Value: "2"}}},
			{ID: "a", Params: []SDParam{{Name: "m", Value: "3"}, {Name: "n", Value: "4"}}},
		}}}},
		{"structured data repeated names", &Event{Syslog: Syslog{StructuredData: []SDElement{
			{ID: "a", Params: []SDParam{{Name: "x", Value: "1"}, {Name: "y", Value: "2"}, {Name: "x", Value: "3"}, {Name: "x", Value: ""}}},
		}}}},
		{"structured data order kept", &Event{Syslog: Syslog{StructuredData: []SDElement{
			{ID: "z", Params: []SDParam{{Name: "b", Value: "1"}, {Name: "a", Value: "2"}}},
			{ID: "y", Params: []SDParam{{Name: "d", Value: "3"}, {Name: "c", Value: "4"}}},
		}}}},
		{"structured data large", &Event{Syslog: Syslog{StructuredData: largeSD()}}},
		{"port zero valid", &Event{Source: Endpoint{PortValid: true}}},
		{"port ignored when not valid", &Event{Source: Endpoint{Port: 80}}},
		{"counters zero valid", &Event{Destination: Endpoint{CountersValid: true}}},
		{"counters ignored when not valid", &Event{Destination: Endpoint{Packets: 1, Bytes: 2}}},
		{"ipv6 with zone", &Event{Source: Endpoint{IP: netip.MustParseAddr("fe80::68c2:8472:2364:9be%vmk0")}}},
		{"ipv4 mapped", &Event{Destination: Endpoint{IP: netip.MustParseAddr("::ffff:10.0.0.1")}}},
		{"labels order kept", &Event{Labels: []Label{{"z", "1"}, {"a", "2"}, {"m", ""}}}},
		{"labels repeated key", &Event{Labels: []Label{{"k", "1"}, {"j", "2"}, {"k", "3"}}}},
		{"labels large", &Event{Labels: largeLabels()}},
		{"labels empty key", &Event{Labels: []Label{{"", "v"}}}},
		{"nsxv rule tag", &Event{Dataset: DatasetNSXVDFW, VMware: VMware{NSXV: NSX{LogLabel: "a5f2c1d0-9e8b-4c7a-b6d5-e4f3a2b1c0d9"}}}},
		{"vcenter object only", &Event{VMware: VMware{VCenter: VCenter{ObjectRef: "vm-42"}}}},
		{"vcenter negative key", &Event{VMware: VMware{VCenter: VCenter{Key: -9223372036854775808, ChainID: 9223372036854775807}}}},
		{"velocloud detail", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte(`{"a":1}`)}}}},
		{"velocloud detail not compact", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte(" {\"a\" : [ 1 , 2 ] ,\n\"b\":\"x y\"} ")}}}},
		{"velocloud detail empty object", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte(`{}`)}}}},
		{"velocloud detail invalid", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte(`{"a":`)}}}},
		{"velocloud detail array", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte(`[1]`)}}}},
		{"velocloud detail invalid with raw", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte(`nope`), DetailRaw: "original text"}}}},
		{"velocloud detail raw only", &Event{VMware: VMware{VeloCloud: VeloCloud{DetailRaw: `{not json`}}}},
		{"velocloud detail invalid utf8", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte("{\"a\":\"\xff\"}")}}}},
		{"original empty", &Event{Original: []byte{}}},
		{"original escapes", &Event{Original: []byte("\"\\/\b\f\n\r\t\x00\x01\x1f\x7f <>& \u2028\u2029 é")}},
		{"original invalid utf8", &Event{Original: []byte("abc\xffdef\xc3")}},
		{"original binary", &Event{Original: []byte{0, 0x80, 0xff, 0xc0, 0xaf, '"'}}},
		{"original lone surrogate bytes", &Event{Original: []byte("\xed\xa0\x80")}},
		{"strings invalid utf8", &Event{Message: "bad \xff here", Labels: []Label{{"k\xfe", "v\xfd"}}}},
		{"keys differing only in invalid utf8", &Event{
			Labels: []Label{{"k\xfe", "1"}, {"x", "2"}, {"k\xff", "3"}},
			Syslog: Syslog{StructuredData: []SDElement{
				{ID: "a\xff", Params: []SDParam{{Name: "n\xfe", Value: "1"}, {Name: "m", Value: "2"}, {Name: "n\xff", Value: "3"}}},
				{ID: "a\xfe", Params: []SDParam{{Name: "n\xef\xbf\xbd", Value: "4"}}},
			}},
		}},
		{"strings non-ASCII names", &Event{User: User{Name: "José Müller", Domain: "ДОМЕН"}, Rule: Rule{Name: "规则 1"}}},
	}
}

func largeSD() []SDElement {
	var sd []SDElement
	for i := range 40 {
		id := "id" + string(rune('a'+i%20))
		el := SDElement{ID: id}
		for j := range 40 {
			el.Params = append(el.Params, SDParam{Name: "p" + string(rune('a'+j%7)), Value: string(rune('A' + (i+j)%26))})
		}
		sd = append(sd, el)
	}
	return sd
}

func largeLabels() []Label {
	var l []Label
	for i := range 100 {
		l = append(l, Label{Key: "k" + string(rune('a'+i%30)), Value: string(rune('A' + i%26))})
	}
	return l
}

func TestEventJSONRoundTrip(t *testing.T) {
	for _, tc := range eventjsonCases() {
		t.Run(tc.name, func(t *testing.T) {
			before := cloneEvent(tc.e)
			out := tc.e.AppendJSON(nil)
			if !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
			if err := checkNoDuplicateKeys(out); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			if !reflect.DeepEqual(normalize(tc.e), normalize(&before)) {
				t.Fatal("AppendJSON modified the event")
			}
			var got Event
			if err := got.DecodeJSON(out); err != nil {
				t.Fatalf("DecodeJSON: %v\n%s", err, out)
			}
			want := canonical(tc.e)
			if g := normalize(&got); !reflect.DeepEqual(g, want) {
				t.Errorf("round trip differs\n got: %+v\nwant: %+v\njson: %s", g, want, out)
			}
			c := canonical(tc.e)
			if again, want := got.AppendJSON(nil), c.AppendJSON(nil); !bytes.Equal(again, want) {
				t.Errorf("re-encoding differs\n got: %s\nwant: %s", again, want)
			}
		})
	}
}

// TestAppendJSONMatchesReference compares AppendJSON with an independent
// model of the schema built as maps and marshalled by encoding/json.
func TestAppendJSONMatchesReference(t *testing.T) {
	for _, tc := range eventjsonCases() {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.e.AppendJSON(nil)
			var got any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("unmarshal AppendJSON output: %v\n%s", err, out)
			}
			ref, err := json.Marshal(referenceModel(tc.e))
			if err != nil {
				t.Fatal(err)
			}
			var want any
			if err := json.Unmarshal(ref, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("differs from reference\n got: %s\nwant: %s", out, ref)
			}
		})
	}
}

func TestAppendJSONZeroEvent(t *testing.T) {
	var e Event
	got := string(e.AppendJSON(nil))
	want := `{"@timestamp":"0001-01-01T00:00:00Z","event":{"kind":"event","original":""},"ecs":{"version":"8.11.0"}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAppendJSONAppends(t *testing.T) {
	e := eventjsonGeneric()
	prefix := []byte("key\t")
	out := e.AppendJSON(prefix)
	if !bytes.HasPrefix(out, prefix) || !json.Valid(out[len(prefix):]) {
		t.Errorf("AppendJSON did not append: %q", out)
	}
}

func TestAppendJSONFields(t *testing.T) {
	// Spot checks of the names and forms docs/schema.md promises.
	tests := []struct {
		name string
		e    *Event
		want string
	}{
		{"facility and severity names", &Event{Syslog: Syslog{PriorityValid: true, Priority: 181, Facility: 22, Severity: 5}},
			`"log":{"syslog":{"facility":{"code":22,"name":"local6"},"severity":{"code":5,"name":"notice"},"priority":181}}`},
		{"solaris-cron", &Event{Syslog: Syslog{PriorityValid: true, Facility: 15, Severity: 3}},
			`"facility":{"code":15,"name":"solaris-cron"},"severity":{"code":3,"name":"err"}`},
		{"facility without name", &Event{Syslog: Syslog{PriorityValid: true, Facility: 24, Severity: 8}},
			`"facility":{"code":24},"severity":{"code":8}`},
		{"version as string", &Event{Syslog: Syslog{Version: 1}}, `"log":{"syslog":{"version":"1"}}`},
		{"structured data", &Event{Syslog: Syslog{StructuredData: []SDElement{{ID: "nsx@6876", Params: []SDParam{{Name: "comp", Value: "nsx-edge"}}}}}},
			`"structured_data":{"nsx@6876":{"comp":"nsx-edge"}}`},
		{"repeated param as array", &Event{Syslog: Syslog{StructuredData: []SDElement{{ID: "o", Params: []SDParam{{Name: "ip", Value: "1"}, {Name: "x", Value: "2"}, {Name: "ip", Value: "3"}}}}}},
			`"structured_data":{"o":{"ip":["1","3"],"x":"2"}}`},
		{"nsxv rule tag", &Event{VMware: VMware{NSXV: NSX{LogLabel: "t"}}}, `"vmware":{"nsxv":{"rule_tag":"t"}}`},
		{"nsx log label", &Event{VMware: VMware{NSX: NSX{LogLabel: "t"}}}, `"vmware":{"nsx":{"log_label":"t"}}`},
		{"labels", &Event{Labels: []Label{{"k", "v"}, {"k", "w"}}}, `"labels":{"k":"w"}`},
		{"detail embedded", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte(`{ "a" : 1 }`)}}}, `"velocloud":{"detail":{"a":1}}`},
		{"detail invalid", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte(`{"a"`)}}}, `"velocloud":{"detail_raw":"{\"a\""}`},
		{"invalid original", &Event{Original: []byte("a\xffb")}, `"original":"a\ufffdb"},"vpipe":{"original_base64":"Yf9i"}`},
		{"html not escaped", &Event{Message: "<a&b>"}, `"message":"<a&b>"`},
		{"line separators escaped", &Event{Message: "\u2028\u2029"}, `"message":"\u2028\u2029"`},
		{"created", &Event{Created: time.Date(2026, 1, 1, 0, 0, 0, 500, time.FixedZone("", 3600))},
			`{"@timestamp":"2025-12-31T23:00:00.0000005Z","event":{"kind":"event","original":"","created":"2025-12-31T23:00:00.0000005Z"}`},
		{"iana number", &Event{Network: Network{IANANumber: "6"}}, `"network":{"iana_number":"6"}`},
		{"zone escaped", &Event{Source: Endpoint{IP: netip.MustParseAddr("fe80::1%a\"b")}}, `"source":{"ip":"fe80::1%a\"b"}`},
		{"counters", &Event{Source: Endpoint{CountersValid: true, Packets: 3}}, `"source":{"packets":3,"bytes":0}`},
		{"invalid utf8 keys merged", &Event{Labels: []Label{{"k\xfe", "1"}, {"x", "2"}, {"k\xff", "3"}}}, `"labels":{"k\ufffd":"3","x":"2"}`},
		{"invalid utf8 sd keys merged", &Event{Syslog: Syslog{StructuredData: []SDElement{
			{ID: "a\xff", Params: []SDParam{{Name: "n\xfe", Value: "1"}, {Name: "m", Value: "2"}, {Name: "n\xff", Value: "3"}}},
			{ID: "a\xfe", Params: []SDParam{{Name: "n", Value: "4"}}},
		}}}, `"structured_data":{"a\ufffd":{"n\ufffd":["1","3"],"m":"2","n":"4"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.e.AppendJSON(nil)
			if !bytes.Contains(out, []byte(tc.want)) {
				t.Errorf("output lacks %s\n%s", tc.want, out)
			}
		})
	}
}

// TestAppendJSONStringEscaping compares appendJSONString byte for byte
// with encoding/json (HTML escaping off).
func TestAppendJSONStringEscaping(t *testing.T) {
	inputs := []string{
		"", "plain", `"quoted"`, `back\slash`, "\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f",
		"<script>&amp;</script>", "\u2028\u2029", "\u2027\u202a", "é日本\U0001F600",
		"\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x80", "12345678\"12345678",
		"1234567\x80", strings.Repeat("abcdefgh", 9) + "\n", "\xef\xbf\xbd",
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab\"\\\x00\x1f\x7f\x80\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80<>& ")
	for range 2000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(3) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = byte(r.IntN(256))
			}
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("string %q: got %s, want %s", s, got, want)
		}
		if got := appendJSONString(nil, []byte(s)); !bytes.Equal(got, want) {
			t.Errorf("bytes %q: got %s, want %s", s, got, want)
		}
		// Decoding gives what encoding/json decodes.
		var ref string
		if err := json.Unmarshal(want, &ref); err != nil {
			t.Fatal(err)
		}
		var d jsonDecoder
		d.data = want
		raw, slow, err := d.stringValue("")
		if err != nil {
			t.Fatalf("stringValue(%s): %v", want, err)
		}
		got := string(raw)
		if slow {
			got = string(appendUnescaped(nil, raw))
		}
		if got != ref {
			t.Errorf("decode %s: got %q, want %q", want, got, ref)
		}
	}
}

// TestDecodeJSONUnescape checks escapes and raw bytes that AppendJSON never
// writes against encoding/json.
func TestDecodeJSONUnescape(t *testing.T) {
	inputs := []string{
		`"\u0041\u00e9\u65e5"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00"`, `"\ud83d\u0041"`,
		`"\ud83dx"`, `"\ud83d\ud83d\ude00"`, `"\/"`, "\"\xff\"", "\"a\xc3\"", "\"\xed\xa0\x80\"",
		`"\uD83D\uDE00"`, "\"\u2028\"",
	}
	for _, in := range inputs {
		var ref string
		if err := json.Unmarshal([]byte(in), &ref); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var e Event
		if err := e.DecodeJSON([]byte(`{"message":` + in + `}`)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if e.Message != ref {
			t.Errorf("%s: got %q, want %q", in, e.Message, ref)
		}
	}
}

func TestEventJSONGolden(t *testing.T) {
	tests := []struct {
		name string
		e    *Event
	}{
		{"gateway", eventjsonGateway()},
		{"everyfield", eventjsonEveryField()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", "eventjson_"+tc.name+".golden.json")
			out := append(tc.e.AppendJSON(nil), '\n')
			if updatingGolden() {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs from %s (run go test -update and review the diff)\n got: %s\nwant: %s", path, out, want)
			}
			var got Event
			if err := got.DecodeJSON(want); err != nil {
				t.Fatalf("DecodeJSON(%s): %v", path, err)
			}
			if g, w := normalize(&got), canonical(tc.e); !reflect.DeepEqual(g, w) {
				t.Errorf("decoded golden differs\n got: %+v\nwant: %+v", g, w)
			}
		})
	}
}

func TestAppendJSONAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    *Event
	}{
		{"dfw", eventjsonDFW()},
		{"generic", eventjsonGeneric()},
		{"gateway", eventjsonGateway()},
		{"velocloud", &Event{VMware: VMware{VeloCloud: VeloCloud{Detail: []byte(`{"a":[1,{"b":"c"}]}`)}}}},
		{"invalid original", &Event{Original: []byte("\xff")}},
		{"zone", &Event{Source: Endpoint{IP: netip.MustParseAddr("fe80::1%eth0")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 0, 4096)
			if n := testing.AllocsPerRun(100, func() { buf = tc.e.AppendJSON(buf[:0]) }); n != 0 {
				t.Errorf("AppendJSON allocates %v times per event", n)
			}
		})
	}
}

func TestDecodeJSONAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    *Event
		max  float64
	}{
		{"dfw", eventjsonDFW(), 0},
		{"generic", eventjsonGeneric(), 0},
		{"gateway", eventjsonGateway(), 1}, // the structured-data params
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.e.AppendJSON(nil)
			var e Event
			if n := testing.AllocsPerRun(100, func() {
				if err := e.DecodeJSON(data); err != nil {
					t.Fatal(err)
				}
			}); n > tc.max {
				t.Errorf("DecodeJSON allocates %v times per event, want at most %v", n, tc.max)
			}
		})
	}
}

func TestDecodeJSONReusesEvent(t *testing.T) {
	var e Event
	for _, src := range []*Event{eventjsonEveryField(), eventjsonGateway(), {}, eventjsonDFW(), eventjsonEveryField()} {
		data := src.AppendJSON(nil)
		if err := e.DecodeJSON(data); err != nil {
			t.Fatal(err)
		}
		// Overwrite the input: decoded strings must not alias it.
		for i := range data {
			data[i] = 'x'
		}
		if g, w := normalize(&e), canonical(src); !reflect.DeepEqual(g, w) {
			t.Fatalf("decoded into a used event\n got: %+v\nwant: %+v", g, w)
		}
	}
}

func TestDecodeJSONOtherTools(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(e *Event)
	}{
		{"unknown fields and nulls",
			`{"agent":{"type":"filebeat","x":[1,{"y":null}]},"@timestamp":"2024-05-15T21:41:25.5+02:00","event":{"dataset":"nsx.dfw","module":"vmware","kind":null,"id":null},"message":null,"host":{"name":"n","hostname":"h","ip":["10.0.0.1"]},"tags":["a"]}`,
			func(e *Event) {
				e.Timestamp = time.Date(2024, 5, 15, 19, 41, 25, 5e8, time.UTC)
				e.Dataset = "nsx.dfw"
				e.Host.Hostname = "h"
			}},
		{"observer ip array",
			`{"observer":{"ip":[null,"192.0.2.1","2001:db8::1"]}}`,
			func(e *Event) { e.Observer.IP = netip.MustParseAddr("192.0.2.1") }},
		{"observer ip empty array", `{"observer":{"ip":[]}}`, func(e *Event) {}},
		{"priority only",
			`{"log":{"syslog":{"priority":181}}}`,
			func(e *Event) {
				e.Syslog = Syslog{PriorityValid: true, Priority: 181, Facility: 22, Severity: 5}
			}},
		{"facility and severity only",
			`{"log":{"syslog":{"facility":{"name":"local6","code":22},"severity":{"code":5}}}}`,
			func(e *Event) {
				e.Syslog = Syslog{PriorityValid: true, Priority: 181, Facility: 22, Severity: 5}
			}},
		{"severity and priority",
			`{"log":{"syslog":{"severity":{"code":2},"priority":34}}}`,
			func(e *Event) {
				e.Syslog = Syslog{PriorityValid: true, Priority: 34, Facility: 4, Severity: 2}
			}},
		{"version as number", `{"log":{"syslog":{"version":1}}}`, func(e *Event) { e.Syslog.Version = 1 }},
		{"labels of other types",
			`{"labels":{"n":-1.5e3,"t":true,"f":false,"z":null,"s":"x","n":"again"}}`,
			func(e *Event) {
				e.Labels = []Label{{"n", "again"}, {"t", "true"}, {"f", "false"}, {"s", "x"}}
			}},
		{"structured data merged",
			`{"log":{"syslog":{"structured_data":{"a":{"x":"1","y":["2",3,null]},"b":null,"a":{"x":["4"],"z":true}}}}}`,
			func(e *Event) {
				e.Syslog.StructuredData = []SDElement{
					{ID: "a", Params: []SDParam{{"x", "1"}, {"x", "4"}, {"y", "2"}, {"y", "3"}, {"z", "true"}}},
					{ID: "b"},
				}
			}},
		{"detail as string of an object",
			`{"vmware":{"velocloud":{"detail":"{\"enterpriseLogicalId\": \"2467\", \"numberP2SA\": 0}"}}}`,
			func(e *Event) { e.VMware.VeloCloud.Detail = []byte(`{"enterpriseLogicalId":"2467","numberP2SA":0}`) }},
		{"detail as other string",
			`{"vmware":{"velocloud":{"detail":"edge went down"}}}`,
			func(e *Event) { e.VMware.VeloCloud.DetailRaw = "edge went down" }},
		{"detail pretty printed",
			"{\"vmware\":{\"velocloud\":{\"detail\":{\n  \"a\": [1, 2],\n  \"b\": \"x y\"\n}}}}",
			func(e *Event) { e.VMware.VeloCloud.Detail = []byte(`{"a":[1,2],"b":"x y"}`) }},
		{"base64 before original",
			`{"vpipe":{"original_base64":"YWL/"},"event":{"original":"ab\ufffd"}}`,
			func(e *Event) { e.Original = []byte("ab\xff") }},
		{"escaped member names", `{"\u0065vent":{"d\u0061taset":"x"}}`, func(e *Event) { e.Dataset = "x" }},
		{"white space", " \t\r\n{ \"message\" : \"m\" , \"event\" : { } } \n", func(e *Event) { e.Message = "m" }},
		{"dotted keys ignored", `{"event.dataset":"x","source.ip":"nope"}`, func(e *Event) {}},
		{"timestamp equal to created", `{"@timestamp":"2024-01-01T00:00:00Z","event":{"created":"2024-01-01T01:00:00+01:00"}}`,
			func(e *Event) { e.Created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"empty ip", `{"source":{"ip":""}}`, func(e *Event) {}},
		{"large integers", `{"source":{"bytes":18446744073709551615},"vmware":{"vcenter":{"key":-9223372036854775808}}}`,
			func(e *Event) {
				e.Source.Bytes, e.Source.CountersValid = 1<<64-1, true
				e.VMware.VCenter.Key = -1 << 63
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Event
			if err := got.DecodeJSON([]byte(tc.in)); err != nil {
				t.Fatal(err)
			}
			var want Event
			tc.want(&want)
			if g, w := normalize(&got), normalize(&want); !reflect.DeepEqual(g, w) {
				t.Errorf("\n got: %+v\nwant: %+v", g, w)
			}
		})
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", ``, "want JSON object at offset 0"},
		{"not an object", `[]`, "want JSON object at offset 0"},
		{"dataset number", `{"event":{"id":"x","dataset":5}}`, "event.dataset: want string at offset 29"},
		{"event not object", `{"event":"x"}`, "event: want object at offset 9"},
		{"port too large", `{"source":{"port":65536}}`, "source.port: want integer 0-65535 at offset 18"},
		{"port negative", `{"destination":{"port":-1}}`, "destination.port: want integer 0-65535 at offset 23"},
		{"port fraction", `{"source":{"port":1.5}}`, "source.port: want integer 0-65535"},
		{"bad ip", `{"source":{"ip":"10.0.0.256"}}`, "source.ip: want IP address at offset 16"},
		{"bad time", `{"@timestamp":"yesterday"}`, "@timestamp: want RFC 3339 time at offset 14"},
		{"time out of range", `{"@timestamp":"0000-01-01T00:00:00+01:00"}`, "@timestamp: year outside 0000-9999 in UTC"},
		{"bad base64", `{"vpipe":{"original_base64":"!!"}}`, "vpipe.original_base64: want standard base64 at offset 28"},
		{"facility too large", `{"log":{"syslog":{"facility":{"code":256}}}}`, "log.syslog.facility.code: want integer 0-255"},
		{"version not a number", `{"log":{"syslog":{"version":"v1"}}}`, "log.syslog.version: want version number 0-255"},
		{"label object", `{"labels":{"a":{}}}`, "labels: want string, number or boolean at offset 15"},
		{"detail number", `{"vmware":{"velocloud":{"detail":1}}}`, "vmware.velocloud.detail: want object"},
		{"severity float", `{"event":{"severity":1e2}}`, "event.severity: want 64-bit integer"},
		{"key overflow", `{"vmware":{"vcenter":{"key":9223372036854775808}}}`, "vmware.vcenter.key: want 64-bit integer"},
		{"trailing data", `{} {}`, "unexpected data after the event at offset 3"},
		{"trailing comma", `{"message":"m",}`, "want member name at offset 15"},
		{"missing colon", `{"message" "m"}`, "want ':' at offset 11"},
		{"unterminated string", `{"message":"m`, "message: unterminated string at offset 11"},
		{"control character", "{\"message\":\"a\nb\"}", "message: control character in string at offset 13"},
		{"bad escape", `{"message":"\x"}`, `message: invalid escape in string at offset 12`},
		{"bad unicode escape", `{"message":"\u12g4"}`, `message: invalid \u escape in string at offset 12`},
		{"unknown field invalid", `{"x":[1,]}`, "invalid value at offset 8"},
		{"unknown field bad literal", `{"x":nul}`, "invalid value at offset 5"},
		{"bad number", `{"x":-}`, "invalid number at offset 5"},
		{"leading zero", `{"x":01}`, "want ',' or '}' at offset 6"},
		{"truncated", `{"event":{"id":"x"`, "event: unexpected end of input in object at offset 18"},
		{"too deep", `{"x":` + strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1) + `}`, "nested too deeply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := eventjsonDFW()
			err := e.DecodeJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if !errors.Is(err, ErrPermanent) {
				t.Errorf("error %q is not permanent", err)
			}
			if !reflect.DeepEqual(normalize(e), normalize(&Event{})) {
				t.Errorf("event not reset after error: %+v", e)
			}
		})
	}
}

// FuzzEventJSON: DecodeJSON never panics and accepts only valid JSON; an
// accepted event encodes to valid JSON that decodes to the same event and
// encodes to the same bytes again.
func FuzzEventJSON(f *testing.F) {
	for _, tc := range eventjsonCases() {
		f.Add(tc.e.AppendJSON(nil))
	}
	for _, s := range []string{
		`{}`, `null`, `{"labels":{"a":1,"a":"2"}}`, `{"observer":{"ip":["::1%x"]}}`,
		`{"log":{"syslog":{"structured_data":{"a":{"x":["1","2"],"y":"3","x":"4"},"a":{}}}}}`,
		`{"vmware":{"velocloud":{"detail":"{\"a\":\"\\u00e9\"}","detail_raw":"r"}}}`,
		`{"@timestamp":"2024-01-01T00:00:00.123456789-12:59","event":{"created":"2024-01-01T12:59:00.123456789Z"}}`,
		`{"event":{"original":"\ud800x"},"vpipe":{"original_base64":"gA=="}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Event
		if err := e.DecodeJSON(data); err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		out := e.AppendJSON(nil)
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, data)
		}
		if err := checkNoDuplicateKeys(out); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		var e2 Event
		if err := e2.DecodeJSON(out); err != nil {
			t.Fatalf("re-decode: %v\ninput:  %q\noutput: %q", err, data, out)
		}
		if g, w := normalize(&e2), normalize(&e); !reflect.DeepEqual(g, w) {
			t.Fatalf("round trip differs\n got: %+v\nwant: %+v\ninput: %q", g, w, data)
		}
		if out2 := e2.AppendJSON(nil); !bytes.Equal(out, out2) {
			t.Fatalf("re-encoding differs\n%q\n%q", out, out2)
		}
	})
}

// checkNoDuplicateKeys returns an error when an object in the JSON text
// data has a key twice (Elasticsearch, for one, rejects such documents).
func checkNoDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys     map[string]bool
		expected bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return nil
			}
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				if top != nil && top.keys != nil {
					top.expected = true
				}
				stack = append(stack, &frame{keys: map[string]bool{}, expected: true})
			case '[':
				if top != nil && top.keys != nil {
					top.expected = true
				}
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.keys != nil && top.expected {
				if top.keys[v] {
					return errors.New("duplicate key " + strconv.Quote(v))
				}
				top.keys[v] = true
				top.expected = false
				continue
			}
		}
		if top != nil && top.keys != nil {
			top.expected = true
		}
	}
}

// cloneEvent deep-copies the slices of e.
func cloneEvent(e *Event) Event {
	c := *e
	c.Original = bytes.Clone(e.Original)
	c.Labels = append([]Label(nil), e.Labels...)
	c.Syslog.StructuredData = nil
	for _, el := range e.Syslog.StructuredData {
		c.Syslog.StructuredData = append(c.Syslog.StructuredData, SDElement{ID: el.ID, Params: append([]SDParam(nil), el.Params...)})
	}
	c.VMware.VeloCloud.Detail = bytes.Clone(e.VMware.VeloCloud.Detail)
	c.scratch = nil
	return c
}

// normalize returns a deep copy of e in a form reflect.DeepEqual can
// compare: empty slices nil, times in UTC without monotonic reading, no
// scratch space, strings copied.
func normalize(e *Event) Event {
	c := cloneEvent(e)
	normTimes(&c)
	nilEmpty(reflect.ValueOf(&c).Elem())
	return c
}

func normTimes(e *Event) {
	e.Timestamp = e.Timestamp.Round(0).UTC()
	e.Created = e.Created.Round(0).UTC()
}

// nilEmpty sets empty slices to nil and copies strings out of scratch
// space, recursively.
func nilEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() || v.Type() == reflect.TypeFor[netip.Addr]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				nilEmpty(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		for i := range v.Len() {
			nilEmpty(v.Index(i))
		}
	case reflect.String:
		v.SetString(strings.Clone(v.String()))
	}
}

// canonical is what DecodeJSON(AppendJSON(e)) must give, written from
// docs/schema.md independently of the encoder.
func canonical(e *Event) Event {
	c := normalize(e)
	for _, t := range []*time.Time{&c.Timestamp, &c.Created} {
		if y := t.Year(); y < 0 || y > 9999 {
			*t = time.Time{}
		}
	}
	if c.Kind == "event" {
		c.Kind = ""
	}
	if !c.Created.IsZero() && c.Timestamp.Equal(c.Created) {
		c.Timestamp = time.Time{}
	}
	if !c.SeverityValid {
		c.Severity = 0
	}
	if !c.Syslog.PriorityValid {
		c.Syslog.Priority, c.Syslog.Facility, c.Syslog.Severity = 0, 0, 0
	}
	for _, p := range []*Endpoint{&c.Source, &c.Destination} {
		if !p.PortValid {
			p.Port = 0
		}
		if !p.CountersValid {
			p.Packets, p.Bytes = 0, 0
		}
	}
	fixStrings(reflect.ValueOf(&c).Elem())

	var labels []Label
	for _, l := range c.Labels {
		found := false
		for i := range labels {
			if labels[i].Key == l.Key {
				labels[i].Value, found = l.Value, true
			}
		}
		if !found {
			labels = append(labels, l)
		}
	}
	c.Labels = labels

	var sd []SDElement
	for _, el := range c.Syslog.StructuredData {
		i := 0
		for i < len(sd) && sd[i].ID != el.ID {
			i++
		}
		if i == len(sd) {
			sd = append(sd, SDElement{ID: el.ID})
		}
		sd[i].Params = append(sd[i].Params, el.Params...)
	}
	for i := range sd {
		var names []string
		values := map[string][]SDParam{}
		for _, p := range sd[i].Params {
			if _, ok := values[p.Name]; !ok {
				names = append(names, p.Name)
			}
			values[p.Name] = append(values[p.Name], p)
		}
		sd[i].Params = nil
		for _, n := range names {
			sd[i].Params = append(sd[i].Params, values[n]...)
		}
	}
	c.Syslog.StructuredData = sd

	v := &c.VMware.VeloCloud
	if len(v.Detail) > 0 {
		var buf bytes.Buffer
		if json.Valid(v.Detail) && bytes.TrimSpace(v.Detail)[0] == '{' && json.Compact(&buf, v.Detail) == nil {
			v.Detail = escapeInvalidUTF8(buf.Bytes())
		} else {
			if v.DetailRaw == "" {
				v.DetailRaw = fixUTF8(string(v.Detail))
			}
			v.Detail = nil
		}
	}
	return c
}

// fixStrings replaces invalid UTF-8 in every string field as encoding/json
// does.
func fixStrings(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fixStrings(v.Field(i))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			fixStrings(v.Index(i))
		}
	case reflect.String:
		v.SetString(fixUTF8(v.String()))
	}
}

// escapeInvalidUTF8 replaces each invalid UTF-8 byte with the JSON escape
// \ufffd (Detail's rule).
func escapeInvalidUTF8(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = append(out, `\ufffd`...)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

func fixUTF8(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			b.WriteRune(utf8.RuneError)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// referenceModel builds the document docs/schema.md describes as plain
// maps, for encoding/json to marshal.
func referenceModel(e *Event) map[string]any {
	c := canonical(e)
	m := map[string]any{}
	put := func(obj map[string]any, k string, v any) {
		switch x := v.(type) {
		case string:
			if x == "" {
				return
			}
		case map[string]any:
			if len(x) == 0 {
				return
			}
		}
		obj[k] = v
	}
	ts := c.Timestamp
	if ts.IsZero() {
		ts = c.Created
	}
	m["@timestamp"] = ts.UTC().Format(time.RFC3339Nano)
	ev := map[string]any{"kind": "event", "original": string(e.Original)}
	put(ev, "kind", c.Kind)
	put(ev, "id", c.ID)
	put(ev, "dataset", c.Dataset)
	put(ev, "action", c.Action)
	put(ev, "outcome", c.Outcome)
	put(ev, "reason", c.Reason)
	if c.SeverityValid {
		ev["severity"] = c.Severity
	}
	if !c.Created.IsZero() {
		ev["created"] = c.Created.UTC().Format(time.RFC3339Nano)
	}
	m["event"] = ev
	put(m, "message", c.Message)
	put(m, "error", map[string]any{"message": c.Error})
	if c.Error == "" {
		delete(m, "error")
	}

	sl := map[string]any{}
	if c.Syslog.PriorityValid {
		fac := map[string]any{"code": c.Syslog.Facility}
		if c.Syslog.Facility < 24 {
			fac["name"] = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
				"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
				"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}[c.Syslog.Facility]
		}
		sev := map[string]any{"code": c.Syslog.Severity}
		if c.Syslog.Severity < 8 {
			sev["name"] = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}[c.Syslog.Severity]
		}
		sl["facility"], sl["severity"], sl["priority"] = fac, sev, c.Syslog.Priority
	}
	put(sl, "hostname", c.Syslog.Hostname)
	put(sl, "appname", c.Syslog.AppName)
	put(sl, "procid", c.Syslog.ProcID)
	put(sl, "msgid", c.Syslog.MsgID)
	if c.Syslog.Version != 0 {
		sl["version"] = string(rune('0' + c.Syslog.Version%10)) // versions in cases are < 10
	}
	if len(c.Syslog.StructuredData) > 0 {
		sd := map[string]any{}
		for _, el := range c.Syslog.StructuredData {
			params := map[string]any{}
			for _, p := range el.Params {
				switch old := params[p.Name].(type) {
				case nil:
					params[p.Name] = p.Value
				case string:
					params[p.Name] = []any{old, p.Value}
				case []any:
					params[p.Name] = append(old, p.Value)
				}
			}
			sd[el.ID] = params
		}
		sl["structured_data"] = sd
	}
	lg := map[string]any{}
	put(lg, "level", c.LogLevel)
	put(lg, "source", map[string]any{"address": c.LogSource})
	if c.LogSource == "" {
		delete(lg, "source")
	}
	put(lg, "syslog", sl)
	put(m, "log", lg)

	ip := func(a netip.Addr) string {
		if !a.IsValid() {
			return ""
		}
		return a.String()
	}
	obs := map[string]any{}
	put(obs, "hostname", c.Observer.Hostname)
	put(obs, "ip", ip(c.Observer.IP))
	put(obs, "type", c.Observer.Type)
	put(obs, "vendor", c.Observer.Vendor)
	put(obs, "product", c.Observer.Product)
	put(m, "observer", obs)
	host := map[string]any{}
	put(host, "hostname", c.Host.Hostname)
	put(m, "host", host)
	for k, p := range map[string]Endpoint{"source": c.Source, "destination": c.Destination} {
		o := map[string]any{}
		put(o, "ip", ip(p.IP))
		if p.PortValid {
			o["port"] = p.Port
		}
		put(o, "domain", p.Domain)
		if p.CountersValid {
			o["packets"], o["bytes"] = p.Packets, p.Bytes
		}
		put(m, k, o)
	}
	nw := map[string]any{}
	put(nw, "transport", c.Network.Transport)
	put(nw, "iana_number", c.Network.IANANumber)
	put(nw, "type", c.Network.Type)
	put(nw, "direction", c.Network.Direction)
	put(m, "network", nw)
	rule := map[string]any{}
	put(rule, "id", c.Rule.ID)
	put(rule, "ruleset", c.Rule.Ruleset)
	put(rule, "name", c.Rule.Name)
	put(m, "rule", rule)
	org := map[string]any{}
	put(org, "id", c.Organization.ID)
	put(org, "name", c.Organization.Name)
	put(m, "organization", org)
	user := map[string]any{}
	put(user, "name", c.User.Name)
	put(user, "domain", c.User.Domain)
	put(m, "user", user)
	if len(c.Labels) > 0 {
		labels := map[string]any{}
		for _, l := range c.Labels {
			labels[l.Key] = l.Value
		}
		m["labels"] = labels
	}

	vm := map[string]any{}
	for k, x := range map[string]NSX{"nsx": c.VMware.NSX, "nsxv": c.VMware.NSXV} {
		o := map[string]any{}
		if k == "nsx" {
			put(o, "log_label", x.LogLabel)
		} else {
			put(o, "rule_tag", x.LogLabel)
		}
		put(o, "filter_hash", x.FilterHash)
		put(o, "reason", x.Reason)
		if x.PacketLength != 0 {
			o["packet_length"] = x.PacketLength
		}
		put(o, "tcp_flags", x.TCPFlags)
		put(o, "term_reason", x.TermReason)
		put(o, "vrf_id", x.VRF)
		put(o, "interface_id", x.InterfaceID)
		put(vm, k, o)
	}
	vc := c.VMware.VCenter
	vco := map[string]any{}
	put(vco, "server", vc.Server)
	put(vco, "event_type", vc.EventType)
	if vc.Key != 0 {
		vco["key"] = vc.Key
	}
	if vc.ChainID != 0 {
		vco["chain_id"] = vc.ChainID
	}
	obj := map[string]any{}
	put(obj, "name", vc.ObjectName)
	put(obj, "type", vc.ObjectType)
	put(obj, "ref", vc.ObjectRef)
	put(vco, "object", obj)
	put(vco, "tag", vc.Tag)
	put(vco, "category", vc.Category)
	put(vco, "datacenter", vc.Datacenter)
	put(vco, "change_tag", vc.ChangeTag)
	put(vm, "vcenter", vco)
	v := c.VMware.VeloCloud
	vel := map[string]any{}
	if v.EventID != 0 {
		vel["event_id"] = v.EventID
	}
	put(vel, "event", v.Event)
	put(vel, "category", v.Category)
	put(vel, "severity", v.Severity)
	if v.EnterpriseID != 0 {
		vel["enterprise_id"] = v.EnterpriseID
	}
	put(vel, "enterprise_name", v.EnterpriseName)
	put(vel, "enterprise_username", v.EnterpriseUsername)
	put(vel, "edge_name", v.EdgeName)
	put(vel, "segment_name", v.SegmentName)
	if len(v.Detail) > 0 {
		vel["detail"] = json.RawMessage(v.Detail)
	}
	put(vel, "detail_raw", v.DetailRaw)
	put(vm, "velocloud", vel)
	put(m, "vmware", vm)
	if !utf8.Valid(e.Original) {
		m["vpipe"] = map[string]any{"original_base64": base64.StdEncoding.EncodeToString(e.Original)}
	}
	m["ecs"] = map[string]any{"version": ECSVersion}
	return m
}

func TestCheckNoDuplicateKeys(t *testing.T) {
	for in, dup := range map[string]bool{
		`{"a":{"b":1,"b":2}}`:                             true,
		`{"a":1,"a":1}`:                                   true,
		`{"a":"a","b":["a","a"],"c":"b"}`:                 false,
		`{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":2}]}`: false,
		`{"a":[{"x":1,"x":2}]}`:                           true,
		`{"a":{},"a\u0000":{}}`:                           false,
	} {
		if err := checkNoDuplicateKeys([]byte(in)); (err != nil) != dup {
			t.Errorf("%s: got %v, want duplicate %v", in, err, dup)
		}
	}
}

// FuzzAppendJSON builds events from arbitrary strings (invalid UTF-8,
// repeated keys, any Detail bytes): the output is always valid UTF-8 JSON
// without a duplicate key, and decodes to the event's canonical form.
func FuzzAppendJSON(f *testing.F) {
	f.Add("msg", "key", "value", "id", "name", []byte("<13>1 - - - - - x"), []byte(`{"a":[1,"\u00e9"]}`), int64(1700000000), int64(5))
	f.Add("\u2028", "k\xff", "k\xfe", "\x00", "", []byte("\xff\xfe"), []byte(" { } "), int64(253402300800), int64(0))
	f.Add("", "", "", "", "", []byte(nil), []byte(`{"a":`), int64(-62167219201), int64(-1))
	f.Fuzz(func(t *testing.T, s1, s2, s3, s4, s5 string, orig, detail []byte, sec, nsec int64) {
		e := &Event{
			Timestamp: time.Unix(sec, nsec),
			Created:   time.Unix(sec/2, 0),
			Message:   s1,
			Original:  orig,
			LogSource: s3,
			Observer:  Observer{Hostname: s5},
			Labels:    []Label{{s2, s3}, {s3, s1}, {s2, s4}, {s5, s5}},
			Syslog: Syslog{StructuredData: []SDElement{
				{ID: s4, Params: []SDParam{{s5, s1}, {s2, s3}, {s5, s2}}},
				{ID: s2, Params: []SDParam{{s1, s4}}},
				{ID: s4, Params: []SDParam{{s2, s5}}},
			}},
			VMware: VMware{VeloCloud: VeloCloud{Detail: detail, DetailRaw: s3}},
		}
		out := e.AppendJSON(nil)
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		if err := checkNoDuplicateKeys(out); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		var got Event
		if err := got.DecodeJSON(out); err != nil {
			t.Fatalf("DecodeJSON: %v\n%q", err, out)
		}
		if g, w := normalize(&got), canonical(e); !reflect.DeepEqual(g, w) {
			t.Fatalf("round trip differs\n got: %+v\nwant: %+v\njson: %q", g, w, out)
		}
	})
}
