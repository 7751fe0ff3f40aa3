package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// NSXGroupsSource configures one NSX group-membership watcher
// (sources.nsx_groups[], pipeline/nsxgroups): the groups it polls on one
// NSX Manager and how to reach it. Secrets come from a file or an
// environment variable, never from this file.
type NSXGroupsSource struct {
	// Name identifies the source: events (labels.nsx_source), checkpoint
	// keys, metric label. Required, unique among the nsx_groups sources.
	Name string `yaml:"name"`
	// URL is the NSX Manager, https://nsx.example.com. Required, except
	// with auth vmc and vmc.org_id and vmc.sddc_id set.
	URL string `yaml:"url"`
	// API is policy (default: NSX-T, NSX 4.x, VMware Cloud on AWS) or
	// nsxv (NSX for vSphere 6.x security groups).
	API string `yaml:"api"`
	// Auth is basic (default), session or vmc.
	Auth string `yaml:"auth"`
	// Username with PasswordFile or PasswordEnv, for basic and session.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// VMC configures auth vmc.
	VMC NSXGroupsVMC `yaml:"vmc"`
	TLS ClientTLS    `yaml:"tls"`
	// Interval between two polls of a group (default 10s, at least 1s).
	Interval Duration `yaml:"interval"`
	// Aliases are the other names of this NSX Manager, for the early polls
	// that tag and group changes trigger: the host names its nodes log
	// under (the HOSTNAME of their audit log lines) and the host other
	// stages reach it by (tag_sync.nsx.url, jit_access.nsx.url). The url's
	// host is one already; a bare name matches a fully qualified one that
	// starts with it.
	Aliases []string `yaml:"aliases"`
	// Groups to watch; at least one.
	Groups []NSXGroup `yaml:"groups"`
}

// NSXGroupsVMC configures VMware Cloud on AWS access for an nsx_groups
// source: a CSP API token, and the org and SDDC whose NSX reverse proxy to
// use when url is not set.
type NSXGroupsVMC struct {
	RefreshTokenFile string `yaml:"refresh_token_file"`
	RefreshTokenEnv  string `yaml:"refresh_token_env"`
	OrgID            string `yaml:"org_id"`
	SDDCID           string `yaml:"sddc_id"`
}

// NSXGroup is one watched group.
type NSXGroup struct {
	// ID is, for the policy api, the group's path
	// (/infra/domains/default/groups/quarantine) or its id in Domain
	// (filled to the path); for nsxv, the security group's objectId
	// (securitygroup-10). Required, unique in its source.
	ID string `yaml:"id"`
	// Domain is the policy domain of an ID that is not a path (default
	// "default").
	Domain string `yaml:"domain"`
	// Name is the display name written into events; default the ID.
	Name string `yaml:"name"`
}

// ForensicsStage configures the forensics stage (sinks/forensics): what
// it does in vCenter when a VM joins or leaves one of its groups.
type ForensicsStage struct {
	// VCenter is where the quarantined VMs are.
	VCenter ForensicsVCenter `yaml:"vcenter"`
	// Groups are the quarantine groups; at least one. Each names a group
	// of sources.nsx_groups.
	Groups   []ForensicsGroup  `yaml:"groups"`
	Snapshot ForensicsSnapshot `yaml:"snapshot"`
	Mirror   ForensicsMirror   `yaml:"mirror"`
	// GroupID is the consumer group (default "vpipe-forensics").
	GroupID string `yaml:"group_id"`
	// BatchSize is the most records per sink write (default 50).
	BatchSize int `yaml:"batch_size"`
	// MaxRetries before a record goes to the DLQ; 0 (default) retries
	// forever, so the stage stalls visibly while vCenter is down.
	MaxRetries int `yaml:"max_retries"`
}

// ForensicsVCenter says how the forensics stage reaches vCenter.
type ForensicsVCenter struct {
	// URL, https://vcenter.example.com. Required.
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	// PasswordFile or PasswordEnv holds the password (one of them).
	PasswordFile string    `yaml:"password_file"`
	PasswordEnv  string    `yaml:"password_env"`
	TLS          ClientTLS `yaml:"tls"`
}

