package velocloud

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

func BenchmarkParseEvent(b *testing.B) {
	data := sample(b)
	var e pipeline.Event
	e.Original = data
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu := golden.CPUTime()
	for b.Loop() {
		orig := e.Original
		e.Reset()
		e.Original = orig
		if err := ParseEvent(&e, orig); err != nil {
			b.Fatal(err)
		}
	}
	golden.ReportRate(b, cpu, "events")
}

func BenchmarkFirewall(b *testing.B) {
	line := `<158>Dec 17 07:21:16 b1-edge1 velocloud.sdwan: ACTION=VCF Open FW_POLICY_NAME=test SID=0000012278 SEGMENT_NAME=Global Segment IN="IFNAME" PROTO=ICMP SRC=10.0.0.1 DST=10.0.0.2 DEST_NAME=Internet-via-gateway-3`
	var e pipeline.Event
	e.Original = []byte(line)
	msg := e.Original[len(`<158>Dec 17 07:21:16 b1-edge1 velocloud.sdwan: `):]
	b.ReportAllocs()
	cpu := golden.CPUTime()
	for b.Loop() {
		orig := e.Original
		e.Reset()
		e.Original = orig
		if !(Firewall{}).Parse(&e, msg) {
			b.Fatal("not parsed")
		}
	}
	golden.ReportRate(b, cpu, "lines")
}
