package nsxfw

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// want lists the fields a test checks; empty strings are checked too.
type want struct {
	dataset, action, outcome, ruleID, ruleset, dir, netType, transport, iana string
	src, dst                                                                 string
	sport, dport                                                             int // -1: no port
	pktLen                                                                   uint32
	flags, label, hash, reason, termReason                                   string
	counters                                                                 [4]uint64
	errHas                                                                   string
	ts                                                                       string
}

func parseLine(t *testing.T, p pipeline.FormatParser, line string) (*pipeline.Event, bool) {
	t.Helper()
	e := &pipeline.Event{Original: []byte(line)}
	ok := p.Parse(e, e.Original)
	return e, ok
}

func check(t *testing.T, e *pipeline.Event, nsx *pipeline.NSX, w want) {
	t.Helper()
	eq := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	eq("dataset", e.Dataset, w.dataset)
	eq("action", e.Action, w.action)
	eq("outcome", e.Outcome, w.outcome)
	eq("rule.id", e.Rule.ID, w.ruleID)
	eq("rule.ruleset", e.Rule.Ruleset, w.ruleset)
	eq("direction", e.Network.Direction, w.dir)
	eq("network.type", e.Network.Type, w.netType)
	eq("transport", e.Network.Transport, w.transport)
	eq("iana", e.Network.IANANumber, w.iana)
	eq("source.ip", addr(e.Source.IP), w.src)
	eq("destination.ip", addr(e.Destination.IP), w.dst)
	port := func(name string, ep pipeline.Endpoint, want int) {
		t.Helper()
		if want < 0 {
			if ep.PortValid {
				t.Errorf("%s port = %d, want none", name, ep.Port)
			}
			return
		}
		if !ep.PortValid || int(ep.Port) != want {
			t.Errorf("%s port = %d (%v), want %d", name, ep.Port, ep.PortValid, want)
		}
	}
	port("source", e.Source, w.sport)
	port("destination", e.Destination, w.dport)
	if nsx.PacketLength != w.pktLen {
		t.Errorf("packet length = %d, want %d", nsx.PacketLength, w.pktLen)
	}
	eq("flags", nsx.TCPFlags, w.flags)
	eq("label", nsx.LogLabel, w.label)
	eq("hash", nsx.FilterHash, w.hash)
	eq("reason", nsx.Reason, w.reason)
	eq("term reason", nsx.TermReason, w.termReason)
	got := [4]uint64{e.Source.Packets, e.Destination.Packets, e.Source.Bytes, e.Destination.Bytes}
	if got != w.counters {
		t.Errorf("counters = %v, want %v", got, w.counters)
	}
	if w.counters != ([4]uint64{}) && !e.Source.CountersValid {
		t.Errorf("CountersValid not set")
	}
	if w.errHas == "" && e.Error != "" || !strings.Contains(e.Error, w.errHas) {
		t.Errorf("error = %q, want it to contain %q", e.Error, w.errHas)
	}
	if w.ts != "" && e.Timestamp.Format(time.RFC3339Nano) != w.ts {
		t.Errorf("timestamp = %s, want %s", e.Timestamp.Format(time.RFC3339Nano), w.ts)
	}
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func TestDFW(t *testing.T) {
	tests := []struct {
		name string
		line string
		w    want
	}{
		{
			name: "admin guide mainrs TCP",
			line: "2018-07-03T19:44:09.749Z b6507827 INET match PASS mainrs/1024 IN 52 TCP 192.168.4.3/49627->192.168.4.4/49153 SEW",
			w: want{dataset: "nsx.dfw", action: "pass", outcome: "success", ruleID: "1024", ruleset: "mainrs", dir: "ingress",
				netType: "ipv4", transport: "tcp", iana: "6", src: "192.168.4.3", dst: "192.168.4.4", sport: 49627, dport: 49153,
				pktLen: 52, flags: "SEW", hash: "b6507827", reason: "match", ts: "2018-07-03T19:44:09.749Z"},
		},
		{
			name: "PROTO 2 no ports",
			line: "2018-07-06T18:15:49.647Z 028cd586 INET match DROP mainrs/1027 IN 36 PROTO 2 0.0.0.0->224.0.0.1",
			w: want{dataset: "nsx.dfw", action: "drop", outcome: "failure", ruleID: "1027", ruleset: "mainrs", dir: "ingress",
				netType: "ipv4", transport: "igmp", iana: "2", src: "0.0.0.0", dst: "224.0.0.1", sport: -1, dport: -1,
				pktLen: 36, hash: "028cd586", reason: "match"},
		},
		{
			name: "INET6 uncompressed",
			line: "2018-07-06T18:19:54.764Z 028cd586 INET6 match DROP mainrs/1027 OUT 143 UDP fe80:0:0:0:68c2:8472:2364:9be/546->ff02:0:0:0:0:0:1:2/547",
			w: want{dataset: "nsx.dfw", action: "drop", outcome: "failure", ruleID: "1027", ruleset: "mainrs", dir: "egress",
				netType: "ipv6", transport: "udp", iana: "17", src: "fe80::68c2:8472:2364:9be", dst: "ff02::1:2", sport: 546, dport: 547,
				pktLen: 143, hash: "028cd586", reason: "match"},
		},
		{
			name: "ESXi 8 marker and tag",
			line: "2026-03-03T00:02:11.678Z No(13) FIREWALL-PKTLOG[1069031]: 8b4a1980 INET match PASS 25577 OUT 84 ICMP 192.168.72.10->192.168.72.17",
			w: want{dataset: "nsx.dfw", action: "pass", outcome: "success", ruleID: "25577", dir: "egress",
				netType: "ipv4", transport: "icmp", iana: "1", src: "192.168.72.10", dst: "192.168.72.17", sport: -1, dport: -1,
				pktLen: 84, hash: "8b4a1980", reason: "match"},
		},
		{
			name: "TERM with action, counters, label",
			line: "INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow",
			w: want{dataset: "nsx.dfw", action: "pass", outcome: "success", ruleID: "5096", dir: "egress",
				netType: "ipv4", transport: "tcp", iana: "6", src: "10.10.10.11", dst: "10.10.10.10", sport: 60517, dport: 443,
				label: "DR-Allow", reason: "TERM", termReason: "RST", counters: [4]uint64{9, 8, 1461, 4677}},
		},
		{
			name: "VMC wrapper TERM without action",
			line: `{"sddc_id":"037c42e3-c198-47c1-956c-1e5867210c02","text":"<99>2020-05-15T09:08:27.965Z ip-10-23-254-72.ap-southeast-1.compute.internal FIREWALL_PKTLOG: f2c65dd5 INET TERM 24642815 IN UDP 10.23.150.100\/53408->10.123.70.101\/53 1\/1 72\/103","timestamp":1.589533710199E12}`,
			w: want{dataset: "nsx.dfw", ruleID: "24642815", dir: "ingress",
				netType: "ipv4", transport: "udp", iana: "17", src: "10.23.150.100", dst: "10.123.70.101", sport: 53408, dport: 53,
				hash: "f2c65dd5", reason: "TERM", counters: [4]uint64{1, 1, 72, 103}, ts: "2020-05-15T09:08:27.965Z"},
		},
		{
			name: "label with spaces and non-ASCII",
			line: "f1007e48 INET match REJECT 2 OUT 84 ICMP 1.1.1.10->1.1.3.10 Größe Regel 1",
			w: want{dataset: "nsx.dfw", action: "reject", outcome: "failure", ruleID: "2", dir: "egress",
				netType: "ipv4", transport: "icmp", iana: "1", src: "1.1.1.10", dst: "1.1.3.10", sport: -1, dport: -1,
				pktLen: 84, hash: "f1007e48", reason: "match", label: "Größe Regel 1"},
		},
		{
			name: "CRLF",
			line: "f1007e48 INET match PASS 2 OUT 84 ICMP 1.1.1.10->1.1.3.10\r\n",
			w: want{dataset: "nsx.dfw", action: "pass", outcome: "success", ruleID: "2", dir: "egress",
				netType: "ipv4", transport: "icmp", iana: "1", src: "1.1.1.10", dst: "1.1.3.10", sport: -1, dport: -1,
				pktLen: 84, hash: "f1007e48", reason: "match"},
		},
		{
			name: "ICMP over INET6",
			line: "INET6 match PASS 7 IN 104 ICMP fe80:0:0:0:0:0:0:1->ff02:0:0:0:0:0:0:1",
			w: want{dataset: "nsx.dfw", action: "pass", outcome: "success", ruleID: "7", dir: "ingress",
				netType: "ipv6", transport: "ipv6-icmp", iana: "58", src: "fe80::1", dst: "ff02::1", sport: -1, dport: -1,
				pktLen: 104, reason: "match"},
		},
		{
			name: "truncated",
			line: "2018-07-03T19:44:09.749Z b6507827 INET match PASS mainrs/1024 IN 52 TCP 192.168.4.3/49627->",
			w: want{dataset: "nsx.dfw", action: "pass", outcome: "success", ruleID: "1024", ruleset: "mainrs", dir: "ingress",
				netType: "ipv4", transport: "tcp", iana: "6", src: "192.168.4.3", sport: 49627, dport: -1,
				pktLen: 52, hash: "b6507827", reason: "match", errHas: "nsx.dfw: expected destination address at byte 91"},
		},
		{
			name: "bad direction",
			line: "b6507827 INET match PASS 1 SIDEWAYS 52 TCP 1.1.1.1/1->2.2.2.2/2",
			w: want{dataset: "nsx.dfw", action: "pass", outcome: "success", ruleID: "1", netType: "ipv4", sport: -1, dport: -1,
				hash: "b6507827", reason: "match", errHas: "expected direction (IN or OUT) at byte 27"},
		},
		{
			name: "PROTO 47 unknown trailing",
			line: "INET match NAT 9 IN 60 PROTO 47 10.0.0.1->10.0.0.2",
			w: want{dataset: "nsx.dfw", action: "nat", outcome: "unknown", ruleID: "9", dir: "ingress", netType: "ipv4",
				transport: "gre", iana: "47", src: "10.0.0.1", dst: "10.0.0.2", sport: -1, dport: -1, pktLen: 60, reason: "match"},
		},
		{
			name: "SpoofGuard reason, PROTO without name",
			line: "INET SpoofGuard DROP 3 IN 60 PROTO 253 10.0.0.1->10.0.0.2",
			w: want{dataset: "nsx.dfw", action: "drop", outcome: "failure", ruleID: "3", dir: "ingress", netType: "ipv4",
				iana: "253", src: "10.0.0.1", dst: "10.0.0.2", sport: -1, dport: -1, pktLen: 60, reason: "SpoofGuard"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := parseLine(t, DFW{}, tt.line)
			if !ok {
				t.Fatalf("not recognised")
			}
			check(t, e, &e.VMware.NSX, tt.w)
		})
	}
}

func TestDFWRejects(t *testing.T) {
	for _, line := range []string{
		"",
		"hello world",
		"INET",
		"b6507827 hello INET match",
		"2018-07-03T19:44:09.749Z sshd[12]: Accepted password for root",
		// NSX-V bodies belong to package nsxv.
		"2016-09-17T10:34:55.004Z 7295 INET match DROP domain-c46/1005 OUT 78 UDP 10.2.5.10/137->10.2.5.255/137",
		`{"text":"hello"}`,
		`{"text":"<99>2020-05-15T09:08:27.965Z h app: x"}`,
	} {
		e := &pipeline.Event{Original: []byte(line)}
		if (DFW{}).Parse(e, e.Original) {
			t.Errorf("accepted %q", line)
		}
		if e.Dataset != "" || e.Error != "" || !e.Timestamp.IsZero() || len(e.Labels) != 0 {
			t.Errorf("%q: event touched: %+v", line, e)
		}
	}
}

func TestNSXV(t *testing.T) {
	tests := []struct {
		name string
		line string
		w    want
	}{
		{
			name: "no hash",
			line: "2016-09-17T09:41:50.979Z INET match DROP domain-c46/1005 OUT 78 UDP 10.2.5.10/137->10.2.5.255/137",
			w: want{dataset: "nsxv.dfw", action: "drop", outcome: "failure", ruleID: "1005", ruleset: "domain-c46", dir: "egress",
				netType: "ipv4", transport: "udp", iana: "17", src: "10.2.5.10", dst: "10.2.5.255", sport: 137, dport: 137,
				pktLen: 78, reason: "match"},
		},
		{
			name: "TERM without action",
			line: "2017-04-11T21:09:59.877Z ESXi_FQDN dfwpktlogs: 50047 INET TERM domain-c1/1001 IN TCP RST 10.1.2.3/33491->10.4.5.6/10001 22/14 7684/1070",
			w: want{dataset: "nsxv.dfw", ruleID: "1001", ruleset: "domain-c1", dir: "ingress",
				netType: "ipv4", transport: "tcp", iana: "6", src: "10.1.2.3", dst: "10.4.5.6", sport: 33491, dport: 10001,
				hash: "50047", reason: "TERM", termReason: "RST", counters: [4]uint64{22, 14, 7684, 1070}},
		},
		{
			name: "rule tag after flags",
			line: "2017-10-19T22:38:08.723Z 58734 INET match PASS domain-c8/1006 OUT 60 TCP 172.18.8.121/36485->172.18.8.119/22 S RULE_TAG",
			w: want{dataset: "nsxv.dfw", action: "pass", outcome: "success", ruleID: "1006", ruleset: "domain-c8", dir: "egress",
				netType: "ipv4", transport: "tcp", iana: "6", src: "172.18.8.121", dst: "172.18.8.119", sport: 36485, dport: 22,
				pktLen: 60, flags: "S", hash: "58734", reason: "match", label: "RULE_TAG"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &pipeline.Event{Original: []byte(tt.line)}
			if !ParseDFW(e, e.Original, NSXV) {
				t.Fatalf("not recognised")
			}
			check(t, e, &e.VMware.NSXV, tt.w)
			if e.VMware.NSX != (pipeline.NSX{}) {
				t.Errorf("vmware.nsx set on an NSX-V line: %+v", e.VMware.NSX)
			}
		})
	}
}

func TestGateway(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		w    want
		vrf  string
		ifc  string
	}{
		{
			name: "reason-match TCP",
			msg:  "<1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S",
			w: want{dataset: "nsx.gateway_firewall", action: "pass", outcome: "success", ruleID: "1005", dir: "egress",
				netType: "ipv4", transport: "tcp", iana: "6", src: "1.1.1.10", dst: "91.189.92.38", sport: 45120, dport: 443,
				pktLen: 60, flags: "S", reason: "match"},
			vrf: "1", ifc: "55f1af2f-4875-44e9-b0e0-59132ad7753d",
		},
		{
			name: "TERM",
			msg:  "<1 55f1af2f487544e9:b0e059132ad7753d> INET TERM PASS 1005 OUT TCP 1.1.1.10/45120->91.189.92.38/443",
			w: want{dataset: "nsx.gateway_firewall", action: "pass", outcome: "success", ruleID: "1005", dir: "egress",
				netType: "ipv4", transport: "tcp", iana: "6", src: "1.1.1.10", dst: "91.189.92.38", sport: 45120, dport: 443,
				reason: "TERM"},
			vrf: "1", ifc: "55f1af2f-4875-44e9-b0e0-59132ad7753d",
		},
		{
			name: "header-less PROTO 1",
			msg:  `2021-08-19T02:37:29.031Z edge01.lab01.one NSX 5055 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd" s2comp="firewallpkt" level="INFO"] <3 a91a35d4acea4843:8b0fb4b8b5fe50a4> INET reason-match DROP 1001 OUT 84 PROTO 1 172.16.20.10->172.16.5.1`,
			w: want{dataset: "nsx.gateway_firewall", action: "drop", outcome: "failure", ruleID: "1001", dir: "egress",
				netType: "ipv4", transport: "icmp", iana: "1", src: "172.16.20.10", dst: "172.16.5.1", sport: -1, dport: -1,
				pktLen: 84, reason: "match", ts: "2021-08-19T02:37:29.031Z"},
			vrf: "3", ifc: "a91a35d4-acea-4843-8b0f-b4b8b5fe50a4",
		},
		{
			name: "label",
			msg:  "<1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match DROP 1005 IN 60 TCP 1.1.1.10/45120->91.189.92.38/443 S 0123456789gw-01abcde",
			w: want{dataset: "nsx.gateway_firewall", action: "drop", outcome: "failure", ruleID: "1005", dir: "ingress",
				netType: "ipv4", transport: "tcp", iana: "6", src: "1.1.1.10", dst: "91.189.92.38", sport: 45120, dport: 443,
				pktLen: 60, flags: "S", reason: "match", label: "0123456789gw-01abcde"},
			vrf: "1", ifc: "55f1af2f-4875-44e9-b0e0-59132ad7753d",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := parseLine(t, Gateway{}, tt.msg)
			if !ok {
				t.Fatalf("not recognised")
			}
			check(t, e, &e.VMware.NSX, tt.w)
			if e.VMware.NSX.VRF != tt.vrf || e.VMware.NSX.InterfaceID != tt.ifc {
				t.Errorf("vrf, interface = %q, %q; want %q, %q", e.VMware.NSX.VRF, e.VMware.NSX.InterfaceID, tt.vrf, tt.ifc)
			}
		})
	}
	e, _ := parseLine(t, Gateway{}, tests[2].msg)
	if e.LogLevel != "info" || e.Syslog.Hostname != "edge01.lab01.one" || e.Syslog.MsgID != "FIREWALL" || len(e.Syslog.StructuredData) != 1 {
		t.Errorf("header-less envelope: level %q host %q msgid %q sd %+v", e.LogLevel, e.Syslog.Hostname, e.Syslog.MsgID, e.Syslog.StructuredData)
	}
}