// ForensicsGroup is one quarantine group of the forensics stage.
type ForensicsGroup struct {
	// Group names a group of sources.nsx_groups by its id (as written
	// there, or its filled path) or its name. Filled to the group's id.
	Group string `yaml:"group"`
	// Webhook, when set, receives a JSON document after each join and
	// leave of this group (ticket system, chat).
	Webhook *ForensicsWebhook `yaml:"webhook"`
}

// ForensicsWebhook is a group's webhook.
type ForensicsWebhook struct {
	// URL to POST to (http or https). Required.
	URL string `yaml:"url"`
	// BearerTokenFile or BearerTokenEnv, when set, holds a token sent as
	// "Authorization: Bearer".
	BearerTokenFile string `yaml:"bearer_token_file"`
	BearerTokenEnv  string `yaml:"bearer_token_env"`
	// Timeout bounds one request (default 10s).
	Timeout Duration `yaml:"timeout"`
}

// ForensicsSnapshot configures the snapshot taken on join.
type ForensicsSnapshot struct {
	// Enabled (default true).
	Enabled *bool `yaml:"enabled"`
	// Memory includes the VM's memory (default false).
	Memory bool `yaml:"memory"`
	// Quiesce quiesces the guest file system through VMware Tools
	// (default false).
	Quiesce bool `yaml:"quiesce"`
	// Retention deletes the snapshots vpipe took once they are older than
	// this ("720h" for 30 days); 0 (default) keeps them.
	Retention Duration `yaml:"retention"`
	// RetentionInterval is the time between two retention sweeps
	// (default 1h).
	RetentionInterval Duration `yaml:"retention_interval"`
}

// ForensicsMirror configures the port-mirroring session set up on join.
type ForensicsMirror struct {
	// Enabled (default true).
	Enabled *bool `yaml:"enabled"`
	// Destination is the IP address of the analyser that receives the
	// encapsulated traffic. Required when enabled.
	Destination string `yaml:"destination"`
	// Encapsulation is gre (default), erspan2 or erspan3.
	Encapsulation string `yaml:"encapsulation"`
	// ErspanID is the ERSPAN session id, 0–1023 (erspan2, erspan3).
	ErspanID int `yaml:"erspan_id"`
	// SamplingRate mirrors one packet in n, 1–65535 (default 1: all).
	SamplingRate int `yaml:"sampling_rate"`
	// SnapshotLength mirrors at most this many bytes of each frame,
	// 60–65535; 0 (default) mirrors whole frames.
	SnapshotLength int `yaml:"snapshot_length"`
}

// On reports whether snapshots are enabled.
func (s ForensicsSnapshot) On() bool { return s.Enabled == nil || *s.Enabled }

// On reports whether mirroring is enabled.
func (m ForensicsMirror) On() bool { return m.Enabled == nil || *m.Enabled }

// forensicsConfig returns where Sources.NSXGroups and Stages.Forensics
// live.
func (c *Config) forensicsConfig() (*[]NSXGroupsSource, **ForensicsStage) {
	return &c.Sources.NSXGroups, &c.Stages.Forensics
}

// fillForensics sets the defaults of sources.nsx_groups and
// stages.forensics.
func (c *Config) fillForensics() {
	src, st := c.forensicsConfig()
	var sources []NSXGroupsSource
	if src != nil {
		fillNSXGroups(*src)
		sources = *src
	}
	if st != nil && *st != nil {
		(*st).fill(sources)
	}
}

// validateForensics adds the problems of sources.nsx_groups and
// stages.forensics.
func (c *Config) validateForensics(p *Problems) {
	src, st := c.forensicsConfig()
	var sources []NSXGroupsSource
	if src != nil {
		sources = *src
		validateNSXGroups(p, sources)
	}
	if st != nil && *st != nil {
		(*st).validate(p, sources)
	}
}

// NSX APIs of an nsx_groups source.
const (
	nsxGroupsPolicy = "policy"
	nsxGroupsNSXV   = "nsxv"
)

