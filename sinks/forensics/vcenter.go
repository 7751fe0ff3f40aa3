package forensics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline"
)

// ErrVMNotFound is returned (wrapped; check with errors.Is) when vCenter
// has no VM with the instance UUID asked for. It is permanent: the VM was
// deleted, or it belongs to another vCenter.
var ErrVMNotFound = pipeline.Permanent(errors.New("vm not found in vcenter"))

// The markers vpipe writes into what it creates in vCenter, so that it
// finds them again after a restart (idempotency) and never touches what it
// did not create (retention). They are part of the stage's contract with
// the vCenter inventory: changing them orphans existing snapshots and
// sessions.
const (
	// SnapshotPrefix starts the name of every snapshot vpipe takes.
	SnapshotPrefix = "vpipe-forensics"
	// markerEvent precedes the triggering event id in a snapshot's
	// description, on a line of its own.
	markerEvent = "vpipe-event: "
	// markerGroup precedes the NSX group in a snapshot's description.
	markerGroup = "vpipe-group: "
	// SessionPrefix starts the name of every mirror session vpipe creates:
	// "vpipe:<VM name>:<instance UUID>".
	SessionPrefix = "vpipe:"
	// markerGroups precedes, in a session's description, the NSX groups
	// that keep the session (comma separated): the session goes when the
	// last of them lets the VM go.
	markerGroups = "groups: "
)

// SessionTypeEncapsulatedRemoteMirrorSource is the VSPAN session type
// vpipe creates: distributed ports as sources, an IP address as the
// destination (ERSPAN/GRE to an analyser; "encapRemoteMirrorSource" in the
// vSphere Client). vSphere Web Services API, VMwareDVSVspanSessionType.
const SessionTypeEncapsulatedRemoteMirrorSource = string(types.VMwareDVSVspanSessionTypeEncapsulatedRemoteMirrorSource)

// VCenter performs the forensic actions on one vCenter through govmomi:
// VM snapshots and distributed-switch port-mirroring (VSPAN) sessions.
// Every action looks first for what it would create (by the markers
// above), so repeating it changes nothing. Safe for concurrent use on
// distinct VMs; the caller serialises actions on one VM.
type VCenter struct {
	c *vim25.Client
	// Server names the vCenter in audit events (vmware.vcenter.server).
	Server string
}

// NewVCenter returns a VCenter using c, a logged-in client whose session
// the caller keeps alive (see Dial).
func NewVCenter(c *vim25.Client) *VCenter {
	return &VCenter{c: c, Server: c.URL().Hostname()}
}

// VM is what the forensic actions need of a virtual machine.
type VM struct {
	Ref          types.ManagedObjectReference
	Name         string
	InstanceUUID string
	NICs         []NIC
	// Snapshots is the VM's snapshot tree, flattened.
	Snapshots []types.VirtualMachineSnapshotTree
}

// NIC is one virtual network adapter.
type NIC struct {
	Label string // e.g. "Network adapter 1"
	MAC   string
	// SwitchUUID, PortgroupKey and PortKey locate the adapter's
	// distributed port; SwitchUUID is empty for an adapter on a standard
	// or opaque (N-VDS) network, and PortKey is empty while vCenter has not
	// bound a port (ephemeral binding, disconnected). Only adapters with
	// both can be mirrored.
	SwitchUUID   string
	PortgroupKey string
	PortKey      string
}

// Mirrorable reports whether n has a distributed port a VSPAN session can
// name.
func (n NIC) Mirrorable() bool { return n.SwitchUUID != "" && n.PortKey != "" }

// FindVM returns the VM whose config.instanceUuid (NSX's external_id) is
// uuid, with its adapters and snapshots. errors.Is(err, ErrVMNotFound)
// when vCenter has none.
func (v *VCenter) FindVM(ctx context.Context, uuid string) (*VM, error) {
	instance := true
	ref, err := object.NewSearchIndex(v.c).FindByUuid(ctx, nil, uuid, true, &instance)
	if err != nil {
		return nil, classify(fmt.Errorf("find vm %s: %w", uuid, err))
	}
	if ref == nil {
		return nil, fmt.Errorf("instance uuid %s: %w", uuid, ErrVMNotFound)
	}
	return v.readVM(ctx, ref.Reference(), "instance uuid "+uuid)
}

