package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/vim25"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/nsxgroups"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/vcenter"
	"github.com/vpipe/vpipe/sinks/forensics"
	"github.com/vpipe/vpipe/sinks/nsx"
)

// The --stages names of the NSX group watcher (a poller) and the forensics
// stage.
const (
	roleNSXGroups = "nsx-groups"
	roleForensics = "forensics"
)

// startForensics builds the NSX group-membership pollers with the reader
// of the tag and group changes that make them poll early (role
// nsx-groups), and the forensics stage with its snapshot retention (role
// forensics), when configured and chosen. Neither contacts NSX, vCenter or
// Kafka here: the pollers open their checkpoints, the trigger reader finds
// its partitions and the stage logs in to vCenter when they run, retrying
// until they can.
func (p *proc) startForensics(roles map[string]bool, reg *prometheus.Registry, m *stage.Metrics) error {
	sources, st := p.cfg.ForensicsConfig()
	prefix := p.cfg.Kafka.TopicPrefix
	if len(sources) > 0 && roles[roleNSXGroups] {
		gm := nsxgroups.NewMetrics(reg)
		brokers, topic := p.brokers, prefix+pipeline.TopicCheckpoints
		open := func(ctx context.Context) (nsxgroups.Checkpointer, error) {
			return checkpoint.Open(ctx, brokers, topic)
		}
		var watchers nsxgroups.Sources
		for _, sc := range sources {
			src, err := newNSXGroupsSource(sc, p.nsxMetrics(reg), nsxgroups.Deps{Publisher: p.producer, OpenCheckpoints: open, Metrics: gm, Log: p.log})
			if err != nil {
				return fmt.Errorf("sources.nsx_groups %s: %w", sc.Name, err)
			}
			p.pollers = append(p.pollers, src)
			watchers = append(watchers, src)
		}
		// vpipe's own tag changes (tag-sync, jit-access: audit events) and
		// NSX audit log lines (nsx.audit, on the nsx topic) make the
		// watchers of that manager poll at once, whichever process made or
		// ingested them.
		tr, err := nsxgroups.NewTriggerReader(nsxgroups.TriggerConfig{
			Brokers: p.brokers, Topics: []string{prefix + pipeline.TopicAudit, prefix + pipeline.TopicNSX},
		}, watchers, gm, p.log)
		if err != nil {
			return fmt.Errorf("sources.nsx_groups: %w", err)
		}
		p.pollers = append(p.pollers, tr)
	}
	if st != nil && roles[roleForensics] {
		fs, err := newForensicsStage(st, p.brokers, prefix, m, forensics.NewMetrics(reg), p.log)
		if err != nil {
			return fmt.Errorf("stages.forensics: %w", err)
		}
		fs.audit = forensics.PublishAudit{Publisher: p.producer}
		p.stages = append(p.stages, fs)
	}
	return nil
}

// newNSXGroupsSource turns a configured source into a poller on its own
// NSX client, counted in the process's shared NSX metrics nm.
func newNSXGroupsSource(sc config.NSXGroupsSource, nm *nsx.Metrics, deps nsxgroups.Deps) (*nsxgroups.Source, error) {
	password, err := sc.Password()
	if err != nil {
		return nil, err
	}
	token, err := sc.RefreshToken()
	if err != nil {
		return nil, err
	}
	tc, err := clientTLS("sources.nsx_groups "+sc.Name, sc.TLS, deps.Log)
	if err != nil {
		return nil, err
	}
	// policy: Policy API groups (NSX-T, NSX 4.x, VMC); nsxv: NSX-V
	// security groups, basic auth (the config requires it).
	api := nsx.APIPolicy
	if sc.API == "nsxv" {
		api = nsx.APINSXV
	}
	c, err := nsx.New(nsx.Config{
		Name: sc.Name, URL: sc.URL, API: api, Auth: sc.Auth,
		Username: sc.Username, Password: password,
		VMC: nsx.VMC{RefreshToken: token, OrgID: sc.VMC.OrgID, SDDCID: sc.VMC.SDDCID},
		TLS: tc,
	}, nm, deps.Log)
	if err != nil {
		return nil, err
	}
	deps.Lister = nsxgroups.PolicyLister(c)
	product := nsxgroups.ProductNSX
	if api == nsx.APINSXV {
		deps.Lister, product = nsxgroups.NSXVLister(c), nsxgroups.ProductNSXV
	}
	groups := make([]nsxgroups.Group, len(sc.Groups))
	for i, g := range sc.Groups {
		groups[i] = nsxgroups.Group{ID: g.ID, Name: g.Name}
	}
	manager := nsxManagerHost(sc.URL)
	if manager == "" {
		manager = sc.Name
	}
	return nsxgroups.New(nsxgroups.Config{
		Name: sc.Name, Manager: manager, Aliases: sc.Aliases, Product: product,
		Groups: groups, Interval: sc.Interval.D(),
	}, deps)
}

