package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/pipeline/stage"
)

// startVeloCloud builds the VCO event pollers (role velocloud) and the
// ndjson stage (role ndjson) when configured and chosen.
func (p *proc) startVeloCloud(roles map[string]bool, reg *prometheus.Registry, m *stage.Metrics) error {
	return nil
}
