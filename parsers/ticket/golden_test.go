package ticket

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

func TestGolden(t *testing.T) {
	t.Run("generic", func(t *testing.T) {
		golden.File(t, "generic", "generic.json", func(data []byte, emit func(*pipeline.Event)) error {
			return Webhook(data, golden.Created, emit)
		})
	})
	t.Run("webhooks", func(t *testing.T) {
		golden.NDJSON(t, "webhooks", Parse)
	})
}
