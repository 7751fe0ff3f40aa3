package jitaccess

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vpipe/vpipe/pipeline/vcenter"
)

// TestVCenterLogsInAgain: when vCenter ends the session (idle timeout,
// restart), the next lookup logs in again and succeeds.
func TestVCenterLogsInAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	model := simulator.VPX()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	defer model.Remove()
	srv := model.Service.NewServer()
	defer srv.Close()
	u := *srv.URL
	u.User = nil

	// Nothing listens yet where the dialer first looks: it fails, and
	// connects on a later call once the address is right.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/sdk"
	ln.Close()
	d := NewVCenterDialer(vcenter.ConnConfig{URL: dead, Username: "user", Password: "pass"}, nil)
	if _, err := d.ByName(ctx, "DC0_H0_VM0"); err == nil {
		t.Fatal("a vCenter that is not there answered")
	}
	d.cfg.URL = u.String()
	vms, err := d.ByName(ctx, "DC0_H0_VM0")
	if err != nil || len(vms) != 1 || vms[0].InstanceUUID == "" || vms[0].Ref == "" {
		t.Fatalf("ByName = %+v, %v", vms, err)
	}

	if err := session.NewManager(d.v.c).Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewVCenter(d.v.c).ByInstanceUUID(ctx, vms[0].InstanceUUID); err == nil {
		t.Fatal("the session did not end: the test proves nothing")
	}
	got, found, err := d.ByInstanceUUID(ctx, vms[0].InstanceUUID)
	if err != nil || !found || got != vms[0] {
		t.Fatalf("after the session ended: %+v, %v, %v", got, found, err)
	}
	if err := d.Logout(ctx); err != nil {
		t.Error(err)
	}
}

func TestVCenterLookups(t *testing.T) {
	simulator.Test(func(ctx context.Context, c *vim25.Client) {
		v := NewVCenter(c)
		for _, tc := range []struct {
			name string
			want int
		}{
			{"DC0_H0_VM0", 1},
			{"DC0_H0_VM*", 0}, // a name, not a pattern
			{"dc0_h0_vm0", 0}, // names are case-sensitive
			{"nosuchvm", 0},
		} {
			vms, err := v.ByName(ctx, tc.name)
			if err != nil || len(vms) != tc.want {
				t.Errorf("ByName(%q) = %d VMs, %v; want %d", tc.name, len(vms), err, tc.want)
			}
		}
		if _, found, err := v.ByInstanceUUID(ctx, "00000000-0000-0000-0000-000000000000"); found || err != nil {
			t.Errorf("unknown uuid: found %v, %v", found, err)
		}
	})
}
