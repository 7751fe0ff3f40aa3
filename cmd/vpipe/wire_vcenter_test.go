package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/vcenter/vcentertest"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
)

// tagSyncRig is vcsim and the NSX simulator over HTTPS, each with its CA
// in a file, and the NSX simulator holding vcsim's VMs.
type tagSyncRig struct {
	sim   *vcentertest.Sim
	nsx   *nsxsim.Server
	nsxCA string
	url   string
	vms   []mo.VirtualMachine
	tm    *tags.Manager
	dir   string
}

func newTagSyncRig(t *testing.T) *tagSyncRig {
	t.Helper()
	r := &tagSyncRig{dir: t.TempDir()}
	r.sim = vcentertest.Start(t, nil)
	vc := r.sim.Dial(t)
	r.tm = tags.NewManager(vc.REST)
	ctx := context.Background()
	cv, err := view.NewManager(vc.VIM).CreateContainerView(ctx, vc.VIM.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err == nil {
		err = cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.instanceUuid"}, &r.vms)
	}
	if err != nil || len(r.vms) < 2 {
		t.Fatalf("vcsim vms: %d, %v", len(r.vms), err)
	}
	slices.SortFunc(r.vms, func(a, b mo.VirtualMachine) int { return strings.Compare(a.Name, b.Name) })
	r.nsx = nsxsim.New(nsxsim.Options{Users: map[string]string{"vpipe-tagsync": "nsx-pw"}})
	for _, vm := range r.vms {
		r.nsx.AddVM(nsxsim.VM{ExternalID: vm.Config.InstanceUuid, DisplayName: vm.Name, Tags: []nsxsim.Tag{{Scope: "owner", Tag: "alice"}}})
	}
	srv := httptest.NewUnstartedServer(r.nsx)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	r.url = srv.URL
	r.nsxCA = filepath.Join(r.dir, "nsx-ca.pem")
	if err := os.WriteFile(r.nsxCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VPIPE_TEST_VC_PW", vcentertest.Password)
	t.Setenv("VPIPE_TEST_NSX_PW", "nsx-pw")
	return r
}

// attach attaches security/name to VM i in vcsim, and with event posts
// the tagging event.
func (r *tagSyncRig) attach(t *testing.T, i int, name string, event bool) {
	t.Helper()
	vc := r.sim.Dial(t)
	id := vcentertest.Tagging(t, vc, "security", name)
	if err := tags.NewManager(vc.REST).AttachTag(context.Background(), id, r.vms[i].Self); err != nil {
		t.Fatal(err)
	}
	if event {
		r.sim.Post(`VSPHERE.LOCAL\alice`, vcentertest.TagEvent(true, name, r.vms[i].Name, `VSPHERE.LOCAL\alice`))
	}
}

func (r *tagSyncRig) has(i int, tag nsxsim.Tag) bool {
	vm, _ := r.nsx.VM(r.vms[i].Config.InstanceUuid)
	return slices.Contains(vm.Tags, tag)
}

// yaml is the configuration of both as a file.
func (r *tagSyncRig) yaml(t *testing.T, extra string) string {
	t.Helper()
	y := fmt.Sprintf(`kafka:
  embedded: {listen: "127.0.0.1:0", data_dir: %q}
syslog: []
http: {address: "127.0.0.1:0"}
sources:
  vcenter:
    - name: vc1
      url: %s
      username: %s
      password_env: VPIPE_TEST_VC_PW
      tls: {ca_file: %s}
      poll_interval: 50ms
      max_backoff: 1s
stages:
  tag_sync:
    vcenter: vc1
    categories: {security: sec}
    reconcile_interval: 1h
    nsx:
      url: %s
      auth: session
      username: vpipe-tagsync
      password_env: VPIPE_TEST_NSX_PW
      tls: {ca_file: %s}
%s`, filepath.Join(r.dir, "data"), r.sim.Conn.URL, vcentertest.Username, r.sim.Conn.CAFile, r.url, r.nsxCA, extra)
	f := filepath.Join(r.dir, "vpipe.yaml")
	if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestTagSyncWiring runs vpipe with the vcenter and tag-sync roles: the
// reconciliation at start applies a tag attached while vpipe was down, and
// a tag attached later (with its event) reaches NSX through Kafka.
func TestTagSyncWiring(t *testing.T) {
	r := newTagSyncRig(t)
	r.attach(t, 0, "missed", false) // before vpipe runs, no event
	cfg, err := config.Load(r.yaml(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	run := startVpipeRoles(t, cfg, map[string]bool{roleVCenter: true, roleTagSync: true})
	wait := func(i int, tag nsxsim.Tag) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !r.has(i, tag) {
			if time.Now().After(deadline) {
				t.Fatalf("NSX VM %s lacks %v; logs:\n%s", r.vms[i].Name, tag, run.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait(0, nsxsim.Tag{Scope: "sec", Tag: "missed"})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(run.logs.String(), "reading vcenter events") {
		if time.Now().After(deadline) {
			t.Fatalf("the vCenter poller did not start; logs:\n%s", run.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.attach(t, 1, "pci", true)
	wait(1, nsxsim.Tag{Scope: "sec", Tag: "pci"})
	if !r.has(1, nsxsim.Tag{Scope: "owner", Tag: "alice"}) {
		t.Error("the unmanaged NSX tag was removed")
	}
}

// TestTagSyncDryRun runs `vpipe tagsync --dry-run`: the plan is printed,
// NSX is not changed.
func TestTagSyncDryRun(t *testing.T) {
	r := newTagSyncRig(t)
	r.attach(t, 0, "pci", false)
	f := r.yaml(t, "")
	writes := r.nsx.Stats().TagWrites
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := runMain(ctx, []string{"tagsync", "--dry-run", "-c", f}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "INSTANCE UUID") || !strings.Contains(out, r.vms[0].Name) ||
		!strings.Contains(out, r.vms[0].Config.InstanceUuid) || !strings.Contains(out, "sec|pci") {
		t.Errorf("plan:\n%s", out)
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 1 {
		t.Errorf("plan has %d VM lines; want 1:\n%s", n, out)
	}
	if !strings.Contains(stderr.String(), "1 to change") {
		t.Errorf("summary: %s", stderr.String())
	}
	if r.nsx.Stats().TagWrites != writes || r.has(0, nsxsim.Tag{Scope: "sec", Tag: "pci"}) {
		t.Error("the dry run changed NSX")
	}
	for _, args := range [][]string{{"tagsync", "-c", f}, {"tagsync", "--dry-run"}} {
		stdout.Reset()
		stderr.Reset()
		if code := runMain(ctx, args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d; want 2 (usage)", args, code)
		}
	}
}
