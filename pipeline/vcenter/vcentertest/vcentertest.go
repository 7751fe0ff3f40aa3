// Package vcentertest runs govmomi's vCenter simulator (vcsim) for tests:
// over HTTPS with its own CA (so tests verify certificates as production
// does), with fixed credentials, the vAPI tagging endpoints, and helpers to
// post the tagging EventEx that vcsim does not emit itself
// (shared/reference/apis.md §3.4).
package vcentertest

import (
	"context"
	"crypto/tls"
	"net/url"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // vAPI tagging endpoints
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline/vcenter"
)

// Credentials vcsim accepts (and only these).
const (
	Username = "vpipe@vsphere.local"
	Password = "vcsim-Secret1"
)

// Sim is a running vcsim.
type Sim struct {
	Model  *simulator.Model
	Server *simulator.Server
	// Conn reaches it: its URL, the credentials, its CA certificate file.
	Conn vcenter.ConnConfig
}

// Start creates model (nil: simulator.VPX(), one datacenter with a few
// VMs), serves it over HTTPS and stops it when the test ends.
func Start(tb testing.TB, model *simulator.Model) *Sim {
	tb.Helper()
	if model == nil {
		model = simulator.VPX()
	}
	// vcsim's AlarmManager looks up the entity of every posted EventEx and
	// panics (holding the EventManager's lock) when there is none, as in a
	// real tagging event (govmomi v0.56.0 simulator/alarm_manager.go:93):
	// run without an AlarmManager, which vpipe does not use.
	model.ServiceContent.AlarmManager = nil
	if err := model.Create(); err != nil {
		tb.Fatalf("vcsim: %v", err)
	}
	model.Service.TLS = new(tls.Config)
	model.Service.RegisterEndpoints = true
	model.Service.Listen = &url.URL{User: url.UserPassword(Username, Password)}
	srv := model.Service.NewServer()
	tb.Cleanup(func() {
		srv.Close()
		model.Remove()
	})
	ca, err := srv.CertificateFile()
	if err != nil {
		tb.Fatalf("vcsim certificate: %v", err)
	}
	u := *srv.URL
	u.User = nil
	return &Sim{Model: model, Server: srv, Conn: vcenter.ConnConfig{
		URL: u.String(), Username: Username, Password: Password, CAFile: ca, Timeout: 30 * time.Second,
	}}
}

// Dial logs a test client in (SOAP and vAPI) and logs it out when the test
// ends.
func (s *Sim) Dial(tb testing.TB) *vcenter.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := vcenter.Dial(ctx, s.Conn, true)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Logout(context.Background()) })
	return c
}

// context returns a simulator context acting as user.
func (s *Sim) context(user string) *simulator.Context {
	base := s.Model.Service.Context
	c := *base
	sess := *base.Session
	sess.UserName = user
	c.Session = &sess
	return &c
}

// Post posts ev in-process, as user, as vCenter's EventManager.PostEvent
// would (key, chain id and creation time assigned), without a SOAP round
// trip: fast enough for benchmarks.
func (s *Sim) Post(user string, ev types.BaseEvent) {
	ctx := s.context(user)
	em := ctx.Map.EventManager()
	ctx.WithLock(em, func() {
		em.PostEvent(ctx, &types.PostEvent{EventToPost: ev})
	})
}

// TagEvent is the EventEx vCenter logs when user attaches (or detaches)
// tag to object: arguments Tag, Object and User, no entity
// (apis.md §3.1, VEBA's test payload).
func TagEvent(attach bool, tag, object, user string) *types.EventEx {
	id, verb, prep := "com.vmware.cis.tagging.attach", "attached", "to"
	if !attach {
		id, verb, prep = "com.vmware.cis.tagging.detach", "detached", "from"
	}
	return &types.EventEx{
		EventTypeId: id,
		Severity:    "info",
		Message:     "User " + user + " " + verb + " tag " + tag + " " + prep + " object " + object,
		Arguments: []types.KeyAnyValue{
			{Key: "Tag", Value: tag},
			{Key: "Object", Value: object},
			{Key: "User", Value: user},
		},
	}
}

// SetNextKey makes the next posted event's key k+1, as after vCenter's
// int32 key wrapped around or its database was reset. (vcsim keeps the
// counter unexported; this reaches it by reflection.)
func (s *Sim) SetNextKey(k int32) {
	ctx := s.context("")
	em := ctx.Map.EventManager()
	ctx.WithLock(em, func() {
		f := reflect.ValueOf(em).Elem().FieldByName("key")
		*(*int32)(unsafe.Pointer(f.UnsafeAddr())) = k
	})
}

// Fault makes vcsim answer the SOAP method method with a fault of type
// ft, max times (0: until cleared).
func (s *Sim) Fault(method string, ft simulator.FaultType, max int) {
	s.Model.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: method, ObjectType: "*", ObjectName: "*", Probability: 1,
		FaultType: ft, MaxCount: max, Enabled: true,
	})
}

// VMs returns the simulator's VMs.
func (s *Sim) VMs(tb testing.TB, c *vcenter.Conn) []*object.VirtualMachine {
	tb.Helper()
	ctx := context.Background()
	vms, err := find.NewFinder(c.VIM).VirtualMachineList(ctx, "/...")
	if err != nil {
		tb.Fatal(err)
	}
	return vms
}

// Tagging creates (or finds) category and tag in it and returns the tag
// id.
func Tagging(tb testing.TB, c *vcenter.Conn, category, tag string) string {
	tb.Helper()
	ctx := context.Background()
	m := tags.NewManager(c.REST)
	cat, err := m.GetCategory(ctx, category)
	catID := ""
	if err == nil {
		catID = cat.ID
	} else if catID, err = m.CreateCategory(ctx, &tags.Category{Name: category, Cardinality: "MULTIPLE", AssociableTypes: []string{"VirtualMachine"}}); err != nil {
		tb.Fatalf("create category %s: %v", category, err)
	}
	if t, err := m.GetTagForCategory(ctx, tag, catID); err == nil {
		return t.ID
	}
	id, err := m.CreateTag(ctx, &tags.Tag{Name: tag, CategoryID: catID})
	if err != nil {
		tb.Fatalf("create tag %s/%s: %v", category, tag, err)
	}
	return id
}
