package nsxaudit

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
)

// benchParse parses one line's MSG into a reused event, as the ingest
// path does: the envelope is parsed once, outside the loop, and its
// structured data kept.
func benchParse(b *testing.B, line string) {
	var e pipeline.Event
	e.Original = []byte(line)
	msg := syslog.NewParser(syslog.Options{}).Parse(&e)
	sd, host := e.Syslog.StructuredData, e.Syslog.Hostname
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu := golden.CPUTime()
	for b.Loop() {
		orig := e.Original
		e.Reset()
		e.Original = orig
		e.Syslog.StructuredData, e.Syslog.Hostname = sd, host
		if !(Parser{}).Parse(&e, msg) {
			b.Fatal("not parsed")
		}
	}
	golden.ReportRate(b, cpu, "lines")
}

func BenchmarkParse(b *testing.B) {
	b.Run("create-transport-zone", func(b *testing.B) {
		benchParse(b, `<182>1 2020-07-06T18:09:14.210Z svc.nsxmanager NSX 2326 FABRIC [nsx@6876 audit="true" comp="nsx-manager" entId="68d5a9d0-4691-4c9c-94ed-64fd1c96150f" level="INFO" reqId="4c2335aa-c973-4f74-983f-331a4f7041ca" subcomp="manager" update="true" username="admin"] UserName="admin", ModuleName="TransportZone", Operation="CreateTransportZone", Operation status="success", New value=[{"transport_type":"OVERLAY","host_switch_name":"nsxvswitch","host_switch_mode":"STANDARD","nested_nsx":false,"is_default":false,"display_name":"1-transportzone-1307","_protection":"UNKNOWN"}]`)
	})
	b.Run("tag-vm", func(b *testing.B) {
		benchParse(b, `<182>1 2024-05-15T10:00:00.000Z nsx-mgr-01.corp.example NSX 2326 POLICY [nsx@6876 audit="true" comp="nsx-manager" entId="50291c1a-5bd5-4e51-a8c4-1b0f7f8a1c2d" level="INFO" reqId="0f8c6a1e-0000-4000-8000-000000000001" subcomp="policy" update="true" username="vpipe"] UserName="vpipe", ModuleName="PolicyRealizedState", Operation="TagVirtualMachine", Operation status="success", New value=["default" {"virtual_machine_id":"50291c1a-5bd5-4e51-a8c4-1b0f7f8a1c2d","tags":[{"scope":"av","tag":"infected"}]}]`)
	})
}

// BenchmarkRefuse is the cost for a line under APP-NAME NSX that is not an
// audit write (a read's audit line).
func BenchmarkRefuse(b *testing.B) {
	var e pipeline.Event
	e.Original = []byte(`<182>1 2020-05-05T00:29:02.900Z nsx-manager1 NSX 147324 - [nsx@6876 audit="true" comp="nsx-manager" level="INFO" reqId="fe75651d-c3e7-4680-8753-9ae9d92d7f0c" subcomp="policy" username="admin"] UserName="admin", ModuleName="AAA", Operation="GetCurrentUserInfo", Operation status="success"`)
	msg := syslog.NewParser(syslog.Options{}).Parse(&e)
	b.ReportAllocs()
	for b.Loop() {
		if (Parser{}).Parse(&e, msg) {
			b.Fatal("parsed")
		}
	}
}