// FindVMByRef returns the VM with managed object id ref ("vm-42"), for
// NSX-V, which names group members so. errors.Is(err, ErrVMNotFound) when
// vCenter has none.
func (v *VCenter) FindVMByRef(ctx context.Context, ref string) (*VM, error) {
	return v.readVM(ctx, types.ManagedObjectReference{Type: "VirtualMachine", Value: ref}, ref)
}

func (v *VCenter) readVM(ctx context.Context, ref types.ManagedObjectReference, what string) (*VM, error) {
	var m mo.VirtualMachine
	pc := property.DefaultCollector(v.c)
	if err := pc.RetrieveOne(ctx, ref, []string{"name", "config.instanceUuid", "config.hardware.device", "snapshot"}, &m); err != nil {
		if fault.Is(err, &types.ManagedObjectNotFound{}) {
			return nil, fmt.Errorf("%s: %w", what, ErrVMNotFound)
		}
		return nil, classify(fmt.Errorf("read vm %s: %w", ref.Value, err))
	}
	vm := &VM{Ref: m.Self, Name: m.Name}
	if m.Config != nil {
		vm.InstanceUUID = m.Config.InstanceUuid
	}
	if m.Config != nil {
		for _, d := range m.Config.Hardware.Device {
			if nic, ok := d.(types.BaseVirtualEthernetCard); ok {
				vm.NICs = append(vm.NICs, nicOf(nic.GetVirtualEthernetCard()))
			}
		}
	}
	if m.Snapshot != nil {
		vm.Snapshots = flatten(nil, m.Snapshot.RootSnapshotList)
	}
	return vm, nil
}

func nicOf(c *types.VirtualEthernetCard) NIC {
	n := NIC{MAC: c.MacAddress}
	if c.DeviceInfo != nil {
		n.Label = c.DeviceInfo.GetDescription().Label
	}
	if b, ok := c.Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo); ok {
		n.SwitchUUID, n.PortgroupKey, n.PortKey = b.Port.SwitchUuid, b.Port.PortgroupKey, b.Port.PortKey
	}
	return n
}

func flatten(dst []types.VirtualMachineSnapshotTree, list []types.VirtualMachineSnapshotTree) []types.VirtualMachineSnapshotTree {
	for _, s := range list {
		dst = append(dst, s)
		dst = flatten(dst, s.ChildSnapshotList)
	}
	return dst
}

// Cause is why vpipe acts on a VM: it joined or left an NSX group, as a
// membership event said.
type Cause struct {
	Group     string    // the group's id or path, as the membership event names it
	GroupName string    // its display name, for people; Group when empty
	EventID   string    // the membership event's event.id
	Time      time.Time // when the membership changed
}

func (c Cause) groupName() string { return cmp.Or(c.GroupName, c.Group) }

// SnapshotOptions are the snapshot settings of stages.forensics.
type SnapshotOptions struct {
	Memory  bool // include the VM's memory (only for a powered-on VM)
	Quiesce bool // quiesce the guest file system (needs VMware Tools)
}

// Result is what an action did.
type Result struct {
	// Changed is false when the action found its work already done.
	Changed bool
	// Ref names what it created, changed or found: a snapshot's managed
	// object id, or "<switch name>/<session key>".
	Ref string
	// Detail says what happened, for the audit event's message.
	Detail string
}

// SnapshotName is the name vpipe gives the snapshot it takes for c:
// "vpipe-forensics <group> <time, RFC 3339 UTC>".
func SnapshotName(c Cause) string {
	return fmt.Sprintf("%s %s %s", SnapshotPrefix, c.groupName(), c.Time.UTC().Format(time.RFC3339))
}

// SnapshotDescription says why the snapshot was taken, with the markers
// that let vpipe find it again.
func SnapshotDescription(vm *VM, c Cause) string {
	return fmt.Sprintf("Taken by vpipe for forensics: VM %s joined NSX group %s at %s.\n%s%s\n%s%s",
		vm.Name, c.groupName(), c.Time.UTC().Format(time.RFC3339), markerEvent, c.EventID, markerGroup, c.Group)
}

