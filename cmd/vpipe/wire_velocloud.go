package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/velocloud"
	"github.com/vpipe/vpipe/sinks/ndjson"
)

// startVeloCloud builds the VCO event pollers (role velocloud) and the
// ndjson stage (role ndjson) when configured and chosen.
func (p *proc) startVeloCloud(roles map[string]bool, reg *prometheus.Registry, m *stage.Metrics) error {
	prefix := p.cfg.Kafka.TopicPrefix
	if srcs := p.cfg.Sources.VeloCloud; len(srcs) > 0 && roles[roleVeloCloud] {
		vm := velocloud.NewMetrics(reg)
		brokers, topic := p.brokers, prefix+pipeline.TopicCheckpoints
		open := func(ctx context.Context) (velocloud.Checkpoints, error) {
			s, err := checkpoint.Open(ctx, brokers, topic)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
		for _, sc := range srcs {
			src, err := newVeloCloudSource(sc, velocloud.Deps{
				Publisher: p.producer, OpenCheckpoints: open, Metrics: vm, Log: p.log,
			})
			if err != nil {
				return fmt.Errorf("sources.velocloud %s: %w", sc.Name, err)
			}
			p.pollers = append(p.pollers, src)
		}
	}
	if n := p.cfg.Stages.NDJSON; n != nil && roles[roleNDJSON] {
		sink, err := ndjson.Open(ndjson.Config{
			Dir: n.Dir, Path: n.Path, Format: n.Format,
			MaxBytes: n.MaxBytes, MaxAge: n.MaxAge.D(), MaxFiles: n.MaxFiles,
			DedupeWindow: n.DedupeWindow, MaxOpenFiles: n.MaxOpenFiles,
		}, ndjson.NewMetrics(reg), p.log)
		if err != nil {
			return fmt.Errorf("stages.ndjson: %w", err)
		}
		p.closers = append(p.closers, sink)
		if n.ReopenOnSIGHUP != nil && *n.ReopenOnSIGHUP {
			p.closers = append(p.closers, vcoStopCloser(sink.ReopenOnSignal(syscall.SIGHUP)))
		}
		topics := make([]string, len(n.Topics))
		for i, t := range n.Topics {
			topics[i] = prefix + t
		}
		r, err := stage.New(stage.Config{
			Name: roleNDJSON, Brokers: p.brokers, Topics: topics, GroupID: n.GroupID,
			DLQTopic: prefix + pipeline.TopicDLQ, BatchSize: n.BatchSize,
		}, sink, m, p.log)
		if err != nil {
			return fmt.Errorf("stages.ndjson: %w", err)
		}
		p.stages = append(p.stages, r)
	}
	return nil
}

// newVeloCloudSource turns a configured VCO source into a poller.
func newVeloCloudSource(sc config.VeloCloudSource, deps velocloud.Deps) (*velocloud.Source, error) {
	token, password, err := sc.Secrets()
	if err != nil {
		return nil, err
	}
	hc, err := vcoHTTPClient("sources.velocloud "+sc.Name, sc.TLS, deps.Log)
	if err != nil {
		return nil, err
	}
	return velocloud.New(velocloud.Config{
		Name: sc.Name,
		Client: velocloud.ClientConfig{
			URL:        sc.URL,
			Auth:       velocloud.Auth{Token: token, Username: sc.Username, Password: password},
			Timeout:    sc.Timeout.D(),
			HTTPClient: hc,
		},
		Account:            sc.Account,
		Enterprises:        sc.Enterprises,
		Interval:           sc.Interval.D(),
		Lookback:           sc.Lookback.D(),
		Backfill:           sc.Backfill.D(),
		MaxWindow:          sc.MaxWindow.D(),
		MinWindow:          sc.MinWindow.D(),
		PageLimit:          sc.PageLimit,
		Concurrency:        sc.Concurrency,
		MinBackoff:         sc.MinBackoff.D(),
		MaxBackoff:         sc.MaxBackoff.D(),
		RateLimitBackoff:   sc.RateLimitBackoff.D(),
		MaxAttempts:        sc.MaxAttempts,
		RefreshEnterprises: sc.RefreshEnterprises.D(),
	}, deps)
}

// vcoHTTPClient is an HTTP client with the configured TLS trust.
func vcoHTTPClient(at string, c config.ClientTLS, log *slog.Logger) (*http.Client, error) {
	tc, err := clientTLS(at, c, log)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr}, nil
}

// vcoStopCloser adapts a stop function to io.Closer.
type vcoStopCloser func()

func (f vcoStopCloser) Close() error {
	f()
	return nil
}
