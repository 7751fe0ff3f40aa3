package tenants

import (
	"strings"
	"testing"

	"github.com/vpipe/vpipe/pipeline"
)

const (
	vdcA   = "a93c9db9-7471-3192-8d09-a8f7eeda85f9" // acme's Org VDC
	grpA   = "5f0e8d7c-6b5a-4938-8271-605f4e3d2c1b" // acme's DC group
	gwA    = "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6" // acme's gateway on vdcA
	gwGrpA = "e9f8a7b6-c5d4-4e3f-a2b1-c0d9e8f7a6b5" // acme's gateway on grpA
	nsxvB  = "4e2a9f10-3b7c-4d5e-a6f7-8091a2b3c4d5" // globex's NSX-V Org VDC
	vdcB   = "c0ffee00-1234-4abc-9def-0123456789ab" // globex's Org VDC
)

func testTenants() []Tenant {
	return []Tenant{
		{
			ID: "acme", Name: "ACME",
			OrgVDCs:      []Object{{Name: "acme-vdc1", ID: "urn:vcloud:vdc:" + strings.ToUpper(vdcA)}},
			DCGroups:     []Object{{Name: "acme-dcgroup", ID: grpA}},
			EdgeGateways: []Gateway{{Name: "acme-edge1", ID: gwA, Parent: vdcA}, {Name: "gw", ID: gwGrpA, Parent: grpA}},
			Labels:       []string{"ACME-web-allow"},
		},
		{
			ID: "globex", Name: "Globex",
			OrgVDCs:     []Object{{Name: "globex-vdc1", ID: vdcB}},
			NSXVOrgVDCs: []string{nsxvB},
			Projects:    []string{"globexprj"},
		},
	}
}

func mustBuild(t testing.TB, ts []Tenant) *Registry {
	t.Helper()
	r, probs := Build(ts)
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	return r
}

func TestResolve(t *testing.T) {
	r := mustBuild(t, testTenants())
	first, last := DFWLabels("acme-dcgroup", grpA)
	gw, dfw, nsxv := pipeline.DatasetNSXGatewayFW, pipeline.DatasetNSXDFW, pipeline.DatasetNSXVDFW
	tests := []struct {
		name, dataset, label string
		want                 string // tenant id, or "" with res
		res                  Result
	}{
		{"gateway label as computed", gw, GatewayLabel(vdcA, "acme-edge1", gwA), "acme", Resolved},
		{"gateway label, other name and UUID parts", gw, vdcA[:10] + "zzzzz99999", "acme", Resolved},
		{"gateway label of a short gateway name", gw, vdcA[:10] + "gw" + gwA[:5], "acme", Resolved},
		{"gateway label of a DC group gateway", gw, GatewayLabel(grpA, "gw", gwGrpA), "acme", Resolved},
		{"gateway label in upper case", gw, strings.ToUpper(vdcB[:10]) + "EDGE1abcde", "globex", Resolved},
		{"gateway label, first 10 characters one off", gw, "a93c9db9-8" + "acmee" + gwA[:5], "", Unknown},
		{"gateway prefix only", gw, vdcA[:10], "acme", Resolved},
		{"gateway label too short", gw, vdcA[:9], "", Unknown},
		{"DFW label, first 27 reading", dfw, first, "acme", Resolved},
		{"DFW label, last 27 reading", dfw, last, "acme", Resolved},
		{"DFW label with a short group name", dfw, "ab" + grpA[9:], "acme", Resolved},
		{"DFW label without name part", dfw, grpA[:27], "acme", Resolved},
		{"DFW label, UUID part one off", dfw, first[:len(first)-1] + "0", "", Unknown},
		{"DFW label on a gateway event", gw, first, "", Unknown},
		{"gateway label on a DFW event", dfw, GatewayLabel(vdcA, "acme-edge1", gwA), "", Unknown},
		{"NSX-V rule tag", nsxv, nsxvB, "globex", Resolved},
		{"NSX-V rule tag in upper case", nsxv, strings.ToUpper(nsxvB), "globex", Resolved},
		{"NSX-V rule tag of an NSX-T Org VDC", nsxv, vdcA, "acme", Resolved},
		{"NSX-V rule tag one off", nsxv, "5e2a9f10-3b7c-4d5e-a6f7-8091a2b3c4d5", "", Unknown},
		{"verbatim label", dfw, "ACME-web-allow", "acme", Resolved},
		{"verbatim label is case-sensitive", dfw, "acme-web-allow", "", Unknown},
		{"project short log id", gw, "globexprj", "globex", Resolved},
		{"no label", dfw, "", "", NoLabel},
		{"a label of nobody", dfw, "DR-Allow", "", Unknown},
		{"unknown dataset, gateway shape", "", vdcA[:10] + "edge1abcde", "acme", Resolved},
		{"unknown dataset, NSX-V shape", "", nsxvB, "globex", Resolved},
		{"very long label", dfw, strings.Repeat("x", 100) + grpA[9:], "", Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, res := r.Resolve(tt.dataset, tt.label)
			if res != tt.res {
				t.Fatalf("Resolve(%q, %q) = %d, %v; want %v", tt.dataset, tt.label, i, res, tt.res)
			}
			got := ""
			if i >= 0 {
				got = r.Tenant(i).ID
			}
			if got != tt.want {
				t.Fatalf("Resolve(%q, %q) = tenant %q, want %q", tt.dataset, tt.label, got, tt.want)
			}
		})
	}
}

