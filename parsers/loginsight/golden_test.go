package loginsight

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

func TestGolden(t *testing.T) {
	for _, c := range []string{"webhook", "webhook-vtagsync"} {
		t.Run(c, func(t *testing.T) {
			golden.File(t, c, c+".json", func(data []byte, emit func(*pipeline.Event)) error {
				return ParseWebhook(data, golden.Created, emit)
			})
		})
	}
}
