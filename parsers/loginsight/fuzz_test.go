package loginsight

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

// FuzzParseWebhook: no panic, every emitted event has a dataset and
// survives the JSON round trip, a rejected body emits nothing.
func FuzzParseWebhook(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n := 0
		err := ParseWebhook(body, golden.Created, func(e *pipeline.Event) {
			n++
			if e.Dataset == "" {
				t.Fatal("event without dataset")
			}
			golden.CheckJSON(t, e)
		})
		if err != nil && n > 0 && len(body) > 0 && body[0] != '{' {
			t.Fatalf("emitted %d events for a non-object: %v", n, err)
		}
	})
}
