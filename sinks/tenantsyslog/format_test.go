package tenantsyslog

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/tenants"
)

func sampleEvent() *pipeline.Event {
	e := &pipeline.Event{
		Timestamp: time.Date(2024, 5, 15, 19, 41, 25, 1_000_000, time.UTC),
		ID:        "b1f0c0e4a7d2c3f5",
		Dataset:   pipeline.DatasetNSXGatewayFW,
		Action:    "drop",
		Outcome:   "failure",
		Original: []byte(`<181>1 2023-09-15T13:15:05.548Z edge321 NSX 5188 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd"] ` +
			`<30 d612293055f3431f:8b01687591afe36e> INET reason-match DROP 2312 OUT 84 PROTO 1 192.168.211.169->8.8.8.8 a93c9db9-7edge1d1e2f`),
		Syslog: pipeline.Syslog{PriorityValid: true, Priority: 181, Facility: 22, Severity: 5, Version: 1,
			Hostname: "edge321", AppName: "NSX", ProcID: "5188", MsgID: "FIREWALL",
			StructuredData: []pipeline.SDElement{{ID: "nsx@6876", Params: []pipeline.SDParam{{Name: "comp", Value: "nsx-edge"}, {Name: "subcomp", Value: `a"b]c\d`}}}}},
		Source:      pipeline.Endpoint{IP: netip.MustParseAddr("192.168.211.169")},
		Destination: pipeline.Endpoint{IP: netip.MustParseAddr("8.8.8.8"), Port: 53, PortValid: true},
		Network:     pipeline.Network{Transport: "icmp", Direction: "egress"},
		Rule:        pipeline.Rule{ID: "2312"},
	}
	e.VMware.NSX.LogLabel = "a93c9db9-7edge1d1e2f"
	return e
}

