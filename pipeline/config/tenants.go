package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vpipe/vpipe/pipeline/tenants"
)

// Tenants is the tenant registry: tenants with their Org VDCs, DC groups,
// edge gateways and syslog destinations, optionally filled from VCD. The
// tenant-forward stage routes each firewall event to the tenant its log
// label belongs to (see pipeline/tenants for how labels are computed).
type Tenants struct {
	// List holds tenants in this file. vpipe run reads it again on SIGHUP
	// and when the file changes (cmd/vpipe, listWatch).
	List []Tenant `yaml:"list"`
	// File is a separate YAML file with more tenants under the same key
	// (`list:`); vpipe re-reads it when its content changes (checked every
	// ReloadInterval, default 5s) and on SIGHUP, without dropping events.
	// A relative path is relative to the working directory.
	File           string   `yaml:"file"`
	ReloadInterval Duration `yaml:"reload_interval"`
	// VCD, if set, discovers orgs, Org VDCs, VDC groups and edge gateways
	// from VMware Cloud Director and merges them with the tenants listed
	// here (configured destinations and names win).
	VCD *VCD `yaml:"vcd"`
}

// Tenant is one tenant (a VCD organisation) and where its events go.
type Tenant struct {
	// ID is the tenant's identifier: metric label, parked-record key,
	// organization.id. Required; letters, digits, '.', '-', '_'.
	ID   string `yaml:"id"`
	Name string `yaml:"name"` // organization.name; default ID
	// VCDOrg is the VCD organisation name or UUID whose discovered objects
	// merge into this tenant; default ID.
	VCDOrg       string        `yaml:"vcd_org"`
	OrgVDCs      []NamedUUID   `yaml:"org_vdcs"`      // NSX-T gateway labels and NSX-V rule tags
	DCGroups     []NamedUUID   `yaml:"dc_groups"`     // DFW labels (and gateway labels of group gateways)
	EdgeGateways []EdgeGateway `yaml:"edge_gateways"` // gateway labels of their parent
	NSXVOrgVDCs  []string      `yaml:"nsxv_org_vdcs"` // NSX-V rule tags (Org VDC UUIDs)
	NSXProjects  []string      `yaml:"nsx_projects"`  // NSX 4.1+ project short log ids
	Labels       []string      `yaml:"labels"`        // log labels as written on the NSX rules
	// Syslog are the tenant's destinations; at least one.
	Syslog []SyslogDestination `yaml:"syslog"`
}

// NamedUUID is an Org VDC or Data Center Group: its name and UUID (or VCD
// URN).
type NamedUUID struct {
	Name string `yaml:"name"`
	ID   string `yaml:"id"`
}

// EdgeGateway is an Org VDC edge gateway.
type EdgeGateway struct {
	Name string `yaml:"name"`
	ID   string `yaml:"id"`
	// Parent is the UUID of the Org VDC or Data Center Group owning it.
	Parent string `yaml:"parent"`
}

// SyslogDestination is one syslog server an event goes to.
type SyslogDestination struct {
	Name      string `yaml:"name"`      // default "<transport>:<address>"
	Transport string `yaml:"transport"` // udp, tcp or tls
	Address   string `yaml:"address"`   // host:port
	// Format is rfc5424 (default; the parsed fields in a structured-data
	// element), rfc3164 or json (the event as JSON, one a line).
	Format string `yaml:"format"`
	// Framing is for tcp and tls: octet-counting (RFC 6587 §3.4.1, the
	// default, and what RFC 5425 requires for syslog over TLS) or newline
	// (the default for json).
	Framing string `yaml:"framing"`
	// RateLimit caps events per second (0: unlimited); Burst is how many
	// may go at once (default the rate, at least 1).
	RateLimit float64 `yaml:"rate_limit"`
	Burst     int     `yaml:"burst"`
	// SDID is the SD-ID of the RFC 5424 element with the parsed fields
	// (default vpipe@32473; 32473 is the documentation enterprise number
	// of RFC 5612: use your own).
	SDID         string   `yaml:"sd_id"`
	WriteTimeout Duration `yaml:"write_timeout"` // default 10s
	DialTimeout  Duration `yaml:"dial_timeout"`  // default 5s
	MinBackoff   Duration `yaml:"min_backoff"`   // between reconnections, default 500ms
	MaxBackoff   Duration `yaml:"max_backoff"`   // default 30s
	// SendBufferBytes sets SO_SNDBUF for tcp and tls (0: the system's).
	SendBufferBytes int `yaml:"send_buffer_bytes"`
	// MaxMessageBytes cuts longer messages (default 8192 for udp, 1 MiB
	// otherwise).
	MaxMessageBytes int            `yaml:"max_message_bytes"`
	TLS             DestinationTLS `yaml:"tls"`
}

