package jitaccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vpipe/vpipe/pipeline/vcenter"
)

// VM is a vCenter virtual machine: its name, its instance UUID
// (config.instanceUuid, NSX's external_id; apis.md §1.1) and its managed
// object reference.
type VM struct {
	Name         string
	InstanceUUID string
	Ref          string // e.g. "vm-42"
}

// Finder finds virtual machines in vCenter. Implementations are safe for
// concurrent use; their errors are retryable unless they say otherwise
// (pipeline.ErrPermanent).
type Finder interface {
	// ByName returns every VM whose name is exactly name (vCenter allows
	// one name in several folders and datacenters), in no order.
	ByName(ctx context.Context, name string) ([]VM, error)
	// ByInstanceUUID returns the VM whose instance UUID is uuid (lower
	// case), and false when there is none.
	ByInstanceUUID(ctx context.Context, uuid string) (VM, bool, error)
}

// VCenter is a Finder backed by govmomi: names through a container view
// of every VirtualMachine, instance UUIDs through the SearchIndex
// (FindByUuid with instanceUuid=true). A session that vCenter no longer
// accepts (NotAuthenticated: idle timeout, vCenter restart) is created
// again once per call when the VCenter has credentials.
type VCenter struct {
	c    *vim25.Client
	user *url.Userinfo // nil: the session is the caller's to keep
	log  *slog.Logger

	mu sync.Mutex // serialises re-login
}

// NewVCenter returns a Finder on an already logged-in client (vcsim's
// simulator.Test gives one). It does not log in again when the session
// ends.
func NewVCenter(c *vim25.Client) *VCenter {
	return &VCenter{c: c, log: slog.New(slog.DiscardHandler)}
}

// DialVCenter connects to vCenter (vcenter.NewClient) and logs in. log nil
// discards.
func DialVCenter(ctx context.Context, cfg vcenter.ConnConfig, log *slog.Logger) (*VCenter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := vcenter.NewClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	u := c.URL()
	if cfg.Insecure {
		log.Warn("TLS certificate verification of vCenter is off (insecure)", "component", "vcenter", "url", u.Host)
	}
	v := &VCenter{c: c, user: url.UserPassword(cfg.Username, cfg.Password), log: log.With("component", "vcenter")}
	if err := session.NewManager(c).Login(ctx, v.user); err != nil {
		return nil, fmt.Errorf("vcenter %s: login: %w", u.Host, err)
	}
	return v, nil
}

// Logout ends the session when the VCenter logged in itself.
func (v *VCenter) Logout(ctx context.Context) error {
	if v.user == nil {
		return nil
	}
	return session.NewManager(v.c).Logout(ctx)
}

// ByName implements Finder.
func (v *VCenter) ByName(ctx context.Context, name string) ([]VM, error) {
	var out []VM
	err := v.retry(ctx, func() error {
		out = nil
		m := view.NewManager(v.c)
		cv, err := m.CreateContainerView(ctx, v.c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
		if err != nil {
			return err
		}
		defer cv.Destroy(context.WithoutCancel(ctx))
		// A function matches exactly: a plain string would be a glob.
		refs, err := cv.Find(ctx, []string{"VirtualMachine"}, property.Match{"name": func(val any) bool {
			s, ok := val.(string)
			return ok && s == name
		}})
		if err != nil || len(refs) == 0 {
			return err
		}
		var vms []mo.VirtualMachine
		if err := property.DefaultCollector(v.c).Retrieve(ctx, refs, []string{"name", "config.instanceUuid"}, &vms); err != nil {
			return err
		}
		for _, vm := range vms {
			out = append(out, toVM(vm))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find vm %q in vcenter: %w", name, err)
	}
	return out, nil
}

// ByInstanceUUID implements Finder.
func (v *VCenter) ByInstanceUUID(ctx context.Context, uuid string) (VM, bool, error) {
	var out VM
	found := false
	err := v.retry(ctx, func() error {
		ref, err := object.NewSearchIndex(v.c).FindByUuid(ctx, nil, strings.ToLower(uuid), true, types.NewBool(true))
		if err != nil || ref == nil {
			return err
		}
		var vm mo.VirtualMachine
		if err := property.DefaultCollector(v.c).RetrieveOne(ctx, ref.Reference(), []string{"name", "config.instanceUuid"}, &vm); err != nil {
			if fault.Is(err, &types.ManagedObjectNotFound{}) {
				return nil // deleted meanwhile
			}
			return err
		}
		out, found = toVM(vm), true
		return nil
	})
	if err != nil {
		return VM{}, false, fmt.Errorf("find vm by instance uuid %s in vcenter: %w", uuid, err)
	}
	return out, found, nil
}

func toVM(vm mo.VirtualMachine) VM {
	r := VM{Name: vm.Name, Ref: vm.Self.Value}
	if vm.Config != nil {
		r.InstanceUUID = strings.ToLower(vm.Config.InstanceUuid)
	}
	return r
}

// retry runs fn, and once more after logging in again when vCenter says
// the session is gone.
func (v *VCenter) retry(ctx context.Context, fn func() error) error {
	err := fn()
	if err == nil || v.user == nil || !fault.Is(err, &types.NotAuthenticated{}) {
		return err
	}
	v.mu.Lock()
	lerr := session.NewManager(v.c).Login(ctx, v.user)
	v.mu.Unlock()
	if lerr != nil {
		return errors.Join(err, fmt.Errorf("login again: %w", lerr))
	}
	v.log.Info("vcenter session renewed")
	return fn()
}

// VCenterDialer is a Finder that connects on first use, and again after a
// failed connection, so that a process starts while vCenter is away: the
// stage then retries (stalls) until it is back. Safe for concurrent use.
type VCenterDialer struct {
	cfg vcenter.ConnConfig
	log *slog.Logger

	mu sync.Mutex
	v  *VCenter
}

// NewVCenterDialer returns a Finder for cfg that does not connect yet.
func NewVCenterDialer(cfg vcenter.ConnConfig, log *slog.Logger) *VCenterDialer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &VCenterDialer{cfg: cfg, log: log}
}

func (d *VCenterDialer) get(ctx context.Context) (*VCenter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.v != nil {
		return d.v, nil
	}
	v, err := DialVCenter(ctx, d.cfg, d.log)
	if err != nil {
		return nil, err
	}
	d.log.Info("connected to vcenter", "component", "vcenter", "url", d.cfg.URL)
	d.v = v
	return v, nil
}

// ByName implements Finder.
func (d *VCenterDialer) ByName(ctx context.Context, name string) ([]VM, error) {
	v, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	return v.ByName(ctx, name)
}

// ByInstanceUUID implements Finder.
func (d *VCenterDialer) ByInstanceUUID(ctx context.Context, uuid string) (VM, bool, error) {
	v, err := d.get(ctx)
	if err != nil {
		return VM{}, false, err
	}
	return v.ByInstanceUUID(ctx, uuid)
}

// Logout ends the session, if one was made.
func (d *VCenterDialer) Logout(ctx context.Context) error {
	d.mu.Lock()
	v := d.v
	d.v = nil
	d.mu.Unlock()
	if v == nil {
		return nil
	}
	return v.Logout(ctx)
}