func TestFormat(t *testing.T) {
	const body = `<30 d612293055f3431f:8b01687591afe36e> INET reason-match DROP 2312 OUT 84 PROTO 1 192.168.211.169->8.8.8.8 a93c9db9-7edge1d1e2f`
	tests := []struct {
		name       string
		dest       tenants.Destination
		tenant     string
		event      func(*pipeline.Event)
		want       string // exact, or
		contains   []string
		absent     []string
		truncated  bool
		maxLen     int
		noNewlines bool
	}{
		{
			name:   "rfc5424",
			dest:   tenants.Destination{Format: FormatRFC5424, SDID: "vpipe@32473"},
			tenant: "acme",
			want: `<181>1 2024-05-15T19:41:25.001000Z edge321 NSX 5188 FIREWALL [vpipe@32473 tenant="acme" event_id="b1f0c0e4a7d2c3f5" ` +
				`dataset="nsx.gateway_firewall" action="drop" outcome="failure" rule_id="2312" log_label="a93c9db9-7edge1d1e2f" ` +
				`src_ip="192.168.211.169" dst_ip="8.8.8.8" dst_port="53" transport="icmp" direction="egress"]` +
				`[nsx@6876 comp="nsx-edge" subcomp="a\"b\]c\\d"] ` + body,
		},
		{
			name:     "rfc5424 catch-all has no tenant",
			dest:     tenants.Destination{Format: FormatRFC5424, SDID: "prov@12345"},
			tenant:   "",
			contains: []string{`[prov@12345 event_id=`},
			absent:   []string{`tenant=`},
		},
		{
			name:   "rfc5424 without a priority or header fields",
			dest:   tenants.Destination{Format: FormatRFC5424},
			tenant: "acme",
			event: func(e *pipeline.Event) {
				e.Syslog = pipeline.Syslog{}
				e.Original = []byte(body)
				e.Observer.Hostname = "esx 01"
			},
			contains: []string{`<13>1 2024-05-15T19:41:25.001000Z esx_01 - - - [vpipe@32473 tenant="acme"`, `"] ` + body},
		},
		{
			name:   "rfc3164",
			dest:   tenants.Destination{Format: FormatRFC3164},
			tenant: "acme",
			want:   `<181>May 15 19:41:25 edge321 NSX[5188]: ` + body,
		},
		{
			name:     "json carries the tenant",
			dest:     tenants.Destination{Format: FormatJSON},
			tenant:   "acme",
			contains: []string{`"organization":{"id":"acme","name":"ACME Corp"}`, `"log_label":"a93c9db9-7edge1d1e2f"`},
		},
		{
			name:       "newline framing replaces line feeds",
			dest:       tenants.Destination{Format: FormatRFC5424, Transport: "tcp", Framing: FramingNewline},
			tenant:     "acme",
			event:      func(e *pipeline.Event) { e.Original = append(e.Original, "\nsecond line"...) },
			contains:   []string{"a93c9db9-7edge1d1e2f second line"},
			noNewlines: true,
		},
		{
			name:      "cut to max_message_bytes on a rune boundary",
			dest:      tenants.Destination{Format: FormatRFC5424, MaxMessageBytes: 482},
			tenant:    "acme",
			event:     func(e *pipeline.Event) { e.Original = append(e.Original, strings.Repeat("é", 400)...) },
			truncated: true,
			maxLen:    482,
		},
	}
	p := syslog.NewParser(syslog.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEvent()
			if tt.event != nil {
				tt.event(e)
			}
			f, err := newFormatter(tt.dest, tt.tenant, "ACME Corp")
			if err != nil {
				t.Fatal(err)
			}
			sc := &pipeline.Event{Original: append([]byte(nil), e.Original...)}
			msg := p.Parse(sc)
			got, cut := f.appendMessage(nil, e, msg)
			if tt.want != "" && string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			for _, c := range tt.contains {
				if !strings.Contains(string(got), c) {
					t.Errorf("%s\ndoes not contain %s", got, c)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(string(got), a) {
					t.Errorf("%s\ncontains %s", got, a)
				}
			}
			if cut != tt.truncated {
				t.Errorf("truncated = %v", cut)
			}
			if tt.maxLen > 0 && (len(got) > tt.maxLen || !utf8Valid(got)) {
				t.Errorf("len %d, valid UTF-8 %v", len(got), utf8Valid(got))
			}
			if tt.noNewlines && strings.Contains(string(got), "\n") {
				t.Errorf("a line feed in a newline-framed message: %q", got)
			}
		})
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

func TestFrame(t *testing.T) {
	tests := []struct {
		name  string
		octet bool
		want  string
	}{
		{"octet-counting", true, "5 hello"},
		{"newline", false, "hello\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendFrame(nil, []byte("hello"), tt.octet)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBucket(t *testing.T) {
	b := newBucket(100, 10)
	if k, _ := b.reserve(50); k != 10 {
		t.Fatalf("a full bucket gave %d tokens, want its burst of 10", k)
	}
	k, wait := b.reserve(1)
	if k != 0 || wait <= 0 || wait > 20*time.Millisecond {
		t.Fatalf("an empty bucket gave %d tokens, wait %s; want 0 and about 10ms", k, wait)
	}
	b.refund(3)
	if k, _ := b.reserve(5); k != 3 {
		t.Fatalf("after a refund of 3: %d tokens", k)
	}
}

// TestWriteAllocs: formatting a message allocates nothing once the item's
// buffer has grown.
func TestFormatAllocs(t *testing.T) {
	e := sampleEvent()
	f, _ := newFormatter(tenants.Destination{Format: FormatRFC5424}, "acme", "ACME")
	p := syslog.NewParser(syslog.Options{})
	var sc pipeline.Event
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		sc.Reset()
		sc.Original = append(sc.Original, e.Original...)
		msg := p.Parse(&sc)
		buf, _ = f.appendMessage(buf[:0], e, msg)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message", allocs)
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2024, 5, 15, 19, 41, 25, 1_000_000, time.UTC), "2024-05-15T19:41:25.001000Z"},
		{time.Date(2024, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("x", 3600)), "2024-12-31T22:59:59.999999Z"},
		{time.Date(7, 1, 2, 3, 4, 5, 0, time.UTC), "0007-01-02T03:04:05.000000Z"},
		{time.Time{}, "-"},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "-"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := string(appendTimestamp(nil, tt.in)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if !tt.in.IsZero() && tt.want != "-" {
				if std := tt.in.UTC().Format("2006-01-02T15:04:05.000000Z07:00"); std != tt.want {
					t.Errorf("time.Format says %s", std)
				}
			}
		})
	}
}
