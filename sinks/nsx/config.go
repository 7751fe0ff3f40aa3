package nsx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// APIs a Client can speak (Config.API).
const (
	// APIPolicy is the NSX-T / NSX 4.x Policy API (/policy/api/v1), the
	// only one VMware Cloud on AWS exposes. Tags are replaced as a whole
	// list, so the client reads, merges and writes (serialised per VM).
	APIPolicy = "policy"
	// APIManager is the NSX-T Manager API (/api/v1/fabric): add_tags and
	// remove_tags merge on the server (NSX-T 3.1.2 and later).
	APIManager = "manager"
	// APINSXV is NSX for vSphere 6.x security tags (XML, /api/2.0).
	APINSXV = "nsxv"
)

// Authentication methods (Config.Auth).
const (
	AuthBasic   = "basic"   // Authorization: Basic on every request
	AuthSession = "session" // POST /api/session/create: JSESSIONID + X-XSRF-TOKEN
	AuthVMC     = "vmc"     // CSP refresh token → access token (csp-auth-token)
)

// Config configures a Client. Zero fields take the defaults named; Validate
// reports every remaining problem.
type Config struct {
	// Name names this NSX in metrics (label nsx) and logs. Default "nsx".
	Name string
	// URL is the NSX Manager (or NSX-V Manager) base URL,
	// "https://nsx.example.com". With Auth vmc it is the SDDC's NSX
	// reverse-proxy URL; leave it empty to look it up from VMC.OrgID and
	// VMC.SDDCID.
	URL string
	// API is policy (default), manager or nsxv.
	API string
	// EnforcementPoint, with the policy API, selects the older
	// realized-state/enforcement-points/{ep}/virtual-machines paths
	// (deprecated on NSX 4.x, used by VMC as "vmc-enforcementpoint")
	// instead of realized-state/virtual-machines and the search API.
	EnforcementPoint string
	// Auth is basic (default), session or vmc.
	Auth string
	// Username and Password for basic and session auth.
	Username, Password string
	// VMC configures Auth vmc.
	VMC VMC
	// NSXVSeparator joins scope and tag into an NSX-V security tag name,
	// which has no scope: "<scope><sep><tag>". Default "|", as NSX-T's
	// group conditions write "scope|tag".
	NSXVSeparator string

	// TLS configures the HTTPS client: nil verifies the server against the
	// system roots. Set InsecureSkipVerify only on an explicit request.
	TLS *tls.Config
	// Transport, if set, replaces the HTTP transport (TLS is then
	// ignored); for tests.
	Transport http.RoundTripper
	// Timeout bounds one HTTP request. Default 30s.
	Timeout time.Duration
	// MaxRetries is how often a request failing with 429, 503, 504, a
	// network error or an expired session is retried before the error is
	// returned. Default 5; -1 disables retries.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries; a Retry-After header is honoured up to MaxBackoff. Defaults
	// 200ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// MaxConcurrency bounds the requests in flight (NSX allows 40 per
	// client by default and answers 429 above). Default 16.
	MaxConcurrency int
	// PageSize is the page size of VM listings. Default 1000.
	PageSize int
	// SessionRefresh, with Auth session, re-creates the session this often
	// even when it still works (idle sessions time out on the manager).
	// Default 0: only when NSX refuses it.
	SessionRefresh time.Duration
}

// VMC configures VMware Cloud on AWS access: a CSP API (refresh) token
// exchanged for short-lived access tokens, and optionally the lookup of the
// SDDC's NSX reverse-proxy URL.
type VMC struct {
	RefreshToken string
	// CSPURL default https://console.cloud.vmware.com.
	CSPURL string
	// URL is the VMC API, default https://vmc.vmware.com; used to find the
	// NSX URL when Config.URL is empty.
	URL    string
	OrgID  string
	SDDCID string
}

// Defaults for Config.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMaxRetries     = 5
	DefaultMinBackoff     = 200 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultMaxConcurrency = 16
	DefaultPageSize       = 1000
	DefaultCSPURL         = "https://console.cloud.vmware.com"
	DefaultVMCURL         = "https://vmc.vmware.com"
	DefaultNSXVSeparator  = "|"
)

// WithDefaults returns c with its unset fields given their defaults.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = "nsx"
	}
	if c.API == "" {
		c.API = APIPolicy
	}
	if c.Auth == "" {
		c.Auth = AuthBasic
	}
	if c.NSXVSeparator == "" {
		c.NSXVSeparator = DefaultNSXVSeparator
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Auth == AuthVMC {
		if c.VMC.CSPURL == "" {
			c.VMC.CSPURL = DefaultCSPURL
		}
		if c.VMC.URL == "" {
			c.VMC.URL = DefaultVMCURL
		}
	}
	return c
}

// Validate reports every problem of c (after WithDefaults) at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch c.API {
	case APIPolicy, APIManager, APINSXV:
	default:
		bad("api", "%q is not one of policy, manager, nsxv", c.API)
	}
	switch c.Auth {
	case AuthBasic, AuthSession:
		if c.Username == "" {
			bad("username", "missing for %s auth", c.Auth)
		}
		if c.Password == "" {
			bad("password", "missing for %s auth", c.Auth)
		}
		if c.URL == "" {
			bad("url", "missing")
		}
	case AuthVMC:
		if c.VMC.RefreshToken == "" {
			bad("vmc.refresh_token", "missing for vmc auth")
		}
		if c.URL == "" && (c.VMC.OrgID == "" || c.VMC.SDDCID == "") {
			bad("url", "missing: set it to the SDDC's NSX reverse-proxy URL, or set vmc.org_id and vmc.sddc_id")
		}
		if c.API != APIPolicy {
			bad("api", "VMware Cloud on AWS offers the policy api only")
		}
		checkURL(bad, "vmc.csp_url", c.VMC.CSPURL)
		checkURL(bad, "vmc.url", c.VMC.URL)
	default:
		bad("auth", "%q is not one of basic, session, vmc", c.Auth)
	}
	if c.API == APINSXV && c.Auth != AuthBasic {
		bad("auth", "the nsxv api takes basic auth")
	}
	if c.URL != "" {
		checkURL(bad, "url", c.URL)
	}
	if c.EnforcementPoint != "" && c.API != APIPolicy {
		bad("enforcement_point", "only with the policy api")
	}
	if c.Timeout < 0 || c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff || c.SessionRefresh < 0 {
		bad("timeouts", "negative, or max_backoff below min_backoff")
	}
	if c.MaxConcurrency < 1 {
		bad("max_concurrency", "must be at least 1")
	}
	if c.PageSize < 1 {
		bad("page_size", "must be at least 1")
	}
	return errors.Join(errs...)
}

func checkURL(bad func(string, string, ...any), field, s string) {
	u, err := url.Parse(s)
	if err != nil {
		bad(field, "%v", err)
		return
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		bad(field, "%q: want https://host[:port]", s)
	}
}

func trimURL(s string) string { return strings.TrimRight(s, "/") }
