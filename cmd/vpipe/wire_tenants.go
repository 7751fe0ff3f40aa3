package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/tenants"
	"github.com/vpipe/vpipe/pipeline/vcd"
	"github.com/vpipe/vpipe/sinks/tenantsyslog"
)

// startTenantForward builds the tenant-forward stage (and the tenant
// registry it needs) when configured and chosen: the consumer of the
// firewall topic, the replayer of the parked topic, and the registry's
// reloader (tenants.list of the main configuration file, the tenants
// file, VCD discovery, SIGHUP), all run as stages.
func (p *proc) startTenantForward(roles map[string]bool, reg *prometheus.Registry, m *stage.Metrics) error {
	s := p.cfg.Stages.TenantForward
	if s == nil || !roles[roleTenantForward] {
		return nil
	}
	prefix := p.cfg.Kafka.TopicPrefix
	var catchAll []tenants.Destination
	for i := range s.CatchAll {
		catchAll = append(catchAll, s.CatchAll[i].Destination())
	}
	sink, err := tenantsyslog.New(tenantsyslog.Config{
		Brokers: p.brokers, ParkedTopic: prefix + s.ParkedTopic, ReplayGroupID: s.Replay.GroupID,
		QueueSize: s.QueueSize, DeliverTimeout: s.DeliverTimeout.D(), StallTimeout: s.StallTimeout.D(),
		Unknown: s.Unknown, CatchAll: catchAll,
		ReplayBatchSize: s.Replay.BatchSize, ReplayTimeout: s.Replay.Timeout.D(), ReplayShare: s.Replay.Share,
	}, tenantsyslog.NewMetrics(reg), p.log)
	if err != nil {
		return fmt.Errorf("stages.tenant_forward: %w", err)
	}
	p.closers = append(p.closers, sink)
	hup := make(chan struct{}, 1)
	lw := newListWatch(p.cfg.File(), p.cfg.TenantList(), p.log)
	mc, err := managerConfigWatching(p.cfg, lw, hup, p.log)
	if err != nil {
		return err
	}
	mc.OnChange = func(r *tenants.Registry) {
		if err := sink.SetRegistry(r); err != nil {
			p.log.Error("tenant registry not applied", "error", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), mc.DiscoverTimeout+5*time.Second)
	mg, err := tenants.NewManager(ctx, mc, tenants.NewMetrics(reg), p.log)
	cancel()
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	r, err := stage.New(stage.Config{
		Name: "tenant_forward", Brokers: p.brokers, Topics: []string{prefix + pipeline.TopicFirewall},
		GroupID: s.GroupID, DLQTopic: prefix + pipeline.TopicDLQ, BatchSize: s.BatchSize,
	}, sink, m, p.log)
	if err != nil {
		return fmt.Errorf("stages.tenant_forward: %w", err)
	}
	rr := &registryRunner{mg: mg, hup: hup, log: p.log, ready: make(chan struct{})}
	if lw != nil && mc.File != lw.path {
		// The manager watches the tenants file; the main file is the
		// runner's to watch.
		rr.lw, rr.interval = lw, mc.FileInterval
	}
	p.stages = append(p.stages, r, sink.Replayer(tenantsyslog.ReplayerConfig{}), rr)
	return nil
}

// managerConfig turns the tenants configuration into the registry
// manager's sources. hup, if not nil, triggers reloads.
func managerConfig(cfg *config.Config, hup chan struct{}) (tenants.ManagerConfig, error) {
	return managerConfigWatching(cfg, nil, hup, nil)
}

// managerConfigWatching is managerConfig with tenants.list reloaded from
// the main file. lw, if not nil, holds tenants.list instead of Static: the
// manager gets it through Parse, which it calls on every reload, from the
// main file (which it then watches) when there is no separate tenants
// file, or from lw together with the tenants file. log, if not nil, warns
// of tenants.vcd.tls.insecure_skip_verify.
func managerConfigWatching(cfg *config.Config, lw *listWatch, hup chan struct{}, log *slog.Logger) (tenants.ManagerConfig, error) {
	mc := tenants.ManagerConfig{Static: cfg.TenantList(), Reload: hup}
	t := cfg.Tenants
	if t != nil {
		mc.FileInterval = t.ReloadInterval.D()
	}
	switch {
	case t != nil && t.File != "" && lw != nil:
		mc.Static = nil
		mc.File, mc.Parse = t.File, func(data []byte) ([]tenants.Tenant, error) {
			ts, err := config.ParseTenantsFile(data)
			if err != nil {
				return nil, err
			}
			return append(lw.current(), ts...), nil
		}
	case t != nil && t.File != "":
		mc.File, mc.Parse = t.File, config.ParseTenantsFile
	case lw != nil:
		mc.Static = nil
		mc.File, mc.Parse = lw.path, lw.parse
	}
	if t == nil {
		return mc, nil
	}
	if v := t.VCD; v != nil {
		c, err := vcdClient(v, log)
		if err != nil {
			return mc, err
		}
		mc.Discover, mc.DiscoverInterval, mc.DiscoverTimeout = c.Discover, v.RefreshInterval.D(), v.Timeout.D()
	}
	return mc, nil
}

func vcdClient(v *config.VCD, log *slog.Logger) (*vcd.Client, error) {
	token, err := v.Token()
	if err != nil {
		return nil, err
	}
	tc, err := clientTLS("tenants.vcd", v.TLS, log)
	if err != nil {
		return nil, fmt.Errorf("tenants.vcd: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	c, err := vcd.New(vcd.Config{
		URL: v.URL, Org: v.Org, Token: token, APIVersion: v.APIVersion, PageSize: v.PageSize,
		HTTPClient: &http.Client{Transport: tr, Timeout: v.Timeout.D()},
	})
	if err != nil {
		return nil, fmt.Errorf("tenants.vcd: %w", err)
	}
	return c, nil
}

// registryRunner runs the tenant registry's reloads and turns SIGHUP into
// a reload. With lw set (a separate tenants file, which the manager
// watches) it also watches the main file's tenants.list, every interval
// and on SIGHUP, and has the manager rebuild when the list changed.
type registryRunner struct {
	mg       *tenants.Manager
	hup      chan struct{}
	log      *slog.Logger
	lw       *listWatch
	interval time.Duration
	ready    chan struct{} // closed once SIGHUP is caught
}

// Run reloads the registry (file changes, VCD refreshes, SIGHUP) until
// ctx ends.
func (r *registryRunner) Run(ctx context.Context) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	defer signal.Stop(sig)
	close(r.ready)
	reload := func() {
		select {
		case r.hup <- struct{}{}:
		default: // a reload is pending already
		}
	}
	go func() {
		var tick <-chan time.Time
		if r.lw != nil {
			t := time.NewTicker(r.interval)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				// The list first, so that the reload sees it.
				if r.lw != nil {
					r.lw.check(true)
				}
				reload()
			case <-tick:
				if r.lw.check(false) {
					reload()
				}
			}
		}
	}()
	return r.mg.Run(ctx)
}

