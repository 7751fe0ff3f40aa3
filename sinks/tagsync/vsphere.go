package tagsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline/vcenter"
)

// VM is a vCenter VM as tag sync knows it.
type VM struct {
	Ref          string // managed object id, "vm-42"
	Name         string
	InstanceUUID string // config.instanceUuid: NSX's external_id
}

// vmTags is a VM with its vSphere tags.
type vmTags struct {
	VM
	Tags []VTag
}

// vsphere reads VMs and their tags from one vCenter: the VMs through the
// property collector (a container view of the whole inventory), the tags
// through the vAPI tagging service (govmomi vapi/tags: ListAttachedTags,
// ListAttachedTagsOnObjects, GetTags, GetCategories; apis.md §3). It logs
// in lazily and again after a failed call. Safe for concurrent use.
type vsphere struct {
	cfg vcenter.ConnConfig

	connMu sync.Mutex
	conn   *vcenter.Conn

	// The VM name index, for events that name their object only.
	idxMu   sync.Mutex
	byName  map[string][]string // name → refs
	idxTime time.Time

	// Tag and category names by id.
	tagMu   sync.Mutex
	tagName map[string]tagInfo
	catName map[string]string
	tagTime time.Time
}

type tagInfo struct{ name, category string }

// tagCacheTTL bounds how long renamed tags or categories keep their old
// names on the event path (a reconciliation refreshes them too).
const tagCacheTTL = 5 * time.Minute

// indexMinAge is the margin by which the VM name index must postdate an
// event for the index to answer for it alone (clocks of vCenter and vpipe
// differ a little).
const indexMinAge = 2 * time.Second

func newVSphere(cfg vcenter.ConnConfig) *vsphere {
	return &vsphere{cfg: cfg}
}

// call runs f with a logged-in connection; when f fails in a way a new
// session may cure (session expired, connection lost), it logs in again
// and runs f once more.
func (v *vsphere) call(ctx context.Context, f func(*vcenter.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := v.connect(ctx)
		if err != nil {
			return err
		}
		err = f(c)
		if err == nil || attempt > 0 || !sessionLost(err) || ctx.Err() != nil {
			return err
		}
		v.drop(c)
	}
}

func (v *vsphere) connect(ctx context.Context) (*vcenter.Conn, error) {
	v.connMu.Lock()
	defer v.connMu.Unlock()
	if v.conn != nil {
		return v.conn, nil
	}
	c, err := vcenter.Dial(ctx, v.cfg, true)
	if err != nil {
		return nil, err
	}
	v.conn = c
	return c, nil
}

// drop forgets c (if still current) so that the next call logs in.
func (v *vsphere) drop(c *vcenter.Conn) {
	v.connMu.Lock()
	if v.conn == c {
		v.conn = nil
	}
	v.connMu.Unlock()
	go c.Logout(context.Background())
}

func (v *vsphere) close() {
	v.connMu.Lock()
	c := v.conn
	v.conn = nil
	v.connMu.Unlock()
	if c != nil {
		c.Logout(context.Background())
	}
}

