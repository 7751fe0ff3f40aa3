package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/vcenter"
	"github.com/vpipe/vpipe/sinks/nsx"
	"github.com/vpipe/vpipe/sinks/tagsync"
)

// startVCenter builds the vCenter event pollers (role vcenter) and the
// tag-sync stage (role tag-sync) when configured and chosen. Neither vCenter
// nor NSX is contacted here: a system that is away stalls its poller or
// stage, not the start. The pollers need Kafka (their checkpoints are read
// at start).
func (p *proc) startVCenter(roles map[string]bool, reg *prometheus.Registry, m *stage.Metrics) error {
	cfg := p.cfg
	prefix := cfg.Kafka.TopicPrefix
	if len(cfg.Sources.VCenter) > 0 && roles[roleVCenter] {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		store, err := checkpoint.Open(ctx, p.brokers, prefix+pipeline.TopicCheckpoints)
		cancel()
		if err != nil {
			return fmt.Errorf("sources.vcenter: checkpoints: %w", err)
		}
		p.closers = append(p.closers, store)
		vm := vcenter.NewMetrics(reg)
		for i := range cfg.Sources.VCenter {
			s := &cfg.Sources.VCenter[i]
			at := fmt.Sprintf("sources.vcenter[%d]", i)
			// The source warns of insecure_skip_verify itself.
			conn, err := vcenterConn(at, s, nil)
			if err != nil {
				return err
			}
			src, err := vcenter.New(vcenter.Config{
				Name: s.Name, Conn: conn, PageSize: s.PageSize, PollInterval: s.PollInterval.D(),
				MaxBackoff: s.MaxBackoff.D(), StartLookback: s.StartLookback.D(), EventTypes: s.EventTypes,
			}, p.producer, store, vm, p.log)
			if err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
			p.pollers = append(p.pollers, src)
		}
	}
	if ts := cfg.Stages.TagSync; ts != nil && roles[roleTagSync] {
		sink, nsxCloser, err := newTagSync(cfg, p.nsxMetrics(reg), tagsync.NewMetrics(reg), p.producer, p.log, ts.DryRun)
		if err != nil {
			return err
		}
		p.closers = append(p.closers, nsxCloser, sink)
		r, err := stage.New(stage.Config{
			Name: roleTagSync, Brokers: p.brokers, Topics: []string{prefix + pipeline.TopicVCenter},
			GroupID: ts.GroupID, DLQTopic: prefix + pipeline.TopicDLQ,
		}, sink, m, p.log)
		if err != nil {
			return fmt.Errorf("stages.tag_sync: %w", err)
		}
		p.stages = append(p.stages, r, sink.Reconciler())
	}
	return nil
}

// vcenterConn is how to reach the vCenter of a sources.vcenter entry.
func vcenterConn(at string, s *config.VCenterSource, log *slog.Logger) (vcenter.ConnConfig, error) {
	pw, err := s.Password(at)
	if err != nil {
		return vcenter.ConnConfig{}, err
	}
	if _, err := clientTLS(at, s.TLS, log); err != nil {
		return vcenter.ConnConfig{}, fmt.Errorf("%s: %w", at, err)
	}
	return vcenter.ConnConfig{
		URL: s.URL, Username: s.Username, Password: pw, CAFile: s.TLS.CAFile, Insecure: s.TLS.InsecureSkipVerify, Timeout: s.Timeout.D(),
	}, nil
}