// listWatch holds the tenants.list of the main configuration file and
// reads it again on demand: only the tenants section is decoded and
// validated (the rest of the file is not the registry's business), and a
// list that is not valid is logged and leaves the last good one in place.
// tenants.file, tenants.vcd and tenants.reload_interval take effect at a
// restart; a change to them is logged.
type listWatch struct {
	path string
	log  *slog.Logger

	mu   sync.Mutex
	data []byte // the file's content when last read
	list []tenants.Tenant
	rest string // the other keys of the section, as first read
}

// newListWatch returns nil when path is "": nothing to watch.
func newListWatch(path string, list []tenants.Tenant, log *slog.Logger) *listWatch {
	if path == "" {
		return nil
	}
	w := &listWatch{path: path, log: log.With("component", "tenants", "file", path), list: list}
	if data, err := os.ReadFile(path); err == nil {
		if _, rest, err := parseMainTenants(data); err == nil {
			w.data, w.rest = data, rest
		}
	}
	return w
}

// current returns the last good list.
func (w *listWatch) current() []tenants.Tenant {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.list)
}

// parse is the manager's Parse when it watches the main file itself: the
// list of data, or why it is not valid (the manager then logs it and
// keeps the registry).
func (w *listWatch) parse(data []byte) ([]tenants.Tenant, error) {
	list, rest, err := parseMainTenants(data)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.noteRest(rest)
	w.data, w.list = data, list
	return slices.Clone(list), nil
}