// Snapshot takes the forensic snapshot of vm for c, unless vm already has
// the snapshot of c's event (a redelivered join, a retry after a crash).
func (v *VCenter) Snapshot(ctx context.Context, vm *VM, c Cause, opt SnapshotOptions) (Result, error) {
	if s := findSnapshot(vm, c); s != nil {
		return Result{Ref: s.Snapshot.Value, Detail: fmt.Sprintf("snapshot %q already taken for event %s", s.Name, c.EventID)}, nil
	}
	name := SnapshotName(c)
	t, err := object.NewVirtualMachine(v.c, vm.Ref).CreateSnapshot(ctx, name, SnapshotDescription(vm, c), opt.Memory, opt.Quiesce)
	if err != nil {
		return Result{}, classify(fmt.Errorf("snapshot vm %s: %w", vm.Name, err))
	}
	info, err := t.WaitForResult(ctx)
	if err != nil {
		return Result{}, classify(fmt.Errorf("snapshot vm %s: %w", vm.Name, err))
	}
	ref := ""
	if r, ok := info.Result.(types.ManagedObjectReference); ok {
		ref = r.Value
	}
	return Result{Changed: true, Ref: ref, Detail: fmt.Sprintf("snapshot %q taken (memory %t, quiesce %t)", name, opt.Memory, opt.Quiesce)}, nil
}

// findSnapshot returns vm's snapshot for c's event, or nil.
func findSnapshot(vm *VM, c Cause) *types.VirtualMachineSnapshotTree {
	for i := range vm.Snapshots {
		if markerValue(vm.Snapshots[i].Description, markerEvent) == c.EventID {
			return &vm.Snapshots[i]
		}
	}
	return nil
}

// groupSnapshot returns vm's latest vpipe snapshot for group, or nil.
func groupSnapshot(vm *VM, group string) *types.VirtualMachineSnapshotTree {
	var last *types.VirtualMachineSnapshotTree
	for i := range vm.Snapshots {
		s := &vm.Snapshots[i]
		if IsVpipeSnapshot(s) && markerValue(s.Description, markerGroup) == group && (last == nil || s.CreateTime.After(last.CreateTime)) {
			last = s
		}
	}
	return last
}

// markerValue returns the rest of the line that starts with marker in
// text, or "".
func markerValue(text, marker string) string {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, marker); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// IsVpipeSnapshot reports whether s is a snapshot vpipe took.
func IsVpipeSnapshot(s *types.VirtualMachineSnapshotTree) bool {
	return strings.HasPrefix(s.Name, SnapshotPrefix) && markerValue(s.Description, markerEvent) != ""
}

// MirrorOptions configure the VSPAN sessions vpipe creates.
type MirrorOptions struct {
	// Destination is the IP address of the analyser that receives the
	// encapsulated mirrored frames. Required.
	Destination string
	// EncapType is gre (default), erspan2 or erspan3.
	EncapType string
	// ErspanID is the ERSPAN session id (0–1023) for erspan2/erspan3.
	ErspanID int32
	// SamplingRate mirrors one of every n packets (1–65535; 0 means 1).
	SamplingRate int32
	// SnapshotLength mirrors at most this many bytes of each frame (at
	// least 60; 0 mirrors whole frames). VMwareVspanSession.mirroredPacketLength.
	SnapshotLength int32
}

// SessionName is the name of vm's mirror session: "vpipe:<VM name>:<instance
// UUID>", so that people find it by the VM's name and vpipe finds it by the
// UUID even after a rename.
func SessionName(vm *VM) string { return SessionPrefix + vm.Name + ":" + vm.InstanceUUID }

// isSessionOf reports whether a session named name is vpipe's session of
// the VM with instance UUID uuid.
func isSessionOf(name, uuid string) bool {
	return strings.HasPrefix(name, SessionPrefix) && strings.HasSuffix(name, ":"+uuid)
}

