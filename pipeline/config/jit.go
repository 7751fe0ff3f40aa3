package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// JITAccessStage configures the jit-access stage (sinks/jitaccess): a
// locked help desk ticket puts an NSX tag on the VM it names, unlocking
// takes it off.
type JITAccessStage struct {
	// Field is the name of the ticket dynamic field that names the VM (its
	// vCenter name or instance UUID). Required.
	Field string `yaml:"field"`
	// Tag is the NSX tag that grants access. Required.
	Tag JITTag `yaml:"tag"`
	// MaxDuration bounds access: the tag comes off after it even while the
	// ticket stays locked. Default 8h.
	MaxDuration Duration `yaml:"max_duration"`
	// ReconcileInterval is how often every locked ticket and every tagged
	// VM are checked again. Default 5m.
	ReconcileInterval Duration `yaml:"reconcile_interval"`
	// Queues, if set, are the only queues whose tickets grant access.
	Queues []string `yaml:"queues"`
	// SearchLimit bounds the locked tickets one search returns. Default
	// 10000.
	SearchLimit int    `yaml:"search_limit"`
	GroupID     string `yaml:"group_id"` // default "vpipe-jit-access"

	Znuny   Znuny      `yaml:"znuny"`
	VCenter JITVCenter `yaml:"vcenter"`
	NSX     JITNSX     `yaml:"nsx"`
	// Webhook configures the ticket webhook (POST /v1/webhooks/ticket) on
	// the ingest role.
	Webhook JITWebhook `yaml:"webhook"`
}

// JITTag is an NSX tag.
type JITTag struct {
	Scope string `yaml:"scope"` // at most 128 characters; may be empty
	Tag   string `yaml:"tag"`   // 1 to 256 characters
}

// Znuny configures the OTRS / Znuny GenericInterface client
// (pipeline/znuny).
type Znuny struct {
	// URL of the web service, e.g.
	// https://helpdesk.example.com/otrs/nph-genericinterface.pl/Webservice/GenericTicketConnectorREST.
	URL string `yaml:"url"`
	// Auth is session (default: SessionCreate once, SessionID after) or
	// basic (UserLogin and Password with every request).
	Auth         string    `yaml:"auth"`
	Username     string    `yaml:"username"`
	PasswordFile string    `yaml:"password_file"`
	PasswordEnv  string    `yaml:"password_env"`
	TLS          ClientTLS `yaml:"tls"`
	Timeout      Duration  `yaml:"timeout"` // per request, default 30s
}

// JITVCenter says how the stage reaches vCenter to find VMs.
type JITVCenter struct {
	URL          string    `yaml:"url"` // https://vcenter.example.com
	Username     string    `yaml:"username"`
	PasswordFile string    `yaml:"password_file"`
	PasswordEnv  string    `yaml:"password_env"`
	TLS          ClientTLS `yaml:"tls"`
}

// JITNSX says how the stage reaches NSX (sinks/nsx).
type JITNSX struct {
	// URL of the NSX Manager; with auth vmc the SDDC's NSX reverse-proxy
	// URL (or empty with vmc.org_id and vmc.sddc_id).
	URL string `yaml:"url"`
	// API is policy (default), manager or nsxv.
	API string `yaml:"api"`
	// EnforcementPoint selects the policy API's enforcement-point paths
	// (VMC: vmc-enforcementpoint).
	EnforcementPoint string `yaml:"enforcement_point"`
	// Auth is basic (default), session or vmc.
	Auth         string    `yaml:"auth"`
	Username     string    `yaml:"username"`
	PasswordFile string    `yaml:"password_file"`
	PasswordEnv  string    `yaml:"password_env"`
	VMC          JITVMC    `yaml:"vmc"`
	TLS          ClientTLS `yaml:"tls"`
}

// JITVMC configures VMware Cloud on AWS access for auth vmc.
type JITVMC struct {
	RefreshTokenFile string `yaml:"refresh_token_file"`
	RefreshTokenEnv  string `yaml:"refresh_token_env"`
	OrgID            string `yaml:"org_id"`
	SDDCID           string `yaml:"sddc_id"`
	CSPURL           string `yaml:"csp_url"` // default https://console.cloud.vmware.com
	URL              string `yaml:"url"`     // default https://vmc.vmware.com
}

// JITWebhook configures the ticket webhook. The bearer token of http
// applies to it as to every ingest route; an HMAC secret additionally
// requires each request to be signed.
type JITWebhook struct {
	// HMACSecretFile or HMACSecretEnv, when set, hold the shared secret:
	// a request must then carry SignatureHeader: sha256=<hex HMAC-SHA256
	// of the body>.
	HMACSecretFile  string `yaml:"hmac_secret_file"`
	HMACSecretEnv   string `yaml:"hmac_secret_env"`
	SignatureHeader string `yaml:"signature_header"` // default X-Vpipe-Signature
}

