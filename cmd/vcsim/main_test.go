package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/event"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/cmd/internal/simcmd"
)

// TestServe starts the command, then checks through the vSphere and vAPI
// clients, trusting only the CA file it wrote, what it promises: every
// VM's vNICs bound to distinct ports of DC0_DVPG0, tagging, and a tagging
// EventEx posted without an entity (which upstream vcsim panics on).
func TestServe(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-username", "u@vsphere.local", "-password", "pw", "-ca-out", ca, "-nics", "2"}, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	lines := bufio.NewScanner(pr)
	var serving struct{ Msg, URL string }
	for lines.Scan() {
		if json.Unmarshal(lines.Bytes(), &serving) == nil && serving.Msg == "vcsim serving" {
			break
		}
	}
	if serving.URL == "" {
		t.Fatalf("no serving line: %v", lines.Err())
	}
	go io.Copy(io.Discard, pr)

	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	u, _ := url.Parse(serving.URL)
	sc := soap.NewClient(u, false)
	if err := sc.SetRootCAs(ca); err != nil {
		t.Fatal(err)
	}
	if _, err := govmomi.NewClient(ctx2, u, false); err == nil {
		t.Fatal("connected trusting only the system roots")
	}
	u.User = url.UserPassword("u@vsphere.local", "pw")
	vc, err := vim25.NewClient(ctx2, sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := session.NewManager(vc).Login(ctx2, u.User); err != nil {
		t.Fatal(err)
	}

	cv, err := view.NewManager(vc).CreateContainerView(ctx2, vc.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var vms []mo.VirtualMachine
	if err := cv.Retrieve(ctx2, []string{"VirtualMachine"}, []string{"name", "config.hardware.device"}, &vms); err != nil {
		t.Fatal(err)
	}
	if len(vms) != 4 {
		t.Fatalf("%d VMs, want 4", len(vms))
	}
	ports := map[string]string{}
	for _, vm := range vms {
		n := 0
		for _, d := range vm.Config.Hardware.Device {
			nic, ok := d.(types.BaseVirtualEthernetCard)
			if !ok {
				continue
			}
			b, ok := nic.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
			if !ok || b.Port.PortKey == "" {
				t.Errorf("%s: vNIC not bound to a port: %#v", vm.Name, nic.GetVirtualEthernetCard().Backing)
				continue
			}
			if other, dup := ports[b.Port.PortKey]; dup {
				t.Errorf("port %s bound to %s and %s", b.Port.PortKey, other, vm.Name)
			}
			ports[b.Port.PortKey] = vm.Name
			n++
		}
		if n != 2 {
			t.Errorf("%s has %d bound vNICs, want 2", vm.Name, n)
		}
	}

	rc := rest.NewClient(vc)
	if err := rc.Login(ctx2, u.User); err != nil {
		t.Fatal(err)
	}
	tm := tags.NewManager(rc)
	if _, err := tm.CreateCategory(ctx2, &tags.Category{Name: "zone", Cardinality: "SINGLE"}); err != nil {
		t.Fatalf("vAPI tagging: %v", err)
	}
	err = event.NewManager(vc).PostEvent(ctx2, &types.EventEx{EventTypeId: "com.vmware.cis.tagging.attach"})
	if err != nil {
		t.Fatalf("post a tagging EventEx: %v", err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-nics", "-1"}, {"positional"}} {
		if err := run(context.Background(), args, io.Discard); !errors.Is(err, simcmd.ErrUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