func fillNSXGroups(list []NSXGroupsSource) {
	for i := range list {
		s := &list[i]
		if s.API == "" {
			s.API = nsxGroupsPolicy
		}
		if s.Auth == "" {
			s.Auth = "basic"
		}
		if s.Interval == 0 {
			s.Interval = Duration(10 * time.Second)
		}
		for j := range s.Groups {
			g := &s.Groups[j]
			if s.API == nsxGroupsPolicy && g.ID != "" && !strings.HasPrefix(g.ID, "/") {
				if g.Domain == "" {
					g.Domain = "default"
				}
				g.ID = "/infra/domains/" + g.Domain + "/groups/" + g.ID
			}
			if g.Name == "" {
				g.Name = g.ID
			}
		}
	}
}

func validateNSXGroups(p *Problems, list []NSXGroupsSource) {
	names := map[string]int{}
	for i := range list {
		s := &list[i]
		path := fmt.Sprintf("sources.nsx_groups[%d]", i)
		if s.Name == "" {
			p.add(path+".name", "missing")
		} else if j, dup := names[s.Name]; dup {
			p.add(path+".name", "%q is also the name of sources.nsx_groups[%d]", s.Name, j)
		} else {
			names[s.Name] = i
		}
		switch s.API {
		case nsxGroupsPolicy, nsxGroupsNSXV:
		default:
			p.add(path+".api", "%q is not one of policy, nsxv", s.API)
		}
		switch s.Auth {
		case "basic", "session":
			if s.Username == "" {
				p.add(path+".username", "missing for %s auth", s.Auth)
			}
			checkSecret(p, path, "password", s.PasswordFile, s.PasswordEnv, true)
			if s.URL == "" {
				p.add(path+".url", "missing")
			}
		case "vmc":
			checkSecret(p, path+".vmc", "refresh_token", s.VMC.RefreshTokenFile, s.VMC.RefreshTokenEnv, true)
			if s.URL == "" && (s.VMC.OrgID == "" || s.VMC.SDDCID == "") {
				p.add(path+".url", "missing: set it to the SDDC's NSX reverse-proxy URL, or set vmc.org_id and vmc.sddc_id")
			}
			if s.API != nsxGroupsPolicy {
				p.add(path+".api", "VMware Cloud on AWS offers the policy api only")
			}
		default:
			p.add(path+".auth", "%q is not one of basic, session, vmc", s.Auth)
		}
		if s.API == nsxGroupsNSXV && s.Auth != "basic" {
			p.add(path+".auth", "the nsxv api takes basic auth")
		}
		if s.URL != "" {
			checkForensicsURL(p, path+".url", s.URL, false)
		}
		s.TLS.check(p, path+".tls")
		if s.Interval < Duration(time.Second) {
			p.add(path+".interval", "%s is below 1s", s.Interval.D())
		}
		for j, a := range s.Aliases {
			if !isHostName(a) {
				p.add(fmt.Sprintf("%s.aliases[%d]", path, j), "%q: want a host name or address (no scheme, port or path)", a)
			}
		}
		if len(s.Groups) == 0 {
			p.add(path+".groups", "missing: list the groups to watch")
		}
		ids := map[string]int{}
		for j, g := range s.Groups {
			gp := fmt.Sprintf("%s.groups[%d]", path, j)
			switch {
			case g.ID == "":
				p.add(gp+".id", "missing")
				continue
			case s.API == nsxGroupsPolicy && !isPolicyGroupPath(g.ID):
				p.add(gp+".id", "%q: want a group id or /infra/domains/<domain>/groups/<id>", g.ID)
			case s.API == nsxGroupsNSXV && strings.Contains(g.ID, "/"):
				p.add(gp+".id", "%q: want an NSX-V security group id such as securitygroup-10", g.ID)
			case s.API == nsxGroupsNSXV && g.Domain != "":
				p.add(gp+".domain", "only for the policy api")
			}
			if k, dup := ids[g.ID]; dup {
				p.add(gp+".id", "%q is also %s.groups[%d]", g.ID, path, k)
			}
			ids[g.ID] = j
		}
	}
}