// newTagSync builds the tag-sync sink and its NSX client from cfg; audit
// may be nil. The io.Closer ends the NSX session.
func newTagSync(cfg *config.Config, nm *nsx.Metrics, tm *tagsync.Metrics, audit pipeline.Publisher, log *slog.Logger, dry bool) (*tagsync.Sink, io.Closer, error) {
	const at = "stages.tag_sync"
	ts := cfg.Stages.TagSync
	src := cfg.VCenterByName(ts.VCenter)
	if src == nil {
		return nil, nil, fmt.Errorf("%s.vcenter: %q names no sources.vcenter entry", at, ts.VCenter)
	}
	i := slices.IndexFunc(cfg.Sources.VCenter, func(v config.VCenterSource) bool { return v.Name == ts.VCenter })
	conn, err := vcenterConn(fmt.Sprintf("sources.vcenter[%d]", i), src, log)
	if err != nil {
		return nil, nil, err
	}
	n := ts.NSX
	pw, err := config.Secret(at+".nsx.password", n.PasswordFile, n.PasswordEnv)
	if err != nil {
		return nil, nil, err
	}
	token, err := config.Secret(at+".nsx.vmc.refresh_token", n.VMC.RefreshTokenFile, n.VMC.RefreshTokenEnv)
	if err != nil {
		return nil, nil, err
	}
	tc, err := clientTLS(at+".nsx", n.TLS, log)
	if err != nil {
		return nil, nil, fmt.Errorf("%s.nsx: %w", at, err)
	}
	nc, err := nsx.New(nsx.Config{
		Name: roleTagSync, URL: n.URL, API: n.API, EnforcementPoint: n.EnforcementPoint,
		Auth: n.Auth, Username: n.Username, Password: pw, TLS: tc,
		VMC: nsx.VMC{RefreshToken: token, CSPURL: n.VMC.CSPURL, URL: n.VMC.URL, OrgID: n.VMC.OrgID, SDDCID: n.VMC.SDDCID},
	}, nm, log)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", at, err)
	}
	interval := ts.ReconcileInterval.D()
	if !ts.ReconcileOn() {
		interval = -1
	}
	sink, err := tagsync.New(tagsync.Config{
		VCenter: ts.VCenter, Servers: ts.Servers, Categories: ts.Categories, Tags: ts.Tags,
		ReconcileInterval: interval, Concurrency: ts.Concurrency, DryRun: dry,
		NSXManager: nsxManagerHost(n.URL),
	}, tagsync.Deps{VCenter: conn, NSX: nc, Audit: audit, Metrics: tm, Log: log})
	if err != nil {
		nc.Close(context.Background())
		return nil, nil, fmt.Errorf("%s: %w", at, err)
	}
	return sink, tagSyncCloser(nc.Close), nil
}

// tagSyncCloser adapts a Close(ctx) to io.Closer, with a 5s deadline.
type tagSyncCloser func(context.Context) error

func (f tagSyncCloser) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f(ctx)
}

// cmdTagSync is `vpipe tagsync`.
func cmdTagSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tagsync", `vpipe tagsync --dry-run -c FILE

Compares every VM of the vCenter that stages.tag_sync names with NSX, as the
stage's reconciliation does, and prints the plan: each VM whose NSX tags
would change, the tags to add and the tags to remove (scope|tag). Nothing is
changed: the tag-sync stage of 'vpipe run' applies changes. Kafka is not
needed. Exit status 0 whether or not there is anything to change.`, stderr)
	path := fs.String("c", "", "configuration `file` (required)")
	fs.StringVar(path, "config", "", "same as -c")
	dry := fs.Bool("dry-run", false, "print the plan without applying it (required)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *path == "" {
		fs.Usage()
		return errUsage
	}
	if !*dry {
		fmt.Fprintln(stderr, "vpipe tagsync: only --dry-run is supported; the tag-sync stage of 'vpipe run' applies changes")
		return errUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fmt.Errorf("%s:\n%w", *path, err)
	}
	if cfg.Stages.TagSync == nil {
		return fmt.Errorf("%s: no stages.tag_sync section", *path)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sink, nc, err := newTagSync(cfg, nsx.NewMetrics(nil), tagsync.NewMetrics(nil), nil, log, true)
	if err != nil {
		return err
	}
	defer nc.Close()
	defer sink.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := sink.Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	plan := rep.Plan
	slices.SortFunc(plan, func(a, b tagsync.PlanItem) int {
		return strings.Compare(a.VM.Name+"\x00"+a.VM.InstanceUUID, b.VM.Name+"\x00"+b.VM.InstanceUUID)
	})
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tINSTANCE UUID\tADD\tREMOVE")
	for _, it := range plan {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.VM.Name, it.VM.InstanceUUID, tagsOrDash(it.Add), tagsOrDash(it.Remove))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d VMs compared in %s: %d in sync, %d to change (%d tags to add, %d to remove), %d not in NSX\n",
		rep.VMs, rep.Duration.Round(time.Millisecond), rep.InSync, rep.Changed, rep.Added, rep.Removed, rep.NotInNSX)
	return nil
}

func tagsOrDash(ts []nsx.Tag) string {
	if len(ts) == 0 {
		return "-"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}