func sessionDescription(vm *VM, groups []string) string {
	return fmt.Sprintf("vpipe forensics: mirror of every vNIC of VM %s (instance UUID %s) while it is in a quarantine NSX group.\n%s%s",
		vm.Name, vm.InstanceUUID, markerGroups, strings.Join(groups, ", "))
}

func sessionGroups(desc string) []string {
	v := markerValue(desc, markerGroups)
	if v == "" {
		return nil
	}
	return strings.Split(v, ", ")
}

// dvSwitch is a distributed switch as the mirror actions read it.
type dvSwitch struct {
	Ref      types.ManagedObjectReference
	Name     string
	UUID     string
	Version  string
	Sessions []types.VMwareVspanSession
}

// switches reads every distributed switch of the vCenter. vcsim reports
// them as DistributedVirtualSwitch, vCenter as VmwareDistributedVirtualSwitch;
// a container view matches exact types, so it asks for both.
func (v *VCenter) switches(ctx context.Context) ([]dvSwitch, error) {
	m := view.NewManager(v.c)
	cv, err := m.CreateContainerView(ctx, v.c.ServiceContent.RootFolder, nil, true)
	if err != nil {
		return nil, classify(fmt.Errorf("list distributed switches: %w", err))
	}
	defer cv.Destroy(context.WithoutCancel(ctx))
	var all []mo.DistributedVirtualSwitch
	err = cv.Retrieve(ctx, []string{"VmwareDistributedVirtualSwitch", "DistributedVirtualSwitch"}, []string{"name", "uuid", "config"}, &all)
	if err != nil {
		return nil, classify(fmt.Errorf("list distributed switches: %w", err))
	}
	out := make([]dvSwitch, 0, len(all))
	for _, s := range all {
		d := dvSwitch{Ref: s.Self, Name: s.Name, UUID: s.Uuid}
		if s.Config != nil {
			d.Version = s.Config.GetDVSConfigInfo().ConfigVersion
		}
		if c, ok := s.Config.(*types.VMwareDVSConfigInfo); ok {
			d.Sessions = c.VspanSession
		}
		out = append(out, d)
	}
	return out, nil
}

// maxConcurrentRetries bounds the re-reads of a switch whose configVersion
// changed under a reconfigure (ConcurrentAccess).
const maxConcurrentRetries = 5

// Mirror makes sure every mirrorable vNIC of vm is mirrored, both
// directions, to opt.Destination, by one VSPAN session per distributed
// switch the VM is on, named SessionName(vm), listing c.Group among the
// groups that hold it. It creates the session, or edits it when its ports,
// settings or groups differ, or does nothing when it is already so. The
// results say what it did per switch; unmirrorable lists the vNICs no
// session can cover (standard or opaque network, no bound port).
func (v *VCenter) Mirror(ctx context.Context, vm *VM, c Cause, opt MirrorOptions) (results []Result, unmirrorable []NIC, err error) {
	ports := map[string][]string{} // switch uuid -> port keys
	for _, n := range vm.NICs {
		if !n.Mirrorable() {
			unmirrorable = append(unmirrorable, n)
			continue
		}
		ports[n.SwitchUUID] = append(ports[n.SwitchUUID], n.PortKey)
	}
	for _, uuid := range slices.Sorted(maps.Keys(ports)) {
		keys := ports[uuid]
		slices.Sort(keys)
		keys = slices.Compact(keys)
		r, err := v.reconfigureSession(ctx, uuid, vm.InstanceUUID, func(cur *types.VMwareVspanSession) (*types.VMwareVspanSession, string) {
			var groups []string
			if cur != nil {
				groups = sessionGroups(cur.Description)
			}
			if !slices.Contains(groups, c.Group) {
				groups = append(groups, c.Group)
			}
			want := wantSession(vm, keys, groups, opt)
			if cur != nil {
				want.Key = cur.Key
				if sameSession(cur, want) {
					return nil, fmt.Sprintf("session %q already mirrors ports %s to %s", want.Name, strings.Join(keys, ","), opt.Destination)
				}
				return want, fmt.Sprintf("session %q updated: ports %s to %s, groups %s", want.Name, strings.Join(keys, ","), opt.Destination, strings.Join(groups, ", "))
			}
			return want, fmt.Sprintf("session %q created: ports %s, both directions, to %s", want.Name, strings.Join(keys, ","), opt.Destination)
		})
		if err != nil {
			return results, unmirrorable, fmt.Errorf("mirror vm %s: %w", vm.Name, err)
		}
		results = append(results, r)
	}
	return results, unmirrorable, nil
}

