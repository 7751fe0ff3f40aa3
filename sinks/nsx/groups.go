package nsx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Group is a Policy API group (PUT /policy/api/v1/infra/domains/{domain}/groups/{id}),
// with the membership criteria that matter to vpipe: conditions on VM tags
// (apis.md §1.8).
type Group struct {
	ID          string      `json:"id,omitempty"`
	DisplayName string      `json:"display_name,omitempty"`
	Expression  []Condition `json:"expression,omitempty"`
}

// Condition is one membership criterion. For a tag:
// {ResourceType: "Condition", MemberType: "VirtualMachine", Key: "Tag",
// Operator: "EQUALS", Value: "scope|tag"} ("|tag" matches the tag in any
// scope). Between two conditions NSX expects a ConjunctionOperator
// expression (ResourceType "ConjunctionOperator", ConjunctionOperator
// "OR" or "AND").
type Condition struct {
	ResourceType        string `json:"resource_type"`
	MemberType          string `json:"member_type,omitempty"`
	Key                 string `json:"key,omitempty"`
	Operator            string `json:"operator,omitempty"`
	ScopeOperator       string `json:"scope_operator,omitempty"`
	Value               string `json:"value,omitempty"`
	ConjunctionOperator string `json:"conjunction_operator,omitempty"`
}

// TagCondition is the condition "VM has tag t".
func TagCondition(t Tag) Condition {
	return Condition{ResourceType: "Condition", MemberType: "VirtualMachine", Key: "Tag",
		Operator: "EQUALS", Value: t.Scope + "|" + t.Tag}
}

func groupPath(domain, id string) string {
	return "/policy/api/v1/infra/domains/" + url.PathEscape(domain) + "/groups/" + url.PathEscape(id)
}

// PutGroup creates or replaces a group (policy and manager APIs only; the
// Policy API serves groups on NSX-T and NSX 4.x either way).
func (c *Client) PutGroup(ctx context.Context, domain string, g Group) error {
	if c.cfg.API == APINSXV {
		return fmt.Errorf("put group: %w", ErrUnsupported)
	}
	body, err := json.Marshal(g)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{op: opGroup, method: http.MethodPut, path: groupPath(domain, g.ID), body: body, ctype: "application/json"})
	return err
}

// GroupVMs returns the VMs that are members of a group now, as NSX
// evaluated its criteria
// (GET /policy/api/v1/infra/domains/{domain}/groups/{id}/members/virtual-machines).
func (c *Client) GroupVMs(ctx context.Context, domain, id string) ([]VM, error) {
	if c.cfg.API == APINSXV {
		return nil, fmt.Errorf("group members: %w", ErrUnsupported)
	}
	r := request{op: opGroup, method: http.MethodGet, path: groupPath(domain, id) + "/members/virtual-machines",
		query: url.Values{"page_size": {strconv.Itoa(c.cfg.PageSize)}}}
	var out []VM
	for {
		body, err := c.do(ctx, r)
		if err != nil {
			return nil, err
		}
		var l struct {
			Results []struct {
				VM
				ID string `json:"id"`
			} `json:"results"`
			Cursor string `json:"cursor"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			return nil, fmt.Errorf("nsx GET %s: decode answer: %w", r.path, err)
		}
		for _, m := range l.Results {
			vm := m.VM
			if vm.ExternalID == "" {
				vm.ExternalID = m.ID
			}
			out = append(out, vm)
		}
		if l.Cursor == "" || len(l.Results) == 0 {
			return out, nil
		}
		r.query.Set("cursor", l.Cursor)
	}
}
