package tenants

import (
	"sort"
	"strings"
)

// Merge combines the configured tenants with those discovered from VCD.
//
// A discovered tenant carries the organisation name as ID and its UUID as
// VCDOrg (see pipeline/vcd). It merges into the configured tenant whose
// OrgKey equals the organisation's name (case-insensitively), UUID or URN:
// that tenant gains the discovered Org VDCs, DC groups and gateways it did
// not list (compared by UUID), and keeps its own id, name and
// destinations (configuration wins). A discovered organisation that no
// configured tenant names becomes a tenant of its own without
// destinations, so its labels are known and never mistaken for unknown
// ones; if its name is already a configured id it gets the id
// "vcd.<name>".
//
// The result lists the configured tenants in their order, then the
// others sorted by id. Neither input is modified.
func Merge(configured, discovered []Tenant) []Tenant {
	out := make([]Tenant, len(configured), len(configured)+len(discovered))
	copy(out, configured)
	ids := make(map[string]bool, len(configured))
	byOrg := make(map[string]int, 2*len(configured))
	for i := range out {
		ids[out[i].ID] = true
		k := out[i].OrgKey()
		if u, ok := NormalizeUUID(k); ok {
			byOrg[u] = i
		} else {
			byOrg[strings.ToLower(k)] = i
		}
	}
	var extra []Tenant
	for _, d := range discovered {
		i, ok := byOrg[strings.ToLower(d.ID)]
		if !ok {
			if u, uok := NormalizeUUID(d.VCDOrg); uok {
				i, ok = byOrg[u]
			}
		}
		if !ok {
			d.Discovered = true
			d.Destinations = nil
			if ids[d.ID] {
				d.ID = "vcd." + d.ID
			}
			extra = append(extra, d)
			continue
		}
		t := &out[i]
		t.OrgVDCs = mergeObjects(t.OrgVDCs, d.OrgVDCs)
		t.DCGroups = mergeObjects(t.DCGroups, d.DCGroups)
		t.EdgeGateways = mergeGateways(t.EdgeGateways, d.EdgeGateways)
		t.NSXVOrgVDCs = mergeStrings(t.NSXVOrgVDCs, d.NSXVOrgVDCs)
		t.Discovered = true
	}
	sort.Slice(extra, func(a, b int) bool { return extra[a].ID < extra[b].ID })
	return append(out, extra...)
}

func uuidKey(s string) string {
	if u, ok := NormalizeUUID(s); ok {
		return u
	}
	return s
}

func mergeObjects(have, add []Object) []Object {
	seen := make(map[string]bool, len(have))
	for _, o := range have {
		seen[uuidKey(o.ID)] = true
	}
	out := append([]Object(nil), have...)
	for _, o := range add {
		if k := uuidKey(o.ID); !seen[k] {
			seen[k] = true
			out = append(out, o)
		}
	}
	return out
}

func mergeGateways(have, add []Gateway) []Gateway {
	seen := make(map[string]bool, len(have))
	for _, g := range have {
		seen[uuidKey(g.ID)] = true
	}
	out := append([]Gateway(nil), have...)
	for _, g := range add {
		if k := uuidKey(g.ID); !seen[k] {
			seen[k] = true
			out = append(out, g)
		}
	}
	return out
}

func mergeStrings(have, add []string) []string {
	seen := make(map[string]bool, len(have))
	for _, s := range have {
		seen[uuidKey(s)] = true
	}
	out := append([]string(nil), have...)
	for _, s := range add {
		if k := uuidKey(s); !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}
