package nsx_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/sinks/nsx"
	"github.com/vpipe/vpipe/sinks/nsx/simulator"
)

const (
	user      = "admin"
	password  = "VMware1!VMware1!"
	apiToken  = "csp-api-token-1"
	vm1       = "50291f4a-0c4e-4d39-9d5b-5f0c4d2c1a01"
	vm2       = "50291f4a-0c4e-4d39-9d5b-5f0c4d2c1a02"
	otherUser = "ops"
)

// setup is one way of reaching NSX: an API and an auth method.
type setup struct {
	name string
	cfg  func(url string) nsx.Config
}

var setups = []setup{
	{"policy/basic", func(u string) nsx.Config {
		return nsx.Config{URL: u, API: nsx.APIPolicy, Auth: nsx.AuthBasic, Username: user, Password: password}
	}},
	{"policy/session", func(u string) nsx.Config {
		return nsx.Config{URL: u, API: nsx.APIPolicy, Auth: nsx.AuthSession, Username: user, Password: password}
	}},
	{"policy-ep/vmc", func(u string) nsx.Config {
		return nsx.Config{API: nsx.APIPolicy, EnforcementPoint: "vmc-enforcementpoint", Auth: nsx.AuthVMC,
			VMC: nsx.VMC{RefreshToken: apiToken, CSPURL: u, URL: u, OrgID: "org-1", SDDCID: "sddc-1"}}
	}},
	{"manager/session", func(u string) nsx.Config {
		return nsx.Config{URL: u, API: nsx.APIManager, Auth: nsx.AuthSession, Username: user, Password: password}
	}},
	{"nsxv/basic", func(u string) nsx.Config {
		return nsx.Config{URL: u, API: nsx.APINSXV, Auth: nsx.AuthBasic, Username: user, Password: password}
	}},
}

// newSim starts a simulator over HTTPS with two VMs, vm1 with one tag
// vpipe does not manage.
func newSim(t *testing.T) (*simulator.Server, *httptest.Server) {
	t.Helper()
	sim := simulator.New(simulator.Options{
		Users:         map[string]string{user: password, otherUser: "secret"},
		RefreshTokens: []string{apiToken},
	})
	sim.AddVM(simulator.VM{ExternalID: vm1, DisplayName: "web-01", MoRef: "vm-1",
		Tags: []simulator.Tag{{Scope: "owner", Tag: "alice"}}, SecurityTags: []string{"owner|alice"}})
	sim.AddVM(simulator.VM{ExternalID: vm2, DisplayName: "web-01", MoRef: "vm-2"})
	srv := httptest.NewUnstartedServer(sim)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return sim, srv
}

func newClient(t *testing.T, srv *httptest.Server, cfg nsx.Config) *nsx.Client {
	t.Helper()
	cfg.Transport = srv.Client().Transport
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 20*time.Millisecond
	c, err := nsx.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// simTags is what the simulator holds for a VM in the API's terms.
func simTags(sim *simulator.Server, api, id string) []nsx.Tag {
	vm, _ := sim.VM(id)
	var out []nsx.Tag
	if api == nsx.APINSXV {
		for _, n := range vm.SecurityTags {
			s, tg, ok := strings.Cut(n, "|")
			if !ok {
				s, tg = "", n
			}
			out = append(out, nsx.Tag{Scope: s, Tag: tg})
		}
		return out
	}
	for _, t := range vm.Tags {
		out = append(out, nsx.Tag{Scope: t.Scope, Tag: t.Tag})
	}
	return out
}

func TestUpdateTagsKeepsOtherTags(t *testing.T) {
	app := nsx.Tag{Scope: "app", Tag: "web"}
	env := nsx.Tag{Scope: "env", Tag: "prod"}
	owner := nsx.Tag{Scope: "owner", Tag: "alice"}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			sim, srv := newSim(t)
			c := newClient(t, srv, s.cfg(srv.URL))
			api := c.API()
			ctx := ctxT(t)

			ch, err := c.AddTags(ctx, vm1, app, env)
			if err != nil {
				t.Fatalf("AddTags: %v", err)
			}
			if len(ch.Add) != 2 || len(ch.Remove) != 0 {
				t.Errorf("AddTags change = %+v; want two added", ch)
			}
			if got, want := simTags(sim, api, vm1), []nsx.Tag{owner, app, env}; !sameTags(got, want) {
				t.Errorf("tags after add = %v; want %v", got, want)
			}
			writes := sim.Stats().TagWrites
			ch, err = c.AddTags(ctx, vm1, app) // already there: nothing to write
			if err != nil || !ch.Empty() {
				t.Errorf("AddTags again = %+v, %v; want an empty change", ch, err)
			}
			if sim.Stats().TagWrites != writes {
				t.Error("a change that changes nothing was written")
			}
			ch, err = c.UpdateTags(ctx, vm1, func(cur []nsx.Tag) nsx.Change {
				if !slices.Contains(cur, owner) {
					t.Errorf("decide saw %v; want the unmanaged tag among them", cur)
				}
				return nsx.Change{Add: []nsx.Tag{{Scope: "env", Tag: "test"}}, Remove: []nsx.Tag{env, {Scope: "x", Tag: "absent"}}}
			})
			if err != nil {
				t.Fatalf("UpdateTags: %v", err)
			}
			if len(ch.Add) != 1 || len(ch.Remove) != 1 {
				t.Errorf("UpdateTags change = %+v; want one add, one remove (the absent tag left out)", ch)
			}
			if got, want := simTags(sim, api, vm1), []nsx.Tag{owner, app, {Scope: "env", Tag: "test"}}; !sameTags(got, want) {
				t.Errorf("tags = %v; want %v", got, want)
			}
			vm, err := c.VM(ctx, vm1)
			if err != nil || !sameTags(vm.Tags, simTags(sim, api, vm1)) {
				t.Errorf("VM = %+v, %v", vm, err)
			}
			if _, err := c.AddTags(ctx, "no-such-vm", app); !errors.Is(err, nsx.ErrNotFound) {
				t.Errorf("AddTags on an unknown VM: %v; want ErrNotFound", err)
			}
		})
	}
}

