package vmware

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
)

// BenchmarkNotVMware measures the dispatcher on messages that are none of
// its formats, after the envelope was parsed (as in the record chain).
func BenchmarkNotVMware(b *testing.B) {
	lines := []string{
		"<34>1 2024-05-15T19:41:39.018Z host sshd 123 - - Accepted publickey for root from 10.0.0.1 port 22",
		"<30>May 15 19:41:40 host systemd[1]: Started Session 42 of user root.",
		"<13>1 2024-05-15T19:41:41.000Z esx01.example.com Hostd - - - Event 123 : User root@10.0.0.1 logged in",
		"<14>1 2024-05-15T19:41:42.000Z nsxmgr NSX 1234 SYSTEM [nsx@6876 comp=\"nsx-manager\" level=\"INFO\"] Service started",
		"<86>May 15 19:41:44 web01 CRON[2211]: pam_unix(cron:session): session opened for user root",
		"<166>2024-05-15T19:41:45Z fw01 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=10.0.0.9 DST=10.0.0.1",
	}
	env := syslog.NewParser(syslog.Options{})
	events := make([]pipeline.Event, len(lines))
	msgs := make([][]byte, len(lines))
	for i, l := range lines {
		events[i].Original = []byte(l)
		msgs[i] = env.Parse(&events[i])
	}
	p := New()
	b.ReportAllocs()
	cpu := golden.CPUTime()
	i := 0
	for b.Loop() {
		if p.Parse(&events[i], msgs[i]) {
			b.Fatal("parsed", lines[i])
		}
		if i++; i == len(lines) {
			i = 0
		}
	}
	golden.ReportRate(b, cpu, "lines")
}

// BenchmarkChain measures the envelope parser and the dispatcher together
// on VMware lines, into one reused event, as the record chain runs them.
func BenchmarkChain(b *testing.B) {
	for _, c := range []struct{ name, line string }{
		{"nsx.dfw", "<13>1 2024-05-15T19:41:26.002Z esx01.example.com FIREWALL-PKTLOG - - - b6507827 INET match PASS mainrs/1024 IN 52 TCP 192.168.4.3/49627->192.168.4.4/49153 SEW"},
		{"nsx.gateway_firewall", `<181>1 2020-09-21T22:14:12.080427+00:00 lur-svc.nsxedge-ob-16404613-1-gdefw NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd.firewallpkt" level="INFO"] <1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S`},
		{"nsxv.dfw", "<14>2017-10-19T22:38:08.723Z esx-01.example.com dfwpktlogs: 58734 INET match PASS domain-c8/1006 OUT 60 TCP 172.18.8.121/36485->172.18.8.119/22 S 4e3f7d2a-54b8-4bd4-9b3b-8f2a1f9c0d11"},
		{"vcenter.event", `<14>1 2021-10-14T09:47:57.600Z vcsa01.example.com vpxd 123 - - Event [326221] [1-1] [2021-10-14T09:47:57.491999Z] [com.vmware.cis.tagging.attach] [info] [VSPHERE.LOCAL\Administrator] [example-vm] [326221] [User VSPHERE.LOCAL\Administrator attached tag example-tag to object example-vm]`},
		{"velocloud.firewall", `<158>Dec 17 07:21:16 b1-edge1 velocloud.sdwan: ACTION=VCF Open FW_POLICY_NAME=test SID=0000012278 SEGMENT_NAME=Global Segment IN="IFNAME" PROTO=ICMP SRC=10.0.0.1 DST=10.0.0.2 DEST_NAME=Internet-via-gateway-3`},
	} {
		b.Run(c.name, func(b *testing.B) {
			env := syslog.NewParser(syslog.Options{})
			p := New()
			var e pipeline.Event
			e.Original = []byte(c.line)
			b.SetBytes(int64(len(c.line)))
			b.ReportAllocs()
			cpu := golden.CPUTime()
			for b.Loop() {
				orig := e.Original
				e.Reset()
				e.Original = orig
				if !p.Parse(&e, env.Parse(&e)) {
					b.Fatal("not parsed")
				}
			}
			golden.ReportRate(b, cpu, "lines")
		})
	}
}