func wantSession(vm *VM, ports, groups []string, opt MirrorOptions) *types.VMwareVspanSession {
	return &types.VMwareVspanSession{
		Name:                  SessionName(vm),
		Description:           sessionDescription(vm, groups),
		Enabled:               true,
		SourcePortTransmitted: &types.VMwareVspanPort{PortKey: slices.Clone(ports)},
		SourcePortReceived:    &types.VMwareVspanPort{PortKey: slices.Clone(ports)},
		DestinationPort:       &types.VMwareVspanPort{IpAddress: []string{opt.Destination}},
		SessionType:           SessionTypeEncapsulatedRemoteMirrorSource,
		SamplingRate:          cmp.Or(opt.SamplingRate, 1),
		MirroredPacketLength:  opt.SnapshotLength,
		EncapType:             cmp.Or(opt.EncapType, string(types.VMwareDVSVspanSessionEncapTypeGre)),
		ErspanId:              opt.ErspanID,
	}
}

// sameSession compares what vpipe sets.
func sameSession(a, b *types.VMwareVspanSession) bool {
	ports := func(p *types.VMwareVspanPort) []string {
		if p == nil {
			return nil
		}
		return slices.Sorted(slices.Values(p.PortKey))
	}
	ips := func(p *types.VMwareVspanPort) []string {
		if p == nil {
			return nil
		}
		return p.IpAddress
	}
	return a.Name == b.Name && a.Description == b.Description && a.Enabled == b.Enabled &&
		slices.Equal(ports(a.SourcePortTransmitted), ports(b.SourcePortTransmitted)) &&
		slices.Equal(ports(a.SourcePortReceived), ports(b.SourcePortReceived)) &&
		slices.Equal(ips(a.DestinationPort), ips(b.DestinationPort)) &&
		a.SessionType == b.SessionType && cmp.Or(a.SamplingRate, 1) == cmp.Or(b.SamplingRate, 1) &&
		a.MirroredPacketLength == b.MirroredPacketLength && a.EncapType == b.EncapType && a.ErspanId == b.ErspanId
}

// Unmirror removes c.Group from the groups that hold the mirror sessions
// of the VM with instance UUID uuid, on every switch, and removes a
// session no group holds any more. It does not need the VM, which may be
// gone. A VM without sessions is a no-op.
func (v *VCenter) Unmirror(ctx context.Context, uuid, vmName string, c Cause) ([]Result, error) {
	sws, err := v.switches(ctx)
	if err != nil {
		return nil, err
	}
	var results []Result
	for _, sw := range sws {
		if !slices.ContainsFunc(sw.Sessions, func(s types.VMwareVspanSession) bool { return isSessionOf(s.Name, uuid) }) {
			continue
		}
		r, err := v.reconfigureSession(ctx, sw.UUID, uuid, func(cur *types.VMwareVspanSession) (*types.VMwareVspanSession, string) {
			if cur == nil {
				return nil, "no session"
			}
			groups := slices.DeleteFunc(sessionGroups(cur.Description), func(g string) bool { return g == c.Group })
			if len(groups) == 0 {
				return &types.VMwareVspanSession{Key: cur.Key}, fmt.Sprintf("session %q removed", cur.Name)
			}
			next := *cur
			next.Description = sessionDescription(&VM{Name: cmp.Or(vmName, nameOf(cur.Name, uuid)), InstanceUUID: uuid}, groups)
			if next.Description == cur.Description {
				return nil, fmt.Sprintf("session %q kept for groups %s", cur.Name, strings.Join(groups, ", "))
			}
			return &next, fmt.Sprintf("session %q kept for groups %s", cur.Name, strings.Join(groups, ", "))
		})
		if err != nil {
			return results, fmt.Errorf("unmirror vm %s: %w", uuid, err)
		}
		results = append(results, r)
	}
	return results, nil
}

