package velocloud

import (
	"bytes"
	"os"
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

// FuzzParse: the input as an Edge firewall line and as a VCO event. No
// panic; accepted events survive the JSON round trip; a refused line or
// rejected event leaves the event untouched.
func FuzzParse(f *testing.F) {
	golden.AddSeeds(f)
	for _, name := range []string{"testdata/events.ndjson", "testdata/events-edge-cases.ndjson"} {
		b, _ := os.ReadFile(name)
		for _, l := range bytes.Split(b, []byte("\n")) {
			f.Add(l)
		}
	}
	chain := golden.Syslog(Firewall{})
	f.Fuzz(func(t *testing.T, in []byte) {
		e := &pipeline.Event{Original: in, Created: golden.Created}
		if (Firewall{}).Parse(e, in) {
			golden.CheckJSON(t, e)
		} else if e.Dataset != "" || e.Error != "" || len(e.Labels) != 0 {
			t.Fatalf("refused but touched: %+v", e)
		}
		e = &pipeline.Event{Original: in, Created: golden.Created}
		if err := ParseEvent(e, in); err == nil {
			golden.CheckJSON(t, e)
		} else if e.Dataset != "" || len(e.Labels) != 0 || len(e.VMware.VeloCloud.Detail) != 0 {
			t.Fatalf("error but touched: %+v", e)
		}
		e = &pipeline.Event{Original: in, Created: golden.Created, LogSource: golden.LogSource}
		chain(e)
		golden.CheckChain(t, e)
	})
}
