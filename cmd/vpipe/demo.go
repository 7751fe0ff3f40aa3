//go:build !nodemo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/tenants"
)

// demoHooks, set by tests, are called with the demo's simulators and
// pipeline before the workflows and after them, before anything stops.
var demoHooks struct{ before, after func(*demoRun) }

// cmdDemo is `vpipe demo`.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", `vpipe demo [--keep] [--data-dir DIR] [--timeout D]

Starts, in this process and on loopback: vcsim (vCenter), the NSX, VCO,
Znuny and VCD simulators, syslog servers standing for two tenants and the
provider, and the pipeline with every role on the embedded broker, with a
configuration that points at them (written to the data directory, and run
as 'vpipe run -c' runs it). Then it drives each workflow once and prints
what it did, what vpipe did, where to see it, and how long it took:

  1. tag-sync        a vSphere tag attached in vCenter: the NSX tag appears on the VM
  2. tenant-forward  NSX firewall lines of two tenants: each tenant's syslog
                     server receives its own lines and no other
  3. jit-access      a ticket locked in Znuny: an NSX tag (SSH) on its VM;
                     unlocked: the tag is gone
  4. forensics       a VM tagged into NSX group Quarantine: a vCenter snapshot
                     and a port-mirroring session
  5. ndjson          VCO events: one NDJSON file per enterprise

Exit status 0 when all five worked, 1 otherwise, with the reason. The
pipeline's JSON log is vpipe.log in the data directory.`, stderr)
	keep := fs.Bool("keep", false, "keep everything running after the workflows, until Ctrl-C, to look at the metrics, the topics and the files")
	dataDir := fs.String("data-dir", "", "`directory` for the configuration, the log, the broker's data and the NDJSON files; must be new or empty (default: a temporary directory, removed at the end unless a workflow failed)")
	timeout := fs.Duration("timeout", time.Minute, "how long each workflow (and the start) may take")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *timeout <= 0 {
		fs.Usage()
		return errUsage
	}
	dir, temp := *dataDir, *dataDir == ""
	if temp {
		var err error
		if dir, err = os.MkdirTemp("", "vpipe-demo-"); err != nil {
			return err
		}
	} else if err := emptyDir(dir); err != nil {
		return err
	}
	ok, err := runDemo(ctx, dir, *keep, *timeout, stdout)
	if temp && ok {
		os.RemoveAll(dir)
	} else if !ok {
		fmt.Fprintf(stdout, "The configuration, the log and the data are kept in %s.\n", dir)
	}
	return err
}

// emptyDir creates dir, or checks that it is empty: the demo starts from
// nothing (a broker of an earlier run would hold its checkpoints).
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("--data-dir %s is not empty: the demo starts from nothing", dir)
	}
	return nil
}

// runDemo starts the simulators and the pipeline, drives the workflows and
// stops everything; ok is true when every workflow worked.
func runDemo(ctx context.Context, dir string, keep bool, timeout time.Duration, out io.Writer) (ok bool, err error) {
	began := time.Now()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sims, err := startDemoSims(sctx, dir)
	if err != nil {
		return false, fmt.Errorf("start the simulators: %w", err)
	}
	defer sims.close()

	// The configuration goes through the file, as `vpipe run -c` reads it.
	y, err := renderDemoConfig(sims.addrs())
	if err != nil {
		return false, err
	}
	cfgPath := filepath.Join(dir, "vpipe-demo.yaml")
	if err := os.WriteFile(cfgPath, y, 0o600); err != nil {
		return false, err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return false, fmt.Errorf("%s:\n%w", cfgPath, err)
	}
	logPath := filepath.Join(dir, "vpipe.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return false, err
	}
	defer logFile.Close()
	roles, _ := parseRoles("")
	p, err := start(cfg, roles, newLogger(logFile, cfg.Log.Level))
	if err != nil {
		return false, fmt.Errorf("start vpipe (log %s): %w", logPath, err)
	}
	httpAddr := p.serverLns[0].Addr().String()
	sims.startZnuny("http://" + httpAddr + "/v1/webhooks/ticket")

	serveCtx, stop := context.WithCancel(context.Background())
	d := &demoRun{sims: sims, p: p, timeout: timeout, exited: make(chan struct{})}
	go func() {
		d.serveErr = p.serve(serveCtx)
		close(d.exited)
	}()
	defer func() {
		stop()
		select {
		case <-d.exited:
			if d.serveErr != nil && err == nil {
				err = fmt.Errorf("vpipe stopped with: %w", d.serveErr)
			}
		case <-time.After(30 * time.Second):
			if err == nil {
				err = errors.New("vpipe did not stop within 30s")
			}
		}
	}()

	printDemoHeader(out, d, dir, httpAddr, time.Since(began))
	flows := []func(context.Context) demoResult{
		d.tagSync,
		func(ctx context.Context) demoResult { return d.tenantForward(ctx, demoRegistry(cfg)) },
		d.jitAccess,
		d.forensics,
		func(ctx context.Context) demoResult { return d.velocloud(ctx, cfg.Stages.NDJSON.Dir) },
	}
	if demoHooks.before != nil {
		demoHooks.before(d)
	}
	var failed []string
	for i, flow := range flows {
		if ctx.Err() != nil {
			failed = append(failed, fmt.Sprintf("%d (interrupted)", i+1))
			continue
		}
		since := time.Now()
		r := flow(ctx)
		if r.Err != nil {
			r.Hints = logHints(logPath, since, 3)
		}
		printDemoResult(out, i+1, len(flows), r)
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%d %s: %v", i+1, r.Stage, r.Err))
		}
	}
	if demoHooks.after != nil {
		demoHooks.after(d)
	}
	took := time.Since(began).Round(100 * time.Millisecond)
	if len(failed) > 0 {
		fmt.Fprintf(out, "\n%d of %d workflows worked in %s; the pipeline's log is %s.\n", len(flows)-len(failed), len(flows), took, logPath)
	} else {
		fmt.Fprintf(out, "\nAll %d workflows worked, in %s from start to finish.\n", len(flows), took)
	}
	if keep {
		printDemoKeep(out, d, httpAddr)
		<-ctx.Done()
	}
	if len(failed) > 0 {
		return false, fmt.Errorf("%d of %d workflows failed:\n  %s", len(failed), len(flows), strings.Join(failed, "\n  "))
	}
	return true, nil
}

