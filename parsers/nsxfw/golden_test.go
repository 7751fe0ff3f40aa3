package nsxfw

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
)

func TestGolden(t *testing.T) {
	for _, c := range []string{"dfw-file", "dfw-esxi8", "dfw-rfc5424", "dfw-vmc", "dfw-edge-cases"} {
		t.Run(c, func(t *testing.T) { golden.Lines(t, c, golden.Syslog(DFW{})) })
	}
	for _, c := range []string{"gateway", "gateway-edge-cases"} {
		t.Run(c, func(t *testing.T) { golden.Lines(t, c, golden.Syslog(Gateway{})) })
	}
}
