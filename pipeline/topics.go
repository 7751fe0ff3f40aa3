package pipeline

import (
	"strconv"
	"strings"
)

// Topic names without the configurable prefix (DESIGN.md, "Topics and keys").
const (
	TopicFirewall    = "firewall"
	TopicVCenter     = "vcenter"
	TopicVeloCloud   = "velocloud"
	TopicTickets     = "tickets"
	TopicNSX         = "nsx"
	TopicOther       = "other"
	TopicAudit       = "audit"
	TopicParked      = "parked"
	TopicCheckpoints = "checkpoints"
	TopicDLQ         = "dlq"
)

// AllTopics lists every topic vpipe uses, without prefix.
var AllTopics = []string{
	TopicFirewall, TopicVCenter, TopicVeloCloud, TopicTickets, TopicNSX,
	TopicOther, TopicAudit, TopicParked, TopicCheckpoints, TopicDLQ,
}

// TopicFor returns the topic (without prefix) that events of a dataset go
// to.
func TopicFor(dataset string) string {
	switch dataset {
	case DatasetNSXDFW, DatasetNSXGatewayFW, DatasetNSXVDFW:
		return TopicFirewall
	case DatasetVCenterEvent:
		return TopicVCenter
	case DatasetVeloCloudEvent, DatasetVeloCloudFW:
		return TopicVeloCloud
	case DatasetTicketLock:
		return TopicTickets
	case DatasetGroupMembership, DatasetNSXAudit:
		return TopicNSX
	case DatasetAudit:
		return TopicAudit
	}
	return TopicOther
}

// AppendKey appends the Kafka message key of e to dst, following the key
// column of DESIGN.md's topic table, so that the events that must stay in
// order share a partition: one tenant's firewall events (log label or rule
// tag), one vCenter object, one VeloCloud enterprise, one ticket (label
// ticket_id or ticket_number), one VM's membership of one NSX group, the
// audit trail of one VM (label vm_external_id, else host.hostname).
// Events without such a field are keyed by their sending host; for NSX
// audit log lines that is the NSX Manager (observer.hostname), so one
// manager's audit log stays in order.
func AppendKey(dst []byte, e *Event) []byte {
	switch TopicFor(e.Dataset) {
	case TopicFirewall:
		if l := e.TenantLabel(); l != "" {
			return append(dst, l...)
		}
	case TopicVCenter:
		v := &e.VMware.VCenter
		obj := v.ObjectRef
		if obj == "" {
			obj = v.ObjectName
		}
		if v.Server != "" || obj != "" {
			dst = append(dst, v.Server...)
			dst = append(dst, '/')
			return append(dst, obj...)
		}
	case TopicTickets:
		if id := e.Label("ticket_id"); id != "" {
			return append(dst, id...)
		}
		if n := e.Label("ticket_number"); n != "" {
			return append(dst, n...)
		}
	case TopicNSX:
		// A membership change: its group and VM (labels nsx_group and
		// vm_external_id or vm_ref, pipeline/nsxgroups), so one VM's
		// joins and leaves of one group stay in order while the groups and
		// VMs spread over the partitions. NSX audit log lines fall through
		// to their manager.
		if g := e.Label("nsx_group"); g != "" && e.Dataset == DatasetGroupMembership {
			vm := e.Label("vm_external_id")
			if vm == "" {
				vm = e.Label("vm_ref")
			}
			dst = append(dst, g...)
			dst = append(dst, '/')
			return append(dst, vm...)
		}
	case TopicAudit:
		if vm := e.Label("vm_external_id"); vm != "" {
			return append(dst, vm...)
		}
		if e.Host.Hostname != "" {
			return append(dst, e.Host.Hostname...)
		}
	case TopicVeloCloud:
		v := &e.VMware.VeloCloud
		if v.EnterpriseID != 0 {
			return strconv.AppendInt(dst, v.EnterpriseID, 10)
		}
		if v.EnterpriseName != "" {
			return append(dst, v.EnterpriseName...)
		}
	}
	return append(dst, e.senderHost()...)
}

// senderHost names the system that sent e: the syslog or observer host
// name, else the socket peer's address without port.
func (e *Event) senderHost() string {
	switch {
	case e.Observer.Hostname != "":
		return e.Observer.Hostname
	case e.Syslog.Hostname != "":
		return e.Syslog.Hostname
	case e.Host.Hostname != "":
		return e.Host.Hostname
	}
	if i := strings.LastIndexByte(e.LogSource, ':'); i > 0 {
		return strings.Trim(e.LogSource[:i], "[]")
	}
	return e.LogSource
}
