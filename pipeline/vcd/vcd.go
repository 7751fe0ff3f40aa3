// Package vcd is a small client of VMware Cloud Director's OpenAPI
// (cloudapi/1.0.0) for tenant discovery: organisations, Org VDCs, VDC
// groups and edge gateways, the objects VCD derives NSX log labels from.
// Discover turns them into tenants for pipeline/tenants.
//
// Contracts (shared/reference/apis.md §6, from the VCD API reference on
// developer.broadcom.com and vmware/go-vcloud-director v3.1.1):
//
//   - auth: an API token is exchanged for a bearer access token with
//     POST /oauth/provider/token (System org) or
//     POST /oauth/tenant/<org>/token, form
//     grant_type=refresh_token&refresh_token=<token>, answer
//     {"access_token","token_type","expires_in"} (VCD 10.3.1+). Requests
//     then send "Authorization: Bearer <access_token>" and
//     "Accept: application/json;version=<api>". A 401 logs in again once.
//   - paging: ?page=<1-based>&pageSize=<≤128>, answer
//     {"resultTotal","pageCount","page","pageSize","values":[…]}; the next
//     page may be in a Link header (rel="nextPage") but some endpoints omit
//     it, so the client follows pageCount.
//   - errors: {"minorErrorCode","message"}.
//   - the Org VDC list path GET /cloudapi/1.0.0/vdcs is not confirmed by a
//     public source; when it answers 404 the client falls back to the
//     legacy query API (GET /api/query?type=adminOrgVdc, or orgVdc for a
//     tenant token, format=records), whose record fields it reads are
//     name, href (…/vdc/<uuid>) and org (…/org/<uuid>) or orgName.
package vcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/vpipe/vpipe/pipeline/tenants"
)

// Config configures a Client.
type Config struct {
	// URL is the VCD endpoint, e.g. https://vcd.example.com.
	URL string
	// Org is the organisation of the API token; "System" (any case)
	// authenticates as the provider, who sees every organisation.
	Org string
	// Token is the API token. It is sent only to the token endpoint.
	Token string
	// APIVersion is the version in the Accept header (default "37.2").
	APIVersion string
	// PageSize is the page size of list calls, at most 128 (default 128).
	PageSize int
	// HTTPClient makes the requests (TLS settings, timeouts); nil means
	// http.DefaultClient. Each call is bounded by its ctx.
	HTTPClient *http.Client
}

// Client calls the VCD API. It is safe for concurrent use; it logs in on
// first use and again when the access token is refused.
type Client struct {
	cfg  Config
	base *url.URL
	hc   *http.Client

	mu     sync.Mutex
	bearer string
}

// New checks cfg and returns a Client. It does not connect.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("vcd url %q: want https://host[:port]", cfg.URL)
	}
	if cfg.Org == "" {
		cfg.Org = "System"
	}
	if cfg.Token == "" {
		return nil, errors.New("vcd: no API token")
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = "37.2"
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 128 {
		cfg.PageSize = 128
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{cfg: cfg, base: u, hc: hc}, nil
}

// Provider reports whether the client authenticates as the provider.
func (c *Client) Provider() bool { return strings.EqualFold(c.cfg.Org, "system") }

// Ref is an OpenAPI entity reference.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Org is an organisation (GET /cloudapi/1.0.0/orgs).
type Org struct {
	ID          string `json:"id"` // urn:vcloud:org:<uuid>
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	IsEnabled   bool   `json:"isEnabled"`
}

// VDC is an Org VDC (OpenAPI type OrgVdcs, "Added in 35.0").
type VDC struct {
	ID             string `json:"id"` // urn:vcloud:vdc:<uuid>
	Name           string `json:"name"`
	Description    string `json:"description,omitempty"`
	AllocationType string `json:"allocationType,omitempty"`
	Org            Ref    `json:"org"`
}

// VDCGroup is a Data Center Group (GET /cloudapi/1.0.0/vdcGroups).
type VDCGroup struct {
	ID                   string           `json:"id"` // urn:vcloud:vdcGroup:<uuid>
	OrgID                string           `json:"orgId"`
	Name                 string           `json:"name"`
	Description          string           `json:"description,omitempty"`
	ParticipatingOrgVDCs []ParticipantVDC `json:"participatingOrgVdcs,omitempty"`
	Type                 string           `json:"type,omitempty"`                // LOCAL, UNIVERSAL
	NetworkProviderType  string           `json:"networkProviderType,omitempty"` // NSX_T, NSX_V
	DFWEnabled           bool             `json:"dfwEnabled"`
	Status               string           `json:"status,omitempty"`
}

// ParticipantVDC is one Org VDC of a VDC group.
type ParticipantVDC struct {
	VDCRef    Ref  `json:"vdcRef"`
	OrgRef    Ref  `json:"orgRef"`
	RemoteOrg bool `json:"remoteOrg"`
}

// EdgeGateway is an Org VDC edge gateway (GET /cloudapi/1.0.0/edgeGateways,
// OpenAPIEdgeGateway).
type EdgeGateway struct {
	ID          string `json:"id"` // urn:vcloud:gateway:<uuid>
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// OwnerRef is the Org VDC or VDC group owning the gateway (API 35+);
	// OrgVDC is the legacy field, used when OwnerRef is empty.
	OwnerRef *Ref `json:"ownerRef,omitempty"`
	OrgVDC   *Ref `json:"orgVdc,omitempty"`
	OrgRef   Ref  `json:"orgRef"`
}

// Page is one page of an OpenAPI list.
type Page struct {
	ResultTotal int               `json:"resultTotal"`
	PageCount   int               `json:"pageCount"`
	Page        int               `json:"page"`
	PageSize    int               `json:"pageSize"`
	Values      []json.RawMessage `json:"values"`
}

// Error is an error answer of the API.
type Error struct {
	Status         int    `json:"-"`
	MinorErrorCode string `json:"minorErrorCode"`
	Message        string `json:"message"`
}

// Error gives the status and VCD's minor error code and message.
func (e *Error) Error() string {
	if e.MinorErrorCode == "" && e.Message == "" {
		return fmt.Sprintf("status %d", e.Status)
	}
	return fmt.Sprintf("status %d %s: %s", e.Status, e.MinorErrorCode, e.Message)
}

// Orgs lists the organisations the token sees.
func (c *Client) Orgs(ctx context.Context) ([]Org, error) {
	return list[Org](ctx, c, "/cloudapi/1.0.0/orgs")
}

// VDCs lists the Org VDCs, from /cloudapi/1.0.0/vdcs or, when that path
// answers 404, from the legacy query API.
func (c *Client) VDCs(ctx context.Context) ([]VDC, error) {
	v, err := list[VDC](ctx, c, "/cloudapi/1.0.0/vdcs")
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return c.queryVDCs(ctx)
	}
	return v, err
}

