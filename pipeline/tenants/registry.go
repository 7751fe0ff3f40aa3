package tenants

import (
	"fmt"
	"sort"
	"unsafe"

	"github.com/vpipe/vpipe/pipeline"
)

// Shape is the kind of label a registry key matches.
type Shape uint8

// Label shapes. The derived ones follow the VCD rules in the package
// documentation.
const (
	ShapeVerbatim   Shape = iota + 1 // a label listed as is
	ShapeProject                     // an NSX project short log id, as is
	ShapeNSXV                        // NSX-V rule tag: the whole Org VDC UUID
	ShapeGateway                     // gateway label: first 10 characters of the parent's UUID
	ShapeDFWFirst27                  // DFW label, UUID part read as the first 27 characters of the group UUID
	ShapeDFWLast27                   // DFW label, UUID part read as the last 27 characters of the group UUID
)

// String names the shape as `vpipe tenants` prints it.
func (s Shape) String() string {
	switch s {
	case ShapeVerbatim:
		return "verbatim"
	case ShapeProject:
		return "nsx-project"
	case ShapeNSXV:
		return "nsx-v"
	case ShapeGateway:
		return "gateway"
	case ShapeDFWFirst27:
		return "dfw-first27"
	case ShapeDFWLast27:
		return "dfw-last27"
	}
	return "unknown"
}

// Lengths of the identifying parts (formats.md §2).
const (
	gatewayPrefixLen = 10
	dfwUUIDLen       = 27
	// A gateway label is the 10-character prefix plus up to 5 characters
	// each of name and UUID; a DFW label the 27-character UUID part after
	// up to 5 characters of name. Names may hold multi-byte characters,
	// hence the slack.
	gatewayMaxLen = gatewayPrefixLen + 5*4 + 5
	dfwMaxLen     = dfwUUIDLen + 5*4
)

// Result says how a label resolved.
type Result uint8

// Resolution results.
const (
	Resolved  Result = iota // exactly one tenant
	NoLabel                 // the event carries no label
	Unknown                 // no tenant claims the label
	Ambiguous               // several tenants claim it: never guessed
)

// String names the result as metrics and logs spell it.
func (r Result) String() string {
	switch r {
	case Resolved:
		return "resolved"
	case NoLabel:
		return "no_label"
	case Unknown:
		return "unknown"
	case Ambiguous:
		return "ambiguous"
	}
	return "invalid"
}

// Problem is something wrong with the tenants given to Build: an invalid
// value, or a label claimed by two tenants.
type Problem struct {
	Tenant int    // index of the tenant in the slice given to Build
	Field  string // key path inside the tenant, as configured: "org_vdcs[0].id"
	Msg    string
	// Other is the index of the other tenant of a conflict, else -1;
	// OtherField its key path.
	Other      int
	OtherField string
}

// Error describes the problem with the tenant's index and key path.
func (p Problem) Error() string {
	return fmt.Sprintf("tenant %d %s: %s", p.Tenant, p.Field, p.Msg)
}

// Registry resolves log labels to tenants. It is immutable once built and
// safe for concurrent use.
type Registry struct {
	tenants []Tenant
	byID    map[string]int
	// One map per label shape, value the tenant index or ambiguous.
	verbatim map[string]int32 // verbatim labels and project ids
	nsxv     map[string]int32 // whole Org VDC UUID
	gateway  map[string]int32 // 10-character parent prefix
	dfw      map[string]int32 // 27-character UUID part (both readings)
	problems []Problem
	// claims remembers, per key, which tenant and field claimed it (for
	// Labels and for conflict reports).
	claims map[claimKey]claim
}

const ambiguous = -1

type claimKey struct {
	shape Shape
	key   string
}

type claim struct {
	tenant int
	field  string
}

