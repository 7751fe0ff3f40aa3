package nsx_test

import (
	"errors"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/vpipe/vpipe/sinks/nsx"
	"github.com/vpipe/vpipe/sinks/nsx/simulator"
)

func TestSecurityGroupVMs(t *testing.T) {
	sim := simulator.New(simulator.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.AddVM(simulator.VM{ExternalID: vm1, DisplayName: "web-01", MoRef: "vm-11", SecurityTags: []string{"av|infected"}})
	sim.AddVM(simulator.VM{ExternalID: vm2, DisplayName: "db-01", MoRef: "vm-12"})
	sim.AddVM(simulator.VM{ExternalID: "uuid-3", DisplayName: "app-01", MoRef: "vm-13"})
	sim.AddSecurityGroup(simulator.SecurityGroup{ID: "securitygroup-10", Name: "Quarantine",
		Include: []string{"vm-13"}, Tags: []string{"av|infected"}})
	c, err := nsx.New(nsx.Config{URL: srv.URL, API: nsx.APINSXV, Auth: nsx.AuthBasic, Username: user, Password: password}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	check := func(want ...nsx.SecurityGroupVM) {
		t.Helper()
		got, err := c.SecurityGroupVMs(ctx, "securitygroup-10")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("members %v, want %v", got, want)
		}
	}
	web, db, app := nsx.SecurityGroupVM{ID: "vm-11", Name: "web-01"}, nsx.SecurityGroupVM{ID: "vm-12", Name: "db-01"}, nsx.SecurityGroupVM{ID: "vm-13", Name: "app-01"}
	check(web, app)

	// Tagging through the client's NSX-V tag API makes db a member.
	if _, err := c.AddTags(ctx, vm2, nsx.Tag{Scope: "av", Tag: "infected"}); err != nil {
		t.Fatal(err)
	}
	check(web, db, app)
	if !sim.SetSecurityTags(vm1, nil) {
		t.Fatal("no vm1")
	}
	check(db, app)
	sim.AddSecurityGroup(simulator.SecurityGroup{ID: "securitygroup-10", Name: "Quarantine",
		Include: []string{"vm-13"}, Exclude: []string{"vm-13"}, Tags: []string{"av|infected"}})
	check(db)

	if _, err := c.SecurityGroupVMs(ctx, "securitygroup-99"); err == nil {
		t.Fatal("an unknown security group answered")
	}
	p, err := nsx.New(nsx.Config{URL: srv.URL, API: nsx.APIPolicy, Auth: nsx.AuthBasic, Username: user, Password: password}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.SecurityGroupVMs(ctx, "securitygroup-10"); !errors.Is(err, nsx.ErrUnsupported) {
		t.Fatalf("policy client: %v; want ErrUnsupported", err)
	}
}
