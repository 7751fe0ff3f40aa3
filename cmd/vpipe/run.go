package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vpipe/vpipe/parsers/loginsight"
	"github.com/vpipe/vpipe/parsers/record"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/parsers/ticket"
	"github.com/vpipe/vpipe/parsers/vcenter"
	"github.com/vpipe/vpipe/parsers/velocloud"
	"github.com/vpipe/vpipe/parsers/vmware"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/httpin"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/syslogin"
	"github.com/vpipe/vpipe/sinks/filesink"
	"github.com/vpipe/vpipe/sinks/nsx"
)

// The --stages names: roleIngest is the listeners (syslog and HTTP
// ingest), roleVCenter and roleVeloCloud the pollers, the others consumer
// stages. Each runs only when configured.
const (
	roleIngest        = "ingest"
	roleVCenter       = "vcenter"
	roleVeloCloud     = "velocloud"
	roleFile          = "file"
	roleTenantForward = "tenant-forward"
	roleTagSync       = "tag-sync"
	roleNDJSON        = "ndjson"
)

// knownRoles lists what --stages may name.
var knownRoles = []string{
	roleIngest, roleVCenter, roleVeloCloud, roleNSXGroups,
	roleFile, roleTenantForward, roleTagSync, roleNDJSON, roleJITAccess, roleForensics,
}

// runner is a poller or a consumer stage: Run works until ctx ends.
type runner interface {
	Run(ctx context.Context) error
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("run", `vpipe run [-c FILE] [--data-dir DIR] [--stages LIST]

Runs the pipeline until SIGINT or SIGTERM, then stops the sources, flushes
what they accepted to Kafka under kafka.shutdown_timeout, and exits.
Without -c it runs the embedded default (see 'vpipe help').`, stderr)
	path := fs.String("c", "", "configuration `file` (default: the embedded default)")
	fs.StringVar(path, "config", "", "same as -c")
	dataDir := fs.String("data-dir", "", "embedded broker data `directory` (overrides kafka.embedded.data_dir; default ./vpipe-data)")
	stages := fs.String("stages", "", "comma-separated `roles` this process runs, of: "+strings.Join(knownRoles, ", ")+" (default: all configured)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			return fmt.Errorf("%s:\n%w", *path, err)
		}
	}
	if *dataDir != "" {
		cfg.Kafka.Embedded.DataDir = *dataDir
	}
	roles, err := parseRoles(*stages)
	if err != nil {
		fmt.Fprintf(stderr, "vpipe run: %v\n", err)
		return errUsage
	}
	log := newLogger(stderr, cfg.Log.Level)
	p, err := start(cfg, roles, log)
	if err != nil {
		return err
	}
	return p.serve(ctx)
}

// parseRoles turns --stages into a set; empty means every role.
func parseRoles(s string) (map[string]bool, error) {
	roles := map[string]bool{}
	if s == "" {
		for _, r := range knownRoles {
			roles[r] = true
		}
		return roles, nil
	}
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(knownRoles, r) {
			return nil, fmt.Errorf("--stages: unknown role %q (known: %s)", r, strings.Join(knownRoles, ", "))
		}
		roles[r] = true
	}
	return roles, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// proc is one running vpipe process.
type proc struct {
	cfg       *config.Config
	reg       *prometheus.Registry
	log       *slog.Logger
	broker    *broker.Embedded
	brokers   []string
	producer  *kafkaout.Producer
	listeners []*syslogin.Listener
	servers   []*http.Server
	serverLns []net.Listener
	pollers   []runner     // stopped with the listeners
	stages    []runner     // stopped after the sources, before the producer
	closers   []io.Closer  // stage sinks, closed after their runners stop
	nsxM      *nsx.Metrics // shared by the stages that talk to NSX; see nsxMetrics
}

