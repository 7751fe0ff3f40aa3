package vcenter

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// eventJSON is a vSphere event (vim.event.Event and EventEx) as VEBA and
// govmomi print it in JSON: field names as in the vSphere API. Only the
// fields vpxd events carry are read; the sample is
// shared/testdata-samples/vcenter-tag-attach-event.json
// (vmware-samples/vcenter-event-broker-appliance test payload).
type eventJSON struct {
	Key                  int64
	ChainID              int64 `json:"ChainId"`
	CreatedTime          time.Time
	UserName             string
	FullFormattedMessage string
	EventTypeID          string `json:"EventTypeId"`
	Severity             string
	ObjectName           string
	ObjectType           string
	ObjectID             string `json:"ObjectId"`
	ChangeTag            string
	Datacenter           *entityArg
	Vm                   *entityArg
	Arguments            []struct {
		Key   string
		Value any
	}
}

// entityArg is a vim.event.EntityEventArgument: a name and a managed
// object reference, whose JSON key is the entity's kind ("Vm",
// "Datacenter").
type entityArg struct {
	Name       string
	Vm         *moRef
	Datacenter *moRef
}

type moRef struct {
	Type  string
	Value string
}

// ParseEventJSON fills e from one vSphere event in JSON (data, usually
// e.Original, as a vCenter event poller or an HTTP source received it) and
// sets the dataset vcenter.event. The fields are those of Parser.Parse;
// an EventEx's EventTypeId is vmware.vcenter.event_type, and for a tagging
// event the Arguments Tag, Object and User give vmware.vcenter.tag,
// vmware.vcenter.object.name and user.name (ObjectName and ObjectId are
// empty in the real sample: the VM is known by name only). ObjectId (or the
// Vm argument's reference) is vmware.vcenter.object.ref. Strings are
// copied, so data may be reused afterwards. On error e is left untouched.
func ParseEventJSON(e *pipeline.Event, data []byte) error {
	var ev eventJSON
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("vcenter event JSON: %w", err)
	}
	if ev.Key == 0 && ev.EventTypeID == "" && ev.FullFormattedMessage == "" {
		return fmt.Errorf("vcenter event JSON: no Key, EventTypeId or FullFormattedMessage")
	}
	setCommon(e)
	v := &e.VMware.VCenter
	v.Key, v.ChainID = ev.Key, ev.ChainID
	if !ev.CreatedTime.IsZero() {
		e.Timestamp = ev.CreatedTime.UTC()
	}
	v.EventType = ev.EventTypeID
	if ev.Severity != "" {
		setSeverity(e, []byte(ev.Severity))
		e.LogLevel = ev.Severity
	}
	e.Message = ev.FullFormattedMessage
	v.ObjectName, v.ObjectType, v.ObjectRef = ev.ObjectName, ev.ObjectType, ev.ObjectID
	v.ChangeTag = ev.ChangeTag
	if ev.Datacenter != nil {
		v.Datacenter = ev.Datacenter.Name
	}
	if ev.Vm != nil {
		if v.ObjectName == "" {
			v.ObjectName = ev.Vm.Name
		}
		if v.ObjectRef == "" && ev.Vm.Vm != nil {
			v.ObjectRef, v.ObjectType = ev.Vm.Vm.Value, ev.Vm.Vm.Type
		}
	}
	user := ev.UserName
	for _, a := range ev.Arguments {
		s, ok := a.Value.(string)
		if !ok {
			continue
		}
		switch a.Key {
		case "Tag":
			v.Tag = s
		case "Object":
			if v.ObjectName == "" {
				v.ObjectName = s
			}
		case "User":
			if user == "" {
				user = s
			}
		case "Category":
			v.Category = s
		}
	}
	if user != "" {
		setUser(e, []byte(user))
	}
	if v.Tag == "" && (v.EventType == EventTagAttach || v.EventType == EventTagDetach) {
		// No Arguments: read the message, as Parse does.
		var t tagText
		if msg := []byte(ev.FullFormattedMessage); t.parse(msg, false) && t.errAt < 0 {
			v.Tag, v.ObjectName = string(t.tag), string(t.object)
		}
	}
	return nil
}
