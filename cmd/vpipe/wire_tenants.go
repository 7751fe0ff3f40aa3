package main

import (
	"context"
	"errors"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/pipeline/stage"
)

// startTenantForward builds the tenant-forward stage (and the tenant
// registry it needs) when configured and chosen.
func (p *proc) startTenantForward(roles map[string]bool, reg *prometheus.Registry, m *stage.Metrics) error {
	return nil
}

// cmdTenants is `vpipe tenants`.
func cmdTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}
