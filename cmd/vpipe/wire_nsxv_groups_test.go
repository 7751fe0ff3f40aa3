package main

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/nsxgroups"
	"github.com/vpipe/vpipe/pipeline/runtest"
	"github.com/vpipe/vpipe/sinks/nsx"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
)

// memPublisher keeps what is published.
type memPublisher struct {
	mu sync.Mutex
	ms []nsxgroups.Membership
}

func (p *memPublisher) Publish(_ context.Context, e *pipeline.Event, done func(error)) error {
	if m, ok := nsxgroups.FromEvent(e); ok {
		p.mu.Lock()
		p.ms = append(p.ms, m)
		p.mu.Unlock()
	}
	if done != nil {
		done(nil)
	}
	return nil
}

func (p *memPublisher) memberships() []nsxgroups.Membership {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]nsxgroups.Membership(nil), p.ms...)
}

// TestNSXGroupsSourceNSXV: an nsx_groups source with api nsxv reads NSX-V
// security group membership (it was refused before).
func TestNSXGroupsSourceNSXV(t *testing.T) {
	sim := nsxsim.New(nsxsim.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.AddVM(nsxsim.VM{ExternalID: "uuid-a", DisplayName: "web-a", MoRef: "vm-7", SecurityTags: []string{"infected"}})
	sim.AddSecurityGroup(nsxsim.SecurityGroup{ID: "securitygroup-10", Name: "Quarantine", Tags: []string{"infected"}})
	t.Setenv("VPIPE_TEST_NSXV_PASSWORD", "VMware1!VMware1!")
	sc := config.NSXGroupsSource{Name: "nsxv1", URL: srv.URL, API: "nsxv", Auth: "basic",
		Username: "admin", PasswordEnv: "VPIPE_TEST_NSXV_PASSWORD",
		Groups: []config.NSXGroup{{ID: "securitygroup-10", Name: "Quarantine"}}}
	pub := &memPublisher{}
	addr := brokertest.Start(t, "vpipe.checkpoints")
	src, err := newNSXGroupsSource(sc, nsx.NewMetrics(nil), nsxgroups.Deps{Publisher: pub,
		OpenCheckpoints: func(ctx context.Context) (nsxgroups.Checkpointer, error) {
			return checkpoint.Open(ctx, []string{addr}, "vpipe.checkpoints")
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer runtest.Start(t, "nsx_groups source", src.Run)()
	deadline := time.Now().Add(10 * time.Second)
	for len(pub.memberships()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no membership event")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := pub.memberships()[0]
	if !m.Joined || m.Group != "securitygroup-10" || m.VMRef != "vm-7" || m.VMName != "web-a" || m.Product != nsxgroups.ProductNSXV {
		t.Fatalf("membership %+v", m)
	}
}