// sessionLost reports whether err looks like a lost session or connection.
func sessionLost(err error) bool {
	if rest.IsStatusError(err, http.StatusUnauthorized) || rest.IsStatusError(err, http.StatusForbidden) {
		return true
	}
	if fault.Is(err, &types.NotAuthenticated{}) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// listVMs returns every VM with its name and instance UUID (templates and
// VMs without a config are left out) and refreshes the name index.
func (v *vsphere) listVMs(ctx context.Context) ([]VM, error) {
	var vms []mo.VirtualMachine
	err := v.call(ctx, func(c *vcenter.Conn) error {
		m := view.NewManager(c.VIM)
		cv, err := m.CreateContainerView(ctx, c.VIM.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
		if err != nil {
			return fmt.Errorf("create container view: %w", err)
		}
		defer cv.Destroy(context.WithoutCancel(ctx))
		vms = vms[:0]
		if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.instanceUuid", "config.template"}, &vms); err != nil {
			return fmt.Errorf("list vms: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]VM, 0, len(vms))
	idx := make(map[string][]string, len(vms))
	for _, vm := range vms {
		if vm.Config == nil || vm.Config.Template || vm.Config.InstanceUuid == "" {
			continue
		}
		out = append(out, VM{Ref: vm.Self.Value, Name: vm.Name, InstanceUUID: vm.Config.InstanceUuid})
		idx[vm.Name] = append(idx[vm.Name], vm.Self.Value)
	}
	v.idxMu.Lock()
	v.byName, v.idxTime = idx, time.Now()
	v.idxMu.Unlock()
	return out, nil
}

// vms returns the current name and UUID of the VMs refs (those that still
// exist).
func (v *vsphere) vms(ctx context.Context, refs []string) ([]VM, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	mors := make([]types.ManagedObjectReference, len(refs))
	for i, r := range refs {
		mors[i] = types.ManagedObjectReference{Type: "VirtualMachine", Value: r}
	}
	var out []VM
	err := v.call(ctx, func(c *vcenter.Conn) error {
		out = out[:0]
		for _, ref := range mors {
			// One at a time: a VM deleted meanwhile fails alone.
			var vm mo.VirtualMachine
			err := property.DefaultCollector(c.VIM).RetrieveOne(ctx, ref, []string{"name", "config.instanceUuid", "config.template"}, &vm)
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return fmt.Errorf("read vm %s: %w", ref.Value, err)
			}
			if vm.Config == nil || vm.Config.Template || vm.Config.InstanceUuid == "" {
				continue
			}
			out = append(out, VM{Ref: ref.Value, Name: vm.Name, InstanceUUID: vm.Config.InstanceUuid})
		}
		return nil
	})
	return out, err
}

func isNotFound(err error) bool {
	return fault.Is(err, &types.ManagedObjectNotFound{})
}

// vmsNamed returns the VMs named name now. It looks the name up in the
// index and checks the candidates' current names (a VM may have been
// renamed). It reloads the index (at most once) unless the index holds the
// name accurately and is younger than tagCacheTTL (an older one may miss a
// new VM of the same name), or the index was loaded after since, the time
// of the event that names it: then a name it lacks is not a VM's (a tag
// on a host, a datastore...), and a burst of such events costs one load.
func (v *vsphere) vmsNamed(ctx context.Context, name string, since time.Time) ([]VM, error) {
	for reloaded := false; ; reloaded = true {
		v.idxMu.Lock()
		refs, loaded, have := v.byName[name], v.idxTime, v.byName != nil
		v.idxMu.Unlock()
		var out []VM
		if len(refs) > 0 {
			vms, err := v.vms(ctx, refs)
			if err != nil {
				return nil, err
			}
			for _, vm := range vms {
				if vm.Name == name {
					out = append(out, vm)
				}
			}
		}
		accurate := len(refs) > 0 && len(out) == len(refs)
		switch {
		case reloaded,
			have && accurate && time.Since(loaded) < tagCacheTTL,
			have && !since.IsZero() && loaded.After(since.Add(indexMinAge)):
			return out, nil
		}
		if _, err := v.listVMs(ctx); err != nil {
			return nil, err
		}
	}
}

// tagsOf returns the vSphere tags attached to the VM ref.
func (v *vsphere) tagsOf(ctx context.Context, ref string) ([]VTag, error) {
	var ids []string
	err := v.call(ctx, func(c *vcenter.Conn) error {
		var err error
		ids, err = tags.NewManager(c.REST).ListAttachedTags(ctx, types.ManagedObjectReference{Type: "VirtualMachine", Value: ref})
		if err != nil {
			return fmt.Errorf("list tags of vm %s: %w", ref, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.resolve(ctx, ids)
}

// tagsOfAll returns the tags of every VM in vms, asking vCenter for chunk
// VMs at a time, and refreshes the tag and category names first.
func (v *vsphere) tagsOfAll(ctx context.Context, vms []VM, chunk int) ([]vmTags, error) {
	if err := v.loadTagNames(ctx); err != nil {
		return nil, err
	}
	byRef := make(map[string][]string, len(vms))
	for start := 0; start < len(vms); start += chunk {
		part := vms[start:min(start+chunk, len(vms))]
		refs := make([]mo.Reference, len(part))
		for i, vm := range part {
			refs[i] = types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.Ref}
		}
		err := v.call(ctx, func(c *vcenter.Conn) error {
			res, err := tags.NewManager(c.REST).ListAttachedTagsOnObjects(ctx, refs)
			if err != nil {
				return fmt.Errorf("list attached tags on %d vms: %w", len(refs), err)
			}
			for _, a := range res {
				r := a.ObjectID.Reference()
				byRef[r.Value] = append(byRef[r.Value], a.TagIDs...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]vmTags, len(vms))
	for i, vm := range vms {
		vts, err := v.resolve(ctx, byRef[vm.Ref])
		if err != nil {
			return nil, err
		}
		out[i] = vmTags{VM: vm, Tags: vts}
	}
	return out, nil
}

// resolve turns tag ids into names, from the cache, reloading it when it
// is stale or misses an id.
func (v *vsphere) resolve(ctx context.Context, ids []string) ([]VTag, error) {
	out, ok := v.fromCache(ids)
	if ok {
		return out, nil
	}
	if err := v.loadTagNames(ctx); err != nil {
		return nil, err
	}
	out, _ = v.fromCache(ids) // a tag deleted meanwhile is left out
	return out, nil
}

func (v *vsphere) fromCache(ids []string) ([]VTag, bool) {
	v.tagMu.Lock()
	defer v.tagMu.Unlock()
	if v.tagName == nil || time.Since(v.tagTime) > tagCacheTTL {
		return nil, len(ids) == 0
	}
	out := make([]VTag, 0, len(ids))
	complete := true
	for _, id := range ids {
		ti, ok := v.tagName[id]
		cat, catOK := v.catName[ti.category]
		if !ok || !catOK {
			complete = false
			continue
		}
		out = append(out, VTag{Category: cat, Name: ti.name})
	}
	return out, complete
}

// loadTagNames reads every tag and category.
func (v *vsphere) loadTagNames(ctx context.Context) error {
	var ts []tags.Tag
	var cs []tags.Category
	err := v.call(ctx, func(c *vcenter.Conn) error {
		m := tags.NewManager(c.REST)
		var err error
		if cs, err = m.GetCategories(ctx); err != nil {
			return fmt.Errorf("read tag categories: %w", err)
		}
		if ts, err = m.GetTags(ctx); err != nil {
			return fmt.Errorf("read tags: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	tn := make(map[string]tagInfo, len(ts))
	for _, t := range ts {
		tn[t.ID] = tagInfo{name: t.Name, category: t.CategoryID}
	}
	cn := make(map[string]string, len(cs))
	for _, c := range cs {
		cn[c.ID] = c.Name
	}
	v.tagMu.Lock()
	v.tagName, v.catName, v.tagTime = tn, cn, time.Now()
	v.tagMu.Unlock()
	return nil
}