// nameOf returns the VM name inside a session name.
func nameOf(session, uuid string) string {
	return strings.TrimSuffix(strings.TrimPrefix(session, SessionPrefix), ":"+uuid)
}

// reconfigureSession reads the switch with uuid switchUUID, finds the
// session of the VM with instance UUID vmUUID, and asks decide what to
// do: a nil session is no change; a session with only Key set removes
// it; one with a Key edits; one without adds. It retries when the
// switch's configVersion changed meanwhile (ConcurrentAccess).
func (v *VCenter) reconfigureSession(ctx context.Context, switchUUID, vmUUID string, decide func(cur *types.VMwareVspanSession) (*types.VMwareVspanSession, string)) (Result, error) {
	for attempt := 1; ; attempt++ {
		sws, err := v.switches(ctx)
		if err != nil {
			return Result{}, err
		}
		i := slices.IndexFunc(sws, func(s dvSwitch) bool { return s.UUID == switchUUID })
		if i < 0 {
			return Result{}, pipeline.Permanent(fmt.Errorf("distributed switch %s not found", switchUUID))
		}
		sw := sws[i]
		var cur *types.VMwareVspanSession
		for j := range sw.Sessions {
			if isSessionOf(sw.Sessions[j].Name, vmUUID) {
				cur = &sw.Sessions[j]
				break
			}
		}
		next, detail := decide(cur)
		if next == nil {
			ref := sw.Name
			if cur != nil {
				ref += "/" + cur.Key
			}
			return Result{Ref: ref, Detail: detail}, nil
		}
		op := types.ConfigSpecOperationAdd
		switch {
		case next.Key != "" && next.Name == "":
			op = types.ConfigSpecOperationRemove
		case next.Key != "":
			op = types.ConfigSpecOperationEdit
		}
		spec := &types.VMwareDVSConfigSpec{
			DVSConfigSpec:   types.DVSConfigSpec{ConfigVersion: sw.Version},
			VspanConfigSpec: []types.VMwareDVSVspanConfigSpec{{VspanSession: *next, Operation: string(op)}},
		}
		err = v.reconfigure(ctx, sw.Ref, spec)
		if fault.Is(err, &types.ConcurrentAccess{}) && attempt < maxConcurrentRetries {
			continue
		}
		if err != nil {
			return Result{}, classify(fmt.Errorf("%s session on switch %s: %w", op, sw.Name, err))
		}
		ref := sw.Name
		if next.Key != "" {
			ref += "/" + next.Key
		} else if key := v.sessionKey(ctx, switchUUID, vmUUID); key != "" {
			ref += "/" + key
		}
		return Result{Changed: true, Ref: ref, Detail: detail}, nil
	}
}

func (v *VCenter) reconfigure(ctx context.Context, ref types.ManagedObjectReference, spec types.BaseDVSConfigSpec) error {
	t, err := object.NewDistributedVirtualSwitch(v.c, ref).Reconfigure(ctx, spec)
	if err != nil {
		return err
	}
	return t.Wait(ctx)
}

// sessionKey returns the key vCenter gave the VM's session on a switch
// (for the audit event), or "".
func (v *VCenter) sessionKey(ctx context.Context, switchUUID, vmUUID string) string {
	s, _ := v.Sessions(ctx, vmUUID)
	for _, x := range s {
		if x.SwitchUUID == switchUUID {
			return x.Session.Key
		}
	}
	return ""
}

// SwitchSession is a VSPAN session and the switch it is on.
type SwitchSession struct {
	Switch     string // the switch's name
	SwitchUUID string
	Session    types.VMwareVspanSession
}

