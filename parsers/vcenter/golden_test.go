package vcenter

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

func TestGolden(t *testing.T) {
	for _, c := range []string{"vcenter-events", "vcenter-edge-cases"} {
		t.Run(c, func(t *testing.T) { golden.Lines(t, c, golden.Syslog(Parser{})) })
	}
	t.Run("tag-attach-event", func(t *testing.T) {
		golden.File(t, "tag-attach-event", "tag-attach-event.json", func(data []byte, emit func(*pipeline.Event)) error {
			e := &pipeline.Event{Original: data}
			if err := ParseEventJSON(e, data); err != nil {
				return err
			}
			emit(e)
			return nil
		})
	})
	t.Run("event-json-edge-cases", func(t *testing.T) {
		golden.NDJSON(t, "event-json-edge-cases", ParseEventJSON)
	})
}
