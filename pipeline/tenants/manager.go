package tenants

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources names, the values of the source label of
// vpipe_tenant_registry_refreshes_total.
const (
	SourceFile = "file"
	SourceVCD  = "vcd"
)

// ManagerConfig says where a Manager's tenants come from.
type ManagerConfig struct {
	// Static are the tenants of the main configuration file; they change
	// only with a restart.
	Static []Tenant
	// File is a separate tenants file, re-read when its content changes
	// (checked every FileInterval, default 5s) or on Reload. Parse decodes
	// and validates its content (pipeline/config does it, with key paths
	// in its errors). Empty: no file.
	File         string
	Parse        func(data []byte) ([]Tenant, error)
	FileInterval time.Duration
	// Discover, if set, reads tenants from VCD (pipeline/vcd), every
	// DiscoverInterval (default 5m), each attempt bounded by
	// DiscoverTimeout (default 1m). A failed attempt keeps the tenants of
	// the last good one.
	Discover         func(ctx context.Context) ([]Tenant, error)
	DiscoverInterval time.Duration
	DiscoverTimeout  time.Duration
	// Reload, when it receives, makes Run re-read the file and discover
	// again at once (SIGHUP).
	Reload <-chan struct{}
	// OnChange is called with each new registry, the first one during
	// NewManager, later ones from Run's goroutine, never concurrently. It
	// must not block for long.
	OnChange func(*Registry)
}

// Manager keeps the current Registry and rebuilds it when its sources
// change. Registry is safe for concurrent use; Run is called once.
type Manager struct {
	cfg ManagerConfig
	m   *Metrics
	log *slog.Logger

	cur atomic.Pointer[Registry]

	mu         sync.Mutex // held while rebuilding
	fileData   []byte
	file       []Tenant
	discovered []Tenant
}

// ErrInvalid marks a tenants source that holds configuration errors; the
// registry keeps its previous content.
var ErrInvalid = errors.New("invalid tenants")

// NewManager loads the sources once and builds the first registry. A file
// that cannot be read or is invalid, or configured tenants that claim the
// same label, are an error. A failed first discovery is not: it is logged
// and retried by Run. m nil creates unregistered metrics; log nil discards.
func NewManager(ctx context.Context, cfg ManagerConfig, m *Metrics, log *slog.Logger) (*Manager, error) {
	if cfg.FileInterval <= 0 {
		cfg.FileInterval = 5 * time.Second
	}
	if cfg.DiscoverInterval <= 0 {
		cfg.DiscoverInterval = 5 * time.Minute
	}
	if cfg.DiscoverTimeout <= 0 {
		cfg.DiscoverTimeout = time.Minute
	}
	if cfg.File != "" && cfg.Parse == nil {
		return nil, errors.New("tenants: a file without a parser")
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mg := &Manager{cfg: cfg, m: m, log: log.With("component", "tenants")}
	m.attach(mg)
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if cfg.File != "" {
		if _, err := mg.readFile(true); err != nil {
			return nil, err
		}
	}
	if cfg.Discover != nil {
		if err := mg.discover(ctx); err != nil {
			mg.log.Warn("tenant discovery from VCD failed; starting with the configured tenants, retrying", "error", err)
		}
	}
	if err := mg.rebuild(); err != nil {
		return nil, err
	}
	return mg, nil
}

// Registry returns the current registry (never nil after NewManager).
func (mg *Manager) Registry() *Registry { return mg.cur.Load() }

// Run re-reads the file when it changes, discovers from VCD on its
// interval, and does both at once when Reload receives, until ctx ends.
// It returns nil then. Failures are logged and counted, never returned:
// the registry stays as it was.
func (mg *Manager) Run(ctx context.Context) error {
	var fileC, vcdC <-chan time.Time
	if mg.cfg.File != "" {
		t := time.NewTicker(mg.cfg.FileInterval)
		defer t.Stop()
		fileC = t.C
	}
	if mg.cfg.Discover != nil {
		t := time.NewTicker(mg.cfg.DiscoverInterval)
		defer t.Stop()
		vcdC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-fileC:
			mg.Refresh(ctx, false)
		case <-vcdC:
			mg.refreshVCD(ctx)
		case <-mg.cfg.Reload:
			mg.log.Info("reloading tenants")
			mg.Refresh(ctx, true)
		}
	}
}

