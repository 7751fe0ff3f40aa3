package nsx

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// authenticator authenticates requests to NSX.
type authenticator interface {
	// apply sets the credentials on req, logging in first if needed.
	apply(ctx context.Context, req *http.Request) error
	// generation identifies the current session or token.
	generation() uint64
	// renewable reports whether a 401/403 may be cured by renew.
	renewable() bool
	// renew logs in again, unless the session already changed since gen
	// (another request renewed it).
	renew(ctx context.Context, gen uint64) error
	// logout ends the session, if any.
	logout(ctx context.Context) error
}

// basicAuth sends HTTP basic credentials with every request (NSX-T, NSX-V;
// KB 423054).
type basicAuth struct{ user, pass string }

func (b basicAuth) apply(_ context.Context, req *http.Request) error {
	req.SetBasicAuth(b.user, b.pass)
	return nil
}
func (basicAuth) generation() uint64                  { return 0 }
func (basicAuth) renewable() bool                     { return false }
func (basicAuth) renew(context.Context, uint64) error { return nil }
func (basicAuth) logout(context.Context) error        { return nil }

// sessionAuth is NSX-T's cookie session: POST /api/session/create with
// j_username and j_password answers with a JSESSIONID cookie and an
// x-xsrf-token header, both sent on every later request
// (https://developer.broadcom.com/xapis/nsx-t-data-center-rest-api/4.2.1/method_CreateAuthenticatedSession.html;
// terraform-provider-nsxt sessionHeaderProcessor).
type sessionAuth struct {
	c *Client

	mu      sync.Mutex
	gen     uint64
	cookie  string // JSESSIONID value
	xsrf    string
	created time.Time
}

func (s *sessionAuth) renewable() bool { return true }

func (s *sessionAuth) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

func (s *sessionAuth) apply(ctx context.Context, req *http.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	stale := s.c.cfg.SessionRefresh > 0 && time.Since(s.created) > s.c.cfg.SessionRefresh
	if s.cookie == "" || stale {
		if err := s.login(ctx); err != nil {
			return err
		}
	}
	req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: s.cookie})
	req.Header.Set("X-XSRF-TOKEN", s.xsrf)
	return nil
}

func (s *sessionAuth) renew(ctx context.Context, gen uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen && s.cookie != "" {
		return nil
	}
	return s.login(ctx)
}

