package main

import (
	"context"
	"errors"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/pipeline/stage"
)

// startVCenter builds the vCenter event pollers (role vcenter) and the
// tag-sync stage (role tag-sync) when configured and chosen.
func (p *proc) startVCenter(roles map[string]bool, reg *prometheus.Registry, m *stage.Metrics) error {
	return nil
}

// cmdTagSync is `vpipe tagsync`.
func cmdTagSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}
