package nsxv

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

// FuzzParse: no panic, accepted events survive the JSON round trip, refused
// lines leave the event untouched.
func FuzzParse(f *testing.F) {
	golden.AddSeeds(f)
	chain := golden.Syslog(Parser{})
	f.Fuzz(func(t *testing.T, line []byte) {
		e := &pipeline.Event{Original: line, Created: golden.Created}
		if (Parser{}).Parse(e, line) {
			if e.Dataset != pipeline.DatasetNSXVDFW {
				t.Fatalf("dataset %q", e.Dataset)
			}
			golden.CheckJSON(t, e)
		} else if e.Dataset != "" || e.Error != "" || len(e.Labels) != 0 || !e.Timestamp.IsZero() {
			t.Fatalf("refused but touched: %+v", e)
		}
		e = &pipeline.Event{Original: line, Created: golden.Created, LogSource: golden.LogSource}
		chain(e)
		golden.CheckChain(t, e)
	})
}