// Sessions returns vpipe's mirror sessions of the VM with instance UUID
// uuid, on every distributed switch.
func (v *VCenter) Sessions(ctx context.Context, uuid string) ([]SwitchSession, error) {
	sws, err := v.switches(ctx)
	if err != nil {
		return nil, err
	}
	var out []SwitchSession
	for _, sw := range sws {
		for _, s := range sw.Sessions {
			if isSessionOf(s.Name, uuid) {
				out = append(out, SwitchSession{Switch: sw.Name, SwitchUUID: sw.UUID, Session: s})
			}
		}
	}
	return out, nil
}

// HasSessionFor reports whether the VM with instance UUID uuid has a
// vpipe mirror session that lists group: the VM's quarantine by that
// group is already being handled.
func (v *VCenter) HasSessionFor(ctx context.Context, uuid, group string) (bool, error) {
	ss, err := v.Sessions(ctx, uuid)
	if err != nil {
		return false, err
	}
	for _, s := range ss {
		if slices.Contains(sessionGroups(s.Session.Description), group) {
			return true, nil
		}
	}
	return false, nil
}

// OldSnapshot is a vpipe snapshot past its retention.
type OldSnapshot struct {
	VM           types.ManagedObjectReference
	VMName       string
	InstanceUUID string
	Snapshot     types.VirtualMachineSnapshotTree
}

// OldSnapshots lists the snapshots vpipe took (IsVpipeSnapshot) that were
// created before cutoff, on every VM.
func (v *VCenter) OldSnapshots(ctx context.Context, cutoff time.Time) ([]OldSnapshot, error) {
	m := view.NewManager(v.c)
	cv, err := m.CreateContainerView(ctx, v.c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, classify(fmt.Errorf("list vms: %w", err))
	}
	defer cv.Destroy(context.WithoutCancel(ctx))
	var vms []mo.VirtualMachine
	if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.instanceUuid", "snapshot"}, &vms); err != nil {
		return nil, classify(fmt.Errorf("list vm snapshots: %w", err))
	}
	var out []OldSnapshot
	for _, vm := range vms {
		if vm.Snapshot == nil {
			continue
		}
		uuid := ""
		if vm.Config != nil {
			uuid = vm.Config.InstanceUuid
		}
		for _, s := range flatten(nil, vm.Snapshot.RootSnapshotList) {
			if IsVpipeSnapshot(&s) && s.CreateTime.Before(cutoff) {
				out = append(out, OldSnapshot{VM: vm.Self, VMName: vm.Name, InstanceUUID: uuid, Snapshot: s})
			}
		}
	}
	return out, nil
}

// RemoveSnapshot deletes one snapshot (not its children) and consolidates
// the disks. A snapshot already gone is not an error.
func (v *VCenter) RemoveSnapshot(ctx context.Context, snap types.ManagedObjectReference) error {
	consolidate := true
	res, err := methods.RemoveSnapshot_Task(ctx, v.c, &types.RemoveSnapshot_Task{This: snap, RemoveChildren: false, Consolidate: &consolidate})
	if err == nil {
		err = object.NewTask(v.c, res.Returnval).Wait(ctx)
	}
	if fault.Is(err, &types.ManagedObjectNotFound{}) {
		return nil
	}
	if err != nil {
		return classify(fmt.Errorf("remove snapshot %s: %w", snap.Value, err))
	}
	return nil
}

// classify marks vCenter faults that retrying cannot fix as permanent.
// Transient faults (TaskInProgress, ConcurrentAccess, HostCommunication,
// ...), authentication and permission faults (fixed by an operator; the
// stage stalls visibly), network errors and cancellations stay
// retryable.
func classify(err error) error {
	if err == nil || errors.Is(err, pipeline.ErrPermanent) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if fault.IsTransientError(err) ||
		fault.Is(err, &types.NotAuthenticated{}) || fault.Is(err, &types.NoPermission{}) ||
		fault.Is(err, &types.InvalidLogin{}) || fault.Is(err, &types.RequestCanceled{}) ||
		fault.Is(err, &types.InvalidPowerState{}) || fault.Is(err, &types.InvalidState{}) {
		return err
	}
	var f types.BaseMethodFault
	if _, ok := fault.As(err, &f); ok {
		return pipeline.Permanent(err)
	}
	return err
}