// VDCGroups lists the Data Center Groups.
func (c *Client) VDCGroups(ctx context.Context) ([]VDCGroup, error) {
	return list[VDCGroup](ctx, c, "/cloudapi/1.0.0/vdcGroups")
}

// EdgeGateways lists the edge gateways.
func (c *Client) EdgeGateways(ctx context.Context) ([]EdgeGateway, error) {
	return list[EdgeGateway](ctx, c, "/cloudapi/1.0.0/edgeGateways")
}

// list reads every page of an OpenAPI list.
func list[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var out []T
	for page := 1; ; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(c.cfg.PageSize)}}
		var p Page
		hdr, err := c.get(ctx, path, q, "application/json;version="+c.cfg.APIVersion, &p)
		if err != nil {
			return nil, err
		}
		for i, raw := range p.Values {
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, fmt.Errorf("GET %s page %d: values[%d]: %w", path, page, i, err)
			}
			out = append(out, v)
		}
		next := strings.Contains(hdr.Get("Link"), `rel="nextPage"`)
		count := p.PageCount
		if count == 0 && p.PageSize > 0 {
			count = (p.ResultTotal + p.PageSize - 1) / p.PageSize
		}
		if !next && page >= count {
			return out, nil
		}
		if len(p.Values) == 0 {
			// A page past the end: the totals were wrong; stop rather than
			// loop.
			return out, nil
		}
	}
}

// queryRecords is the legacy query API's answer (format=records).
type queryRecords struct {
	Page     int `json:"page"`
	PageSize int `json:"pageSize"`
	Total    int `json:"total"`
	Record   []struct {
		Name    string `json:"name"`
		Href    string `json:"href"`
		Org     string `json:"org"`
		OrgName string `json:"orgName"`
	} `json:"record"`
}

// queryVDCs lists Org VDCs with the legacy query API.
func (c *Client) queryVDCs(ctx context.Context) ([]VDC, error) {
	typ := "orgVdc"
	if c.Provider() {
		typ = "adminOrgVdc"
	}
	var out []VDC
	for page := 1; ; page++ {
		q := url.Values{"type": {typ}, "format": {"records"}, "page": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(c.cfg.PageSize)}}
		var r queryRecords
		if _, err := c.get(ctx, "/api/query", q, "application/*+json;version="+c.cfg.APIVersion, &r); err != nil {
			return nil, err
		}
		for _, rec := range r.Record {
			id := lastSegment(rec.Href)
			u, ok := tenants.NormalizeUUID(id)
			if !ok {
				return nil, fmt.Errorf("GET /api/query?type=%s: record %q: href %q does not end in a UUID", typ, rec.Name, rec.Href)
			}
			v := VDC{ID: "urn:vcloud:vdc:" + u, Name: rec.Name, Org: Ref{Name: rec.OrgName}}
			if o, ok := tenants.NormalizeUUID(lastSegment(rec.Org)); ok {
				v.Org.ID = "urn:vcloud:org:" + o
			}
			out = append(out, v)
		}
		if len(r.Record) == 0 || r.PageSize <= 0 || page*r.PageSize >= r.Total {
			return out, nil
		}
	}
}