func sameTags(a, b []nsx.Tag) bool {
	if len(a) != len(b) {
		return false
	}
	for _, t := range a {
		if !slices.Contains(b, t) {
			return false
		}
	}
	return true
}

// TestConcurrentChangesOneVM: concurrent read-modify-writes of one VM lose
// nothing (the policy API replaces the whole list).
func TestConcurrentChangesOneVM(t *testing.T) {
	for _, s := range setups[:1] {
		t.Run(s.name, func(t *testing.T) {
			sim, srv := newSim(t)
			c := newClient(t, srv, s.cfg(srv.URL))
			ctx := ctxT(t)
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					if _, err := c.AddTags(ctx, vm1, nsx.Tag{Scope: "n", Tag: fmt.Sprint(i)}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got := simTags(sim, c.API(), vm1); len(got) != 21 {
				t.Errorf("%d tags after 20 concurrent adds; want 21: %v", len(got), got)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		n          int
		retryAfter time.Duration
		wantErr    bool
	}{
		{"503 twice", http.StatusServiceUnavailable, 2, 0, false},
		{"429 with Retry-After", http.StatusTooManyRequests, 2, time.Second, false},
		{"504", http.StatusGatewayTimeout, 1, 0, false},
		{"503 past the retries", http.StatusServiceUnavailable, 10, 0, true},
	}
	for _, s := range setups {
		for _, tt := range tests {
			t.Run(s.name+"/"+tt.name, func(t *testing.T) {
				sim, srv := newSim(t)
				cfg := s.cfg(srv.URL)
				cfg.MaxRetries = 3
				c := newClient(t, srv, cfg)
				ctx := ctxT(t)
				if _, err := c.VM(ctx, vm1); err != nil { // log in, find the proxy
					t.Fatal(err)
				}
				sim.FailNext(tt.n, tt.status, tt.retryAfter)
				_, err := c.AddTags(ctx, vm1, nsx.Tag{Scope: "app", Tag: "web"})
				if tt.wantErr {
					var e *nsx.Error
					if !errors.As(err, &e) || e.StatusCode != tt.status || e.Code == 0 || e.Message == "" {
						t.Fatalf("err = %v; want an *nsx.Error %d with NSX's code and message", err, tt.status)
					}
					if errors.Is(err, pipeline.ErrPermanent) {
						t.Errorf("%d is permanent; want retryable", tt.status)
					}
					return
				}
				if err != nil {
					t.Fatalf("AddTags: %v", err)
				}
				if !slices.Contains(simTags(sim, c.API(), vm1), nsx.Tag{Scope: "app", Tag: "web"}) {
					t.Error("tag not added after the retries")
				}
			})
		}
	}
}

func TestRateLimit(t *testing.T) {
	sim, srv := newSim(t)
	sim.SetRateLimit(40)
	cfg := nsx.Config{URL: srv.URL, API: nsx.APIManager, Username: user, Password: password, MaxRetries: 20}
	cfg.Transport = srv.Client().Transport
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 2*time.Second // Retry-After: 1 is honoured
	c, err := nsx.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, err := c.AddTags(ctx, []string{vm1, vm2}[i%2], nsx.Tag{Scope: "n", Tag: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(simTags(sim, nsx.APIManager, vm1)) + len(simTags(sim, nsx.APIManager, vm2)); n != 41 {
		t.Errorf("%d tags; want 41", n)
	}
	if sim.Stats().Throttled == 0 {
		t.Error("the rate limit never answered 429; the test tests nothing")
	}
}

func TestSessionRenewal(t *testing.T) {
	for _, s := range setups {
		if !strings.Contains(s.name, "session") && !strings.Contains(s.name, "vmc") {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			sim, srv := newSim(t)
			c := newClient(t, srv, s.cfg(srv.URL))
			ctx := ctxT(t)
			if _, err := c.VM(ctx, vm1); err != nil {
				t.Fatal(err)
			}
			logins := sim.Stats().Logins
			sim.ExpireSessions()
			var wg sync.WaitGroup
			for range 5 {
				wg.Go(func() {
					if _, err := c.VM(ctx, vm2); err != nil {
						t.Errorf("after the session expired: %v", err)
					}
				})
			}
			wg.Wait()
			if n := sim.Stats().Logins - logins; n != 1 {
				t.Errorf("%d logins after expiry; want 1 shared by the concurrent requests", n)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	_, srv := newSim(t)
	ctx := ctxT(t)
	tests := []struct {
		name      string
		cfg       nsx.Config
		permanent bool
	}{
		{"wrong password basic", nsx.Config{URL: srv.URL, Username: user, Password: "nope"}, false},
		{"wrong password session", nsx.Config{URL: srv.URL, Auth: nsx.AuthSession, Username: user, Password: "nope"}, false},
		{"wrong api token", nsx.Config{Auth: nsx.AuthVMC, VMC: nsx.VMC{RefreshToken: "nope", CSPURL: srv.URL, URL: srv.URL, OrgID: "org-1", SDDCID: "sddc-1"}}, false},
		{"unknown sddc", nsx.Config{Auth: nsx.AuthVMC, VMC: nsx.VMC{RefreshToken: apiToken, CSPURL: srv.URL, URL: srv.URL, OrgID: "org-1", SDDCID: "other"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.MaxRetries = -1
			c := newClient(t, srv, tt.cfg)
			_, err := c.VM(ctx, vm1)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, pipeline.ErrPermanent) != tt.permanent {
				t.Errorf("permanent = %v; want %v (%v)", !tt.permanent, tt.permanent, err)
			}
		})
	}
	t.Run("400 carries code and message", func(t *testing.T) {
		sim, srv := newSim(t)
		c := newClient(t, srv, nsx.Config{URL: srv.URL, API: nsx.APIManager, Username: user, Password: password})
		sim.FailNext(1, http.StatusBadRequest, 0)
		_, err := c.VM(ctx, vm1)
		var e *nsx.Error
		if !errors.As(err, &e) || e.Code != 400 || e.Message == "" || !errors.Is(err, pipeline.ErrPermanent) {
			t.Errorf("err = %v; want a permanent *nsx.Error with code and message", err)
		}
	})
	t.Run("tag too long", func(t *testing.T) {
		_, srv := newSim(t)
		c := newClient(t, srv, nsx.Config{URL: srv.URL, Username: user, Password: password})
		_, err := c.AddTags(ctx, vm1, nsx.Tag{Scope: "s", Tag: strings.Repeat("x", 257)})
		if !errors.Is(err, pipeline.ErrPermanent) {
			t.Errorf("err = %v; want permanent", err)
		}
	})
}

func TestListAndFind(t *testing.T) {
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			sim, srv := newSim(t)
			for i := range 10 {
				sim.AddVM(simulator.VM{ExternalID: fmt.Sprintf("uuid-%02d", i), DisplayName: fmt.Sprintf("vm-%02d", i),
					Tags: []simulator.Tag{{Scope: "s", Tag: "t"}}, SecurityTags: []string{"s|t"}})
			}
			cfg := s.cfg(srv.URL)
			cfg.PageSize = 3
			c := newClient(t, srv, cfg)
			ctx := ctxT(t)
			var got []string
			err := c.ListVMs(ctx, func(vms []nsx.VM) error {
				if len(vms) > 3 {
					t.Errorf("page of %d; want at most 3", len(vms))
				}
				for _, vm := range vms {
					got = append(got, vm.ExternalID)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := 12
			if c.API() == nsx.APINSXV {
				want = 11 // NSX-V lists tagged VMs only
			}
			if len(got) != want {
				t.Errorf("listed %d VMs; want %d: %v", len(got), want, got)
			}
			vms, err := c.VMsByName(ctx, "web-01")
			if c.API() == nsx.APINSXV {
				if !errors.Is(err, nsx.ErrUnsupported) {
					t.Errorf("VMsByName on NSX-V: %v; want ErrUnsupported", err)
				}
				return
			}
			if err != nil || len(vms) != 2 {
				t.Errorf("VMsByName(web-01) = %v, %v; want both VMs of that name", vms, err)
			}
		})
	}
}

func TestGroups(t *testing.T) {
	sim, srv := newSim(t)
	c := newClient(t, srv, nsx.Config{URL: srv.URL, Username: user, Password: password})
	ctx := ctxT(t)
	jit := nsx.Tag{Scope: "jit", Tag: "ssh"}
	if err := c.PutGroup(ctx, "default", nsx.Group{ID: "jit-ssh", Expression: []nsx.Condition{nsx.TagCondition(jit)}}); err != nil {
		t.Fatal(err)
	}
	members := func() int {
		vms, err := c.GroupVMs(ctx, "default", "jit-ssh")
		if err != nil {
			t.Fatal(err)
		}
		return len(vms)
	}
	if n := members(); n != 0 {
		t.Errorf("%d members before tagging", n)
	}
	if _, err := c.AddTags(ctx, vm2, jit); err != nil {
		t.Fatal(err)
	}
	if n := members(); n != 1 {
		t.Errorf("%d members after tagging; want 1", n)
	}
	sim.SetTags(vm2, nil)
	if n := members(); n != 0 {
		t.Errorf("%d members after untagging", n)
	}
	if _, err := c.GroupVMs(ctx, "default", "nope"); !errors.Is(err, nsx.ErrNotFound) {
		t.Errorf("unknown group: %v; want ErrNotFound", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  nsx.Config
		want string // substring of the error; "" for valid
	}{
		{"basic ok", nsx.Config{URL: "https://nsx", Username: "u", Password: "p"}, ""},
		{"no url", nsx.Config{Username: "u", Password: "p"}, "url: missing"},
		{"no password", nsx.Config{URL: "https://nsx", Username: "u"}, "password"},
		{"bad api", nsx.Config{URL: "https://nsx", API: "rest", Username: "u", Password: "p"}, "api"},
		{"bad auth", nsx.Config{URL: "https://nsx", Auth: "token", Username: "u", Password: "p"}, "auth"},
		{"vmc without ids", nsx.Config{Auth: nsx.AuthVMC, VMC: nsx.VMC{RefreshToken: "t"}}, "vmc.org_id"},
		{"vmc with url", nsx.Config{Auth: nsx.AuthVMC, URL: "https://proxy", VMC: nsx.VMC{RefreshToken: "t"}}, ""},
		{"vmc manager", nsx.Config{Auth: nsx.AuthVMC, API: nsx.APIManager, URL: "https://proxy", VMC: nsx.VMC{RefreshToken: "t"}}, "policy api only"},
		{"nsxv session", nsx.Config{URL: "https://nsx", API: nsx.APINSXV, Auth: nsx.AuthSession, Username: "u", Password: "p"}, "basic auth"},
		{"ep on manager", nsx.Config{URL: "https://nsx", API: nsx.APIManager, EnforcementPoint: "default", Username: "u", Password: "p"}, "enforcement_point"},
		{"url scheme", nsx.Config{URL: "nsx.example.com", Username: "u", Password: "p"}, "want https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v; want %q", err, tt.want)
			}
		})
	}
}

// TestCSPTokenRefresh: the access token is exchanged again before it
// expires, without a failed request.
func TestCSPTokenRefresh(t *testing.T) {
	sim := simulator.New(simulator.Options{RefreshTokens: []string{apiToken}, TokenTTL: time.Second})
	sim.AddVM(simulator.VM{ExternalID: vm1, DisplayName: "web-01"})
	srv := httptest.NewTLSServer(sim)
	defer srv.Close()
	c := newClient(t, srv, nsx.Config{Auth: nsx.AuthVMC, MaxRetries: -1,
		VMC: nsx.VMC{RefreshToken: apiToken, CSPURL: srv.URL, URL: srv.URL, OrgID: "org-1", SDDCID: "sddc-1"}})
	ctx := ctxT(t)
	deadline := time.Now().Add(10 * time.Second)
	for sim.Stats().Logins < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the access token was not exchanged again")
		}
		if _, err := c.VM(ctx, vm1); err != nil {
			t.Fatalf("with retries off, a request failed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
