package nsxaudit

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
)

func TestGolden(t *testing.T) {
	for _, c := range []string{"audit", "audit-derived"} {
		t.Run(c, func(t *testing.T) { golden.Lines(t, c, golden.Syslog(Parser{})) })
	}
}
