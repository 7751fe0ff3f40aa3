package nsxv

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ name, line, msg string }{
		{"match-tag", "<14>2017-10-19T22:38:08.723Z esx-01.example.com dfwpktlogs: 58734 INET match PASS domain-c8/1006 OUT 60 TCP 172.18.8.121/36485->172.18.8.119/22 S 4e3f7d2a-54b8-4bd4-9b3b-8f2a1f9c0d11",
			"58734 INET match PASS domain-c8/1006 OUT 60 TCP 172.18.8.121/36485->172.18.8.119/22 S 4e3f7d2a-54b8-4bd4-9b3b-8f2a1f9c0d11"},
		{"term", "2017-04-11T21:09:59.877Z ESXi_FQDN dfwpktlogs: 50047 INET TERM domain-c1/1001 IN TCP RST 10.1.2.3/33491->10.4.5.6/10001 22/14 7684/1070",
			"50047 INET TERM domain-c1/1001 IN TCP RST 10.1.2.3/33491->10.4.5.6/10001 22/14 7684/1070"},
		{"csv", "Jan 27 16:42:13 ORIGINNAME dfwpktlogs: PASS, domain-c100488/1279, IN, 48, TCP, 1.1.1.1, 64208, 2.2.2.2, 7,  S",
			"PASS, domain-c100488/1279, IN, 48, TCP, 1.1.1.1, 64208, 2.2.2.2, 7,  S"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var e pipeline.Event
			e.Original = []byte(c.line)
			m := e.Original[len(c.line)-len(c.msg):]
			b.ReportAllocs()
			cpu := golden.CPUTime()
			for b.Loop() {
				orig := e.Original
				e.Reset()
				e.Original = orig
				if !(Parser{}).Parse(&e, m) {
					b.Fatal("not parsed")
				}
			}
			golden.ReportRate(b, cpu, "lines")
		})
	}
}