// start builds and binds everything (so a port in use fails here) without
// serving yet.
func start(cfg *config.Config, roles map[string]bool, log *slog.Logger) (p *proc, err error) {
	p = &proc{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			p.closeAll()
		}
	}()
	reg := prometheus.NewRegistry()
	p.reg = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	p.brokers = cfg.Kafka.Brokers
	if len(p.brokers) == 0 {
		var topics []string
		for _, t := range pipeline.AllTopics {
			// The checkpoints topic is created compacted by
			// pipeline/checkpoint on first use; seeding would make it
			// an ordinary one.
			if t != pipeline.TopicCheckpoints {
				topics = append(topics, cfg.Kafka.TopicPrefix+t)
			}
		}
		p.broker, err = broker.Start(broker.Config{
			Listen:     cfg.Kafka.Embedded.Listen,
			DataDir:    cfg.Kafka.Embedded.DataDir,
			SyncWrites: cfg.Kafka.Embedded.SyncWrites,
			Partitions: cfg.Kafka.Embedded.Partitions,
			Topics:     topics,
		})
		if err != nil {
			return nil, err
		}
		p.brokers = []string{p.broker.Addr()}
	}
	k := cfg.Kafka
	p.producer, err = kafkaout.New(kafkaout.Config{
		Brokers: p.brokers, TopicPrefix: k.TopicPrefix, Compression: k.Compression,
		BatchSize: k.BatchSize, Linger: k.Linger.D(), MaxBuffered: k.MaxBuffered,
	}, kafkaout.NewMetrics(reg), log)
	if err != nil {
		return nil, err
	}

	// Readiness starts from one look at the cluster; a cluster that is not
	// up yet is not an error: the producer holds records until it is.
	pctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if err := p.producer.Probe(pctx); err != nil {
		log.Warn("kafka not reachable yet; ingest will wait for it", "brokers", strings.Join(p.brokers, ","), "err", err)
	}
	cancel()

	loc, err := time.LoadLocation(cfg.Parse.Timezone)
	if err != nil {
		return nil, err
	}
	parser := record.New(syslog.Options{Location: loc}, vmware.New(), record.NewMetrics(reg))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if roles[roleIngest] {
		sm := syslogin.NewMetrics(reg)
		for _, lc := range cfg.Syslog {
			sc, err := listenerConfig(lc)
			if err != nil {
				return nil, err
			}
			l, err := syslogin.Listen(sc, lc.Name, parser, p.producer, sm, log)
			if err != nil {
				return nil, fmt.Errorf("syslog listener %s: %w", lc.Name, err)
			}
			p.listeners = append(p.listeners, l)
		}
		token, err := cfg.HTTP.Secret()
		if err != nil {
			return nil, err
		}
		hc := httpin.Config{MaxBodyBytes: cfg.HTTP.MaxBodyBytes, BearerToken: token}
		if err := hc.Validate(); err != nil {
			return nil, fmt.Errorf("http: %w", err)
		}
		ingest, err := p.wrapTicketWebhook(httpin.NewHandler(hc, httpin.Deps{
			Parser: parser, Publisher: p.producer, Ready: p.producer.Ready, Log: log, Metrics: httpin.NewMetrics(reg),
			Webhooks: map[string]httpin.WebhookParser{
				"loginsight": loginsight.ParseWebhook, // Log Insight / Aria Operations for Logs alerts
				"vcenter":    vcenter.Webhook,         // one vCenter event as JSON (VEBA)
				"velocloud":  velocloud.Webhook,       // one VCO enterprise event
				"ticket":     ticket.Webhook,          // a help desk ticket's lock changed (Znuny invoker)
			},
		}))
		if err != nil {
			return nil, err
		}
		mux.Handle("/", ingest)
	} else {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if err := p.producer.Ready(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok\n")
		})
	}
	sm := stage.NewMetrics(reg)
	for _, start := range []func(map[string]bool, *prometheus.Registry, *stage.Metrics) error{
		p.startFile, p.startTenantForward, p.startVCenter, p.startVeloCloud, p.startJIT, p.startForensics,
	} {
		if err := start(roles, reg, sm); err != nil {
			return nil, err
		}
	}
	if cfg.HTTP.Address != "off" {
		if err := p.listenHTTP(cfg.HTTP.Address, mux); err != nil {
			return nil, fmt.Errorf("http: %w", err)
		}
	}
	if cfg.Metrics.Address != "" {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		if err := p.listenHTTP(cfg.Metrics.Address, mm); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	// Every socket is bound: connections queue until serve accepts them.
	log.Info("vpipe running", p.addrs()...)
	return p, nil
}

// startFile builds the file stage when it is configured and chosen.
func (p *proc) startFile(roles map[string]bool, _ *prometheus.Registry, m *stage.Metrics) error {
	prefix := p.cfg.Kafka.TopicPrefix
	if f := p.cfg.Stages.File; f != nil && roles[roleFile] {
		sink, err := filesink.Open(f.Path)
		if err != nil {
			return fmt.Errorf("stages.file: %w", err)
		}
		p.closers = append(p.closers, sink)
		topics := make([]string, len(f.Topics))
		for i, t := range f.Topics {
			topics[i] = prefix + t
		}
		r, err := stage.New(stage.Config{
			Name: roleFile, Brokers: p.brokers, Topics: topics, GroupID: f.GroupID,
			DLQTopic: prefix + pipeline.TopicDLQ, BatchSize: f.BatchSize,
		}, sink, m, p.log)
		if err != nil {
			return fmt.Errorf("stages.file: %w", err)
		}
		p.stages = append(p.stages, r)
	}
	return nil
}

func (p *proc) listenHTTP(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	p.servers = append(p.servers, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second})
	p.serverLns = append(p.serverLns, ln)
	return nil
}

