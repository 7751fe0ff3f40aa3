package velocloud

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

func sample(t testing.TB) []byte {
	b, err := os.ReadFile("../../testdata/samples/velocloud-events.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(b)))
}

func TestParseEvent(t *testing.T) {
	data := sample(t)
	e := &pipeline.Event{Original: data}
	if err := ParseEvent(e, data); err != nil {
		t.Fatal(err)
	}
	v := e.VMware.VeloCloud
	if e.Dataset != "velocloud.event" || v.EventID != 2913202 || v.Event != "VPN_DATACENTER_STATUS" || v.Category != "SYSTEM" ||
		v.Severity != "NOTICE" || e.LogLevel != "notice" || e.Severity != 5 || !e.SeverityValid ||
		e.Timestamp.Format(time.RFC3339Nano) != "2021-10-23T06:48:57Z" ||
		!strings.HasPrefix(e.Message, "Tunnel to [Azure-SIN]") || v.EdgeName != "" || v.EnterpriseUsername != "" {
		t.Errorf("got %+v", e)
	}
	wantDetail := `{"enterpriseLogicalId":"24676352-23ed-4cdd-a0db-52f61810de1b","dataCenterLogicalId":"bb395d4c-5963-4d14-8e6d-c2822c9dfadc","ipAddress":"13.76.153.194","ikeState":"DOWN","numberP2SA":0,"Hint":"No response from peer or no proposal chosen; check VPN type, GWIP, DH Group, IKE-ID, subnets."}`
	if string(v.Detail) != wantDetail || v.DetailRaw != "" {
		t.Errorf("detail %s raw %q", v.Detail, v.DetailRaw)
	}
}

func TestParseEventDetail(t *testing.T) {
	tests := []struct{ in, detail, raw, label string }{
		{`{"id":1,"detail":"not json"}`, "", "not json", ""},
		{`{"id":1,"detail":"[1,2]"}`, "", "[1,2]", ""},
		{`{"id":1,"detail":"{\"a\": \"x y\", \"b\": [1, {\"c\": null}]}"}`, `{"a":"x y","b":[1,{"c":null}]}`, "", ""},
		{`{"id":1,"detail":"{\"a\": 1} trailing"}`, "", `{"a": 1} trailing`, ""},
		{`{"id":1,"detail":{"a": 1}}`, `{"a":1}`, "", ""},
		{`{"id":1,"detail":null,"edgeId":42}`, "", "", "edgeId=42"},
		{`{"id":1,"detail":"{\"n\":\"\u00e9\ud83d\ude00\"}"}`, `{"n":"é😀"}`, "", ""},
	}
	for _, tt := range tests {
		e := &pipeline.Event{Original: []byte(tt.in)}
		if err := ParseEvent(e, e.Original); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		v := e.VMware.VeloCloud
		if string(v.Detail) != tt.detail || v.DetailRaw != tt.raw {
			t.Errorf("%s: detail %s raw %q", tt.in, v.Detail, v.DetailRaw)
		}
		var l string
		for _, x := range e.Labels {
			l = x.Key + "=" + x.Value
		}
		if l != tt.label {
			t.Errorf("%s: labels %v", tt.in, e.Labels)
		}
	}
}

func TestParseEventErrors(t *testing.T) {
	for _, in := range []string{
		"", "[]", "{", `{"id":}`, `{"id":1,}`, `{"id":"x"}`, `{"id":1.5}`, `{"eventTime":"yesterday"}`,
		`{"id":1} {}`, `{"a":[1,2}`, `{"a":"\x01"}`, `{"message":5}`, strings.Repeat("[", 100),
		`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
	} {
		e := &pipeline.Event{Original: []byte(in)}
		err := ParseEvent(e, e.Original)
		if err == nil || !strings.Contains(err.Error(), "at byte") {
			t.Errorf("%q: err %v", in, err)
		}
		if e.Dataset != "" || len(e.Labels) != 0 {
			t.Errorf("%q: event touched", in)
		}
	}
}

func TestFirewall(t *testing.T) {
	tests := []struct {
		name, msg                                string
		action, outcome, transport, src, ruleset string
		segment                                  string
		labels                                   string
		err                                      string
	}{
		{"4.0", `VCF Open xR6FveSQT220kZiTmoYJHA SID=12278 SEGMENT=0 IN="IFNAME" PROTO=ICMP SRC=x.x.x.x DST=x.x.x.x DEST_NAME=Internet-via-gateway-3`,
			"open", "success", "icmp", "", "", "", "VCF_ID=xR6FveSQT220kZiTmoYJHA SID=12278 SEGMENT=0 IN=IFNAME SRC=x.x.x.x DST=x.x.x.x DEST_NAME=Internet-via-gateway-3", ""},
		{"4.5", `ACTION=VCF Open FW_POLICY_NAME=test SID=0000012278 SEGMENT_NAME=Global Segment IN="IFNAME" PROTO=ICMP SRC=x.x.x.x DST=x.x.x.x DEST_NAME=Internet-via-gateway-3`,
			"open", "success", "icmp", "", "test", "Global Segment", "SID=0000012278 IN=IFNAME SRC=x.x.x.x DST=x.x.x.x DEST_NAME=Internet-via-gateway-3", ""},
		{"5.0", `ACTION=VCF Deny SEGMENT=0 IN="IFNAME" PROTO=ICMP SRC=x.x.x.x DST=x.x.x.x TYPE=8 FW_POLICY_NAME=test SEGMENT_NAME=Global Segment`,
			"deny", "failure", "icmp", "", "test", "Global Segment", "SEGMENT=0 IN=IFNAME SRC=x.x.x.x DST=x.x.x.x TYPE=8", ""},
		{"real addresses", `ACTION=VCF Allow SEGMENT_NAME=Global  Segment PROTO=TCP SRC=10.0.0.1 DST=2001:db8::1 FW_POLICY_NAME=Büro Regel`,
			"allow", "success", "tcp", "10.0.0.1", "Büro Regel", "Global  Segment", "", ""},
		{"no verb", `ACTION=VCF  SID=1`, "", "", "", "", "", "", "", "expected firewall verb"},
		{"junk token", `ACTION=VCF Close SID=1 junk PROTO=GRE`, "close", "unknown", "gre", "", "", "", "SID=1 junk", ""},
		{"unclosed quote", `ACTION=VCF Close IN="eth0 PROTO=UDP`, "close", "unknown", "", "", "", "", "", `expected '"' closing the value of IN at byte 35`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &pipeline.Event{Original: []byte(tt.msg)}
			e.Syslog.Hostname = "b1-edge1"
			if !(Firewall{}).Parse(e, e.Original) {
				t.Fatal("not recognised")
			}
			var labels []string
			for _, l := range e.Labels {
				labels = append(labels, l.Key+"="+l.Value)
			}
			src := ""
			if e.Source.IP.IsValid() {
				src = e.Source.IP.String()
			}
			got := []string{e.Action, e.Outcome, e.Network.Transport, src, e.Rule.Ruleset, e.VMware.VeloCloud.SegmentName, strings.Join(labels, " ")}
			want := []string{tt.action, tt.outcome, tt.transport, tt.src, tt.ruleset, tt.segment, tt.labels}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if tt.err == "" && e.Error != "" || !strings.Contains(e.Error, tt.err) {
				t.Errorf("error %q, want %q", e.Error, tt.err)
			}
			if e.Dataset != "velocloud.firewall" || e.VMware.VeloCloud.EdgeName != "b1-edge1" {
				t.Errorf("dataset %q edge %q", e.Dataset, e.VMware.VeloCloud.EdgeName)
			}
		})
	}
	for _, msg := range []string{"", "VCF", "VCFOpen", "ACTION=VCFX Open", "hello"} {
		e := &pipeline.Event{Original: []byte(msg)}
		if (Firewall{}).Parse(e, e.Original) || e.Dataset != "" {
			t.Errorf("accepted %q", msg)
		}
	}
}
