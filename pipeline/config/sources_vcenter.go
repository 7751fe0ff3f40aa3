package config

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// VCenterSource configures one vCenter event-history poller
// (sources.vcenter[], pipeline/vcenter): every event of the vCenter, read
// through an EventHistoryCollector and published to <prefix>vcenter, its
// position checkpointed on <prefix>checkpoints. Secrets come from a file
// or an environment variable, never from this file.
type VCenterSource struct {
	// Name identifies the vCenter: vmware.vcenter.server of its events,
	// the checkpoint key, the metric label, what stages.tag_sync.vcenter
	// names. Required, unique.
	Name string `yaml:"name"`
	// URL is the vCenter, https://vcenter.example.com. Required.
	URL          string `yaml:"url"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// TLS: ca_file with the vCenter's VMCA root, or the system roots.
	// Verification is always on unless insecure_skip_verify is set.
	TLS ClientTLS `yaml:"tls"`
	// PageSize is the most events read per call (1 to 1000, default 1000).
	PageSize int `yaml:"page_size"`
	// PollInterval is the wait after a read that found no new event
	// (default 1s).
	PollInterval Duration `yaml:"poll_interval"`
	// StartLookback is how far back the very first start (no checkpoint)
	// reads (default 0s: new events only).
	StartLookback Duration `yaml:"start_lookback"`
	// EventTypes restricts the events read (vim.event class names such as
	// VmPoweredOnEvent, or EventEx type ids such as
	// com.vmware.cis.tagging.attach); empty: all.
	EventTypes []string `yaml:"event_types"`
	// Timeout bounds one call to vCenter (default 60s).
	Timeout Duration `yaml:"timeout"`
	// MaxBackoff caps the wait between reconnections (default 1m; they
	// start at 1s).
	MaxBackoff Duration `yaml:"max_backoff"`
}

// TagSyncStage configures the vSphere-tag → NSX-tag sync stage
// (stages.tag_sync, sinks/tagsync).
type TagSyncStage struct {
	// VCenter names the sources.vcenter entry whose tags are synced; its
	// connection settings are used. Required.
	VCenter string `yaml:"vcenter"`
	// Servers are other names this vCenter's events may carry in
	// vmware.vcenter.server (its host name, as syslog or Log Insight
	// write it). Events of other vCenters are ignored and counted.
	Servers []string `yaml:"servers"`
	// Categories maps vSphere tag categories to NSX tag scopes; it is the
	// allow list (tags of other categories are not synced). vpipe manages
	// exactly the NSX tags with these scopes and never touches others, so
	// a scope must not be empty. Required.
	Categories map[string]string `yaml:"categories"`
	// Tags optionally renames vSphere tag names to NSX tag names.
	Tags map[string]string `yaml:"tags"`
	// Reconcile turns the periodic full reconciliation on (default true);
	// ReconcileInterval is its period (default 15m).
	Reconcile         *bool    `yaml:"reconcile"`
	ReconcileInterval Duration `yaml:"reconcile_interval"`
	// Concurrency bounds the VMs a reconciliation changes at once
	// (default 8; NSX allows 40 requests per client in flight).
	Concurrency int `yaml:"concurrency"`
	// DryRun plans, logs and audits changes without making them.
	DryRun  bool   `yaml:"dry_run"`
	GroupID string `yaml:"group_id"` // default "vpipe-tag-sync"
	// NSX says how to reach NSX: the same keys as stages.jit_access.nsx.
	NSX JITNSX `yaml:"nsx"`
}

// ReconcileOn reports whether the periodic reconciliation runs.
func (t *TagSyncStage) ReconcileOn() bool { return t.Reconcile == nil || *t.Reconcile }

// Defaults of the vCenter sources and tag sync.
const (
	vcDefaultPageSize     = 1000
	vcDefaultPollInterval = time.Second
	vcDefaultTimeout      = time.Minute
	vcDefaultMaxBackoff   = time.Minute
	tsDefaultReconcile    = 15 * time.Minute
	tsDefaultConcurrency  = 8
	tsDefaultGroupID      = "vpipe-tag-sync"
)

// VCenterByName returns the sources.vcenter entry named name, nil if none.
func (c *Config) VCenterByName(name string) *VCenterSource {
	for i := range c.Sources.VCenter {
		if c.Sources.VCenter[i].Name == name {
			return &c.Sources.VCenter[i]
		}
	}
	return nil
}

// Password returns the source's password from its file or environment
// variable.
func (v *VCenterSource) Password(path string) (string, error) {
	return Secret(path+".password", v.PasswordFile, v.PasswordEnv)
}

// fillVCenter sets the defaults of the vCenter sources and tag sync.
func (c *Config) fillVCenter() {
	for i := range c.Sources.VCenter {
		v := &c.Sources.VCenter[i]
		if v.PageSize == 0 {
			v.PageSize = vcDefaultPageSize
		}
		if v.PollInterval == 0 {
			v.PollInterval = Duration(vcDefaultPollInterval)
		}
		if v.Timeout == 0 {
			v.Timeout = Duration(vcDefaultTimeout)
		}
		if v.MaxBackoff == 0 {
			v.MaxBackoff = Duration(vcDefaultMaxBackoff)
		}
	}
	t := c.Stages.TagSync
	if t == nil {
		return
	}
	if t.ReconcileInterval == 0 {
		t.ReconcileInterval = Duration(tsDefaultReconcile)
	}
	if t.Concurrency == 0 {
		t.Concurrency = tsDefaultConcurrency
	}
	if t.GroupID == "" {
		t.GroupID = tsDefaultGroupID
	}
	if t.NSX.API == "" {
		t.NSX.API = "policy"
	}
	if t.NSX.Auth == "" {
		t.NSX.Auth = "basic"
	}
}

// validateVCenter adds the problems of the vCenter sources and tag sync.
func (c *Config) validateVCenter(p *Problems) {
	names := map[string]int{}
	for i := range c.Sources.VCenter {
		v := &c.Sources.VCenter[i]
		at := fmt.Sprintf("sources.vcenter[%d]", i)
		switch {
		case v.Name == "":
			p.add(at+".name", "missing")
		case strings.ContainsAny(v.Name, " /\\"):
			p.add(at+".name", "%q: letters, digits, '.', '_' and '-' only", v.Name)
		default:
			if j, dup := names[v.Name]; dup {
				p.add(at+".name", "%q is also the name of sources.vcenter[%d]", v.Name, j)
			}
			names[v.Name] = i
		}
		jitURL(p, at+".url", v.URL, true)
		if v.Username == "" {
			p.add(at+".username", "missing")
		}
		checkSecret(p, at, "password", v.PasswordFile, v.PasswordEnv, true)
		v.TLS.check(p, at+".tls")
		if v.PageSize < 1 || v.PageSize > 1000 {
			p.add(at+".page_size", "%d is outside 1..1000", v.PageSize)
		}
		for _, d := range []struct {
			key string
			v   Duration
		}{{"poll_interval", v.PollInterval}, {"start_lookback", v.StartLookback}, {"timeout", v.Timeout}, {"max_backoff", v.MaxBackoff}} {
			if d.v < 0 {
				p.add(at+"."+d.key, "must not be negative")
			}
		}
		if v.MaxBackoff > 0 && v.MaxBackoff.D() < time.Second {
			p.add(at+".max_backoff", "must be at least 1s (reconnections start at 1s)")
		}
		for j, et := range v.EventTypes {
			if strings.TrimSpace(et) == "" {
				p.add(fmt.Sprintf("%s.event_types[%d]", at, j), "empty")
			}
		}
	}

	t := c.Stages.TagSync
	if t == nil {
		return
	}
	const at = "stages.tag_sync"
	switch {
	case t.VCenter == "":
		p.add(at+".vcenter", "missing: the name of a sources.vcenter entry")
	case c.VCenterByName(t.VCenter) == nil:
		p.add(at+".vcenter", "%q names no sources.vcenter entry", t.VCenter)
	}
	if len(t.Categories) == 0 {
		p.add(at+".categories", "missing: map the vSphere categories to sync to NSX scopes")
	}
	for _, cat := range vcSortedKeys(t.Categories) {
		scope := t.Categories[cat]
		switch {
		case strings.TrimSpace(cat) == "":
			p.add(at+".categories", "an empty category name")
		case scope == "":
			p.add(at+".categories."+cat, "empty scope: vpipe could not tell its NSX tags from others")
		case len(scope) > 128:
			p.add(at+".categories."+cat, "scope longer than 128 characters")
		}
	}
	for _, from := range vcSortedKeys(t.Tags) {
		if to := t.Tags[from]; to == "" || len(to) > 256 {
			p.add(at+".tags."+from, "want an NSX tag of 1 to 256 characters")
		}
	}
	if t.ReconcileInterval < 0 {
		p.add(at+".reconcile_interval", "must not be negative")
	} else if t.ReconcileOn() && t.ReconcileInterval.D() < time.Minute {
		p.add(at+".reconcile_interval", "%s is below 1m: a reconciliation reads every VM", t.ReconcileInterval.D())
	}
	if t.Concurrency < 1 || t.Concurrency > 32 {
		p.add(at+".concurrency", "%d is outside 1..32", t.Concurrency)
	}
	validateNSXTarget(p, at+".nsx", &t.NSX)
}

// validateNSXTarget checks how a stage reaches NSX (the JITNSX keys).
func validateNSXTarget(p *Problems, at string, n *JITNSX) {
	switch n.API {
	case "policy", "manager", "nsxv":
	default:
		p.add(at+".api", "%q is not one of policy, manager, nsxv", n.API)
	}
	switch n.Auth {
	case "basic", "session":
		jitURL(p, at+".url", n.URL, true)
		if n.Username == "" {
			p.add(at+".username", "missing")
		}
		checkSecret(p, at, "password", n.PasswordFile, n.PasswordEnv, true)
	case "vmc":
		jitURL(p, at+".url", n.URL, n.VMC.OrgID == "" || n.VMC.SDDCID == "")
		checkSecret(p, at+".vmc", "refresh_token", n.VMC.RefreshTokenFile, n.VMC.RefreshTokenEnv, true)
		jitURL(p, at+".vmc.csp_url", n.VMC.CSPURL, false)
		jitURL(p, at+".vmc.url", n.VMC.URL, false)
		if n.API != "policy" {
			p.add(at+".api", "VMware Cloud on AWS offers the policy api only")
		}
	default:
		p.add(at+".auth", "%q is not one of basic, session, vmc", n.Auth)
	}
	if n.API == "nsxv" && n.Auth != "basic" {
		p.add(at+".auth", "the nsxv api takes basic auth")
	}
	if n.EnforcementPoint != "" && n.API != "policy" {
		p.add(at+".enforcement_point", "only with the policy api")
	}
	n.TLS.check(p, at+".tls")
}

// vcSortedKeys returns m's keys in order, so problems come in a stable
// order.
func vcSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