func lastSegment(href string) string {
	href = strings.TrimRight(href, "/")
	return href[strings.LastIndexByte(href, '/')+1:]
}

// get sends a GET with the bearer token (logging in first if needed, and
// once more on 401) and decodes the JSON answer into v.
func (c *Client) get(ctx context.Context, path string, q url.Values, accept string, v any) (http.Header, error) {
	for attempt := 0; ; attempt++ {
		bearer, err := c.token(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		u := *c.base
		u.Path += path
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", accept)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			drain(resp)
			continue
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("GET %s: %w", path, apiError(resp))
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
			return nil, fmt.Errorf("GET %s: decode: %w", path, err)
		}
		return resp.Header, nil
	}
}

// token returns the access token, logging in when there is none or when
// renew says the last one was refused.
func (c *Client) token(ctx context.Context, renew bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bearer != "" && !renew {
		return c.bearer, nil
	}
	path := "/oauth/provider/token"
	if !c.Provider() {
		path = "/oauth/tenant/" + url.PathEscape(c.cfg.Org) + "/token"
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.cfg.Token}}
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("vcd login: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("vcd login (POST %s): %w", path, apiError(resp))
	}
	var t struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&t); err != nil {
		return "", fmt.Errorf("vcd login: decode: %w", err)
	}
	if t.AccessToken == "" {
		return "", errors.New("vcd login: no access_token in the answer")
	}
	c.bearer = t.AccessToken
	return c.bearer, nil
}

func apiError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(body, e) // a body that is not the error type leaves the status alone
	return e
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// Discover reads the organisations, Org VDCs, VDC groups and edge gateways
// and returns one tenant per organisation that owns any of them: ID the
// organisation name (characters other than letters, digits, '.', '-', '_'
// replaced by '_'), Name its display name, VCDOrg its UUID, with its Org
// VDCs, the groups it owns (orgId) and its gateways with their parent
// (ownerRef, else the legacy orgVdc). The tenants have no destinations:
// tenants.Merge adds them to the configured ones (apis.md §6.4).
func (c *Client) Discover(ctx context.Context) ([]tenants.Tenant, error) {
	orgs, err := c.Orgs(ctx)
	if err != nil {
		return nil, err
	}
	vdcs, err := c.VDCs(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := c.VDCGroups(ctx)
	if err != nil {
		return nil, err
	}
	gws, err := c.EdgeGateways(ctx)
	if err != nil {
		return nil, err
	}
	return Tenants(orgs, vdcs, groups, gws), nil
}

// Tenants groups discovered objects by organisation (see Discover).
// Objects whose organisation is not in orgs, or whose ids are not UUIDs,
// are left out.
func Tenants(orgs []Org, vdcs []VDC, groups []VDCGroup, gws []EdgeGateway) []tenants.Tenant {
	byOrg := map[string]*tenants.Tenant{}
	byName := map[string]*tenants.Tenant{}
	var order []*tenants.Tenant
	for _, o := range orgs {
		u, ok := tenants.NormalizeUUID(o.ID)
		if !ok {
			continue
		}
		name := o.DisplayName
		if name == "" {
			name = o.Name
		}
		t := &tenants.Tenant{ID: sanitizeID(o.Name), Name: name, VCDOrg: u}
		byOrg[u] = t
		byName[strings.ToLower(o.Name)] = t
		order = append(order, t)
	}
	find := func(r Ref) *tenants.Tenant {
		if u, ok := tenants.NormalizeUUID(r.ID); ok {
			return byOrg[u]
		}
		return byName[strings.ToLower(r.Name)]
	}
	for _, v := range vdcs {
		if t := find(v.Org); t != nil {
			if _, ok := tenants.NormalizeUUID(v.ID); ok {
				t.OrgVDCs = append(t.OrgVDCs, tenants.Object{Name: v.Name, ID: v.ID})
			}
		}
	}
	for _, g := range groups {
		if t := find(Ref{ID: g.OrgID}); t != nil {
			if _, ok := tenants.NormalizeUUID(g.ID); ok {
				t.DCGroups = append(t.DCGroups, tenants.Object{Name: g.Name, ID: g.ID})
			}
		}
	}
	for _, g := range gws {
		owner := g.OwnerRef
		if owner == nil || owner.ID == "" {
			owner = g.OrgVDC
		}
		t := find(g.OrgRef)
		if t == nil || owner == nil {
			continue
		}
		_, idOK := tenants.NormalizeUUID(g.ID)
		_, pOK := tenants.NormalizeUUID(owner.ID)
		if idOK && pOK {
			t.EdgeGateways = append(t.EdgeGateways, tenants.Gateway{Name: g.Name, ID: g.ID, Parent: owner.ID})
		}
	}
	var out []tenants.Tenant
	for _, t := range order {
		if len(t.OrgVDCs)+len(t.DCGroups)+len(t.EdgeGateways) > 0 {
			t.Discovered = true
			out = append(out, *t)
		}
	}
	return out
}

func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}
