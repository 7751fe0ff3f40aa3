package vcenter

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
)

// ConnConfig says how to reach and log in to one vCenter.
type ConnConfig struct {
	// URL is the vCenter, "https://vc.example.com" (the /sdk path is
	// added when missing).
	URL      string
	Username string
	Password string
	// CAFile is a PEM file of the CA certificates to trust instead of the
	// system roots (a vCenter's own VMCA root); empty: the system roots.
	CAFile string
	// Insecure skips TLS certificate verification. Only on an explicit
	// request; the caller logs it.
	Insecure bool
	// Timeout bounds each SOAP or REST call. Default 60s.
	Timeout time.Duration
}

// maxIdleConns is the idle connections kept to vCenter.
const maxIdleConns = 32

// Conn is a logged-in vCenter session: the SOAP (vim25) client and, when
// asked for, the vAPI REST client (tagging). Both share the TLS settings.
type Conn struct {
	VIM  *vim25.Client
	REST *rest.Client
	sm   *session.Manager
}

// NewClient connects to the vCenter of cfg without logging in: the SOAP
// (vim25) client with the URL, TLS trust, timeout and connection reuse
// every vpipe vCenter client shares (the vcenter source, tag-sync,
// jit-access, forensics).
func NewClient(ctx context.Context, cfg ConnConfig) (*vim25.Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("vcenter: no url")
	}
	u, err := soap.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("vcenter url: %w", err)
	}
	if u == nil || u.Host == "" {
		return nil, fmt.Errorf("vcenter url %q: want https://host", cfg.URL)
	}
	u.User = nil
	sc := soap.NewClient(u, cfg.Insecure)
	if cfg.CAFile != "" {
		if err := sc.SetRootCAs(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("vcenter ca file: %w", err)
		}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	sc.Timeout = timeout
	// Keep connections for concurrent callers (the tag sync's workers):
	// Go's default of 2 idle connections per host makes every further
	// call pay a TLS handshake.
	sc.DefaultTransport().MaxIdleConnsPerHost = maxIdleConns
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("connect to vcenter %s: %w", u.Host, err)
	}
	return vc, nil
}

// Dial connects to and logs in to a vCenter. With withREST it also logs in
// to the vAPI endpoint (/rest), which tagging needs. The caller must
// Logout.
func Dial(ctx context.Context, cfg ConnConfig, withREST bool) (*Conn, error) {
	vc, err := NewClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	u := vc.URL()
	user := url.UserPassword(cfg.Username, cfg.Password)
	sm := session.NewManager(vc)
	if err := sm.Login(ctx, user); err != nil {
		return nil, fmt.Errorf("log in to vcenter %s as %s: %w", u.Host, cfg.Username, err)
	}
	c := &Conn{VIM: vc, sm: sm}
	if withREST {
		rc := rest.NewClient(vc)
		if err := rc.Login(ctx, user); err != nil {
			sm.Logout(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("log in to the vapi endpoint of %s as %s: %w", u.Host, cfg.Username, err)
		}
		c.REST = rc
	}
	return c, nil
}

// Logout ends the sessions, best effort, under its own short deadline.
func (c *Conn) Logout(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if c.REST != nil {
		c.REST.Logout(ctx)
	}
	c.sm.Logout(ctx)
	c.VIM.CloseIdleConnections()
}