// Build normalises ts (UUIDs to lower case with dashes, URNs to UUIDs)
// and indexes every label key they claim. It always returns a usable
// registry: an invalid value is left out, and a key that two tenants claim
// resolves to neither (Ambiguous). Every such case is a Problem, for
// `vpipe validate` to report; a registry built at run time from VCD logs
// them instead. ts is not modified.
func Build(ts []Tenant) (*Registry, []Problem) {
	r := &Registry{
		tenants:  make([]Tenant, len(ts)),
		byID:     make(map[string]int, len(ts)),
		verbatim: map[string]int32{},
		nsxv:     map[string]int32{},
		gateway:  map[string]int32{},
		dfw:      map[string]int32{},
		claims:   map[claimKey]claim{},
	}
	for i := range ts {
		r.tenants[i] = normalize(ts[i], i, &r.problems)
	}
	for i := range r.tenants {
		t := &r.tenants[i]
		switch j, dup := r.byID[t.ID]; {
		case t.ID == "":
			r.problem(i, "id", "missing")
		case !ValidID(t.ID):
			r.problem(i, "id", "%q: use letters, digits, '.', '-' and '_' (at most 128)", t.ID)
		case t.ID == CatchAllID:
			r.problem(i, "id", "%q is reserved for the catch-all destination", t.ID)
		case dup:
			r.problems = append(r.problems, Problem{Tenant: i, Field: "id", Msg: fmt.Sprintf("%q is also the id of another tenant", t.ID), Other: j, OtherField: "id"})
		default:
			r.byID[t.ID] = i
		}
		for k, o := range t.OrgVDCs {
			if o.ID == "" {
				continue
			}
			f := fmt.Sprintf("org_vdcs[%d].id", k)
			r.claim(ShapeGateway, o.ID[:gatewayPrefixLen], i, f)
			r.claim(ShapeNSXV, o.ID, i, f)
		}
		for k, g := range t.DCGroups {
			if g.ID == "" {
				continue
			}
			f := fmt.Sprintf("dc_groups[%d].id", k)
			r.claim(ShapeGateway, g.ID[:gatewayPrefixLen], i, f)
			r.claim(ShapeDFWFirst27, g.ID[:dfwUUIDLen], i, f)
			r.claim(ShapeDFWLast27, g.ID[len(g.ID)-dfwUUIDLen:], i, f)
		}
		for k, g := range t.EdgeGateways {
			if g.Parent == "" {
				continue
			}
			r.claim(ShapeGateway, g.Parent[:gatewayPrefixLen], i, fmt.Sprintf("edge_gateways[%d].parent", k))
		}
		for k, u := range t.NSXVOrgVDCs {
			r.claim(ShapeNSXV, u, i, fmt.Sprintf("nsxv_org_vdcs[%d]", k))
		}
		for k, p := range t.Projects {
			r.claim(ShapeProject, p, i, fmt.Sprintf("nsx_projects[%d]", k))
		}
		for k, l := range t.Labels {
			r.claim(ShapeVerbatim, l, i, fmt.Sprintf("labels[%d]", k))
		}
	}
	r.checkVerbatim()
	return r, r.problems
}

// normalize returns a copy of t with canonical UUIDs, leaving out (and
// reporting) values that are not UUIDs.
func normalize(t Tenant, i int, problems *[]Problem) Tenant {
	bad := func(field, v string) {
		*problems = append(*problems, Problem{Tenant: i, Field: field, Msg: fmt.Sprintf("%q is not a UUID (or a VCD URN ending in one)", v), Other: -1})
	}
	objs := func(in []Object, name string) []Object {
		var out []Object
		for k, o := range in {
			u, ok := NormalizeUUID(o.ID)
			if !ok {
				bad(fmt.Sprintf("%s[%d].id", name, k), o.ID)
				u = ""
			}
			// Keep positions so that field paths stay right; an invalid
			// one is dropped below.
			out = append(out, Object{Name: o.Name, ID: u})
		}
		return out
	}
	t.OrgVDCs = objs(t.OrgVDCs, "org_vdcs")
	t.DCGroups = objs(t.DCGroups, "dc_groups")
	gws := make([]Gateway, 0, len(t.EdgeGateways))
	for k, g := range t.EdgeGateways {
		id, ok := NormalizeUUID(g.ID)
		if !ok {
			bad(fmt.Sprintf("edge_gateways[%d].id", k), g.ID)
		}
		p, pok := NormalizeUUID(g.Parent)
		if !pok {
			bad(fmt.Sprintf("edge_gateways[%d].parent", k), g.Parent)
		}
		if !ok || !pok {
			id, p = "", ""
		}
		gws = append(gws, Gateway{Name: g.Name, ID: id, Parent: p})
	}
	t.EdgeGateways = gws
	nsxv := make([]string, 0, len(t.NSXVOrgVDCs))
	for k, s := range t.NSXVOrgVDCs {
		u, ok := NormalizeUUID(s)
		if !ok {
			bad(fmt.Sprintf("nsxv_org_vdcs[%d]", k), s)
		}
		nsxv = append(nsxv, u)
	}
	t.NSXVOrgVDCs = nsxv
	for k, s := range t.Projects {
		if s == "" {
			*problems = append(*problems, Problem{Tenant: i, Field: fmt.Sprintf("nsx_projects[%d]", k), Msg: "empty", Other: -1})
		}
	}
	for k, s := range t.Labels {
		if s == "" {
			*problems = append(*problems, Problem{Tenant: i, Field: fmt.Sprintf("labels[%d]", k), Msg: "empty", Other: -1})
		}
	}
	t.Projects = append([]string(nil), t.Projects...)
	t.Labels = append([]string(nil), t.Labels...)
	t.Destinations = append([]Destination(nil), t.Destinations...)
	return t
}

