// Package pipeline holds what every part of vpipe shares: the normalised
// Event and its JSON encoding, the small interfaces between sources,
// parsers and sinks, and the routing of datasets to Kafka topics.
package pipeline

import (
	"net/netip"
	"time"
	"unsafe"
)

// SchemaVersion is the version of the event schema documented in the
// README. A change to the encoded fields is a deliberate act: bump it and
// update the golden tests.
const SchemaVersion = "1"

// ECSVersion is the Elastic Common Schema version the field names follow.
const ECSVersion = "8.11.0"

// Event is one normalised record. Field comments give the ECS name it is
// encoded under (see AppendJSON and the README's schema section); a zero
// value means "absent" and is not encoded unless the comment says otherwise.
//
// Ownership: an Event owns Original. Parsers set string fields that alias
// Original's bytes (see Alias) or the event's scratch space (see Intern), so
// that parsing allocates nothing. Such strings are valid until the next
// Reset; a holder that keeps them longer must copy them (strings.Clone).
// An Event is not safe for concurrent use.
type Event struct {
	Timestamp time.Time // @timestamp (always encoded; Created when unknown)
	Created   time.Time // event.created: when vpipe received the record
	ID        string    // event.id: deterministic from the source record
	Dataset   string    // event.dataset, e.g. "nsx.dfw"; see the Dataset* constants
	Kind      string    // event.kind; "event" when empty
	Action    string    // event.action: for firewall events the action (pass, drop, ...)
	Outcome   string    // event.outcome: success, failure, unknown
	Reason    string    // event.reason
	Severity  int       // event.severity (encoded when SeverityValid)
	// SeverityValid says Severity was set.
	SeverityValid bool
	Original      []byte // event.original: the exact received bytes (always encoded)
	Message       string // message
	Error         string // error.message: why parsing failed, with the byte offset
	LogLevel      string // log.level

	LogSource string // log.source.address: the socket peer, "ip:port"
	Observer  Observer
	Host      Host
	Syslog    Syslog

	Source       Endpoint // source.*: the traffic a firewall event describes
	Destination  Endpoint // destination.*
	Network      Network
	Rule         Rule
	Organization Organization
	User         User

	// Labels are ECS labels: custom keyword fields, keys unique, encoded as
	// one object in order. Parsers keep unknown trailing fields here rather
	// than failing.
	Labels []Label

	VMware VMware

	scratch []byte
}

// Dataset names (event.dataset). The routing table in Topics maps them to
// Kafka topics.
const (
	DatasetNSXDFW          = "nsx.dfw"
	DatasetNSXGatewayFW    = "nsx.gateway_firewall"
	DatasetNSXVDFW         = "nsxv.dfw"
	DatasetVCenterEvent    = "vcenter.event"
	DatasetVeloCloudEvent  = "velocloud.event"
	DatasetVeloCloudFW     = "velocloud.firewall"
	DatasetTicketLock      = "ticket.lock"
	DatasetGroupMembership = "nsx.group_membership"
	// DatasetNSXAudit is an NSX Manager audit log line of a write API
	// call (parsers/nsxaudit): who changed what on NSX, and whether it
	// succeeded.
	DatasetNSXAudit = "nsx.audit"
	// DatasetAudit is an action a stage took on NSX or vCenter, with its
	// cause and result.
	DatasetAudit         = "vpipe.audit"
	DatasetSyslogGeneric = "syslog.generic"
	DatasetHTTPGeneric   = "http.generic"
)

// Observer is the system that sent the record (observer.*).
type Observer struct {
	Hostname string     // observer.hostname
	IP       netip.Addr // observer.ip (ECS allows an array; vpipe writes one address)
	Type     string     // observer.type, e.g. "firewall"
	Vendor   string     // observer.vendor, e.g. "VMware"
	Product  string     // observer.product, e.g. "NSX"
}

// Host is the host the event is about or was produced on (host.*).
type Host struct {
	Hostname string // host.hostname
}

// Syslog holds the syslog envelope (log.syslog.*).
type Syslog struct {
	// PriorityValid says the record had a PRI part; Facility and Severity
	// are then encoded as log.syslog.facility.code / severity.code with
	// their names, and Priority as log.syslog.priority.
	PriorityValid bool
	Priority      uint8
	Facility      uint8
	Severity      uint8
	Version       uint8  // log.syslog.version: 1 for RFC 5424; 0 (RFC 3164) is not encoded
	Hostname      string // log.syslog.hostname
	AppName       string // log.syslog.appname
	ProcID        string // log.syslog.procid
	MsgID         string // log.syslog.msgid
	// StructuredData is RFC 5424 STRUCTURED-DATA, encoded as
	// log.syslog.structured_data: {"id": {"name": "value", ...}, ...}.
	StructuredData []SDElement
}

// SDElement is one RFC 5424 SD-ELEMENT.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one SD-PARAM with its value unescaped.
type SDParam struct {
	Name  string
	Value string
}

// Endpoint is one side of the traffic a firewall event describes
// (source.* / destination.*).
type Endpoint struct {
	IP        netip.Addr // .ip (encoded when valid)
	Port      uint16     // .port (encoded when PortValid)
	PortValid bool
	Packets   uint64 // .packets (encoded when CountersValid)
	Bytes     uint64 // .bytes (encoded when CountersValid)
	// CountersValid says Packets and Bytes were in the record.
	CountersValid bool
	Domain        string // .domain
}

// Network is network.*.
type Network struct {
	Transport  string // network.transport: lower case IANA name ("tcp", "udp", "icmp", "igmp")
	IANANumber string // network.iana_number
	Type       string // network.type: "ipv4", "ipv6"
	Direction  string // network.direction: "ingress", "egress"
}

