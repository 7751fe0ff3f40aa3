package nsxgroups

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// The event.action values of nsx.group_membership events.
const (
	ActionJoined = "joined"
	ActionLeft   = "left"
)

// The labels (ECS labels.*) that carry a membership event's fields; the
// schema has no NSX-group fields of its own. They are the contract between
// this source and the stages that consume `<prefix>nsx` (the forensics
// stage reads them with FromEvent).
const (
	LabelSource       = "nsx_source"                // the configured source name
	LabelGroup        = "nsx_group"                 // the group id (Group.ID)
	LabelGroupName    = "nsx_group_name"            // its display name
	LabelVMExternalID = "vm_external_id"            // NSX external_id = vCenter instance UUID
	LabelVMRef        = "vm_ref"                    // vCenter managed object id (NSX-V)
	LabelGeneration   = "nsx_group_poll_generation" // see Membership.Generation
)

// Product names (observer.product) of the two NSX families.
const (
	ProductNSX  = "NSX"   // NSX-T, NSX 4.x, VMware Cloud on AWS (Policy API)
	ProductNSXV = "NSX-V" // NSX for vSphere 6.x
)

// Membership is one change of an NSX group's membership: a VM joined or
// left it.
type Membership struct {
	Source    string // the configured source name
	Manager   string // the NSX Manager's host name (observer.hostname)
	Product   string // ProductNSX or ProductNSXV
	Group     string // Group.ID
	GroupName string // Group.Name
	// VMExternalID is the VM's NSX external_id, which is its vCenter
	// config.instanceUuid: what the forensics stage finds the VM by.
	VMExternalID string
	// VMRef is the VM's vCenter managed object id ("vm-42"), set when NSX
	// listed the VM by it (NSX-V) rather than by external_id.
	VMRef  string
	VMName string // the VM's display name as NSX knows it
	Joined bool   // joined, else left
	// Time is when the source saw the change (the poll's time).
	Time time.Time
	// Generation numbers the group's observed membership states (it grows
	// by one with each change the source checkpoints). With Source, Group,
	// VM and action it makes event.id, so a change published again after a
	// crash, before its checkpoint, has the same id, and a VM that joins
	// again later has a new one.
	Generation uint64
}

// Action returns ActionJoined or ActionLeft.
func (m *Membership) Action() string {
	if m.Joined {
		return ActionJoined
	}
	return ActionLeft
}

// ID returns the deterministic event.id of m: a SHA-256 of source, group,
// VM (external id, else managed object id), action and generation, 32 hex
// digits.
func (m *Membership) ID() string {
	h := sha256.New()
	vm := m.VMExternalID
	if vm == "" {
		vm = "ref:" + m.VMRef
	}
	for _, s := range []string{m.Source, m.Group, vm, m.Action(), strconv.FormatUint(m.Generation, 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// original is the JSON document kept as event.original: the change as the
// source saw it.
type original struct {
	Source     string    `json:"source"`
	Group      string    `json:"group"`
	GroupName  string    `json:"group_name,omitempty"`
	VM         vmJSON    `json:"vm"`
	Change     string    `json:"change"`
	Observed   time.Time `json:"observed"`
	Generation uint64    `json:"generation"`
}

type vmJSON struct {
	ExternalID string `json:"external_id,omitempty"`
	Ref        string `json:"ref,omitempty"`
	Name       string `json:"name,omitempty"`
}

// Fill resets e and writes m into it as an nsx.group_membership event
// (README, event schema): event.action joined/left, host.hostname the VM's
// name, observer the NSX Manager, the labels above, event.original a JSON
// document of the change.
func (m *Membership) Fill(e *pipeline.Event) {
	e.Reset()
	e.Dataset = pipeline.DatasetGroupMembership
	e.ID = m.ID()
	e.Timestamp = m.Time
	e.Created = m.Time
	e.Action = m.Action()
	e.Outcome = "success"
	e.Host.Hostname = m.VMName
	e.Observer.Hostname = m.Manager
	e.Observer.Vendor = "VMware"
	e.Observer.Product = m.Product
	name := m.GroupName
	if name == "" {
		name = m.Group
	}
	vm := m.VMName
	if vm == "" {
		vm = m.VMExternalID + m.VMRef
	}
	e.Message = fmt.Sprintf("VM %s %s NSX group %s", vm, m.Action(), name)
	e.AddLabel(LabelSource, m.Source)
	e.AddLabel(LabelGroup, m.Group)
	if m.GroupName != "" {
		e.AddLabel(LabelGroupName, m.GroupName)
	}
	if m.VMExternalID != "" {
		e.AddLabel(LabelVMExternalID, m.VMExternalID)
	}
	if m.VMRef != "" {
		e.AddLabel(LabelVMRef, m.VMRef)
	}
	e.AddLabel(LabelGeneration, strconv.FormatUint(m.Generation, 10))
	orig, _ := json.Marshal(original{
		Source: m.Source, Group: m.Group, GroupName: m.GroupName,
		VM:     vmJSON{ExternalID: m.VMExternalID, Ref: m.VMRef, Name: m.VMName},
		Change: m.Action(), Observed: m.Time.UTC(), Generation: m.Generation,
	})
	e.Original = append(e.Original[:0], orig...)
}

// FromEvent reads a membership change back from an nsx.group_membership
// event. ok is false for any other event, or one without a group, a VM
// (external id or managed object id) or a known action. The strings are copies: they stay valid after e is
// reused.
func FromEvent(e *pipeline.Event) (m Membership, ok bool) {
	if e.Dataset != pipeline.DatasetGroupMembership {
		return m, false
	}
	switch e.Action {
	case ActionJoined:
		m.Joined = true
	case ActionLeft:
	default:
		return m, false
	}
	for _, l := range e.Labels {
		switch l.Key {
		case LabelSource:
			m.Source = clone(l.Value)
		case LabelGroup:
			m.Group = clone(l.Value)
		case LabelGroupName:
			m.GroupName = clone(l.Value)
		case LabelVMExternalID:
			m.VMExternalID = clone(l.Value)
		case LabelVMRef:
			m.VMRef = clone(l.Value)
		case LabelGeneration:
			m.Generation, _ = strconv.ParseUint(l.Value, 10, 64)
		}
	}
	m.VMName = clone(e.Host.Hostname)
	m.Manager = clone(e.Observer.Hostname)
	m.Product = clone(e.Observer.Product)
	m.Time = e.Time()
	return m, m.Group != "" && (m.VMExternalID != "" || m.VMRef != "")
}

func clone(s string) string { return string([]byte(s)) }