// TestAmbiguous: a key two tenants claim resolves to neither, and Build
// says so; keys of the same tenant claimed twice are fine.
func TestAmbiguous(t *testing.T) {
	ts := testTenants()
	// A third tenant whose Org VDC shares acme's first 10 characters.
	ts = append(ts, Tenant{ID: "initech", OrgVDCs: []Object{{ID: vdcA[:10] + "000-4000-8000-000000000000"}}})
	r, probs := Build(ts)
	if len(probs) != 1 || probs[0].Tenant != 2 || probs[0].Other != 0 || probs[0].Field != "org_vdcs[0].id" || probs[0].OtherField != "org_vdcs[0].id" {
		t.Fatalf("problems: %+v", probs)
	}
	if i, res := r.Resolve(pipeline.DatasetNSXGatewayFW, vdcA[:10]+"edge1abcde"); res != Ambiguous {
		t.Errorf("a gateway label both claim: %d, %v; want Ambiguous", i, res)
	}
	// The keys that are not shared still resolve.
	if i, res := r.Resolve(pipeline.DatasetNSXVDFW, vdcA); res != Resolved || r.Tenant(i).ID != "acme" {
		t.Errorf("acme's NSX-V tag: %d, %v", i, res)
	}
}

func TestBuildProblems(t *testing.T) {
	tests := []struct {
		name   string
		ts     []Tenant
		fields []string // "tenant-index field" of each problem, in order
	}{
		{"valid", testTenants(), nil},
		{"missing id", []Tenant{{}}, []string{"0 id"}},
		{"bad id", []Tenant{{ID: "a b"}}, []string{"0 id"}},
		{"reserved id", []Tenant{{ID: CatchAllID}}, []string{"0 id"}},
		{"duplicate id", []Tenant{{ID: "a"}, {ID: "a"}}, []string{"1 id"}},
		{"bad UUIDs", []Tenant{{ID: "a", OrgVDCs: []Object{{ID: "vdc-1"}}, EdgeGateways: []Gateway{{ID: vdcA, Parent: "x"}}, NSXVOrgVDCs: []string{"nope"}}},
			[]string{"0 org_vdcs[0].id", "0 edge_gateways[0].parent", "0 nsxv_org_vdcs[0]"}},
		{"same Org VDC twice", []Tenant{{ID: "a", OrgVDCs: []Object{{ID: vdcA}}}, {ID: "b", NSXVOrgVDCs: []string{vdcA}}},
			[]string{"1 nsxv_org_vdcs[0]"}},
		{"gateway parent of another tenant", []Tenant{{ID: "a", DCGroups: []Object{{Name: "g", ID: grpA}}}, {ID: "b", EdgeGateways: []Gateway{{ID: gwA, Parent: grpA}}}},
			[]string{"1 edge_gateways[0].parent"}},
		{"verbatim label of another tenant's shape", []Tenant{{ID: "a", NSXVOrgVDCs: []string{nsxvB}}, {ID: "b", Labels: []string{nsxvB}}},
			[]string{"1 labels[0]"}},
		{"same verbatim label", []Tenant{{ID: "a", Labels: []string{"x"}}, {ID: "b", Projects: []string{"x"}}},
			[]string{"1 nsx_projects[0]"}},
		{"same tenant claims twice", []Tenant{{ID: "a", OrgVDCs: []Object{{ID: vdcA}}, NSXVOrgVDCs: []string{vdcA}, EdgeGateways: []Gateway{{ID: gwA, Parent: vdcA}}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := Build(tt.ts)
			var got []string
			for _, p := range probs {
				got = append(got, strings.Join([]string{string(rune('0' + p.Tenant)), p.Field}, " "))
			}
			if strings.Join(got, "; ") != strings.Join(tt.fields, "; ") {
				t.Errorf("problems %v, want %v; %v", got, tt.fields, probs)
			}
		})
	}
}

func TestNormalizeUUID(t *testing.T) {
	tests := []struct{ in, want string }{
		{vdcA, vdcA},
		{strings.ToUpper(vdcA), vdcA},
		{"urn:vcloud:vdc:" + vdcA, vdcA},
		{"urn:vcloud:vdcGroup:" + grpA, grpA},
		{vdcA[:35], ""},
		{strings.ReplaceAll(vdcA, "-", ""), ""},
		{"g93c9db9-7471-3192-8d09-a8f7eeda85f9", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := NormalizeUUID(tt.in)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("NormalizeUUID(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestLabels(t *testing.T) {
	r := mustBuild(t, testTenants())
	var got []string
	for _, l := range r.Labels(0) {
		got = append(got, l.Shape.String()+" "+l.Label+" "+l.Key)
	}
	first, last := DFWLabels("acme-dcgroup", grpA)
	want := []string{
		"nsx-v " + vdcA + " " + vdcA,
		"gateway " + vdcA[:10] + "… " + vdcA[:10],
		"gateway " + vdcA[:10] + "acme-" + gwA[:5] + " " + vdcA[:10],
		"gateway " + grpA[:10] + "gw" + gwGrpA[:5] + " " + grpA[:10],
		"dfw-first27 " + first + " " + grpA[:27],
		"dfw-last27 " + last + " " + grpA[9:],
		"gateway " + grpA[:10] + "… " + grpA[:10],
		"verbatim ACME-web-allow ACME-web-allow",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("labels:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if first != "acme-"+grpA[:27] || last != "acme-"+grpA[9:] || len(first) != 32 {
		t.Errorf("DFW labels %q %q", first, last)
	}
	if l := GatewayLabel(vdcA, "acme-edge1", gwA); l != "a93c9db9-7acme-d1e2f" || len(l) != 20 {
		t.Errorf("gateway label %q", l)
	}
}

func TestResolveAllocs(t *testing.T) {
	r := mustBuild(t, testTenants())
	first, _ := DFWLabels("acme-dcgroup", grpA)
	upper := strings.ToUpper(nsxvB)
	allocs := testing.AllocsPerRun(100, func() {
		r.Resolve(pipeline.DatasetNSXDFW, first)
		r.Resolve(pipeline.DatasetNSXVDFW, upper)
		r.Resolve(pipeline.DatasetNSXGatewayFW, "nobody-at-all")
	})
	if allocs != 0 {
		t.Errorf("Resolve allocates %v times", allocs)
	}
}

func BenchmarkResolve(b *testing.B) {
	var ts []Tenant
	for i := 0; i < 10000; i++ {
		u := strings.Replace(vdcA, "a93c", string([]byte{hex(i >> 12), hex(i >> 8), hex(i >> 4), hex(i)}), 1)
		ts = append(ts, Tenant{ID: "t" + u[:8], OrgVDCs: []Object{{ID: u}}})
	}
	r := mustBuild(b, ts)
	label := GatewayLabel(ts[5000].OrgVDCs[0].ID, "edge1", gwA)
	b.ReportAllocs()
	for b.Loop() {
		if _, res := r.Resolve(pipeline.DatasetNSXGatewayFW, label); res != Resolved {
			b.Fatal(res)
		}
	}
}

func hex(i int) byte { return "0123456789abcdef"[i&15] }

// FuzzResolve: no label and dataset make Resolve panic, and a resolved
// label's tenant claims it.
func FuzzResolve(f *testing.F) {
	r := mustBuild(f, testTenants())
	first, last := DFWLabels("acme-dcgroup", grpA)
	for _, s := range []string{first, last, nsxvB, vdcA[:10] + "x", "ACME-web-allow", "", "é" + grpA[9:]} {
		f.Add(pipeline.DatasetNSXDFW, s)
		f.Add(pipeline.DatasetNSXGatewayFW, s)
	}
	f.Fuzz(func(t *testing.T, dataset, label string) {
		i, res := r.Resolve(dataset, label)
		if (res == Resolved) != (i >= 0) || i >= r.Len() {
			t.Fatalf("Resolve(%q, %q) = %d, %v", dataset, label, i, res)
		}
	})
}
