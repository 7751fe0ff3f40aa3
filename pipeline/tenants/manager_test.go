package tenants

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vpipe/vpipe/pipeline"
)

func TestMerge(t *testing.T) {
	configured := []Tenant{
		{ID: "acme", Name: "ACME Corp", OrgVDCs: []Object{{Name: "mine", ID: vdcA}}, Destinations: []Destination{{Name: "d"}}},
		{ID: "initech", VCDOrg: "0b5f6c2e-1d3a-4c8e-9f10-2a3b4c5d6e7f"},
	}
	discovered := []Tenant{
		{ID: "ACME", Name: "from VCD", VCDOrg: "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
			OrgVDCs:  []Object{{Name: "theirs", ID: "urn:vcloud:vdc:" + vdcA}, {Name: "new", ID: vdcB}},
			DCGroups: []Object{{Name: "acme-dcgroup", ID: grpA}}},
		{ID: "initech-org", VCDOrg: "0b5f6c2e-1d3a-4c8e-9f10-2a3b4c5d6e7f", EdgeGateways: []Gateway{{Name: "gw", ID: gwA, Parent: grpA}}},
		{ID: "zeta", NSXVOrgVDCs: []string{nsxvB}, Destinations: []Destination{{Name: "ignored"}}},
		// An organisation named like a configured tenant that names
		// another organisation.
		{ID: "initech", VCDOrg: "11111111-1111-4111-8111-111111111111", NSXVOrgVDCs: []string{"22222222-1111-4111-8111-111111111111"}},
	}
	got := Merge(configured, discovered)
	if len(got) != 4 {
		t.Fatalf("%d tenants: %+v", len(got), got)
	}
	a := got[0]
	if a.ID != "acme" || a.Name != "ACME Corp" || len(a.Destinations) != 1 || !a.Discovered {
		t.Errorf("acme: configuration must win: %+v", a)
	}
	if len(a.OrgVDCs) != 2 || a.OrgVDCs[0].Name != "mine" || a.OrgVDCs[1].ID != vdcB || len(a.DCGroups) != 1 {
		t.Errorf("acme's objects: %+v %+v", a.OrgVDCs, a.DCGroups)
	}
	if i := got[1]; i.ID != "initech" || len(i.EdgeGateways) != 1 {
		t.Errorf("initech matched by VCD org UUID: %+v", i)
	}
	// Unmatched organisations come after, sorted, without destinations;
	// one named like a configured id gets a prefix.
	if got[2].ID != "vcd.initech" || got[3].ID != "zeta" || got[3].Destinations != nil || !got[3].Discovered {
		t.Errorf("extra tenants: %+v %+v", got[2], got[3])
	}
	if configured[0].OrgVDCs[0].Name != "mine" || len(configured[0].OrgVDCs) != 1 {
		t.Errorf("Merge modified its input")
	}
}

const fileV1 = "v1"

// fakeParse stands for pipeline/config.ParseTenantsFile: a line
// "id vdc-uuid" per tenant; "bad" is invalid.
func fakeParse(data []byte) ([]Tenant, error) {
	var out []Tenant
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "bad" {
			return nil, errors.New("line 1: bad")
		}
		f := strings.Fields(line)
		if len(f) == 2 {
			out = append(out, Tenant{ID: f[0], NSXVOrgVDCs: []string{f[1]}})
		}
	}
	return out, nil
}

