package nsx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Policy API paths (apis.md §1.4; vsphere-automation-sdk-go
// services/nsxt/infra/realized_state).
const (
	policyVMs    = "/policy/api/v1/infra/realized-state/virtual-machines"
	policyEPVMs  = "/policy/api/v1/infra/realized-state/enforcement-points/" // + {ep}/virtual-machines
	policySearch = "/policy/api/v1/search/query"
)

// vmList is VirtualMachineListResult, and the part of SearchResponse that
// matters here.
type vmList struct {
	Results     []VM   `json:"results"`
	Cursor      string `json:"cursor"`
	ResultCount *int   `json:"result_count"`
}

// tagsUpdate is VirtualMachineTagsUpdate (policy) and
// VirtualMachineTagUpdate (manager, which names the id external_id).
type tagsUpdate struct {
	VirtualMachineID string `json:"virtual_machine_id,omitempty"`
	ExternalID       string `json:"external_id,omitempty"`
	Tags             []Tag  `json:"tags"`
}

// policyAPI reads VMs through the search API (or, with an enforcement
// point, the enforcement point's VM list and its query parameter) and
// replaces a VM's tags with POST .../virtual-machines/{id}/tags (or
// ?action=update_tags on the enforcement point): replace-all, hence the
// read-modify-write in Client.UpdateTags
// (https://developer.broadcom.com/xapis/nsx-t-data-center-rest-api/4.2/method_ApplyTagOnVirtualMachine.html).
type policyAPI struct {
	c  *Client
	ep string
}

func (p policyAPI) epVMs() string {
	return policyEPVMs + url.PathEscape(p.ep) + "/virtual-machines"
}

// query finds VMs with one search term: field:value.
func (p policyAPI) query(ctx context.Context, op, field, value string) ([]VM, error) {
	var r request
	if p.ep != "" {
		r = request{op: op, method: http.MethodGet, path: p.epVMs(),
			query: url.Values{"query": {field + ":" + escapeSearch(value)}}}
	} else {
		r = request{op: op, method: http.MethodGet, path: policySearch,
			query: url.Values{"query": {"resource_type:VirtualMachine AND " + field + ":" + escapeSearch(value)}}}
	}
	var out []VM
	for page := 0; ; page++ {
		body, err := p.c.do(ctx, r)
		if err != nil {
			return nil, err
		}
		var l vmList
		if err := json.Unmarshal(body, &l); err != nil {
			return nil, fmt.Errorf("nsx %s %s: decode answer: %w", r.method, r.path, err)
		}
		for _, vm := range l.Results {
			// The search matches words; keep exact matches only.
			if field == "external_id" && vm.ExternalID == value || field == "display_name" && vm.DisplayName == value {
				out = append(out, vm)
			}
		}
		if l.Cursor == "" || len(l.Results) == 0 || page > 100 {
			return out, nil
		}
		r.query.Set("cursor", l.Cursor)
	}
}

func (p policyAPI) vm(ctx context.Context, id string) (VM, error) {
	vms, err := p.query(ctx, opGetVM, "external_id", id)
	if err != nil {
		return VM{}, err
	}
	if len(vms) == 0 {
		return VM{}, fmt.Errorf("vm %s: %w", id, ErrNotFound)
	}
	return vms[0], nil
}

func (p policyAPI) byName(ctx context.Context, name string) ([]VM, error) {
	return p.query(ctx, opFindVMs, "display_name", name)
}

// list pages through the VM list. The list does not fill cursor and
// result_count although it honours a cursor, so, as
// terraform-provider-nsxt's listAllPolicyVirtualMachines does, the cursor
// defaults to the number of VMs read so far and the end is an empty page.
func (p policyAPI) list(ctx context.Context, fn func([]VM) error) error {
	path := policyVMs
	if p.ep != "" {
		path = p.epVMs()
	}
	r := request{op: opListVMs, method: http.MethodGet, path: path,
		query: url.Values{"page_size": {strconv.Itoa(p.c.cfg.PageSize)}}}
	seen, total := 0, -1
	for {
		body, err := p.c.do(ctx, r)
		if err != nil {
			return err
		}
		var l vmList
		if err := json.Unmarshal(body, &l); err != nil {
			return fmt.Errorf("nsx GET %s: decode answer: %w", path, err)
		}
		if len(l.Results) == 0 {
			return nil
		}
		if err := fn(l.Results); err != nil {
			return err
		}
		seen += len(l.Results)
		if total < 0 && l.ResultCount != nil {
			total = *l.ResultCount
		}
		if total >= 0 && seen >= total {
			return nil
		}
		cursor := l.Cursor
		if cursor == "" {
			cursor = strconv.Itoa(seen)
		}
		r.query.Set("cursor", cursor)
	}
}

func (p policyAPI) apply(ctx context.Context, vm VM, ch Change) error {
	tags := merged(vm.Tags, ch)
	var r request
	if p.ep != "" {
		body, _ := json.Marshal(tagsUpdate{VirtualMachineID: vm.ExternalID, Tags: tags})
		r = request{op: opSetTags, method: http.MethodPost, path: p.epVMs(),
			query: url.Values{"action": {"update_tags"}}, body: body, ctype: "application/json"}
	} else {
		body, _ := json.Marshal(tagsUpdate{VirtualMachineID: vm.ExternalID, Tags: tags})
		r = request{op: opSetTags, method: http.MethodPost, path: policyVMs + "/" + url.PathEscape(vm.ExternalID) + "/tags",
			body: body, ctype: "application/json"}
	}
	_, err := p.c.do(ctx, r)
	return err
}

// escapeSearch escapes the search syntax's special characters with a
// backslash, as terraform-provider-nsxt's escapeSpecialCharacters does
// (nsxt/policy_search.go), and quotes values with spaces.
func escapeSearch(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`()[]+-=&|><!{}^~*?:/\"`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	if strings.ContainsAny(s, " \t") {
		return `"` + b.String() + `"`
	}
	return b.String()
}
