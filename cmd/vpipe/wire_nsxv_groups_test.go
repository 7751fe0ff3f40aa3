package main

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/nsxgroups"
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

// memCheckpoints is an in-memory checkpoint store.
type memCheckpoints struct {
	mu sync.Mutex
	kv map[string][]byte
}

func (m *memCheckpoints) Get(key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kv[key]
	return v, ok
}

func (m *memCheckpoints) Put(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv[key] = value
	return nil
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
	cp := &memCheckpoints{kv: map[string][]byte{}}
	src, err := newNSXGroupsSource(sc, nsx.NewMetrics(nil), nsxgroups.Deps{Publisher: pub,
		OpenCheckpoints: func(context.Context) (nsxgroups.Checkpointer, error) { return cp, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
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