// Rule is rule.* (the firewall rule that matched).
type Rule struct {
	ID      string // rule.id: the rule number
	Ruleset string // rule.ruleset: e.g. "mainrs", "domain-c46"
	Name    string // rule.name
}

// Organization is the tenant (organization.*), set once resolved.
type Organization struct {
	ID   string // organization.id
	Name string // organization.name
}

// User is user.*.
type User struct {
	Name   string // user.name
	Domain string // user.domain
}

// Label is one ECS label (labels.<Key>).
type Label struct {
	Key   string
	Value string
}

// VMware holds what ECS has no field for (vmware.*). Each part is encoded
// only when it has a non-zero field.
type VMware struct {
	NSX       NSX       // vmware.nsx.*
	NSXV      NSX       // vmware.nsxv.*; LogLabel is encoded as rule_tag
	VCenter   VCenter   // vmware.vcenter.*
	VeloCloud VeloCloud // vmware.velocloud.*
}

// NSX holds the NSX (T, 4.x or V) firewall fields that ECS lacks.
type NSX struct {
	LogLabel     string // vmware.nsx.log_label (NSX-T rule "tag"), vmware.nsxv.rule_tag (NSX-V)
	FilterHash   string // .filter_hash: the vNIC filter, hex (NSX-T) or decimal (NSX-V)
	Reason       string // .reason: match, TERM, bad-offset, ...
	PacketLength uint32 // .packet_length (encoded when non-zero)
	TCPFlags     string // .tcp_flags, e.g. "SEW"
	TermReason   string // .term_reason: RST, FIN, TIMEOUT on TERM lines
	VRF          string // .vrf_id: gateway firewall VRF
	InterfaceID  string // .interface_id: gateway firewall interface UUID (with dashes)
}

// VCenter holds vCenter event fields that ECS lacks.
type VCenter struct {
	Server     string // vmware.vcenter.server: the vCenter the event came from
	EventType  string // .event_type: vim.event.* class or EventEx typeId
	Key        int64  // .key: the event key (encoded when non-zero)
	ChainID    int64  // .chain_id (encoded when non-zero)
	ObjectName string // .object.name
	ObjectType string // .object.type, e.g. "VirtualMachine"
	ObjectRef  string // .object.ref: managed object reference, e.g. "vm-42"
	Tag        string // .tag: tag name on tag attach/detach
	Category   string // .category: tag category when known
	Datacenter string // .datacenter
	ChangeTag  string // .change_tag
}

// VeloCloud holds VeloCloud Orchestrator event fields that ECS lacks.
type VeloCloud struct {
	EventID            int64  // vmware.velocloud.event_id (encoded when non-zero)
	Event              string // .event, e.g. "EDGE_UP"
	Category           string // .category
	Severity           string // .severity as VCO writes it, e.g. "NOTICE"
	EnterpriseID       int64  // .enterprise_id (encoded when non-zero)
	EnterpriseName     string // .enterprise_name
	EnterpriseUsername string // .enterprise_username
	EdgeName           string // .edge_name
	SegmentName        string // .segment_name
	// Detail is the decoded "detail" JSON document, kept as compact JSON
	// text and encoded as a nested object; DetailRaw is the original string
	// when it did not decode as a JSON object.
	Detail    []byte
	DetailRaw string
}

// Reset clears e for reuse, keeping its buffers' capacity. Strings taken
// from e before the call are invalid afterwards.
func (e *Event) Reset() {
	orig := e.Original[:0]
	sd := e.Syslog.StructuredData[:0]
	labels := e.Labels[:0]
	scratch := e.scratch[:0]
	detail := e.VMware.VeloCloud.Detail[:0]
	*e = Event{}
	e.Original = orig
	e.Syslog.StructuredData = sd
	e.Labels = labels
	e.scratch = scratch
	e.VMware.VeloCloud.Detail = detail
}

// Alias returns b as a string without copying. b must be part of
// e.Original (or otherwise never modified while e is in use).
func (e *Event) Alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Intern copies b into e's scratch space and returns it as a string valid
// until the next Reset. Use it for values that are not a plain slice of
// Original (unescaped text, formatted ids).
func (e *Event) Intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := len(e.scratch)
	if cap(e.scratch)-start < len(b) {
		// Grow into a new array: strings already handed out keep pointing
		// at the old one, which is never written again.
		n := 2*cap(e.scratch) + len(b)
		if n < 256 {
			n = 256
		}
		e.scratch = make([]byte, 0, n)
		start = 0
	}
	e.scratch = append(e.scratch, b...)
	s := e.scratch[start : start+len(b)]
	return unsafe.String(&s[0], len(s))
}

// Time is when the event happened: Timestamp, or Created when the record
// carried no time. It is what @timestamp holds.
func (e *Event) Time() time.Time {
	if e.Timestamp.IsZero() {
		return e.Created
	}
	return e.Timestamp
}

// AddLabel appends a label, replacing the value of an existing key.
func (e *Event) AddLabel(key, value string) {
	for i := range e.Labels {
		if e.Labels[i].Key == key {
			e.Labels[i].Value = value
			return
		}
	}
	e.Labels = append(e.Labels, Label{Key: key, Value: value})
}

// Label returns the value of label key, "" when absent.
func (e *Event) Label(key string) string {
	for i := range e.Labels {
		if e.Labels[i].Key == key {
			return e.Labels[i].Value
		}
	}
	return ""
}

// TenantLabel returns the label that identifies a firewall event's tenant:
// the NSX log label, or the NSX-V rule tag.
func (e *Event) TenantLabel() string {
	if e.VMware.NSX.LogLabel != "" {
		return e.VMware.NSX.LogLabel
	}
	return e.VMware.NSXV.LogLabel
}
