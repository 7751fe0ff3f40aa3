package vcenter

import (
	"os"
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

// FuzzParse: no panic, accepted events survive the JSON round trip, refused
// messages leave the event untouched; the same input as free text
// (ParseText) and as event JSON (ParseEventJSON).
func FuzzParse(f *testing.F) {
	golden.AddSeeds(f)
	if b, err := os.ReadFile("testdata/tag-attach-event.json"); err == nil {
		f.Add(b)
	}
	chain := golden.Syslog(Parser{})
	f.Fuzz(func(t *testing.T, line []byte) {
		e := &pipeline.Event{Original: line, Created: golden.Created}
		if (Parser{}).Parse(e, line) {
			golden.CheckJSON(t, e)
		} else if e.Dataset != "" || e.Error != "" || len(e.Labels) != 0 {
			t.Fatalf("refused but touched: %+v", e)
		}
		e = &pipeline.Event{Original: line, Created: golden.Created}
		if ParseText(e, line) {
			golden.CheckJSON(t, e)
		}
		e = &pipeline.Event{Original: line, Created: golden.Created}
		if ParseEventJSON(e, line) == nil {
			golden.CheckJSON(t, e)
		} else if e.Dataset != "" {
			t.Fatalf("error but touched: %+v", e)
		}
		e = &pipeline.Event{Original: line, Created: golden.Created, LogSource: golden.LogSource}
		chain(e)
		golden.CheckChain(t, e)
	})
}
