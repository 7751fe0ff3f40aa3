package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
// reloader (tenants file, VCD discovery, SIGHUP), all run as stages.
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
		ReplayBatchSize: s.Replay.BatchSize, ReplayTimeout: s.Replay.Timeout.D(),
	}, tenantsyslog.NewMetrics(reg), p.log)
	if err != nil {
		return fmt.Errorf("stages.tenant_forward: %w", err)
	}
	p.closers = append(p.closers, sink)
	hup := make(chan struct{}, 1)
	mc, err := managerConfig(p.cfg, hup)
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
	p.stages = append(p.stages, r, sink.Replayer(tenantsyslog.ReplayerConfig{}), &registryRunner{mg: mg, hup: hup, log: p.log})
	return nil
}

// managerConfig turns the tenants configuration into the registry
// manager's sources. hup, if not nil, triggers reloads.
func managerConfig(cfg *config.Config, hup chan struct{}) (tenants.ManagerConfig, error) {
	mc := tenants.ManagerConfig{Static: cfg.TenantList(), Reload: hup}
	t := cfg.Tenants
	if t == nil {
		return mc, nil
	}
	if t.File != "" {
		mc.File, mc.Parse, mc.FileInterval = t.File, config.ParseTenantsFile, t.ReloadInterval.D()
	}
	if v := t.VCD; v != nil {
		c, err := vcdClient(v)
		if err != nil {
			return mc, err
		}
		mc.Discover, mc.DiscoverInterval, mc.DiscoverTimeout = c.Discover, v.RefreshInterval.D(), v.Timeout.D()
	}
	return mc, nil
}

func vcdClient(v *config.VCD) (*vcd.Client, error) {
	token, err := v.Token()
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: v.InsecureSkipVerify}
	if v.CAFile != "" {
		pem, err := os.ReadFile(v.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tenants.vcd.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tenants.vcd.ca_file: %s holds no PEM certificate", v.CAFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
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
// a reload.
type registryRunner struct {
	mg  *tenants.Manager
	hup chan struct{}
	log *slog.Logger
}

// Run reloads the registry (file changes, VCD refreshes, SIGHUP) until
// ctx ends.
func (r *registryRunner) Run(ctx context.Context) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	defer signal.Stop(sig)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case r.hup <- struct{}{}:
				default: // a reload is pending already
				}
			}
		}
	}()
	return r.mg.Run(ctx)
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
	mc, err := managerConfig(cfg, nil)
	if err != nil {
		return err
	}
	if *offline {
		mc.Discover = nil
	}
	// A discovery that fails is worth the exit status here, not only a
	// log line.
	var discoverErr error
	if discover := mc.Discover; discover != nil {
		mc.Discover = func(ctx context.Context) ([]tenants.Tenant, error) {
			ts, err := discover(ctx)
			discoverErr = err
			return ts, err
		}
	}
	mg, err := tenants.NewManager(ctx, mc, nil, nil)
	if err != nil {
		return err
	}
	if discoverErr != nil {
		return fmt.Errorf("vcd discovery: %w", discoverErr)
	}
	r := mg.Registry()
	if *asJSON {
		return printTenantsJSON(stdout, r)
	}
	printTenants(stdout, r)
	return nil
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