// Defaults of the jit-access stage.
const (
	jitDefaultMaxDuration = 8 * time.Hour
	jitDefaultReconcile   = 5 * time.Minute
	jitDefaultSearchLimit = 10000
	jitDefaultGroupID     = "vpipe-jit-access"
	jitDefaultZnunyTO     = 30 * time.Second
	jitDefaultSigHeader   = "X-Vpipe-Signature"
)

// JITStage returns c's stages.jit_access section, nil when it is absent.
func JITStage(c *Config) *JITAccessStage {
	if c == nil {
		return nil
	}
	return c.Stages.JITAccess
}

// fillJIT sets the defaults of the jit-access stage.
func (c *Config) fillJIT() { JITStage(c).fill() }

// validateJIT adds the problems of the jit-access stage.
func (c *Config) validateJIT(p *Problems) { JITStage(c).validate(p) }

// fill sets j's defaults; j may be nil.
func (j *JITAccessStage) fill() {
	if j == nil {
		return
	}
	if j.MaxDuration == 0 {
		j.MaxDuration = Duration(jitDefaultMaxDuration)
	}
	if j.ReconcileInterval == 0 {
		j.ReconcileInterval = Duration(jitDefaultReconcile)
	}
	if j.SearchLimit == 0 {
		j.SearchLimit = jitDefaultSearchLimit
	}
	if j.GroupID == "" {
		j.GroupID = jitDefaultGroupID
	}
	if j.Znuny.Auth == "" {
		j.Znuny.Auth = "session"
	}
	if j.Znuny.Timeout == 0 {
		j.Znuny.Timeout = Duration(jitDefaultZnunyTO)
	}
	if j.NSX.API == "" {
		j.NSX.API = "policy"
	}
	if j.NSX.Auth == "" {
		j.NSX.Auth = "basic"
	}
	if j.Webhook.SignatureHeader == "" {
		j.Webhook.SignatureHeader = jitDefaultSigHeader
	}
}

// validate adds j's problems, with their key paths; j may be nil.
func (j *JITAccessStage) validate(p *Problems) {
	if j == nil {
		return
	}
	const at = "stages.jit_access"
	if strings.TrimSpace(j.Field) == "" {
		p.add(at+".field", "missing: the ticket dynamic field that names the VM")
	}
	switch {
	case j.Tag.Tag == "":
		p.add(at+".tag.tag", "missing")
	case len(j.Tag.Tag) > 256:
		p.add(at+".tag.tag", "longer than 256 characters")
	}
	if len(j.Tag.Scope) > 128 {
		p.add(at+".tag.scope", "longer than 128 characters")
	}
	if j.MaxDuration <= 0 {
		p.add(at+".max_duration", "must be positive")
	}
	if j.ReconcileInterval <= 0 {
		p.add(at+".reconcile_interval", "must be positive")
	}
	if j.SearchLimit < 1 {
		p.add(at+".search_limit", "must be at least 1")
	}
	for i, q := range j.Queues {
		if strings.TrimSpace(q) == "" {
			p.add(fmt.Sprintf("%s.queues[%d]", at, i), "empty")
		}
	}

	z := &j.Znuny
	jitURL(p, at+".znuny.url", z.URL, true)
	if u, err := url.Parse(z.URL); err == nil && u.RawQuery != "" {
		p.add(at+".znuny.url", "must not carry a query (credentials go in username and password_file)")
	}
	if z.Auth != "session" && z.Auth != "basic" {
		p.add(at+".znuny.auth", "%q is not one of session, basic", z.Auth)
	}
	if z.Username == "" {
		p.add(at+".znuny.username", "missing")
	}
	checkSecret(p, at+".znuny", "password", z.PasswordFile, z.PasswordEnv, true)
	z.TLS.check(p, at+".znuny.tls")
	if z.Timeout < 0 {
		p.add(at+".znuny.timeout", "must not be negative")
	}

	v := &j.VCenter
	jitURL(p, at+".vcenter.url", v.URL, true)
	if v.Username == "" {
		p.add(at+".vcenter.username", "missing")
	}
	checkSecret(p, at+".vcenter", "password", v.PasswordFile, v.PasswordEnv, true)
	v.TLS.check(p, at+".vcenter.tls")

	validateNSXTarget(p, at+".nsx", &j.NSX)

	w := &j.Webhook
	checkSecret(p, at+".webhook", "hmac_secret", w.HMACSecretFile, w.HMACSecretEnv, false)
	if strings.ContainsAny(w.SignatureHeader, " :\t") {
		p.add(at+".webhook.signature_header", "%q is not a header name", w.SignatureHeader)
	}
}

// jitURL adds a problem unless s is an http(s) URL with a host; empty is
// a problem only when required.
func jitURL(p *Problems, path, s string, required bool) {
	if s == "" {
		if required {
			p.add(path, "missing")
		}
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		p.add(path, "%v", err)
		return
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		p.add(path, "%q: want https://host[:port]/...", s)
	}
	if u.User != nil {
		p.add(path, "must not carry credentials (use username and password_file)")
	}
}
