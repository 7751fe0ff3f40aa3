package vcenter

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	vcparse "github.com/vpipe/vpipe/parsers/vcenter"
	"github.com/vpipe/vpipe/pipeline"
)

// convert fills e from ev. event.original is the event as JSON (the form
// VEBA and govmomi print, with "_typeName" first as govmomi's JSON codec
// names types), read back by parsers/vcenter.ParseEventJSON so that the
// poller, the webhook and syslog yield the same fields. On top it sets
// what the JSON parser cannot know: the server, the vim.event class of
// typed events, the object of events about hosts, datastores and networks,
// and an event.id derived from server, key and creation time (a replay
// yields the same id).
func (s *Source) convert(e *pipeline.Event, ev types.BaseEvent, now time.Time) {
	e.Reset()
	typeName := reflect.TypeOf(ev).Elem().Name()
	s.buf = append(s.buf[:0], `{"_typeName":`...)
	s.buf = strconv.AppendQuote(s.buf, typeName)
	body, err := json.Marshal(ev)
	if err == nil && len(body) > 2 {
		s.buf = append(s.buf, ',')
		s.buf = append(s.buf, body[1:]...)
	} else {
		s.buf = append(s.buf, '}')
	}
	e.Original = append(e.Original, s.buf...)
	e.Created = now
	Normalise(e, s.cfg.Name, ev)
	e.Observer.Hostname = s.host
	if err != nil {
		e.Error = fmt.Sprintf("encode vcenter event %d as JSON: %v", ev.GetEvent().Key, err)
		s.m.errors[errConvert].Inc()
	}
}

// Normalise fills e, whose Original holds ev as JSON, from ev: the fields
// ParseEventJSON reads, then the server name, the event type
// ("vim.event.<class>" for typed events, the type id for EventEx and
// ExtendedEvent), the object the event is about and the event id.
func Normalise(e *pipeline.Event, server string, ev types.BaseEvent) {
	base := ev.GetEvent()
	if err := vcparse.ParseEventJSON(e, e.Original); err != nil {
		e.Dataset = pipeline.DatasetVCenterEvent
		e.Error = err.Error()
	}
	v := &e.VMware.VCenter
	v.Server = server
	v.Key, v.ChainID = int64(base.Key), int64(base.ChainId)
	if !base.CreatedTime.IsZero() {
		e.Timestamp = base.CreatedTime.UTC()
	}
	switch x := ev.(type) {
	case *types.EventEx:
		v.EventType = x.EventTypeId
	case *types.ExtendedEvent:
		v.EventType = x.EventTypeId
	default:
		v.EventType = "vim.event." + reflect.TypeOf(ev).Elem().Name()
	}
	if v.ObjectRef == "" {
		if ref, name := entity(base); ref != nil {
			v.ObjectRef, v.ObjectType = ref.Value, ref.Type
			if v.ObjectName == "" {
				v.ObjectName = name
			}
		}
	}
	e.ID = eventID(server, base.Key, base.CreatedTime)
}

// entity returns the most specific entity an event names.
func entity(ev *types.Event) (*types.ManagedObjectReference, string) {
	switch {
	case ev.Vm != nil:
		return &ev.Vm.Vm, ev.Vm.Name
	case ev.Host != nil:
		return &ev.Host.Host, ev.Host.Name
	case ev.Ds != nil:
		return &ev.Ds.Datastore, ev.Ds.Name
	case ev.Net != nil:
		return &ev.Net.Network, ev.Net.Name
	case ev.Dvs != nil:
		return &ev.Dvs.Dvs, ev.Dvs.Name
	case ev.ComputeResource != nil:
		return &ev.ComputeResource.ComputeResource, ev.ComputeResource.Name
	case ev.Datacenter != nil:
		return &ev.Datacenter.Datacenter, ev.Datacenter.Name
	}
	return nil, ""
}

// eventID is FNV-1a 64 of server, key and creation time, in hex.
func eventID(server string, key int32, created time.Time) string {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	var h uint64 = offset64
	add := func(b []byte) {
		for _, c := range b {
			h = (h ^ uint64(c)) * prime64
		}
	}
	add([]byte(server))
	var n [13]byte
	binary.BigEndian.PutUint32(n[1:], uint32(key))
	binary.BigEndian.PutUint64(n[5:], uint64(created.UnixNano()))
	add(n[:])
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], h)
	return hex.EncodeToString(sum[:])
}
