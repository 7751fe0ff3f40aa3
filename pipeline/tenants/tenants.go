// Package tenants is the tenant registry of the tenant-forward stage: the
// VMware Cloud Director (VCD) tenants of a cloud provider with the objects
// VCD derives NSX log labels from (Org VDCs, Data Center Groups, edge
// gateways), their NSX-V Org VDCs, NSX project short log ids, labels listed
// verbatim, and their syslog destinations.
//
// Build computes, from those objects, the parts of each log label that
// identify a tenant and indexes them in one map per label shape, so that
// Registry.Resolve finds the tenant of a firewall event in O(1) without
// scanning tenants. A label that matches no tenant, or more than one, is
// never guessed (DESIGN.md, "Multitenancy: VCD log labels").
//
// Label derivation (fojta.wordpress.com, "Multitenant Logging with VMware
// Cloud Director", 2022-10-03; reference/formats.md §2):
//
//   - gateway firewall: first 10 characters of the UUID of the gateway's
//     parent (Org VDC or Data Center Group) + 5 characters of the gateway
//     name + 5 characters of the gateway UUID;
//   - distributed firewall: first 5 characters of the Data Center Group name
//   - 27 characters of its UUID;
//   - NSX-V: the rule tag is the Org VDC UUID.
//
// Which 5 characters of the gateway name and UUID, and which 27 characters
// of the group UUID VCD takes, is not confirmed by any public source: the
// copy of the post read is cut after "27 character". Resolution therefore
// rests only on the parts that identify the tenant: the 10-character parent
// prefix of a gateway label, the 27-character UUID part of a DFW label (both
// the "first 27" and the "last 27" reading, which cannot be confused: their
// dashes sit at different positions), and the whole NSX-V tag. UUIDs are
// taken in their canonical text form, lower case with dashes, as VCD writes
// them in its API. Labels that follow another rule can be listed verbatim.
package tenants

import (
	"strings"
	"time"
)

// Tenant is one tenant: a VCD organisation as the provider configured or
// discovered it. The zero value is not useful; Build checks the fields.
type Tenant struct {
	// ID identifies the tenant: its metric label, the key of its parked
	// records, and organization.id in the JSON it receives. Required,
	// unique, letters, digits and ".-_" only.
	ID string
	// Name is the display name, organization.name in the JSON it receives.
	Name string
	// VCDOrg is the VCD organisation (name, UUID or URN) whose discovered
	// objects merge into this tenant; empty means ID.
	VCDOrg string

	// OrgVDCs are NSX-T backed Org VDCs: each claims the gateway labels of
	// the gateways it owns (the first 10 characters of its UUID) and, as
	// VCD tags NSX-V rules with the Org VDC UUID, that whole UUID too.
	OrgVDCs []Object
	// DCGroups are Data Center Groups: each claims the DFW labels of its
	// group (the 27-character UUID part) and the gateway labels of the
	// gateways it owns.
	DCGroups []Object
	// EdgeGateways are Org VDC gateways (NSX-T Tier-1). Each claims the
	// gateway labels of its Parent (Org VDC or DC group UUID).
	EdgeGateways []Gateway
	// NSXVOrgVDCs are UUIDs of NSX-V backed Org VDCs: NSX-V rule tags.
	NSXVOrgVDCs []string
	// Projects are NSX project short log ids (NSX 4.1+). NSX appends the
	// project's label to its log messages (NSX 4.1 Administration Guide,
	// "Projects"); where it sits on firewall lines is not confirmed, so
	// vpipe matches it against the log label as written.
	Projects []string
	// Labels are log labels listed verbatim, as the provider reads them on
	// the rules in NSX (the rule's tag field). They match exactly and win
	// over the derived shapes.
	Labels []string

	// Destinations are where the tenant's events go. A tenant without
	// destinations is known (its labels are never treated as unknown) but
	// its events go where unknown ones go.
	Destinations []Destination

	// Discovered is true when some of the tenant's objects came from VCD.
	Discovered bool
}

// Object is an Org VDC or a Data Center Group.
type Object struct {
	Name string
	// ID is the UUID, or a VCD URN ending in it
	// (urn:vcloud:vdc:<uuid>, urn:vcloud:vdcGroup:<uuid>).
	ID string
}

// Gateway is an edge gateway (Org VDC gateway).
type Gateway struct {
	Name string
	ID   string // UUID or urn:vcloud:gateway:<uuid>
	// Parent is the UUID (or URN) of the Org VDC or Data Center Group that
	// owns the gateway (VCD's ownerRef).
	Parent string
}

// Destination is one syslog destination of a tenant, as configured; the
// sinks/tenantsyslog package interprets it. Destinations are comparable
// with ==, which is how a reload tells a changed destination apart.
type Destination struct {
	// Name tells destinations of one tenant apart (metric label, parked
	// record header); default "<transport>:<address>".
	Name      string
	Transport string // udp, tcp or tls
	Address   string // host:port
	Format    string // rfc5424, rfc3164 or json
	// Framing is octet-counting or newline (RFC 6587) for tcp and tls.
	Framing string
	// RateLimit is the most events per second sent (0: unlimited), Burst
	// how many may go at once.
	RateLimit float64
	Burst     int
	// SDID is the SD-ID of the RFC 5424 structured-data element that
	// carries the parsed fields.
	SDID string
	// WriteTimeout bounds one write to the endpoint; DialTimeout one
	// connection attempt; MinBackoff and MaxBackoff the waits between
	// reconnections.
	WriteTimeout, DialTimeout, MinBackoff, MaxBackoff time.Duration
	// SendBuffer is SO_SNDBUF in bytes for tcp and tls (0: the system's):
	// how much a slow endpoint can hold in the kernel before vpipe sees it
	// is slow.
	SendBuffer int
	// MaxMessageBytes cuts longer messages (udp datagrams in particular).
	MaxMessageBytes int
	TLS             TLS
}

// TLS configures a tls destination (RFC 5425).
type TLS struct {
	CAFile     string // verifies the server; empty: the system roots
	CertFile   string // client certificate (mTLS), with KeyFile
	KeyFile    string
	ServerName string // expected server name; default the address's host
	MinVersion string // "1.2" or "1.3"
	// InsecureSkipVerify accepts any server certificate (tests, demos).
	InsecureSkipVerify bool
}

// String names the destination as its metrics do.
func (d Destination) String() string { return d.Name }

// OrgKey is what a discovered organisation is matched against: VCDOrg, or
// ID when empty.
func (t *Tenant) OrgKey() string {
	if t.VCDOrg != "" {
		return t.VCDOrg
	}
	return t.ID
}

// ValidID reports whether s may be a tenant id: 1 to 128 letters, digits,
// '.', '-' or '_'.
func ValidID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// CatchAllID is the id under which the provider's catch-all destination is
// parked and labelled in metrics. No tenant may use it.
const CatchAllID = "catch_all"

// NormalizeUUID returns the canonical form of a UUID (lower case,
// 8-4-4-4-12 with dashes) given bare or as a VCD URN
// ("urn:vcloud:vdc:<uuid>"); ok is false when s is neither.
func NormalizeUUID(s string) (uuid string, ok bool) {
	if strings.HasPrefix(s, "urn:") {
		i := strings.LastIndexByte(s, ':')
		s = s[i+1:]
	}
	if len(s) != 36 {
		return "", false
	}
	var b [36]byte
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			switch {
			case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			case c >= 'A' && c <= 'F':
				c += 'a' - 'A'
			default:
				return "", false
			}
		}
		b[i] = c
	}
	return string(b[:]), true
}