// login creates a session; s.mu is held.
func (s *sessionAuth) login(ctx context.Context) error {
	c := s.c
	form := url.Values{"j_username": {c.cfg.Username}, "j_password": {c.cfg.Password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/session/create", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := c.rawDo(req, opSession)
	if err != nil {
		c.logins.WithLabelValues(c.cfg.Name, "error").Inc()
		return fmt.Errorf("nsx create session: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		c.logins.WithLabelValues(c.cfg.Name, "refused").Inc()
		return newError("POST /api/session/create", resp.StatusCode, body, 0)
	}
	var cookie string
	for _, ck := range resp.Cookies() {
		if ck.Name == "JSESSIONID" {
			cookie = ck.Value
		}
	}
	xsrf := resp.Header.Get("X-XSRF-TOKEN")
	if cookie == "" || xsrf == "" {
		c.logins.WithLabelValues(c.cfg.Name, "error").Inc()
		return fmt.Errorf("nsx create session: answer without JSESSIONID cookie or x-xsrf-token header")
	}
	c.logins.WithLabelValues(c.cfg.Name, "ok").Inc()
	s.cookie, s.xsrf, s.created = cookie, xsrf, time.Now()
	s.gen++
	c.log.Info("nsx session created", "generation", s.gen)
	return nil
}

func (s *sessionAuth) logout(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cookie == "" {
		return nil
	}
	c := s.c
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/session/destroy", nil)
	if err != nil {
		return err
	}
	req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: s.cookie})
	req.Header.Set("X-XSRF-TOKEN", s.xsrf)
	s.cookie, s.xsrf = "", ""
	resp, body, err := c.rawDo(req, opSession)
	if err != nil {
		return fmt.Errorf("nsx destroy session: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return newError("POST /api/session/destroy", resp.StatusCode, body, 0)
	}
	return nil
}

// vmcAuth exchanges a CSP API token (refresh token) for an access token,
// sent as csp-auth-token (and Authorization: Bearer, which some VMC node
// APIs need), and exchanges again before it expires
// (terraform-provider-nsxt nsxt/provider.go getAPIToken; apis.md §1.5).
type vmcAuth struct {
	c *Client

	mu      sync.Mutex
	gen     uint64
	token   string
	refresh time.Time // exchange again after this
}

func (v *vmcAuth) renewable() bool { return true }

func (v *vmcAuth) generation() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.gen
}

func (v *vmcAuth) apply(ctx context.Context, req *http.Request) error {
	tok, err := v.accessToken(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("csp-auth-token", tok)
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

func (v *vmcAuth) accessToken(ctx context.Context) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.token == "" || time.Now().After(v.refresh) {
		if err := v.exchange(ctx); err != nil {
			return "", err
		}
	}
	return v.token, nil
}

func (v *vmcAuth) renew(ctx context.Context, gen uint64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gen != gen && v.token != "" {
		return nil
	}
	return v.exchange(ctx)
}

// cspToken is the CSP authorize answer.
type cspToken struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// exchange gets a new access token; v.mu is held.
func (v *vmcAuth) exchange(ctx context.Context) error {
	c := v.c
	form := url.Values{"refresh_token": {c.cfg.VMC.RefreshToken}}
	u := trimURL(c.cfg.VMC.CSPURL) + "/csp/gateway/am/api/auth/api-tokens/authorize"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := c.rawDo(req, opToken)
	if err != nil {
		c.logins.WithLabelValues(c.cfg.Name, "error").Inc()
		return fmt.Errorf("csp token exchange: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		c.logins.WithLabelValues(c.cfg.Name, "refused").Inc()
		return fmt.Errorf("csp token exchange: %w", newError("POST /csp/gateway/am/api/auth/api-tokens/authorize", resp.StatusCode, body, 0))
	}
	var t cspToken
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		c.logins.WithLabelValues(c.cfg.Name, "error").Inc()
		return fmt.Errorf("csp token exchange: answer without access_token (%v)", err)
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	if life <= 0 {
		life = 30 * time.Minute
	}
	// Exchange again when 80% of the lifetime passed, or a minute before
	// the end, whichever is sooner.
	v.token = t.AccessToken
	v.refresh = time.Now().Add(min(life*4/5, max(life-time.Minute, life/2)))
	v.gen++
	c.logins.WithLabelValues(c.cfg.Name, "ok").Inc()
	c.log.Info("csp access token obtained", "expires_in", life)
	return nil
}

func (v *vmcAuth) logout(context.Context) error { return nil }

// proxyURL asks VMC for the SDDC's NSX reverse-proxy URL:
// resource_config.nsx_api_public_endpoint_url of
// GET /vmc/api/orgs/{org}/sddcs/{sddc} (apis.md §1.5).
func (v *vmcAuth) proxyURL(ctx context.Context) (string, error) {
	c := v.c
	u := trimURL(c.cfg.VMC.URL) + "/vmc/api/orgs/" + url.PathEscape(c.cfg.VMC.OrgID) + "/sddcs/" + url.PathEscape(c.cfg.VMC.SDDCID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	if err := v.apply(ctx, req); err != nil {
		return "", err
	}
	resp, body, err := c.rawDo(req, opSDDC)
	if err != nil {
		return "", fmt.Errorf("vmc sddc lookup: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("vmc sddc lookup: %w", newError("GET /vmc/api/orgs/{org}/sddcs/{sddc}", resp.StatusCode, body, 0))
	}
	var sddc struct {
		ResourceConfig struct {
			NSXURL string `json:"nsx_api_public_endpoint_url"`
		} `json:"resource_config"`
	}
	if err := json.Unmarshal(body, &sddc); err != nil || sddc.ResourceConfig.NSXURL == "" {
		return "", fmt.Errorf("vmc sddc lookup: no resource_config.nsx_api_public_endpoint_url (%v)", err)
	}
	return sddc.ResourceConfig.NSXURL, nil
}

// rawDo sends req once, outside auth and retries, counting it.
func (c *Client) rawDo(req *http.Request, op string) (*http.Response, []byte, error) {
	start := time.Now()
	resp, err := c.hc.Do(req)
	c.latency.WithLabelValues(c.cfg.Name, op).Observe(time.Since(start).Seconds())
	if err != nil {
		c.requests.WithLabelValues(c.cfg.Name, op, "error").Inc()
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	c.requests.WithLabelValues(c.cfg.Name, op, statusLabel(resp.StatusCode)).Inc()
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}