// demoRegistry returns the tenant registry as `vpipe tenants` computes
// it: the configured tenants merged with what VCD discovery finds.
func demoRegistry(cfg *config.Config) func(context.Context) (*tenants.Registry, error) {
	return func(ctx context.Context) (*tenants.Registry, error) {
		return registryOnce(ctx, cfg, true)
	}
}

func printDemoHeader(w io.Writer, d *demoRun, dir, httpAddr string, took time.Duration) {
	s := d.sims
	var vms []string
	for _, vm := range s.vms {
		vms = append(vms, vm.Name)
	}
	slices.Sort(vms)
	var ents []string
	for _, e := range s.vco.Enterprises() {
		ents = append(ents, e.Name)
	}
	fmt.Fprintf(w, "vpipe demo: the five workflows against simulators, all in this process on loopback (started in %s)\n",
		took.Round(10*time.Millisecond))
	rows := [][2]string{
		{"vCenter (vcsim)", s.vcURL + "  VMs " + strings.Join(vms, ", ")},
		{"NSX", s.nsxSrv.URL + "  group Quarantine: VMs tagged " + demoQuarantineTag.String()},
		{"VCO", s.vcoSrv.URL + "  enterprises " + strings.Join(ents, ", ")},
		{"Znuny", "http://" + s.znLn.Addr().String() + "  invoker → vpipe /v1/webhooks/ticket"},
		{"VCD", s.vcdSrv.URL + "  organisations acme, globex"},
		{"tenants' syslog", fmt.Sprintf("acme %s, globex %s, provider's catch-all %s",
			s.syslog["acme"].addr(), s.syslog["globex"].addr(), s.syslog["provider"].addr())},
		{"vpipe", fmt.Sprintf("kafka %s (embedded), syslog tcp %s, http://%s (/metrics, /v1/...)",
			d.p.brokers[0], d.p.listeners[0].Addr(), httpAddr)},
		{"data", dir + "  (vpipe-demo.yaml, vpipe.log, events/)"},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-16s %s\n", r[0], r[1])
	}
}

func printDemoResult(w io.Writer, i, n int, r demoResult) {
	status := "ok"
	if r.Err != nil {
		status = "FAILED"
	}
	fmt.Fprintf(w, "\n%d/%d %s [%s]: %s in %s\n", i, n, r.Title, r.Stage, status, r.Took.Round(10*time.Millisecond))
	for k, s := range r.Did {
		label := "did:   "
		if k > 0 {
			label = "       "
		}
		fmt.Fprintf(w, "    %s %s\n", label, s)
	}
	for k, s := range r.Result {
		label := "result:"
		if k > 0 {
			label = "       "
		}
		fmt.Fprintf(w, "    %s %s\n", label, s)
	}
	if r.Err != nil {
		fmt.Fprintf(w, "    error:  %v\n", r.Err)
	}
	for _, h := range r.Hints {
		fmt.Fprintf(w, "    log:    %s\n", h)
	}
}

// logHints returns up to max distinct warnings and errors the pipeline
// logged since then: what a failed workflow's reason most likely is.
func logHints(path string, since time.Time, max int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var hints []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil || (rec["level"] != "WARN" && rec["level"] != "ERROR") {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["time"])); err != nil || t.Before(since) {
			continue
		}
		h := fmt.Sprint(rec["msg"])
		for _, k := range []string{"component", "source", "stage", "err", "error"} {
			if v, ok := rec[k]; ok {
				h += fmt.Sprintf(" %s=%v", k, v)
			}
		}
		if !slices.Contains(hints, h) {
			hints = append(hints, h)
		}
		if len(hints) == max {
			break
		}
	}
	return hints
}

func printDemoKeep(w io.Writer, d *demoRun, httpAddr string) {
	fmt.Fprintf(w, `
Everything keeps running until Ctrl-C. Try:
  curl -s http://%[1]s/metrics | grep -E '^vpipe_(tagsync|jit|forensics|tenant_sent)'
  vpipe top --url http://%[1]s/metrics
  vpipe tap --brokers %[2]s --from-beginning vpipe.audit    # every action vpipe took, and why
  logger --rfc5424 -n 127.0.0.1 -P %[3]d -T hello               # then: vpipe tap --brokers %[2]s vpipe.other
  ls -R %[4]s
`, httpAddr, d.p.brokers[0], d.p.listeners[0].Addr().(*net.TCPAddr).Port, d.sims.dir)
}