// Refresh re-reads the file (rebuilding the registry if its content
// changed, or always when force) and, when force, discovers from VCD
// again. It reports the first failure; the registry then keeps its
// previous content.
func (mg *Manager) Refresh(ctx context.Context, force bool) error {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	changed := force
	var errs []error
	if mg.cfg.File != "" {
		c, err := mg.readFile(force)
		if err != nil {
			mg.log.Error("tenants file not reloaded; keeping the previous tenants", "file", mg.cfg.File, "error", err)
			errs = append(errs, err)
		}
		changed = changed || c
	}
	if force && mg.cfg.Discover != nil {
		if err := mg.discover(ctx); err != nil {
			mg.log.Warn("tenant discovery from VCD failed; keeping the last discovered tenants", "error", err)
			errs = append(errs, err)
		}
	}
	if changed {
		if err := mg.rebuild(); err != nil {
			mg.log.Error("tenants not reloaded; keeping the previous registry", "error", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (mg *Manager) refreshVCD(ctx context.Context) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if err := mg.discover(ctx); err != nil {
		mg.log.Warn("tenant discovery from VCD failed; keeping the last discovered tenants", "error", err)
		return
	}
	if err := mg.rebuild(); err != nil {
		mg.log.Error("tenants not rebuilt after discovery; keeping the previous registry", "error", err)
	}
}

// readFile reads the file and parses it when its content changed (or
// always when force). changed says the tenants may differ.
func (mg *Manager) readFile(force bool) (changed bool, err error) {
	data, err := os.ReadFile(mg.cfg.File)
	if err != nil {
		mg.m.refreshes.WithLabelValues(SourceFile, "error").Inc()
		return false, fmt.Errorf("tenants file: %w", err)
	}
	if !force && mg.fileData != nil && bytes.Equal(data, mg.fileData) {
		mg.m.fileOK.Store(time.Now().UnixNano())
		return false, nil
	}
	ts, err := mg.cfg.Parse(data)
	if err != nil {
		mg.m.refreshes.WithLabelValues(SourceFile, "error").Inc()
		return false, fmt.Errorf("tenants file %s: %w", mg.cfg.File, err)
	}
	mg.fileData, mg.file = data, ts
	mg.m.fileOK.Store(time.Now().UnixNano())
	mg.m.refreshes.WithLabelValues(SourceFile, "ok").Inc()
	return true, nil
}

func (mg *Manager) discover(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, mg.cfg.DiscoverTimeout)
	defer cancel()
	ts, err := mg.cfg.Discover(dctx)
	if err != nil {
		mg.m.refreshes.WithLabelValues(SourceVCD, "error").Inc()
		return fmt.Errorf("discover tenants: %w", err)
	}
	mg.discovered = ts
	mg.m.vcdOK.Store(time.Now().UnixNano())
	mg.m.refreshes.WithLabelValues(SourceVCD, "ok").Inc()
	return nil
}

// rebuild builds and installs a registry from the sources. Configured
// tenants that conflict are refused; conflicts that discovery brings are
// installed as ambiguous keys, and logged.
func (mg *Manager) rebuild() error {
	configured := append(append([]Tenant(nil), mg.cfg.Static...), mg.file...)
	if _, probs := Build(configured); len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, describe(configured, probs))
	}
	all := Merge(configured, mg.discovered)
	r, probs := Build(all)
	if len(probs) > 0 {
		mg.log.Warn("discovered tenants conflict with others; their labels resolve to no tenant",
			"problems", describe(all, probs))
	}
	mg.m.tenants.Set(float64(r.Len()))
	mg.m.problems.Set(float64(len(probs)))
	mg.cur.Store(r)
	mg.log.Info("tenant registry built", "tenants", r.Len(), "discovered", len(mg.discovered), "problems", len(probs))
	if mg.cfg.OnChange != nil {
		mg.cfg.OnChange(r)
	}
	return nil
}

// describe renders problems with tenant ids, at most 10.
func describe(ts []Tenant, probs []Problem) string {
	var b strings.Builder
	for i, p := range probs {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(probs)-10)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "tenant %q %s: %s", ts[p.Tenant].ID, p.Field, p.Msg)
	}
	return b.String()
}

// Metrics are the registry's Prometheus metrics.
type Metrics struct {
	tenants   prometheus.Gauge
	problems  prometheus.Gauge
	refreshes *prometheus.CounterVec
	age       prometheus.GaugeFunc

	mg     atomic.Pointer[Manager]
	fileOK atomic.Int64 // unix nanos of the last good read of the file
	vcdOK  atomic.Int64 // of the last good discovery
	start  time.Time
}

// NewMetrics creates the registry metrics and registers them with reg
// (nil: not registered). Call it once per registry; one Manager uses it.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		start: time.Now(),
		tenants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_tenant_registry_tenants",
			Help: "Tenants in the current registry (configured and discovered).",
		}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_tenant_registry_problems",
			Help: "Problems of the current registry, such as label keys two tenants claim (those resolve to no tenant).",
		}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tenant_registry_refreshes_total",
			Help: "Reads of the tenant sources, by source (file, vcd) and result (ok, error).",
		}, []string{"source", "result"}),
	}
	m.age = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vpipe_tenant_registry_age_seconds",
		Help: "Seconds since the oldest of the registry's sources (tenants file, VCD) was last read successfully; grows while VCD is unreachable.",
	}, m.ageSeconds)
	for _, s := range []string{SourceFile, SourceVCD} {
		for _, r := range []string{"ok", "error"} {
			m.refreshes.WithLabelValues(s, r)
		}
	}
	if reg != nil {
		reg.MustRegister(m.tenants, m.problems, m.refreshes, m.age)
	}
	return m
}

func (m *Metrics) attach(mg *Manager) { m.mg.Store(mg) }

func (m *Metrics) ageSeconds() float64 {
	mg := m.mg.Load()
	if mg == nil {
		return 0
	}
	oldest := time.Now().UnixNano()
	if mg.cfg.File != "" {
		oldest = min(oldest, m.fileOK.Load())
	}
	if mg.cfg.Discover != nil {
		if ok := m.vcdOK.Load(); ok != 0 {
			oldest = min(oldest, ok)
		} else {
			oldest = min(oldest, m.start.UnixNano())
		}
	}
	return float64(time.Now().UnixNano()-oldest) / 1e9
}