// check reads the file again when it changed (or always when force) and
// reports whether the list changed. Failures are logged; the list stays.
func (w *listWatch) check(force bool) bool {
	data, err := os.ReadFile(w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.log.Error("tenants.list not reloaded; keeping the previous list", "error", err)
		return false
	}
	if !force && w.data != nil && bytes.Equal(data, w.data) {
		return false
	}
	w.data = data // an invalid content is logged once, not at every check
	list, rest, err := parseMainTenants(data)
	if err != nil {
		w.log.Error("tenants.list not reloaded; keeping the previous list", "error", err)
		return false
	}
	w.noteRest(rest)
	if reflect.DeepEqual(list, w.list) {
		return false
	}
	w.list = list
	w.log.Info("tenants.list changed; reloading the registry", "tenants", len(list))
	return true
}

// noteRest logs a change of the section's other keys. w.mu is held.
func (w *listWatch) noteRest(rest string) {
	switch {
	case w.rest == "":
		w.rest = rest
	case rest != w.rest:
		w.log.Warn("tenants.file, tenants.vcd or tenants.reload_interval changed; they take effect at a restart")
		w.rest = rest
	}
}

// mainTenants is the tenants section of the main configuration, as a
// reload reads it: the list, and the other keys only to notice a change.
type mainTenants struct {
	List           yaml.Node `yaml:"list"`
	File           yaml.Node `yaml:"file"`
	ReloadInterval yaml.Node `yaml:"reload_interval"`
	VCD            yaml.Node `yaml:"vcd"`
}

// parseMainTenants decodes the tenants section of a main configuration
// file strictly (an unknown key under tenants is an error) and validates
// its list as pipeline/config does (config.ParseTenantsFile, with the
// same defaults and checks, and key paths under tenants.list). Line
// numbers in decoding errors count from the start of the tenants section.
// rest renders the section's other keys.
func parseMainTenants(data []byte) (list []tenants.Tenant, rest string, err error) {
	var doc struct {
		Tenants yaml.Node `yaml:"tenants"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, "", fmt.Errorf("tenants: %w", err)
	}
	var sec mainTenants
	if doc.Tenants.Kind != 0 {
		raw, err := yaml.Marshal(&doc.Tenants)
		if err != nil {
			return nil, "", fmt.Errorf("tenants: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&sec); err != nil && !errors.Is(err, io.EOF) {
			return nil, "", fmt.Errorf("tenants (lines from the section's start): %w", err)
		}
	}
	for _, n := range []*yaml.Node{&sec.File, &sec.ReloadInterval, &sec.VCD} {
		if n.Kind != 0 {
			b, _ := yaml.Marshal(n)
			rest += string(b)
		}
		rest += "\x00"
	}
	var file []byte
	if sec.List.Kind != 0 {
		if file, err = yaml.Marshal(map[string]*yaml.Node{"list": &sec.List}); err != nil {
			return nil, "", fmt.Errorf("tenants.list: %w", err)
		}
	}
	list, err = config.ParseTenantsFile(file)
	var probs *config.Problems
	switch {
	case errors.As(err, &probs):
		out := make([]string, len(probs.List))
		for i, p := range probs.List {
			out[i] = "tenants." + p
		}
		return nil, "", errors.New(strings.Join(out, "\n"))
	case err != nil:
		return nil, "", fmt.Errorf("tenants.list (lines from the list's start): %w", err)
	}
	return list, rest, nil
}

// cmdTenants is `vpipe tenants`.
func cmdTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tenants", `vpipe tenants -c FILE [--offline] [--json]

Prints each tenant of the configuration (tenants.list, tenants.file and,
unless --offline, what VCD discovery finds) with the log labels vpipe
computes for it, to compare with the labels on the rules in NSX. The name
and UUID parts of gateway labels and the reading of DFW labels are not
confirmed by VMware's documentation; vpipe matches on the MATCH column.`, stderr)
	path := fs.String("c", "", "configuration `file`")
	fs.StringVar(path, "config", "", "same as -c")
	offline := fs.Bool("offline", false, "do not ask VCD")
	asJSON := fs.Bool("json", false, "one JSON object per tenant")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fmt.Errorf("%s:\n%w", *path, err)
	}
	r, err := registryOnce(ctx, cfg, !*offline)
	if err != nil {
		return err
	}
	if *asJSON {
		return printTenantsJSON(stdout, r)
	}
	printTenants(stdout, r)
	return nil
}