// DestinationTLS configures a tls destination (RFC 5425).
type DestinationTLS struct {
	CAFile     string `yaml:"ca_file"`     // CA that signed the server's certificate; default the system roots
	CertFile   string `yaml:"cert_file"`   // client certificate for mTLS, with key_file
	KeyFile    string `yaml:"key_file"`    //
	ServerName string `yaml:"server_name"` // default the address's host
	MinVersion string `yaml:"min_version"` // "1.2" (default) or "1.3"
	// InsecureSkipVerify accepts any server certificate: demos only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// VCD configures tenant discovery from VMware Cloud Director's OpenAPI
// (cloudapi/1.0.0), authenticated with an API token.
type VCD struct {
	URL string `yaml:"url"` // https://vcd.example.com
	// Org is the organisation the API token belongs to; "System" (the
	// default) is the provider and sees every organisation.
	Org string `yaml:"org"`
	// The API token, from a file or an environment variable (one of them).
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// APIVersion is sent in the Accept header (default 37.2).
	APIVersion      string    `yaml:"api_version"`
	RefreshInterval Duration  `yaml:"refresh_interval"` // default 5m
	Timeout         Duration  `yaml:"timeout"`          // one whole discovery, default 1m
	PageSize        int       `yaml:"page_size"`        // 1..128, default 128
	TLS             ClientTLS `yaml:"tls"`
}

// TenantForwardStage configures the tenant-forward stage: a consumer group
// on <prefix>firewall that sends each event to its tenant's syslog
// destinations, parking what a slow or unreachable destination cannot take
// on <prefix><parked_topic> and replaying it in order when it is back.
type TenantForwardStage struct {
	GroupID   string `yaml:"group_id"`   // default vpipe-tenant-forward
	BatchSize int    `yaml:"batch_size"` // records per batch, default 2000
	// Unknown says where events go whose label matches no tenant, several,
	// or a tenant without destinations, and events without a label:
	// catch_all (to the catch_all destinations) or drop (counted in
	// vpipe_tenant_unresolved_total). Default catch_all when catch_all
	// destinations are set, else drop.
	Unknown  string              `yaml:"unknown"`
	CatchAll []SyslogDestination `yaml:"catch_all"`
	// QueueSize bounds each destination's queue (default 4096 events):
	// once full, the destination's events are parked.
	QueueSize int `yaml:"queue_size"`
	// DeliverTimeout is the longest a batch waits for a destination
	// before the events it has not sent are parked (default 1s).
	// StallTimeout ends that wait early for a destination whose sender
	// has been blocked this long in a write, a connection attempt or the
	// rate limit: a slow endpoint (default 100ms).
	DeliverTimeout Duration `yaml:"deliver_timeout"`
	StallTimeout   Duration `yaml:"stall_timeout"`
	// ParkedTopic is the topic (without prefix) of parked events, keyed by
	// tenant (default parked).
	ParkedTopic string       `yaml:"parked_topic"`
	Replay      TenantReplay `yaml:"replay"`
}

// TenantReplay configures the replay of parked events.
type TenantReplay struct {
	GroupID   string   `yaml:"group_id"`   // default vpipe-tenant-forward-replay
	BatchSize int      `yaml:"batch_size"` // default 500
	Timeout   Duration `yaml:"timeout"`    // how long a replayed batch waits for a destination, default 1s
	// Share is how many parked records the replay may read per live
	// record while the stage is behind (default 0.1; 1: as many; the
	// replay runs at full speed once the stage has caught up).
	Share float64 `yaml:"share"`
}

// Destination defaults.
const (
	DefaultSDID         = "vpipe@32473"
	defaultWriteTimeout = 10 * time.Second
	defaultDialTimeout  = 5 * time.Second
	defaultMinBackoff   = 500 * time.Millisecond
	defaultMaxBackoff   = 30 * time.Second
)

// fillTenants sets the defaults of the tenant registry and its stage.
func (c *Config) fillTenants() {
	if t := c.Tenants; t != nil {
		if t.ReloadInterval == 0 {
			t.ReloadInterval = Duration(5 * time.Second)
		}
		fillTenantList(t.List)
		if v := t.VCD; v != nil {
			if v.Org == "" {
				v.Org = "System"
			}
			if v.APIVersion == "" {
				v.APIVersion = "37.2"
			}
			if v.RefreshInterval == 0 {
				v.RefreshInterval = Duration(5 * time.Minute)
			}
			if v.Timeout == 0 {
				v.Timeout = Duration(time.Minute)
			}
			if v.PageSize == 0 {
				v.PageSize = 128
			}
		}
	}
	if s := c.Stages.TenantForward; s != nil {
		if s.GroupID == "" {
			s.GroupID = "vpipe-tenant-forward"
		}
		if s.BatchSize == 0 {
			s.BatchSize = 2000
		}
		if s.Unknown == "" {
			s.Unknown = "drop"
			if len(s.CatchAll) > 0 {
				s.Unknown = "catch_all"
			}
		}
		for i := range s.CatchAll {
			s.CatchAll[i].fill()
		}
		if s.QueueSize == 0 {
			s.QueueSize = 4096
		}
		if s.DeliverTimeout == 0 {
			s.DeliverTimeout = Duration(time.Second)
		}
		if s.StallTimeout == 0 {
			s.StallTimeout = Duration(100 * time.Millisecond)
		}
		if s.ParkedTopic == "" {
			s.ParkedTopic = "parked"
		}
		if s.Replay.GroupID == "" {
			s.Replay.GroupID = "vpipe-tenant-forward-replay"
		}
		if s.Replay.BatchSize == 0 {
			s.Replay.BatchSize = 500
		}
		if s.Replay.Timeout == 0 {
			s.Replay.Timeout = Duration(time.Second)
		}
		if s.Replay.Share == 0 {
			s.Replay.Share = 0.1
		}
	}
}

func fillTenantList(list []Tenant) {
	for i := range list {
		t := &list[i]
		if t.Name == "" {
			t.Name = t.ID
		}
		for j := range t.Syslog {
			t.Syslog[j].fill()
		}
	}
}

func (d *SyslogDestination) fill() {
	if d.Name == "" {
		d.Name = d.Transport + ":" + d.Address
	}
	if d.Format == "" {
		d.Format = "rfc5424"
	}
	if d.Framing == "" && d.Transport != "udp" {
		d.Framing = "octet-counting"
		if d.Format == "json" {
			// JSON lines; receivers that detect octet-counting look for
			// the "<" of a syslog message after the count.
			d.Framing = "newline"
		}
	}
	if d.RateLimit > 0 && d.Burst == 0 {
		d.Burst = max(1, int(math.Ceil(d.RateLimit)))
	}
	if d.SDID == "" {
		d.SDID = DefaultSDID
	}
	if d.WriteTimeout == 0 {
		d.WriteTimeout = Duration(defaultWriteTimeout)
	}
	if d.DialTimeout == 0 {
		d.DialTimeout = Duration(defaultDialTimeout)
	}
	if d.MinBackoff == 0 {
		d.MinBackoff = Duration(defaultMinBackoff)
	}
	if d.MaxBackoff == 0 {
		d.MaxBackoff = Duration(defaultMaxBackoff)
	}
	if d.MaxMessageBytes == 0 {
		d.MaxMessageBytes = 1 << 20
		if d.Transport == "udp" {
			d.MaxMessageBytes = 8192
		}
	}
	if d.Transport == "tls" && d.TLS.MinVersion == "" {
		d.TLS.MinVersion = "1.2"
	}
}

// validateTenants adds the problems of the tenant registry and its stage.
func (c *Config) validateTenants(p *Problems) {
	t := c.Tenants
	if t != nil {
		for i := range t.List {
			validateTenant(p, fmt.Sprintf("tenants.list[%d]", i), &t.List[i])
		}
		if t.ReloadInterval < 0 {
			p.add("tenants.reload_interval", "must not be negative")
		}
		var fileTenants []Tenant
		if t.File != "" {
			data, err := os.ReadFile(t.File)
			if err != nil {
				p.add("tenants.file", "%v", err)
			} else if fileTenants, err = decodeTenantsFile(data); err != nil {
				var fp *Problems
				if errors.As(err, &fp) {
					for _, s := range fp.List {
						p.add("tenants.file", "%s: %s", t.File, s)
					}
				} else {
					p.add("tenants.file", "%s: %v", t.File, err)
				}
				fileTenants = nil
			}
		}
		checkClaims(p, t.List, fileTenants, t.File)
		if v := t.VCD; v != nil {
			validateVCD(p, v)
		}
	}
	s := c.Stages.TenantForward
	if s == nil {
		return
	}
	const sp = "stages.tenant_forward"
	if t == nil && len(s.CatchAll) == 0 {
		p.add(sp, "no tenants: configure tenants (list, file or vcd) or a catch_all destination")
	}
	switch s.Unknown {
	case "drop":
	case "catch_all":
		if len(s.CatchAll) == 0 {
			p.add(sp+".catch_all", "missing: unknown is catch_all")
		}
	default:
		p.add(sp+".unknown", "%q is not catch_all or drop", s.Unknown)
	}
	validateDestinations(p, sp+".catch_all", s.CatchAll)
	if s.BatchSize < 1 {
		p.add(sp+".batch_size", "must be at least 1")
	}
	if s.QueueSize < 1 {
		p.add(sp+".queue_size", "must be at least 1")
	}
	if s.DeliverTimeout <= 0 {
		p.add(sp+".deliver_timeout", "must be positive")
	}
	if s.StallTimeout <= 0 || s.StallTimeout > s.DeliverTimeout {
		p.add(sp+".stall_timeout", "must be positive and at most deliver_timeout")
	}
	if !topicName(s.ParkedTopic) {
		p.add(sp+".parked_topic", "%q is not a topic name", s.ParkedTopic)
	}
	if s.Replay.BatchSize < 1 {
		p.add(sp+".replay.batch_size", "must be at least 1")
	}
	if s.Replay.Timeout <= 0 {
		p.add(sp+".replay.timeout", "must be positive")
	}
	if s.Replay.Share < 0.01 || s.Replay.Share > 1 {
		p.add(sp+".replay.share", "%v is outside 0.01..1", s.Replay.Share)
	}
	if s.GroupID == s.Replay.GroupID {
		p.add(sp+".replay.group_id", "%q is also the stage's group_id", s.GroupID)
	}
}

func topicName(s string) bool {
	if s == "" || len(s) > 200 {
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

// validateTenant checks one tenant's own values; label claims across
// tenants are checkClaims'.
func validateTenant(p *Problems, path string, t *Tenant) {
	switch {
	case t.ID == "":
		p.add(path+".id", "missing")
	case t.ID == tenants.CatchAllID:
		p.add(path+".id", "%q is reserved for the catch-all destination", t.ID)
	case !tenants.ValidID(t.ID):
		p.add(path+".id", "%q: use letters, digits, '.', '-' and '_' (at most 128)", t.ID)
	}
	uuid := func(field, v string) {
		if v == "" {
			p.add(path+"."+field, "missing")
		} else if _, ok := tenants.NormalizeUUID(v); !ok {
			p.add(path+"."+field, "%q is not a UUID (or a VCD URN ending in one)", v)
		}
	}
	for i, o := range t.OrgVDCs {
		uuid(fmt.Sprintf("org_vdcs[%d].id", i), o.ID)
	}
	for i, g := range t.DCGroups {
		uuid(fmt.Sprintf("dc_groups[%d].id", i), g.ID)
		if g.Name == "" {
			p.add(fmt.Sprintf("%s.dc_groups[%d].name", path, i), "missing: DFW labels start with the group name")
		}
	}
	for i, g := range t.EdgeGateways {
		uuid(fmt.Sprintf("edge_gateways[%d].id", i), g.ID)
		uuid(fmt.Sprintf("edge_gateways[%d].parent", i), g.Parent)
	}
	for i, v := range t.NSXVOrgVDCs {
		uuid(fmt.Sprintf("nsxv_org_vdcs[%d]", i), v)
	}
	for i, v := range t.NSXProjects {
		if v == "" {
			p.add(fmt.Sprintf("%s.nsx_projects[%d]", path, i), "empty")
		}
	}
	for i, v := range t.Labels {
		if v == "" {
			p.add(fmt.Sprintf("%s.labels[%d]", path, i), "empty")
		}
	}
	if len(t.Syslog) == 0 {
		p.add(path+".syslog", "missing: a tenant needs at least one destination")
	}
	validateDestinations(p, path+".syslog", t.Syslog)
}

func validateDestinations(p *Problems, path string, ds []SyslogDestination) {
	names := map[string]int{}
	for i := range ds {
		d := &ds[i]
		dp := fmt.Sprintf("%s[%d]", path, i)
		if j, dup := names[d.Name]; dup {
			p.add(dp+".name", "%q is also the name of %s[%d]", d.Name, path, j)
		}
		names[d.Name] = i
		switch d.Transport {
		case "udp", "tcp", "tls":
		case "":
			p.add(dp+".transport", "missing (udp, tcp or tls)")
		default:
			p.add(dp+".transport", "%q is not one of udp, tcp, tls", d.Transport)
		}
		checkAddress(p, dp+".address", d.Address)
		switch d.Format {
		case "rfc5424", "rfc3164", "json":
		default:
			p.add(dp+".format", "%q is not one of rfc5424, rfc3164, json", d.Format)
		}
		switch {
		case d.Transport == "udp" && d.Framing != "":
			p.add(dp+".framing", "is for tcp and tls: a datagram holds one message")
		case d.Transport == "udp":
		case d.Framing != "octet-counting" && d.Framing != "newline":
			p.add(dp+".framing", "%q is not octet-counting or newline", d.Framing)
		}
		if d.RateLimit < 0 || math.IsNaN(d.RateLimit) || math.IsInf(d.RateLimit, 0) {
			p.add(dp+".rate_limit", "must be a number of events per second, 0 for no limit")
		}
		if d.Burst < 0 {
			p.add(dp+".burst", "must not be negative")
		}
		if !validSDID(d.SDID) {
			p.add(dp+".sd_id", "%q is not an RFC 5424 SD-ID (name@number, printable ASCII without '=', ' ', ']', '\"')", d.SDID)
		}
		if d.WriteTimeout <= 0 || d.DialTimeout <= 0 || d.MinBackoff <= 0 || d.MaxBackoff <= 0 {
			p.add(dp, "write_timeout, dial_timeout, min_backoff and max_backoff must be positive")
		} else if d.MaxBackoff < d.MinBackoff {
			p.add(dp+".max_backoff", "%s is below min_backoff %s", d.MaxBackoff.D(), d.MinBackoff.D())
		}
		if d.SendBufferBytes < 0 {
			p.add(dp+".send_buffer_bytes", "must not be negative")
		}
		if d.MaxMessageBytes < 480 {
			// RFC 5424 §6.1: receivers must accept at least 480 octets.
			p.add(dp+".max_message_bytes", "%d is below 480", d.MaxMessageBytes)
		}
		t := d.TLS
		if d.Transport == "tls" {
			checkFile(p, dp+".tls.ca_file", t.CAFile)
			checkFile(p, dp+".tls.cert_file", t.CertFile)
			checkFile(p, dp+".tls.key_file", t.KeyFile)
			if (t.CertFile == "") != (t.KeyFile == "") {
				p.add(dp+".tls", "cert_file and key_file go together")
			}
			if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
				p.add(dp+".tls.min_version", "%q is not 1.2 or 1.3", t.MinVersion)
			}
		} else if t != (DestinationTLS{}) {
			p.add(dp+".tls", "set on a %s destination; use transport: tls", d.Transport)
		}
	}
}

// checkAddress adds a problem unless s is host:port.
func checkAddress(p *Problems, path, s string) {
	if s == "" {
		p.add(path, "missing")
		return
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			p.add(path, "missing port")
		} else {
			p.add(path, "%q: want host:port", s)
		}
		return
	}
	if host == "" {
		p.add(path, "%q: missing host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add(path, "%q: bad port", s)
	}
}

// validSDID reports whether s is an RFC 5424 SD-NAME with an @: 1 to 32
// printable US-ASCII characters except '=', ' ', ']' and '"'.
func validSDID(s string) bool {
	if len(s) == 0 || len(s) > 32 || !strings.Contains(s, "@") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 32 || c >= 127 || c == '=' || c == ']' || c == '"' {
			return false
		}
	}
	return true
}

// checkClaims reports what tenants.Build finds across the listed tenants
// and those of the file: duplicate ids and labels two tenants claim.
// Invalid values were reported already.
func checkClaims(p *Problems, list, file []Tenant, fileName string) {
	all := make([]tenants.Tenant, 0, len(list)+len(file))
	for i := range list {
		all = append(all, list[i].Tenant())
	}
	for i := range file {
		all = append(all, file[i].Tenant())
	}
	where := func(i int, field string) string {
		if i < len(list) {
			return fmt.Sprintf("tenants.list[%d].%s", i, field)
		}
		return fmt.Sprintf("tenants.file: %s: list[%d].%s", fileName, i-len(list), field)
	}
	_, probs := tenants.Build(all)
	for _, pr := range probs {
		if pr.Other < 0 {
			continue // an invalid value, reported by validateTenant
		}
		if pr.Tenant >= len(list) && pr.Other >= len(list) {
			continue // within the file: decodeTenantsFile reported it
		}
		p.add(where(pr.Tenant, pr.Field), "%s (%s)", pr.Msg, where(pr.Other, pr.OtherField))
	}
}

func validateVCD(p *Problems, v *VCD) {
	const vp = "tenants.vcd"
	if v.URL == "" {
		p.add(vp+".url", "missing")
	} else if u, err := url.Parse(v.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.add(vp+".url", "%q: want https://host[:port]", v.URL)
	}
	switch {
	case v.TokenFile == "" && v.TokenEnv == "":
		p.add(vp, "token_file or token_env: an API token is required")
	case v.TokenFile != "" && v.TokenEnv != "":
		p.add(vp, "set token_file or token_env, not both")
	}
	checkFile(p, vp+".token_file", v.TokenFile)
	v.TLS.check(p, vp+".tls")
	if v.Org == "" || strings.ContainsAny(v.Org, "/?#") {
		p.add(vp+".org", "%q is not an organisation name", v.Org)
	}
	if v.RefreshInterval <= 0 {
		p.add(vp+".refresh_interval", "must be positive")
	}
	if v.Timeout <= 0 {
		p.add(vp+".timeout", "must be positive")
	}
	if v.PageSize < 1 || v.PageSize > 128 {
		p.add(vp+".page_size", "%d is outside 1..128 (the VCD maximum)", v.PageSize)
	}
}

// Token returns the VCD API token from its file or environment variable,
// trimmed.
func (v *VCD) Token() (string, error) {
	s, err := Secret("tenants.vcd.token", v.TokenFile, v.TokenEnv)
	if err == nil && s == "" {
		err = errors.New("tenants.vcd: no token configured")
	}
	return s, err
}

// tenantsFile is the shape of the separate tenants file.
type tenantsFile struct {
	List []Tenant `yaml:"list"`
}

// ParseTenantsFile decodes a separate tenants file strictly (unknown keys
// are errors), fills defaults and validates it on its own, as
// decodeTenantsFile does, and returns its tenants in registry form. It is
// the reload path of tenants.Manager. Problems name key paths inside the
// file ("list[2].syslog[0].address: missing port").
func ParseTenantsFile(data []byte) ([]tenants.Tenant, error) {
	list, err := decodeTenantsFile(data)
	if err != nil {
		return nil, err
	}
	out := make([]tenants.Tenant, len(list))
	for i := range list {
		out[i] = list[i].Tenant()
	}
	return out, nil
}

func decodeTenantsFile(data []byte) ([]Tenant, error) {
	var f tenantsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	fillTenantList(f.List)
	p := &Problems{}
	for i := range f.List {
		validateTenant(p, fmt.Sprintf("list[%d]", i), &f.List[i])
	}
	all := make([]tenants.Tenant, len(f.List))
	for i := range f.List {
		all[i] = f.List[i].Tenant()
	}
	_, probs := tenants.Build(all)
	for _, pr := range probs {
		if pr.Other >= 0 {
			p.add(fmt.Sprintf("list[%d].%s", pr.Tenant, pr.Field), "%s (list[%d].%s)", pr.Msg, pr.Other, pr.OtherField)
		}
	}
	if len(p.List) > 0 {
		return nil, p
	}
	return f.List, nil
}

// Tenant converts a configured tenant to its registry form.
func (t *Tenant) Tenant() tenants.Tenant {
	out := tenants.Tenant{
		ID: t.ID, Name: t.Name, VCDOrg: t.VCDOrg,
		NSXVOrgVDCs: t.NSXVOrgVDCs, Projects: t.NSXProjects, Labels: t.Labels,
	}
	for _, o := range t.OrgVDCs {
		out.OrgVDCs = append(out.OrgVDCs, tenants.Object{Name: o.Name, ID: o.ID})
	}
	for _, o := range t.DCGroups {
		out.DCGroups = append(out.DCGroups, tenants.Object{Name: o.Name, ID: o.ID})
	}
	for _, g := range t.EdgeGateways {
		out.EdgeGateways = append(out.EdgeGateways, tenants.Gateway{Name: g.Name, ID: g.ID, Parent: g.Parent})
	}
	for i := range t.Syslog {
		out.Destinations = append(out.Destinations, t.Syslog[i].Destination())
	}
	return out
}

// Destination converts a configured destination to its registry form.
func (d *SyslogDestination) Destination() tenants.Destination {
	return tenants.Destination{
		Name: d.Name, Transport: d.Transport, Address: d.Address, Format: d.Format, Framing: d.Framing,
		RateLimit: d.RateLimit, Burst: d.Burst, SDID: d.SDID,
		WriteTimeout: d.WriteTimeout.D(), DialTimeout: d.DialTimeout.D(),
		MinBackoff: d.MinBackoff.D(), MaxBackoff: d.MaxBackoff.D(),
		SendBuffer: d.SendBufferBytes, MaxMessageBytes: d.MaxMessageBytes,
		TLS: tenants.TLS{
			CAFile: d.TLS.CAFile, CertFile: d.TLS.CertFile, KeyFile: d.TLS.KeyFile,
			ServerName: d.TLS.ServerName, MinVersion: d.TLS.MinVersion, InsecureSkipVerify: d.TLS.InsecureSkipVerify,
		},
	}
}

// TenantList returns the tenants listed in the main configuration in
// registry form (none when tenants is not configured).
func (c *Config) TenantList() []tenants.Tenant {
	if c.Tenants == nil {
		return nil
	}
	out := make([]tenants.Tenant, len(c.Tenants.List))
	for i := range c.Tenants.List {
		out[i] = c.Tenants.List[i].Tenant()
	}
	return out
}
