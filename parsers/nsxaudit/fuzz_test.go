package nsxaudit

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

// FuzzParse feeds arbitrary lines to the parser, raw (with and without an
// audit element in the event's structured data) and through the whole
// record chain: no panic, an accepted event has the dataset and survives
// the JSON round trip, and a refused line leaves the event untouched.
func FuzzParse(f *testing.F) {
	golden.AddSeeds(f)
	f.Add([]byte(`- [nsx@6876 audit="true" update="true" level="x\"]"] UserName="a", Operation=[{"a":"]"`))
	chain := golden.Syslog(Parser{})
	audit := pipeline.SDElement{ID: "nsx@6876", Params: []pipeline.SDParam{{Name: "audit", Value: "true"}, {Name: "update", Value: "true"}, {Name: "level", Value: "Trace"}}}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, sd := range [][]pipeline.SDElement{nil, {audit}} {
			e := &pipeline.Event{Original: line, Created: golden.Created}
			e.Syslog.StructuredData = sd
			if !(Parser{}).Parse(e, line) {
				if e.Dataset != "" || e.Error != "" || len(e.Labels) != 0 || e.Action != "" || e.Message != "" {
					t.Fatalf("refused but touched: %+v", e)
				}
				continue
			}
			if e.Dataset != Dataset {
				t.Fatalf("dataset %q", e.Dataset)
			}
			golden.CheckJSON(t, e)
		}
		e := &pipeline.Event{Original: line, Created: golden.Created, LogSource: golden.LogSource}
		chain(e)
		golden.CheckChain(t, e)
	})
}