func TestManager(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tenants.txt")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("filet " + nsxvB + "\n")
	var (
		mu       sync.Mutex
		changes  []*Registry
		vcdDown  atomic.Bool
		vcdCalls atomic.Int64
	)
	reload := make(chan struct{})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	mg, err := NewManager(context.Background(), ManagerConfig{
		Static: []Tenant{{ID: "static", OrgVDCs: []Object{{ID: vdcA}}}},
		File:   file, Parse: fakeParse, FileInterval: 20 * time.Millisecond,
		Discover: func(ctx context.Context) ([]Tenant, error) {
			vcdCalls.Add(1)
			if vcdDown.Load() {
				return nil, errors.New("vcd unreachable")
			}
			return []Tenant{{ID: "vcdorg", DCGroups: []Object{{Name: "g", ID: grpA}}}}, nil
		},
		DiscoverInterval: time.Hour,
		Reload:           reload,
		OnChange: func(r *Registry) {
			mu.Lock()
			changes = append(changes, r)
			mu.Unlock()
		},
	}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	resolves := func(dataset, label, want string) bool {
		i, res := mg.Registry().Resolve(dataset, label)
		return res == Resolved && mg.Registry().Tenant(i).ID == want
	}
	first, _ := DFWLabels("g", grpA)
	if !resolves(pipeline.DatasetNSXVDFW, vdcA, "static") || !resolves(pipeline.DatasetNSXVDFW, nsxvB, "filet") || !resolves(pipeline.DatasetNSXDFW, first, "vcdorg") {
		t.Fatal("the first registry lacks a source")
	}
	if value(m.tenants) != 3 {
		t.Errorf("tenants gauge %v", value(m.tenants))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mg.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
		}
	}
	// A changed file is picked up.
	write("renamed " + nsxvB + "\n")
	waitFor("the changed file", func() bool { return resolves(pipeline.DatasetNSXVDFW, nsxvB, "renamed") })

	// A broken file is refused; the registry stays.
	write("bad\n")
	waitFor("the bad file counted", func() bool {
		return value(m.refreshes.WithLabelValues(SourceFile, "error")) > 0
	})
	if !resolves(pipeline.DatasetNSXVDFW, nsxvB, "renamed") {
		t.Error("a bad file changed the registry")
	}
	// So is a file claiming a static tenant's label.
	write("thief " + vdcA + "\n")
	waitFor("the conflicting file refused", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return value(m.refreshes.WithLabelValues(SourceFile, "ok")) >= 3
	})
	if !resolves(pipeline.DatasetNSXVDFW, vdcA, "static") {
		t.Error("a conflicting file changed the registry")
	}

	// VCD down on reload (SIGHUP): the discovered tenants stay, and the
	// registry ages.
	write("filet " + nsxvB + "\n")
	vcdDown.Store(true)
	calls := vcdCalls.Load()
	reload <- struct{}{}
	waitFor("the reload", func() bool { return vcdCalls.Load() > calls && resolves(pipeline.DatasetNSXVDFW, nsxvB, "filet") })
	if !resolves(pipeline.DatasetNSXDFW, first, "vcdorg") {
		t.Error("a failed discovery dropped the discovered tenants")
	}
	age1 := m.ageSeconds()
	waitFor("the registry to age", func() bool { return m.ageSeconds() > age1+0.05 })
	vcdDown.Store(false)
	reload <- struct{}{}
	waitFor("a fresh registry", func() bool { return m.ageSeconds() < 0.05 })
}

func TestManagerRefusesConflicts(t *testing.T) {
	_, err := NewManager(context.Background(), ManagerConfig{
		Static: []Tenant{{ID: "a", OrgVDCs: []Object{{ID: vdcA}}}, {ID: "b", NSXVOrgVDCs: []string{vdcA}}},
	}, nil, nil)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

// TestManagerDiscoveryConflicts: a conflict that discovery brings is no
// error: the key resolves to no tenant.
func TestManagerDiscoveryConflicts(t *testing.T) {
	mg, err := NewManager(context.Background(), ManagerConfig{
		Static: []Tenant{{ID: "a", OrgVDCs: []Object{{ID: vdcA}}}},
		Discover: func(context.Context) ([]Tenant, error) {
			return []Tenant{{ID: "other", OrgVDCs: []Object{{ID: vdcA}}}}, nil
		},
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, res := mg.Registry().Resolve(pipeline.DatasetNSXVDFW, vdcA); res != Ambiguous {
		t.Errorf("res = %v, want Ambiguous", res)
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
