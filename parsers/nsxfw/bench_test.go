package nsxfw

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

// benchParse parses msg into one reused event, as the ingest path does.
func benchParse(b *testing.B, p pipeline.FormatParser, line, msg string) {
	var e pipeline.Event
	e.Original = []byte(line)
	m := e.Original[len(line)-len(msg):]
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu := golden.CPUTime()
	for b.Loop() {
		orig := e.Original
		e.Reset()
		e.Original = orig
		if !p.Parse(&e, m) {
			b.Fatal("not parsed")
		}
	}
	golden.ReportRate(b, cpu, "lines")
}

func BenchmarkDFW(b *testing.B) {
	b.Run("match-tcp", func(b *testing.B) {
		line := "<13>1 2024-05-15T19:41:26.002Z esx01.example.com FIREWALL-PKTLOG - - - b6507827 INET match PASS mainrs/1024 IN 52 TCP 192.168.4.3/49627->192.168.4.4/49153 SEW"
		benchParse(b, DFW{}, line, "b6507827 INET match PASS mainrs/1024 IN 52 TCP 192.168.4.3/49627->192.168.4.4/49153 SEW")
	})
	b.Run("term-label", func(b *testing.B) {
		line := "<13>1 2024-05-15T19:41:25.001Z vcf-w1c1-esxi05.corporate.rjet.com FIREWALL-PKTLOG - - - INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow"
		benchParse(b, DFW{}, line, "INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow")
	})
	b.Run("inet6", func(b *testing.B) {
		line := "2018-07-06T18:19:54.764Z 028cd586 INET6 match DROP mainrs/1027 OUT 143 UDP fe80:0:0:0:68c2:8472:2364:9be/546->ff02:0:0:0:0:0:1:2/547"
		benchParse(b, DFW{}, line, line)
	})
	b.Run("vmc-wrapper", func(b *testing.B) {
		line := `{"sddc_id":"037c42e3-c198-47c1-956c-1e5867210c02","text":"<99>2020-05-15T09:08:27.965Z ip-10-23-254-72.ap-southeast-1.compute.internal FIREWALL_PKTLOG: f2c65dd5 INET TERM 24642815 IN UDP 10.23.150.100\/53408->10.123.70.101\/53 1\/1 72\/103","timestamp":1.589533710199E12}`
		benchParse(b, DFW{}, line, line)
	})
}

func BenchmarkGateway(b *testing.B) {
	line := `<181>1 2020-09-21T22:14:12.080427+00:00 lur-svc.nsxedge-ob-16404613-1-gdefw NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd.firewallpkt" level="INFO"] <1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S`
	benchParse(b, Gateway{}, line, "<1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S")
}