// isHostName reports whether s is a host name or an IP address: no
// scheme, port, path or space.
func isHostName(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return s != "" && !strings.ContainsAny(s, ":/@ \t[]?#")
}

// isPolicyGroupPath reports whether s is /infra/domains/<domain>/groups/<id>.
func isPolicyGroupPath(s string) bool {
	rest, ok := strings.CutPrefix(s, "/infra/domains/")
	if !ok {
		return false
	}
	domain, id, ok := strings.Cut(rest, "/groups/")
	return ok && domain != "" && !strings.Contains(domain, "/") && id != "" && !strings.Contains(id, "/")
}

// resolveNSXGroup returns the id of the nsx_groups group that ref names (by
// id as written, by filled id, or by name), and how many groups it names.
func resolveNSXGroup(sources []NSXGroupsSource, ref string) (id string, n int) {
	seen := map[string]bool{}
	for _, s := range sources {
		for _, g := range s.Groups {
			short := g.ID[strings.LastIndexByte(g.ID, '/')+1:]
			if (g.ID == ref || g.Name == ref || (s.API == nsxGroupsPolicy && short == ref)) && !seen[g.ID] {
				seen[g.ID] = true
				id, n = g.ID, n+1
			}
		}
	}
	return id, n
}

func (f *ForensicsStage) fill(sources []NSXGroupsSource) {
	if f.GroupID == "" {
		f.GroupID = "vpipe-forensics"
	}
	if f.BatchSize == 0 {
		f.BatchSize = 50
	}
	if f.Snapshot.RetentionInterval == 0 {
		f.Snapshot.RetentionInterval = Duration(time.Hour)
	}
	m := &f.Mirror
	if m.Encapsulation == "" {
		m.Encapsulation = "gre"
	}
	if m.SamplingRate == 0 {
		m.SamplingRate = 1
	}
	for i := range f.Groups {
		g := &f.Groups[i]
		if id, n := resolveNSXGroup(sources, g.Group); n == 1 {
			g.Group = id
		}
		if w := g.Webhook; w != nil && w.Timeout == 0 {
			w.Timeout = Duration(10 * time.Second)
		}
	}
}

