package ticket

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

// FuzzWebhook: no panic; an accepted body emits exactly one ticket.lock
// event that names a ticket and survives the JSON round trip; a refused
// body emits nothing.
func FuzzWebhook(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	if b, err := os.ReadFile("testdata/webhooks.ndjson"); err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []*pipeline.Event
		err := Webhook(body, golden.Created, func(e *pipeline.Event) { got = append(got, e) })
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("emitted %d events and failed: %v", len(got), err)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("emitted %d events", len(got))
		}
		e := got[0]
		if e.Dataset != pipeline.DatasetTicketLock {
			t.Fatalf("dataset %q", e.Dataset)
		}
		named := false
		for _, l := range e.Labels {
			if l.Key == LabelTicketID || l.Key == LabelTicketNumber {
				named = named || l.Value != ""
			}
		}
		if !named {
			t.Fatal("accepted a body that names no ticket")
		}
		golden.CheckJSON(t, e)
	})
}