func (r *Registry) problem(i int, field, format string, args ...any) {
	r.problems = append(r.problems, Problem{Tenant: i, Field: field, Msg: fmt.Sprintf(format, args...), Other: -1})
}

func (r *Registry) shapeMap(s Shape) map[string]int32 {
	switch s {
	case ShapeVerbatim, ShapeProject:
		return r.verbatim
	case ShapeNSXV:
		return r.nsxv
	case ShapeGateway:
		return r.gateway
	default:
		return r.dfw
	}
}

// claim indexes key for tenant i. An empty key (an invalid value, already
// reported) is skipped. A key another tenant claimed becomes ambiguous.
func (r *Registry) claim(s Shape, key string, i int, field string) {
	if key == "" {
		return
	}
	m := r.shapeMap(s)
	ck := claimKey{s, key}
	if s == ShapeProject {
		// Projects share the verbatim map; one claim table for both.
		ck.shape = ShapeVerbatim
	}
	prev, seen := m[key]
	if !seen {
		m[key] = int32(i)
		r.claims[ck] = claim{i, field}
		return
	}
	if prev == int32(i) {
		return
	}
	first := r.claims[ck]
	if prev != ambiguous || first.tenant != i {
		r.problems = append(r.problems, Problem{
			Tenant: i, Field: field, Other: first.tenant, OtherField: first.field,
			Msg: fmt.Sprintf("claims %s label key %q, which tenant %q also claims", s, key, r.tenants[first.tenant].ID),
		})
	}
	m[key] = ambiguous
}

// checkVerbatim reports verbatim labels (and project ids) that the derived
// shapes would give to another tenant: the verbatim entry would silently
// take that tenant's events. Problems end up ordered by tenant.
func (r *Registry) checkVerbatim() {
	for i := range r.tenants {
		t := &r.tenants[i]
		check := func(label, field string) {
			if label == "" || r.verbatim[label] != int32(i) {
				return
			}
			for _, ds := range []string{pipeline.DatasetNSXDFW, pipeline.DatasetNSXGatewayFW, pipeline.DatasetNSXVDFW} {
				j, res, shape := r.derived(ds, label)
				if res == Resolved && j != i {
					r.problems = append(r.problems, Problem{
						Tenant: i, Field: field, Other: j, OtherField: r.claimField(shape, label),
						Msg: fmt.Sprintf("label %q is also a %s label of tenant %q", label, shape, r.tenants[j].ID),
					})
					return
				}
			}
		}
		for k, p := range t.Projects {
			check(p, fmt.Sprintf("nsx_projects[%d]", k))
		}
		for k, l := range t.Labels {
			check(l, fmt.Sprintf("labels[%d]", k))
		}
	}
	sort.SliceStable(r.problems, func(a, b int) bool { return r.problems[a].Tenant < r.problems[b].Tenant })
}

