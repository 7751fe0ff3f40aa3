//go:build !nodemo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	vcosim "github.com/vpipe/vpipe/pipeline/velocloud/simulator"
	"github.com/vpipe/vpipe/sinks/ndjson"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
)

var updateDemo = flag.Bool("update-demo", false, "rewrite testdata/demo/vpipe-demo.yaml")

// TestDemo runs `vpipe demo` and checks its report, and each workflow's
// result in the simulators' own state (not through vpipe's clients).
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	var dir string
	inspected := false
	demoHooks.after = func(d *demoRun) {
		inspected = true
		dir = d.sims.dir
		checkDemoState(t, d)
	}
	defer func() { demoHooks.after = nil }()
	var stdout, stderr bytes.Buffer
	began := time.Now()
	code := runMain(ctx, []string{"demo", "--timeout", "40s"}, &stdout, &stderr)
	out := stdout.String()
	t.Logf("vpipe demo took %s:\n%s", time.Since(began).Round(time.Millisecond), out)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if !inspected {
		t.Fatal("the workflows' state was not inspected")
	}
	for _, want := range []string{
		"1/5 vCenter tag → NSX tag [tag-sync]: ok in ",
		"has tags owner|team-web, zone|pci",
		`vpipe_tagsync_vm_syncs_total{cause="event",result="changed"} 1`,
		"2/5 firewall logs to each tenant [tenant-forward]: ok in ",
		"8 with acme's labels, 2 with globex's, 1 with a label of no tenant",
		"acme's syslog server 127.0.0.1:", "received 8 lines, all its own",
		"globex's syslog server 127.0.0.1:", "received 2 lines, all its own",
		"the provider's catch-all 127.0.0.1:",
		"3/5 help desk ticket → just-in-time SSH [jit-access]: ok in ",
		"invoker posted TicketLockUpdate to vpipe (202)",
		"NSX: VM jump-01 got tag jit|ssh ", "NSX: tag removed ",
		"4/5 quarantine → snapshot and port mirror [nsx-groups + forensics]: ok in ",
		`vcsim: snapshot "vpipe-forensics Quarantine `,
		`vcsim: port mirror session "vpipe:app-01:`, "ports 10, 11, both directions → 192.0.2.10 (gre)",
		"5/5 VCO events → a file per enterprise [velocloud + ndjson]: ok in ",
		"3 events for Acme Corp and 2 events for Globex",
		filepath.Join("events", ndjson.Sanitize("Acme Corp"), "events.json") + ": 3 lines",
		filepath.Join("events", "Globex", "events.json") + ": 2 lines",
		"All 5 workflows worked",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`the provider's catch-all \S+ received 1 line\n`).FindString(out); m == "" {
		t.Error("the report does not say that the catch-all received 1 line")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the temporary data directory %s is still there: %v", dir, err)
	}
}

// checkDemoState checks the simulators after the workflows.
func checkDemoState(t *testing.T, d *demoRun) {
	t.Helper()
	s := d.sims
	nsxTags := func(name string) []nsxsim.Tag {
		vm, _ := s.nsx.VM(s.vms[name].UUID)
		return vm.Tags
	}
	owner := func(team string) nsxsim.Tag { return nsxsim.Tag{Scope: "owner", Tag: team} }
	// 1. tag-sync: the mapped tag, and the VM's own tag kept.
	if got := nsxTags(demoVMTagged); !slices.Equal(got, []nsxsim.Tag{owner("team-web"), {Scope: "zone", Tag: "pci"}}) {
		t.Errorf("NSX tags of %s: %v", demoVMTagged, got)
	}
	// 2. tenant-forward: each receiver got exactly its lines.
	for who, n := range map[string]int{"acme": 8, "globex": 2, "provider": 1} {
		frames := s.syslog[who].got()
		if len(frames) != n {
			t.Errorf("%s received %d frames, want %d", who, len(frames), n)
		}
		for _, f := range frames {
			tenant := regexp.MustCompile(`tenant="([^"]*)"`).FindStringSubmatch(f)
			switch {
			case who == "provider" && (tenant != nil || !strings.HasSuffix(f, "ffffffff-fnobodfffff")):
				t.Errorf("the catch-all received %q", f)
			case who != "provider" && (tenant == nil || tenant[1] != who):
				t.Errorf("%s received %q", who, f)
			}
		}
	}
	// 3. jit-access: both webhooks accepted, the tag gone again.
	inv := s.zn.Invocations()
	if len(inv) != 2 || inv[0].Status != 202 || inv[1].Status != 202 {
		t.Errorf("znuny invocations: %+v", inv)
	}
	if got := nsxTags(demoVMJIT); !slices.Equal(got, []nsxsim.Tag{owner("team-jump")}) {
		t.Errorf("NSX tags of %s: %v", demoVMJIT, got)
	}
	// 4. forensics: in vcsim's own objects, one snapshot of the VM and one
	// VSPAN session mirroring its two ports.
	q := s.vms[demoVMQuarantine]
	s.vcModel.Service.Context.WithLock(s.vcModel.Map().Get(q.Ref), func() {
		vm := s.vcModel.Map().Get(q.Ref).(*simulator.VirtualMachine)
		if vm.Snapshot == nil || len(vm.Snapshot.RootSnapshotList) != 1 ||
			!strings.HasPrefix(vm.Snapshot.RootSnapshotList[0].Name, "vpipe-forensics Quarantine ") {
			t.Errorf("snapshots of %s: %+v", q.Name, vm.Snapshot)
		}
	})
	var sessions []types.VMwareVspanSession
	for _, e := range s.vcModel.Map().All("DistributedVirtualSwitch") {
		sw := e.(*simulator.DistributedVirtualSwitch)
		s.vcModel.Service.Context.WithLock(sw, func() {
			if c, ok := sw.Config.(*types.VMwareDVSConfigInfo); ok {
				sessions = append(sessions, c.VspanSession...)
			}
		})
	}
	if len(sessions) != 1 || !strings.Contains(sessions[0].Name, q.UUID) || sessions[0].SourcePortReceived == nil ||
		!slices.Equal(slices.Sorted(slices.Values(sessions[0].SourcePortReceived.PortKey)), []string{"10", "11"}) {
		t.Errorf("VSPAN sessions: %+v", sessions)
	}
	// 5. ndjson: each enterprise's file holds exactly its VCO events.
	for _, e := range s.vco.Enterprises() {
		var want []int64
		for _, ev := range s.vco.Events(e.ID) {
			want = append(want, ev.ID)
		}
		var got []int64
		b, err := os.ReadFile(filepath.Join(s.dir, "events", ndjson.Sanitize(e.Name), "events.json"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			var v struct{ ID int64 }
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Errorf("%s: %v", e.Name, err)
			}
			got = append(got, v.ID)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: file has events %v, the VCO %v", e.Name, got, want)
		}
	}
}