// nsxManagerHost is the host of an NSX Manager URL, "" when it has none:
// the name the group watchers know a manager by (nsxgroups.Config.Manager)
// and the stages that change NSX tags write on their audit events
// (tagsync.Config.NSXManager, jitaccess.Config.NSXManager), so that their
// changes make that manager's watchers poll at once.
func nsxManagerHost(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Hostname()
	}
	return ""
}

// forensicsStage is the forensics stage as `vpipe run` runs it: Run logs
// in to vCenter (retrying with backoff while it cannot), then runs the
// consumer stage and, when configured, the snapshot retention, until ctx
// ends.
type forensicsStage struct {
	cfg     *config.ForensicsStage
	dial    vcenter.ConnConfig
	stage   stage.Config
	sink    forensics.Config
	audit   forensics.Auditor // the process's producer
	metrics *forensics.Metrics
	sm      *stage.Metrics
	log     *slog.Logger
}

func newForensicsStage(st *config.ForensicsStage, brokers []string, prefix string, sm *stage.Metrics, fm *forensics.Metrics, log *slog.Logger) (*forensicsStage, error) {
	password, err := st.VCenter.Password()
	if err != nil {
		return nil, err
	}
	if _, err := clientTLS("stages.forensics.vcenter", st.VCenter.TLS, log); err != nil {
		return nil, fmt.Errorf("vcenter: %w", err)
	}
	fs := &forensicsStage{
		cfg: st,
		dial: vcenter.ConnConfig{
			URL: st.VCenter.URL, Username: st.VCenter.Username, Password: password,
			CAFile: st.VCenter.TLS.CAFile, Insecure: st.VCenter.TLS.InsecureSkipVerify,
		},
		stage: stage.Config{
			Name: roleForensics, Brokers: brokers, Topics: []string{prefix + pipeline.TopicNSX},
			GroupID: st.GroupID, DLQTopic: prefix + pipeline.TopicDLQ, BatchSize: st.BatchSize, MaxRetries: st.MaxRetries,
		},
		sink:    forensics.Config{Groups: map[string]forensics.GroupOptions{}},
		metrics: fm,
		sm:      sm,
		log:     log,
	}
	if err := fs.stage.WithDefaults().Validate(); err != nil {
		return nil, err
	}
	if st.Snapshot.On() {
		fs.sink.Snapshot = &forensics.SnapshotOptions{Memory: st.Snapshot.Memory, Quiesce: st.Snapshot.Quiesce}
	}
	if m := st.Mirror; m.On() {
		fs.sink.Mirror = &forensics.MirrorOptions{
			Destination: m.Destination, EncapType: m.Encapsulation, ErspanID: int32(m.ErspanID),
			SamplingRate: int32(m.SamplingRate), SnapshotLength: int32(m.SnapshotLength),
		}
	}
	for _, g := range st.Groups {
		var opt forensics.GroupOptions
		if w := g.Webhook; w != nil {
			token, err := w.Token()
			if err != nil {
				return nil, err
			}
			h := http.Header{}
			if token != "" {
				h.Set("Authorization", "Bearer "+token)
			}
			opt.Webhook = &forensics.Webhook{URL: w.URL, Header: h, Timeout: w.Timeout.D()}
		}
		fs.sink.Groups[g.Group] = opt
	}
	return fs, nil
}

// Run implements runner.
func (f *forensicsStage) Run(ctx context.Context) error {
	log := f.log.With("component", "forensics")
	vc, logout, ok := f.connect(ctx, log)
	if !ok {
		return nil
	}
	defer func() {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		logout(lctx)
	}()
	v := forensics.NewVCenter(vc)
	sink, err := forensics.New(f.sink, forensics.Deps{VCenter: v, Audit: f.audit, Metrics: f.metrics, Log: f.log})
	if err != nil {
		return err
	}
	r, err := stage.New(f.stage, sink, f.sm, f.log)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	if keep := f.cfg.Snapshot.Retention.D(); keep > 0 && f.cfg.Snapshot.On() {
		ret := &forensics.Retention{VCenter: v, Audit: f.audit, Keep: keep, Interval: f.cfg.Snapshot.RetentionInterval.D(), Metrics: f.metrics, Log: f.log}
		wg.Go(func() { ret.Run(ctx) })
	}
	err = r.Run(ctx)
	wg.Wait()
	return err
}

// connect logs in to vCenter, retrying with backoff (up to a minute
// apart); ok is false when ctx ended first.
func (f *forensicsStage) connect(ctx context.Context, log *slog.Logger) (vc *vim25.Client, logout func(context.Context) error, ok bool) {
	for attempt := 0; ; attempt++ {
		c, lo, err := forensics.Dial(ctx, f.dial)
		if err == nil {
			log.Info("logged in to vCenter", "vcenter", f.dial.URL)
			return c, lo, true
		}
		if ctx.Err() != nil {
			return nil, nil, false
		}
		wait := backoff.Delay(attempt, time.Second, time.Minute)
		log.Warn("vCenter login failed; retrying", "vcenter", f.dial.URL, "backoff", wait, "error", err)
		if !backoff.Wait(ctx, wait) {
			return nil, nil, false
		}
	}
}
