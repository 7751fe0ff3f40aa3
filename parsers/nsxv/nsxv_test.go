package nsxv

import (
	"strings"
	"testing"

	"github.com/vpipe/vpipe/pipeline"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, line string
		// dataset, action, rule id, ruleset, direction, transport, source, destination, flags, rule tag, hash
		want [11]string
		err  string
	}{
		{
			name: "6.2.2 no hash",
			line: "2016-09-17T09:41:50.979Z INET match DROP domain-c46/1005 OUT 78 UDP 10.2.5.10/137->10.2.5.255/137",
			want: [11]string{"nsxv.dfw", "drop", "1005", "domain-c46", "egress", "udp", "10.2.5.10:137", "10.2.5.255:137", "", "", ""},
		},
		{
			name: "6.2.3 decimal hash",
			line: "2016-09-17T10:34:55.004Z 7295 INET match DROP domain-c46/1005 OUT 78 UDP 10.2.5.10/137->10.2.5.255/137",
			want: [11]string{"nsxv.dfw", "drop", "1005", "domain-c46", "egress", "udp", "10.2.5.10:137", "10.2.5.255:137", "", "", "7295"},
		},
		{
			name: "ICMP with rule tag",
			line: "2017-10-19T22:38:05.586Z 58734 INET match PASS domain-c8/1006 OUT 84 ICMP 172.18.8.121->172.18.8.119 RULE_TAG",
			want: [11]string{"nsxv.dfw", "pass", "1006", "domain-c8", "egress", "icmp", "172.18.8.121", "172.18.8.119", "", "RULE_TAG", "58734"},
		},
		{
			name: "VCD org VDC UUID tag",
			line: "58734 INET match DROP domain-c8/1006 IN 60 TCP 172.18.8.121/36485->172.18.8.119/22 S 4e3f7d2a-54b8-4bd4-9b3b-8f2a1f9c0d11",
			want: [11]string{"nsxv.dfw", "drop", "1006", "domain-c8", "ingress", "tcp", "172.18.8.121:36485", "172.18.8.119:22", "S", "4e3f7d2a-54b8-4bd4-9b3b-8f2a1f9c0d11", "58734"},
		},
		{
			name: "relay CSV",
			line: "PASS, domain-c100488/1279, IN, 48, TCP, 1.1.1.1, 64208, 2.2.2.2, 7,  S",
			want: [11]string{"nsxv.dfw", "pass", "1279", "domain-c100488", "ingress", "tcp", "1.1.1.1:64208", "2.2.2.2:7", "S", "", ""},
		},
		{
			name: "relay CSV with tag in the line",
			line: "Jan 27 16:42:13 ORIGINNAME dfwpktlogs: DROP, domain-c1/2, OUT, 48, UDP, 1.1.1.1, 53, 2.2.2.2, 53",
			want: [11]string{"nsxv.dfw", "drop", "2", "domain-c1", "egress", "udp", "1.1.1.1:53", "2.2.2.2:53", "", "", ""},
		},
		{
			name: "relay CSV truncated",
			line: "PASS, domain-c100488/1279, IN, 48, TCP, 1.1.1.1",
			want: [11]string{"nsxv.dfw", "pass", "1279", "domain-c100488", "ingress", "tcp", "1.1.1.1", "", "", "", ""},
			err:  "nsxv.dfw: expected port at byte 47",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &pipeline.Event{Original: []byte(tt.line)}
			if !(Parser{}).Parse(e, e.Original) {
				t.Fatal("not recognised")
			}
			ep := func(p pipeline.Endpoint) string {
				if !p.IP.IsValid() {
					return ""
				}
				if p.PortValid {
					return p.IP.String() + ":" + itoa(int(p.Port))
				}
				return p.IP.String()
			}
			v := e.VMware.NSXV
			got := [11]string{e.Dataset, e.Action, e.Rule.ID, e.Rule.Ruleset, e.Network.Direction, e.Network.Transport,
				ep(e.Source), ep(e.Destination), v.TCPFlags, v.LogLabel, v.FilterHash}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if tt.err == "" && e.Error != "" || !strings.Contains(e.Error, tt.err) {
				t.Errorf("error %q, want %q", e.Error, tt.err)
			}
			if e.TenantLabel() != v.LogLabel {
				t.Errorf("TenantLabel %q", e.TenantLabel())
			}
		})
	}
}

func TestRejects(t *testing.T) {
	for _, line := range []string{
		"",
		"b6507827 INET match PASS mainrs/1024 IN 52 TCP 192.168.4.3/49627->192.168.4.4/49153 SEW",
		"INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow",
		"PASS, mainrs/1, IN",
		"Hello, world",
	} {
		e := &pipeline.Event{Original: []byte(line)}
		if (Parser{}).Parse(e, e.Original) || e.Dataset != "" {
			t.Errorf("accepted %q", line)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
