package nsxfw

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

// FuzzParse feeds arbitrary lines to both parsers, raw and after the syslog
// envelope: no panic, an accepted event has a dataset and survives the JSON
// round trip, and a refused line leaves the event untouched.
func FuzzParse(f *testing.F) {
	golden.AddSeeds(f)
	f.Add([]byte(`{"text":"<99>2020-05-15T09:08:27.965Z h FIREWALL_PKTLOG: f2c65dd5 INET TERM 1 IN UDP 1.1.1.1\/1->2.2.2.2\/2 1\/1 72\/103 \u00e9\ud83d\ude00"}`))
	chains := []func(*pipeline.Event){golden.Syslog(DFW{}), golden.Syslog(Gateway{})}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, p := range []pipeline.FormatParser{DFW{}, Gateway{}} {
			e := &pipeline.Event{Original: line, Created: golden.Created}
			if !p.Parse(e, line) {
				if e.Dataset != "" || e.Error != "" || len(e.Labels) != 0 || !e.Timestamp.IsZero() {
					t.Fatalf("refused but touched: %+v", e)
				}
				continue
			}
			if e.Dataset == "" {
				t.Fatal("accepted without a dataset")
			}
			golden.CheckJSON(t, e)
		}
		for _, chain := range chains {
			e := &pipeline.Event{Original: line, Created: golden.Created, LogSource: golden.LogSource}
			chain(e)
			golden.CheckChain(t, e)
		}
	})
}
