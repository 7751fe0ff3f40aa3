package tagsync

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/vpipe/vpipe/sinks/nsx"
)

// Config configures a Sink. Zero fields take the defaults named.
type Config struct {
	// VCenter is the configured name of the vCenter whose tags are synced
	// (the source's name, vmware.vcenter.server on its events).
	VCenter string
	// Servers are the other names its events may carry in
	// vmware.vcenter.server (e.g. the host name syslog or Log Insight
	// give). Events naming another server are ignored and counted; events
	// naming none (a Log Insight alert) are taken as this vCenter's.
	Servers []string
	// Categories maps vSphere tag categories to NSX tag scopes; it is the
	// allow list: tags of other categories are not synced. Each scope is
	// non-empty, so that vpipe tells its tags from everyone else's: the
	// NSX tags it manages are exactly those whose scope is one of these.
	Categories map[string]string
	// Tags optionally renames vSphere tag names to NSX tag names (a
	// category's tag not listed keeps its name).
	Tags map[string]string
	// ReconcileInterval is the period of the full reconciliation of every
	// VM (RunReconcile). Default 15m; negative disables it.
	ReconcileInterval time.Duration
	// Concurrency bounds the VMs a reconciliation changes at once.
	// Default 8.
	Concurrency int
	// DryRun computes and logs (and audits, as planned) the changes
	// without making them.
	DryRun bool
	// NSXManager is the host name of the NSX Manager the tags are synced
	// to (the host of its URL), written as label nsx_manager on audit
	// events so that the group watchers of that manager poll at once
	// (pipeline/nsxgroups.TriggerReader). Optional: without it they all
	// poll.
	NSXManager string
}

// Defaults for Config.
const (
	DefaultReconcileInterval = 15 * time.Minute
	DefaultConcurrency       = 8
)

// WithDefaults returns c with its unset fields given their defaults.
func (c Config) WithDefaults() Config {
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	return c
}

// Validate reports every problem of c (after WithDefaults).
func (c Config) Validate() error {
	var errs []error
	if c.VCenter == "" {
		errs = append(errs, errors.New("vcenter: missing"))
	}
	if len(c.Categories) == 0 {
		errs = append(errs, errors.New("categories: missing: name the vSphere categories to sync and their NSX scopes"))
	}
	for _, cat := range sortedKeys(c.Categories) {
		scope := c.Categories[cat]
		switch {
		case cat == "":
			errs = append(errs, errors.New("categories: an empty category name"))
		case scope == "":
			errs = append(errs, fmt.Errorf("categories[%s]: empty scope: vpipe could not tell its NSX tags from others", cat))
		case len(scope) > nsx.MaxScopeLen:
			errs = append(errs, fmt.Errorf("categories[%s]: scope longer than %d characters", cat, nsx.MaxScopeLen))
		}
	}
	for _, from := range sortedKeys(c.Tags) {
		to := c.Tags[from]
		if to == "" || len(to) > nsx.MaxTagLen {
			errs = append(errs, fmt.Errorf("tags[%s]: want an NSX tag of 1 to %d characters", from, nsx.MaxTagLen))
		}
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("concurrency: must be at least 1"))
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// VTag is a vSphere tag attached to a VM: its category's name and its own.
type VTag struct {
	Category string
	Name     string
}

// mapping turns vSphere tags into the NSX tags vpipe manages.
type mapping struct {
	categories map[string]string
	tags       map[string]string
	scopes     []string // the managed scopes, sorted
}

func newMapping(c Config) mapping {
	m := mapping{categories: c.Categories, tags: c.Tags}
	for _, s := range c.Categories {
		if !slices.Contains(m.scopes, s) {
			m.scopes = append(m.scopes, s)
		}
	}
	sort.Strings(m.scopes)
	return m
}

// desired returns the NSX tags vts call for, in a stable order, and the
// vSphere tags it could not map (too long for NSX).
func (m mapping) desired(vts []VTag) (tags []nsx.Tag, invalid []VTag) {
	for _, vt := range vts {
		scope, ok := m.categories[vt.Category]
		if !ok {
			continue
		}
		name := vt.Name
		if to, ok := m.tags[name]; ok {
			name = to
		}
		t := nsx.Tag{Scope: scope, Tag: name}
		if !t.Valid() {
			invalid = append(invalid, vt)
			continue
		}
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	slices.SortFunc(tags, func(a, b nsx.Tag) int {
		if a.Scope != b.Scope {
			if a.Scope < b.Scope {
				return -1
			}
			return 1
		}
		switch {
		case a.Tag < b.Tag:
			return -1
		case a.Tag > b.Tag:
			return 1
		}
		return 0
	})
	return tags, invalid
}

// managed reports whether vpipe manages t: its scope is a mapped one.
func (m mapping) managed(t nsx.Tag) bool {
	_, ok := slices.BinarySearch(m.scopes, t.Scope)
	return ok
}

// diff is what makes the managed part of cur equal desired, leaving every
// other tag alone.
func (m mapping) diff(cur, desired []nsx.Tag) nsx.Change {
	var ch nsx.Change
	for _, t := range desired {
		if !slices.Contains(cur, t) {
			ch.Add = append(ch.Add, t)
		}
	}
	for _, t := range cur {
		if m.managed(t) && !slices.Contains(desired, t) {
			ch.Remove = append(ch.Remove, t)
		}
	}
	return ch
}
