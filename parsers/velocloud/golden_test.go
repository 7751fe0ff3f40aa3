package velocloud

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
)

func TestGolden(t *testing.T) {
	for _, c := range []string{"edge-fw", "edge-fw-edge-cases"} {
		t.Run(c, func(t *testing.T) { golden.Lines(t, c, golden.Syslog(Firewall{})) })
	}
	for _, c := range []string{"events", "events-edge-cases"} {
		t.Run(c, func(t *testing.T) { golden.NDJSON(t, c, ParseEvent) })
	}
}