// TestDemoFailure: a workflow that does not work makes the exit status 1,
// with the reason, and the data directory is kept.
func TestDemoFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	demoHooks.before = func(d *demoRun) {
		d.sims.vco.Fail(vcosim.Failure{Kind: vcosim.FailServer, Count: 1 << 20})
	}
	defer func() { demoHooks.before = nil }()
	dir := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr bytes.Buffer
	code := runMain(ctx, []string{"demo", "--timeout", "5s", "--data-dir", dir}, &stdout, &stderr)
	out := stdout.String()
	t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
	if code != 1 {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	for _, want := range []string{
		"5/5 VCO events → a file per enterprise [velocloud + ndjson]: FAILED",
		"error:  timed out after 5s waiting for every event in its enterprise's file",
		"log:    ", "http 500", // the source's warning, from the pipeline's log
		"The configuration, the log and the data are kept in " + dir,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if want := "5 velocloud + ndjson: timed out after 5s"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "vpipe.log")); err != nil {
		t.Error(err)
	}
}

// TestDemoUsage: --help explains, mistakes are usage errors, a data
// directory in use is refused.
func TestDemoUsage(t *testing.T) {
	used := t.TempDir()
	os.WriteFile(filepath.Join(used, "x"), nil, 0o600)
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"demo", "--help"}, 0, "--keep"},
		{[]string{"demo", "extra"}, 2, "vpipe demo [--keep]"},
		{[]string{"demo", "--timeout", "0s"}, 2, "vpipe demo [--keep]"},
		{[]string{"demo", "--data-dir", used}, 1, "is not empty"},
	} {
		code, _, stderr := runCLI(tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
	if _, out, _ := runCLI("help"); !strings.Contains(out, "vpipe demo") {
		t.Error("the usage does not list demo")
	}
}

// TestDemoConfig: testdata/demo/vpipe-demo.yaml shows the demo
// configuration (-update-demo rewrites it). TestDemo runs it, through
// config.Load as `vpipe run -c` does.
func TestDemoConfig(t *testing.T) {
	y, err := renderDemoConfig(demoAddrs{
		DataDir: "/tmp/vpipe-demo", Secrets: "/tmp/vpipe-demo/secrets",
		VCenter: "https://127.0.0.1:8989/sdk", VCenterCA: "/tmp/vpipe-demo/vcsim-ca.pem",
		NSX: "https://127.0.0.1:8443", NSXCA: "/tmp/vpipe-demo/nsx-ca.pem",
		VCO: "http://127.0.0.1:8081", VCD: "http://127.0.0.1:8082",
		Znuny: "http://127.0.0.1:8083/otrs/nph-genericinterface.pl/Webservice/GenericTicketConnectorREST",
		Acme:  "127.0.0.1:6514", Globex: "127.0.0.1:6515", Provider: "127.0.0.1:1514",
	})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("..", "..", "testdata", "demo", "vpipe-demo.yaml")
	if *updateDemo {
		if err := os.WriteFile(golden, y, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(y, want) {
		t.Errorf("%s is not the demo configuration; run go test ./cmd/vpipe -run DemoConfig -update-demo", golden)
	}
}
