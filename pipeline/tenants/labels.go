package tenants

import "fmt"

// Label is one log label a tenant's objects produce, as `vpipe tenants`
// prints it for the provider to compare with the NSX UI.
type Label struct {
	Shape Shape
	// Object names what produces the label: "edge_gateways[0] gw-01".
	Object string
	// Label is the label computed by VCD's rule. The name and UUID parts
	// of gateway labels and the reading of DFW labels are not confirmed
	// (package documentation); Key is what vpipe matches.
	Label string
	// Key is the part of Label that identifies the tenant and that Resolve
	// looks up: the whole label for NSX-V tags and verbatim labels.
	Key string
	// Ambiguous is true when another tenant claims Key too: events with
	// this label resolve to neither.
	Ambiguous bool
}

// Labels returns the labels tenant i produces, in the order of its
// objects: for each Org VDC its NSX-V rule tag and the gateway prefix of
// its gateways, for each gateway its full gateway label, for each DC
// group both DFW readings and its gateway prefix, then NSX-V Org VDCs,
// project ids and verbatim labels.
func (r *Registry) Labels(i int) []Label {
	t := &r.tenants[i]
	var out []Label
	add := func(s Shape, obj, label, key string) {
		m := r.shapeMap(s)
		out = append(out, Label{Shape: s, Object: obj, Label: label, Key: key, Ambiguous: m[key] == ambiguous})
	}
	for k, o := range t.OrgVDCs {
		if o.ID == "" {
			continue
		}
		obj := fmt.Sprintf("org_vdcs[%d] %s", k, o.Name)
		add(ShapeNSXV, obj, o.ID, o.ID)
		add(ShapeGateway, obj, o.ID[:gatewayPrefixLen]+"…", o.ID[:gatewayPrefixLen])
	}
	for k, g := range t.EdgeGateways {
		if g.Parent == "" {
			continue
		}
		l := GatewayLabel(g.Parent, g.Name, g.ID)
		add(ShapeGateway, fmt.Sprintf("edge_gateways[%d] %s", k, g.Name), l, g.Parent[:gatewayPrefixLen])
	}
	for k, g := range t.DCGroups {
		if g.ID == "" {
			continue
		}
		obj := fmt.Sprintf("dc_groups[%d] %s", k, g.Name)
		first, last := DFWLabels(g.Name, g.ID)
		add(ShapeDFWFirst27, obj, first, first[len(first)-dfwUUIDLen:])
		add(ShapeDFWLast27, obj, last, last[len(last)-dfwUUIDLen:])
		add(ShapeGateway, obj, g.ID[:gatewayPrefixLen]+"…", g.ID[:gatewayPrefixLen])
	}
	for k, u := range t.NSXVOrgVDCs {
		if u != "" {
			add(ShapeNSXV, fmt.Sprintf("nsxv_org_vdcs[%d]", k), u, u)
		}
	}
	for k, p := range t.Projects {
		if p != "" {
			add(ShapeProject, fmt.Sprintf("nsx_projects[%d]", k), p, p)
		}
	}
	for k, l := range t.Labels {
		if l != "" {
			add(ShapeVerbatim, fmt.Sprintf("labels[%d]", k), l, l)
		}
	}
	return out
}

// GatewayLabel computes the log label VCD writes on the gateway firewall
// rules of a gateway: the first 10 characters of the parent's UUID, the
// first 5 characters of the gateway name and the first 5 of its UUID. The
// last two parts are not confirmed (which 5 characters VCD takes is not
// published); resolution does not depend on them. UUIDs must be
// normalised.
func GatewayLabel(parentUUID, name, gatewayUUID string) string {
	return prefix(parentUUID, gatewayPrefixLen) + prefixRunes(name, 5) + prefix(gatewayUUID, 5)
}

// DFWLabels computes the two readings of the log label VCD writes on the
// distributed firewall rules of a Data Center Group: the first 5
// characters of its name and 27 characters of its UUID, the first 27 or
// the last 27 (the public source is cut there). The UUID must be
// normalised.
func DFWLabels(name, groupUUID string) (first27, last27 string) {
	n := prefixRunes(name, 5)
	if len(groupUUID) < dfwUUIDLen {
		return n + groupUUID, n + groupUUID
	}
	return n + groupUUID[:dfwUUIDLen], n + groupUUID[len(groupUUID)-dfwUUIDLen:]
}

func prefix(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// prefixRunes returns the first n characters of s.
func prefixRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