func (r *Registry) claimField(s Shape, label string) string {
	key := label
	switch s {
	case ShapeGateway:
		key = label[:gatewayPrefixLen]
	case ShapeDFWFirst27, ShapeDFWLast27:
		key = label[len(label)-dfwUUIDLen:]
	}
	return r.claims[claimKey{s, key}].field
}

// Len is the number of tenants.
func (r *Registry) Len() int { return len(r.tenants) }

// Tenant returns tenant i (0 <= i < Len) with normalised UUIDs. The
// caller must not modify it.
func (r *Registry) Tenant(i int) *Tenant { return &r.tenants[i] }

// Index returns the index of the tenant with id, or -1.
func (r *Registry) Index(id string) int {
	if i, ok := r.byID[id]; ok {
		return i
	}
	return -1
}

// Problems returns what Build reported.
func (r *Registry) Problems() []Problem { return r.problems }

// Resolve returns the index of the tenant a firewall event's label
// (pipeline.Event.TenantLabel) belongs to, given the event's dataset. It
// is O(1): one map lookup per candidate shape, no allocation.
//
// Verbatim labels and project ids match first, exactly. Then the shape
// follows the dataset: nsxv.dfw rule tags are whole Org VDC UUIDs,
// nsx.gateway_firewall labels are looked up by their first 10 characters,
// nsx.dfw labels by their last 27 (the UUID part after the name part, in
// either reading). For another dataset every shape is tried, and shapes
// that disagree make the label Ambiguous. Derived shapes compare UUID
// characters case-insensitively; verbatim labels exactly.
//
// The index is -1 unless the result is Resolved.
func (r *Registry) Resolve(dataset, label string) (int, Result) {
	if label == "" {
		return -1, NoLabel
	}
	if i, ok := r.verbatim[label]; ok {
		if i == ambiguous {
			return -1, Ambiguous
		}
		return int(i), Resolved
	}
	i, res, _ := r.derived(dataset, label)
	return i, res
}

// derived resolves label by the derived shapes only.
func (r *Registry) derived(dataset, label string) (int, Result, Shape) {
	if len(label) > 64 {
		// Longer than any derived shape (gateway 35, NSX-V 36, DFW 47).
		return -1, Unknown, 0
	}
	if hasUpper(label) {
		var buf [64]byte
		n := copy(buf[:], label)
		for k := 0; k < n; k++ {
			if c := buf[k]; c >= 'A' && c <= 'Z' {
				buf[k] = c + 'a' - 'A'
			}
		}
		// The lookups below do not keep the string.
		return r.derivedLower(dataset, unsafe.String(&buf[0], n))
	}
	return r.derivedLower(dataset, label)
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

// derivedLower looks l (lower case) up in the maps of the shapes the
// dataset allows.
func (r *Registry) derivedLower(dataset string, l string) (int, Result, Shape) {
	found, shape := int32(-2), Shape(0) // -2: nothing found yet
	add := func(i int32, s Shape) {
		switch {
		case found == -2:
			found, shape = i, s
		case found != i:
			found = ambiguous
		}
	}
	all := dataset != pipeline.DatasetNSXVDFW && dataset != pipeline.DatasetNSXGatewayFW && dataset != pipeline.DatasetNSXDFW
	if all || dataset == pipeline.DatasetNSXVDFW {
		if i, ok := r.nsxv[l]; ok {
			add(i, ShapeNSXV)
		}
	}
	if (all || dataset == pipeline.DatasetNSXGatewayFW) && len(l) >= gatewayPrefixLen && len(l) <= gatewayMaxLen {
		if i, ok := r.gateway[l[:gatewayPrefixLen]]; ok {
			add(i, ShapeGateway)
		}
	}
	if (all || dataset == pipeline.DatasetNSXDFW) && len(l) >= dfwUUIDLen && len(l) <= dfwMaxLen {
		k := l[len(l)-dfwUUIDLen:]
		if i, ok := r.dfw[k]; ok {
			s := ShapeDFWLast27
			if k[4] != '-' { // last-27 keys have a dash at 4; first-27 keys at 8, 13, 18, 23
				s = ShapeDFWFirst27
			}
			add(i, s)
		}
	}
	switch found {
	case -2:
		return -1, Unknown, 0
	case ambiguous:
		return -1, Ambiguous, 0
	}
	return int(found), Resolved, shape
}
