package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/vpipe/vpipe/parsers/ticket"
	"github.com/vpipe/vpipe/pipeline/config"
	znsim "github.com/vpipe/vpipe/pipeline/znuny/simulator"
	"github.com/vpipe/vpipe/sinks/jitaccess"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
)

// setJIT puts j in cfg's stages.jit_access; false while config.Stages has
// no such field yet.
func setJIT(cfg *config.Config, j *config.JITAccessStage) bool {
	f := reflect.ValueOf(&cfg.Stages).Elem().FieldByName("JITAccess")
	if !f.IsValid() {
		return false
	}
	f.Set(reflect.ValueOf(j))
	return true
}

// TestJITWiring runs vpipe with the ingest and jit-access roles against
// vcsim and the NSX and Znuny simulators: a signed ticket webhook for a
// locked ticket tags the VM, one for the unlocked ticket untags it, an
// unsigned one is refused.
func TestJITWiring(t *testing.T) {
	if !slices.Contains(knownRoles, roleJITAccess) {
		t.Skip("the jit-access role is not wired into run.go yet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	defer model.Remove()
	vcs := model.Service.NewServer()
	defer vcs.Close()
	c, err := govmomi.NewClient(ctx, vcs.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	var vms []mo.VirtualMachine
	cv, err := view.NewManager(c.Client).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err == nil {
		err = cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.instanceUuid"}, &vms)
	}
	if err != nil || len(vms) == 0 {
		t.Fatalf("vcsim vms: %v", err)
	}
	task, err := object.NewVirtualMachine(c.Client, vms[0].Self).Rename(ctx, "web01")
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	uuid := vms[0].Config.InstanceUuid

	nsxSim := nsxsim.New(nsxsim.Options{Users: map[string]string{"admin": "nsx-pw"}})
	nsxSim.AddVM(nsxsim.VM{ExternalID: uuid, DisplayName: "web01", Tags: []nsxsim.Tag{{Scope: "owner", Tag: "alice"}}})
	nsxSrv := httptest.NewServer(nsxSim)
	defer nsxSrv.Close()
	zn := znsim.New(znsim.Options{Users: map[string]string{"vpipe": "zn-pw"}})
	znSrv := httptest.NewServer(zn)
	defer znSrv.Close()
	id, _ := zn.CreateTicket(znsim.NewTicket{DynamicFields: map[string]any{"JITAccessVM": "web01"}})

	t.Setenv("JIT_ZNUNY_PW", "zn-pw")
	t.Setenv("JIT_VC_PW", "pass")
	t.Setenv("JIT_NSX_PW", "nsx-pw")
	t.Setenv("JIT_HMAC", "hmac-secret")
	vcURL := *vcs.URL
	vcURL.User = nil
	cfg := testConfig(t.TempDir())
	if !setJIT(cfg, &config.JITAccessStage{
		Field: "JITAccessVM", Tag: config.JITTag{Scope: "jit", Tag: "ssh"},
		// What fillJIT would set, as config.Default has run already.
		MaxDuration: config.Duration(time.Hour), ReconcileInterval: config.Duration(time.Hour),
		SearchLimit: 100, GroupID: "vpipe-jit-access",
		Znuny: config.Znuny{URL: znSrv.URL + zn.BasePath(), Auth: "session", Username: "vpipe", PasswordEnv: "JIT_ZNUNY_PW",
			Timeout: config.Duration(10 * time.Second)},
		VCenter: config.JITVCenter{URL: vcURL.String(), Username: "user", PasswordEnv: "JIT_VC_PW"},
		NSX:     config.JITNSX{URL: nsxSrv.URL, API: "policy", Auth: "basic", Username: "admin", PasswordEnv: "JIT_NSX_PW"},
		Webhook: config.JITWebhook{HMACSecretEnv: "JIT_HMAC", SignatureHeader: ticket.DefaultSignatureHeader},
	}) {
		t.Skip("config.Stages has no JITAccess field yet")
	}
	r := startVpipeRoles(t, cfg, map[string]bool{roleIngest: true, roleJITAccess: true})

	post := func(body string, signed bool) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, r.http()+"/v1/webhooks/ticket", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if signed {
			req.Header.Set(ticket.DefaultSignatureHeader, ticket.Sign([]byte("hmac-secret"), []byte(body)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tagged := func() bool {
		vm, _ := nsxSim.VM(uuid)
		return slices.Contains(vm.Tags, nsxsim.Tag{Scope: "jit", Tag: "ssh"})
	}
	waitTagged := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for tagged() != want {
			if time.Now().After(deadline) {
				t.Fatalf("tagged = %v after 30s; logs:\n%s", !want, r.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	body := `{"TicketID":"` + id + `"}`
	if code := post(body, false); code != http.StatusUnauthorized {
		t.Fatalf("unsigned webhook: %d", code)
	}
	if _, err := zn.Lock(ctx, id, "agent1"); err != nil {
		t.Fatal(err)
	}
	if code := post(body, true); code != http.StatusAccepted {
		t.Fatalf("signed webhook: %d", code)
	}
	waitTagged(true)
	if _, err := zn.Unlock(ctx, id); err != nil {
		t.Fatal(err)
	}
	if code := post(body, true); code != http.StatusAccepted {
		t.Fatalf("signed webhook: %d", code)
	}
	waitTagged(false)
	if vm, _ := nsxSim.VM(uuid); !slices.Contains(vm.Tags, nsxsim.Tag{Scope: "owner", Tag: "alice"}) {
		t.Fatalf("the VM lost its other tag: %v", vm.Tags)
	}
	if !strings.Contains(r.logs.String(), jitaccess.ActionRevoke) {
		t.Errorf("no revoke decision logged:\n%s", r.logs)
	}
}