func (f *ForensicsStage) validate(p *Problems, sources []NSXGroupsSource) {
	const path = "stages.forensics"
	v := &f.VCenter
	if v.URL == "" {
		p.add(path+".vcenter.url", "missing")
	} else {
		checkForensicsURL(p, path+".vcenter.url", v.URL, true)
	}
	if v.Username == "" {
		p.add(path+".vcenter.username", "missing")
	}
	checkSecret(p, path+".vcenter", "password", v.PasswordFile, v.PasswordEnv, true)
	v.TLS.check(p, path+".vcenter.tls")
	if len(f.Groups) == 0 {
		p.add(path+".groups", "missing: list the quarantine groups")
	}
	seen := map[string]int{}
	for i, g := range f.Groups {
		gp := fmt.Sprintf("%s.groups[%d]", path, i)
		switch _, n := resolveNSXGroup(sources, g.Group); {
		case g.Group == "":
			p.add(gp+".group", "missing")
		case n == 0:
			p.add(gp+".group", "%q is not a group of sources.nsx_groups", g.Group)
		case n > 1:
			p.add(gp+".group", "%q names %d groups of sources.nsx_groups; use the group's id", g.Group, n)
		}
		if j, dup := seen[g.Group]; dup && g.Group != "" {
			p.add(gp+".group", "%q is also %s.groups[%d]", g.Group, path, j)
		}
		seen[g.Group] = i
		if w := g.Webhook; w != nil {
			if w.URL == "" {
				p.add(gp+".webhook.url", "missing")
			} else {
				checkForensicsURL(p, gp+".webhook.url", w.URL, false)
			}
			checkSecret(p, gp+".webhook", "bearer_token", w.BearerTokenFile, w.BearerTokenEnv, false)
			if w.Timeout < 0 {
				p.add(gp+".webhook.timeout", "must not be negative")
			}
		}
	}
	s := &f.Snapshot
	if s.Retention < 0 {
		p.add(path+".snapshot.retention", "must not be negative")
	} else if s.Retention > 0 && s.Retention < Duration(time.Hour) {
		p.add(path+".snapshot.retention", "%s is below 1h: snapshots are evidence", s.Retention.D())
	}
	if s.RetentionInterval < Duration(time.Minute) {
		p.add(path+".snapshot.retention_interval", "%s is below 1m", s.RetentionInterval.D())
	}
	if s.Retention > 0 && !s.On() {
		p.add(path+".snapshot.retention", "set while snapshots are disabled")
	}
	m := &f.Mirror
	if m.On() {
		if m.Destination == "" {
			p.add(path+".mirror.destination", "missing: the analyser's IP address")
		} else if _, err := netip.ParseAddr(m.Destination); err != nil {
			p.add(path+".mirror.destination", "%q is not an IP address", m.Destination)
		}
	}
	switch m.Encapsulation {
	case "gre", "erspan2", "erspan3":
	default:
		p.add(path+".mirror.encapsulation", "%q is not one of gre, erspan2, erspan3", m.Encapsulation)
	}
	if m.ErspanID < 0 || m.ErspanID > 1023 {
		p.add(path+".mirror.erspan_id", "%d is outside 0..1023", m.ErspanID)
	}
	if m.SamplingRate < 1 || m.SamplingRate > 65535 {
		p.add(path+".mirror.sampling_rate", "%d is outside 1..65535", m.SamplingRate)
	}
	if m.SnapshotLength != 0 && (m.SnapshotLength < 60 || m.SnapshotLength > 65535) {
		p.add(path+".mirror.snapshot_length", "%d is outside 60..65535 (0: whole frames)", m.SnapshotLength)
	}
	if !s.On() && !m.On() {
		p.add(path, "snapshot and mirror are both disabled: nothing to do")
	}
	if f.BatchSize < 1 {
		p.add(path+".batch_size", "must be at least 1")
	}
	if f.MaxRetries < 0 {
		p.add(path+".max_retries", "must not be negative")
	}
}

// checkForensicsURL adds a problem unless s is an absolute http(s) URL (https
// only when httpsOnly).
func checkForensicsURL(p *Problems, path, s string, httpsOnly bool) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		p.add(path, "%v", err)
	case u.Host == "" || (u.Scheme != "https" && (httpsOnly || u.Scheme != "http")):
		if httpsOnly {
			p.add(path, "%q: want https://host[:port]", s)
		} else {
			p.add(path, "%q: want http(s)://host[:port][/path]", s)
		}
	}
}

// Password returns the source's NSX password (basic, session auth).
func (s NSXGroupsSource) Password() (string, error) {
	return Secret("sources.nsx_groups "+s.Name+" password", s.PasswordFile, s.PasswordEnv)
}

// RefreshToken returns the source's CSP API token (vmc auth).
func (s NSXGroupsSource) RefreshToken() (string, error) {
	return Secret("sources.nsx_groups "+s.Name+" vmc.refresh_token", s.VMC.RefreshTokenFile, s.VMC.RefreshTokenEnv)
}

// Password returns the vCenter password of the forensics stage.
func (v ForensicsVCenter) Password() (string, error) {
	return Secret("stages.forensics.vcenter.password", v.PasswordFile, v.PasswordEnv)
}

// Token returns the webhook's bearer token; "" when none is configured.
func (w ForensicsWebhook) Token() (string, error) {
	return Secret("stages.forensics webhook bearer_token", w.BearerTokenFile, w.BearerTokenEnv)
}

// ForensicsConfig returns sources.nsx_groups and stages.forensics (nil
// when not configured), for the wiring.
func (c *Config) ForensicsConfig() ([]NSXGroupsSource, *ForensicsStage) {
	src, st := c.forensicsConfig()
	var sources []NSXGroupsSource
	var stage *ForensicsStage
	if src != nil {
		sources = *src
	}
	if st != nil {
		stage = *st
	}
	return sources, stage
}
