package vcd_test

import (
	"context"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/tenants"
	"github.com/vpipe/vpipe/pipeline/vcd"
	"github.com/vpipe/vpipe/pipeline/vcd/simulator"
)

const fixture = "../../testdata/tenants/vcd-fixture.json"

func startSim(t *testing.T, opts simulator.Options) (*simulator.Server, string) {
	t.Helper()
	f, err := simulator.LoadFixture(fixture)
	if err != nil {
		t.Fatal(err)
	}
	sim := simulator.New(f, opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

func client(t *testing.T, url, org, token string, pageSize int) *vcd.Client {
	t.Helper()
	c, err := vcd.New(vcd.Config{URL: url, Org: org, Token: token, PageSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestDiscoverMatchesYAML: the labels computed from what discovery reads
// from the simulator equal those computed from the same objects listed in
// a tenants file; merged with configured tenants that only name their
// destinations, discovery gives each its objects.
func TestDiscoverMatchesYAML(t *testing.T) {
	tests := []struct {
		name     string
		opts     simulator.Options
		pageSize int
	}{
		{"pages of 128", simulator.Options{LinkHeaders: true}, 128},
		{"pages of 5 with Link headers", simulator.Options{LinkHeaders: true}, 5},
		{"pages of 3 without Link headers", simulator.Options{}, 3},
		{"legacy Org VDC query", simulator.Options{NoVDCList: true}, 2},
	}
	data, err := os.ReadFile("../../testdata/tenants/vcd-equivalent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	listed, err := config.ParseTenantsFile(data)
	if err != nil {
		t.Fatal(err)
	}
	want, probs := tenants.Build(listed)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, url := startSim(t, tt.opts)
			discovered, err := client(t, url, "System", "provider-token", tt.pageSize).Discover(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			// The provider configures only ids, names and destinations.
			var configured []tenants.Tenant
			for _, l := range listed {
				configured = append(configured, tenants.Tenant{ID: l.ID, Name: l.Name, Destinations: l.Destinations})
			}
			got, probs := tenants.Build(tenants.Merge(configured, discovered))
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			if got.Len() != want.Len() {
				t.Fatalf("%d tenants from discovery, %d listed", got.Len(), want.Len())
			}
			for i := 0; i < want.Len(); i++ {
				id := want.Tenant(i).ID
				j := got.Index(id)
				if j < 0 {
					t.Fatalf("tenant %s not discovered", id)
				}
				if g, w := labelSet(got, j), labelSet(want, i); !slices.Equal(g, w) {
					t.Errorf("tenant %s: labels from discovery\n%s\nlisted\n%s", id, strings.Join(g, "\n"), strings.Join(w, "\n"))
				}
				if len(got.Tenant(j).Destinations) != 1 {
					t.Errorf("tenant %s lost its destination", id)
				}
			}
			if sim.Logins() != 1 {
				t.Errorf("%d logins for one discovery", sim.Logins())
			}
		})
	}
}

// labelSet is a tenant's labels without the object names (a file may
// list objects in another order).
func labelSet(r *tenants.Registry, i int) []string {
	var out []string
	for _, l := range r.Labels(i) {
		out = append(out, l.Shape.String()+" "+l.Label)
	}
	slices.Sort(out)
	return out
}

func TestPaging(t *testing.T) {
	sim, url := startSim(t, simulator.Options{})
	gws, err := client(t, url, "System", "provider-token", 7).EdgeGateways(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(gws) != 44 {
		t.Fatalf("%d gateways, want 44", len(gws))
	}
	if n := sim.Requests(); n != 7 { // ceil(44/7)
		t.Errorf("%d requests, want 7 pages", n)
	}
	seen := map[string]bool{}
	for _, g := range gws {
		if seen[g.ID] {
			t.Errorf("gateway %s twice", g.ID)
		}
		seen[g.ID] = true
	}
}

// TestTenantToken: a tenant's API token logs in at its own token
// endpoint and sees only its organisation.
func TestTenantToken(t *testing.T) {
	_, url := startSim(t, simulator.Options{LinkHeaders: true})
	ts, err := client(t, url, "acme", "acme-token", 10).Discover(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].ID != "acme" || ts[0].Name != "ACME Corporation" || len(ts[0].OrgVDCs) != 3 {
		t.Fatalf("acme's discovery: %+v", ts)
	}
	if _, err := client(t, url, "acme", "provider-token", 10).Orgs(ctx(t)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("the provider token at acme's endpoint: err = %v, want a 401", err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*simulator.Server)
		token string
		want  string // in the error
	}{
		{"bad token", nil, "nope", "vcd login (POST /oauth/provider/token): status 401 UNAUTHORIZED"},
		{"VCD down", func(s *simulator.Server) { s.SetDown(true) }, "provider-token", "status 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, url := startSim(t, simulator.Options{})
			if tt.setup != nil {
				tt.setup(sim)
			}
			_, err := client(t, url, "System", tt.token, 10).Discover(ctx(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.token) && tt.token != "" {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(nil)
		url := srv.URL
		srv.Close()
		if _, err := client(t, url, "System", "x", 10).Discover(ctx(t)); err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestRelogin: an expired access token is renewed once, transparently.
func TestRelogin(t *testing.T) {
	sim, url := startSim(t, simulator.Options{})
	c := client(t, url, "System", "provider-token", 128)
	if _, err := c.Orgs(ctx(t)); err != nil {
		t.Fatal(err)
	}
	sim.ExpireSessions()
	orgs, err := c.Orgs(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(orgs) != 4 || sim.Logins() != 2 {
		t.Errorf("%d orgs, %d logins", len(orgs), sim.Logins())
	}
}

// TestManagerWithSimulator: the registry manager discovers from the
// simulator, keeps the last good tenants while VCD is down, and picks up
// changes when it is back.
func TestManagerWithSimulator(t *testing.T) {
	sim, url := startSim(t, simulator.Options{})
	c := client(t, url, "System", "provider-token", 128)
	mg, err := tenants.NewManager(context.Background(), tenants.ManagerConfig{
		Static:   []tenants.Tenant{{ID: "acme", Destinations: []tenants.Destination{{Name: "d"}}}},
		Discover: c.Discover,
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := tenants.DFWLabels("acme-dcgroup", "5f0e8d7c-6b5a-4938-8271-605f4e3d2c1b")
	check := func(want string) {
		t.Helper()
		i, res := mg.Registry().Resolve("nsx.dfw", first)
		if res != tenants.Resolved || mg.Registry().Tenant(i).ID != want {
			t.Fatalf("the DFW label resolves to %d, %v; want %s", i, res, want)
		}
	}
	check("acme")
	sim.SetDown(true)
	if err := mg.Refresh(ctx(t), true); err == nil {
		t.Fatal("a refresh with VCD down did not fail")
	}
	check("acme")
	f, _ := simulator.LoadFixture(fixture)
	f.VDCGroups[0].OrgID = f.Orgs[2].ID // the group moves to globex
	sim.SetFixture(f)
	sim.SetDown(false)
	if err := mg.Refresh(ctx(t), true); err != nil {
		t.Fatal(err)
	}
	check("globex")
}