// listenerConfig turns a configured listener into the syslogin form,
// loading TLS material.
func listenerConfig(lc config.Listener) (syslogin.Config, error) {
	sc := syslogin.Config{
		Transport: lc.Transport, Address: lc.Address, Framing: lc.Framing,
		MaxFrame: lc.MaxFrameBytes, IdleTimeout: lc.IdleTimeout.D(),
		MaxConnections: lc.MaxConnections, ReadBuffer: lc.ReadBuffer,
		Sockets: lc.Sockets, QueueSize: lc.QueueSize,
	}
	if lc.Transport != "tls" {
		return sc, nil
	}
	cert, err := tls.LoadX509KeyPair(lc.TLS.CertFile, lc.TLS.KeyFile)
	if err != nil {
		return sc, fmt.Errorf("syslog listener %s: %w", lc.Name, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if lc.TLS.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	if lc.TLS.ClientCAFile != "" {
		pem, err := os.ReadFile(lc.TLS.ClientCAFile)
		if err != nil {
			return sc, fmt.Errorf("syslog listener %s: %w", lc.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return sc, fmt.Errorf("syslog listener %s: %s holds no PEM certificate", lc.Name, lc.TLS.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	sc.TLS = tc
	return sc, nil
}

// addrs describes where everything listens, for the startup log line.
func (p *proc) addrs() []any {
	var kv []any
	if p.broker != nil {
		kv = append(kv, "kafka", p.broker.Addr(), "embedded_broker", true, "data_dir", p.cfg.Kafka.Embedded.DataDir)
	} else {
		kv = append(kv, "kafka", strings.Join(p.brokers, ","))
	}
	for i, l := range p.listeners {
		kv = append(kv, "syslog_"+p.cfg.Syslog[i].Transport, l.Addr().String())
	}
	for i, ln := range p.serverLns {
		name := "http"
		if i > 0 {
			name = "metrics"
		}
		kv = append(kv, name, ln.Addr().String())
	}
	kv = append(kv, "topic_prefix", p.cfg.Kafka.TopicPrefix)
	return kv
}

// serve runs until ctx ends, then shuts down: sources first, then the
// producer's flush under one deadline, then the broker.
func (p *proc) serve(ctx context.Context) error {
	srcCtx, stopSources := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, len(p.listeners)+len(p.servers)+len(p.pollers)+len(p.stages))
	for _, l := range p.listeners {
		wg.Go(func() {
			if err := l.Serve(srcCtx); err != nil {
				errc <- err
			}
		})
	}
	for _, r := range p.pollers {
		wg.Go(func() {
			if err := r.Run(srcCtx); err != nil {
				errc <- err
			}
		})
	}
	stagesCtx, stopStages := context.WithCancel(context.Background())
	defer stopStages()
	var stageWG sync.WaitGroup
	for _, r := range p.stages {
		stageWG.Go(func() {
			if err := r.Run(stagesCtx); err != nil {
				errc <- err
			}
		})
	}
	for i, s := range p.servers {
		wg.Go(func() {
			if err := s.Serve(p.serverLns[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				pctx, cancel := context.WithTimeout(srcCtx, 2*time.Second)
				p.producer.Probe(pctx)
				cancel()
			case <-srcCtx.Done():
				return
			}
		}
	}()
	var runErr error
	select {
	case <-ctx.Done():
		p.log.Info("shutting down")
	case runErr = <-errc:
		p.log.Error("a listener, poller or stage failed; shutting down", "err", runErr)
	}
	deadline, cancel := context.WithTimeout(context.Background(), p.cfg.Kafka.ShutdownTimeout.D())
	defer cancel()
	// HTTP requests in flight finish (their events are acknowledged)
	// before the producer closes.
	for _, s := range p.servers {
		s.Shutdown(deadline)
	}
	stopSources()
	wg.Wait()
	// Stages stop before the producer closes: they publish too (audit
	// events), and what they did not commit is consumed again by the next
	// member of their group.
	stopStages()
	stageWG.Wait()
	<-probeDone
	if err := p.producer.Close(deadline); err != nil {
		runErr = errors.Join(runErr, err)
	}
	for _, c := range p.closers {
		c.Close()
	}
	if p.broker != nil {
		p.broker.Close()
	}
	p.log.Info("stopped")
	return runErr
}

// closeAll releases what start bound when start fails.
func (p *proc) closeAll() {
	for _, ln := range p.serverLns {
		ln.Close()
	}
	for _, l := range p.listeners {
		l.Close()
	}
	for _, c := range p.closers {
		c.Close()
	}
	if p.producer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		p.producer.Close(ctx)
		cancel()
	}
	if p.broker != nil {
		p.broker.Close()
	}
}
