package forensics

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"sync"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vpipe/vpipe/pipeline/vcenter"
)

// Dial logs in to a vCenter and returns a client that logs in again
// when vCenter answers NotAuthenticated (an expired or lost session, a
// vCenter restart), and a function that logs out.
func Dial(ctx context.Context, cfg vcenter.ConnConfig) (*vim25.Client, func(context.Context) error, error) {
	vc, err := vcenter.NewClient(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	u, sc := vc.URL(), vc.RoundTripper
	// The login client talks through the plain SOAP client, so that a
	// login never goes through the re-login wrapper.
	lc := *vc
	user := url.UserPassword(cfg.Username, cfg.Password)
	rl := &relogin{rt: sc, login: func(ctx context.Context) error {
		return session.NewManager(&lc).Login(ctx, user)
	}}
	if err := rl.login(ctx); err != nil {
		return nil, nil, fmt.Errorf("log in to %s: %w", u.Host, err)
	}
	vc.RoundTripper = rl
	logout := func(ctx context.Context) error { return session.NewManager(&lc).Logout(ctx) }
	return vc, logout, nil
}

// relogin retries a call once after logging in again when vCenter
// answered NotAuthenticated.
type relogin struct {
	rt    soap.RoundTripper
	login func(context.Context) error
	mu    sync.Mutex
}

func (r *relogin) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	err := r.rt.RoundTrip(ctx, req, res)
	if err == nil || !fault.Is(err, &types.NotAuthenticated{}) {
		return err
	}
	r.mu.Lock()
	lerr := r.login(ctx)
	r.mu.Unlock()
	if lerr != nil {
		return fmt.Errorf("%w (log in again: %v)", err, lerr)
	}
	// res holds the fault of the first call: start from a zero response
	// (the request is a separate value).
	v := reflect.ValueOf(res).Elem()
	v.Set(reflect.Zero(v.Type()))
	return r.rt.RoundTrip(ctx, req, res)
}