// registryOnce builds the tenant registry of cfg once, as `vpipe run`
// would at start: the configured tenants merged with what VCD discovery
// finds when discover is true. A discovery that fails is an error here (a
// command's exit status), where `vpipe run` logs it and keeps going.
func registryOnce(ctx context.Context, cfg *config.Config, discover bool) (*tenants.Registry, error) {
	mc, err := managerConfig(cfg, nil)
	if err != nil {
		return nil, err
	}
	var discoverErr error
	if d := mc.Discover; d != nil && discover {
		mc.Discover = func(ctx context.Context) ([]tenants.Tenant, error) {
			ts, err := d(ctx)
			discoverErr = err
			return ts, err
		}
	} else {
		mc.Discover = nil
	}
	mg, err := tenants.NewManager(ctx, mc, nil, nil)
	if err != nil {
		return nil, err
	}
	if discoverErr != nil {
		return nil, fmt.Errorf("vcd discovery: %w", discoverErr)
	}
	return mg.Registry(), nil
}

func printTenants(w io.Writer, r *tenants.Registry) {
	for i := 0; i < r.Len(); i++ {
		t := r.Tenant(i)
		if i > 0 {
			fmt.Fprintln(w)
		}
		src := "configured"
		if t.Discovered {
			src += ", discovered from VCD"
			if len(t.Destinations) == 0 {
				src = "discovered from VCD; no destination: its events go where unknown ones go"
			}
		}
		fmt.Fprintf(w, "tenant %s %q (%s)\n", t.ID, t.Name, src)
		for _, d := range t.Destinations {
			fmt.Fprintf(w, "  destination %s: %s %s, %s %s\n", d.Name, d.Transport, d.Address, d.Format, d.Framing)
		}
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "  SHAPE\tLABEL\tMATCH\tFROM\n")
		for _, l := range r.Labels(i) {
			note := ""
			if l.Ambiguous {
				note = "  AMBIGUOUS: another tenant claims it; resolves to no tenant"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s%s\n", l.Shape, l.Label, l.Key, l.Object, note)
		}
		tw.Flush()
	}
	if probs := r.Problems(); len(probs) > 0 {
		fmt.Fprintf(w, "\n%d problems:\n", len(probs))
		for _, p := range probs {
			other := ""
			if p.Other >= 0 {
				other = fmt.Sprintf(" (tenant %s %s)", r.Tenant(p.Other).ID, p.OtherField)
			}
			fmt.Fprintf(w, "  tenant %s %s: %s%s\n", r.Tenant(p.Tenant).ID, p.Field, p.Msg, other)
		}
	}
}

func printTenantsJSON(w io.Writer, r *tenants.Registry) error {
	type label struct {
		Shape     string `json:"shape"`
		Label     string `json:"label"`
		Match     string `json:"match"`
		From      string `json:"from"`
		Ambiguous bool   `json:"ambiguous,omitempty"`
	}
	type dest struct {
		Name      string `json:"name"`
		Transport string `json:"transport"`
		Address   string `json:"address"`
		Format    string `json:"format"`
		Framing   string `json:"framing,omitempty"`
	}
	enc := json.NewEncoder(w)
	for i := 0; i < r.Len(); i++ {
		t := r.Tenant(i)
		out := struct {
			ID           string  `json:"id"`
			Name         string  `json:"name"`
			Discovered   bool    `json:"discovered,omitempty"`
			Destinations []dest  `json:"destinations"`
			Labels       []label `json:"labels"`
		}{ID: t.ID, Name: t.Name, Discovered: t.Discovered, Destinations: []dest{}, Labels: []label{}}
		for _, d := range t.Destinations {
			out.Destinations = append(out.Destinations, dest{d.Name, d.Transport, d.Address, d.Format, d.Framing})
		}
		for _, l := range r.Labels(i) {
			out.Labels = append(out.Labels, label{l.Shape.String(), strings.TrimSuffix(l.Label, "…"), l.Key, l.Object, l.Ambiguous})
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return nil
}
