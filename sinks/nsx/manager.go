package nsx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// managerVMs is the Manager API's fabric VM collection (apis.md §1.3;
// vsphere-automation-sdk-go services/nsxt-mp/nsx/fabric/VirtualMachinesTypes.go).
const managerVMs = "/api/v1/fabric/virtual-machines"

// managerAPI reads with GET /api/v1/fabric/virtual-machines?external_id=
// and writes with ?action=add_tags and ?action=remove_tags (NSX-T 3.1.2+),
// which merge on the server: a tag added by someone else between the read
// and the write survives.
type managerAPI struct{ c *Client }

func (m managerAPI) get(ctx context.Context, op string, q url.Values) ([]VM, error) {
	q.Set("page_size", strconv.Itoa(m.c.cfg.PageSize))
	r := request{op: op, method: http.MethodGet, path: managerVMs, query: q}
	var out []VM
	for {
		body, err := m.c.do(ctx, r)
		if err != nil {
			return nil, err
		}
		var l vmList
		if err := json.Unmarshal(body, &l); err != nil {
			return nil, fmt.Errorf("nsx GET %s: decode answer: %w", managerVMs, err)
		}
		out = append(out, l.Results...)
		if l.Cursor == "" || len(l.Results) == 0 {
			return out, nil
		}
		r.query.Set("cursor", l.Cursor)
	}
}

func (m managerAPI) vm(ctx context.Context, id string) (VM, error) {
	vms, err := m.get(ctx, opGetVM, url.Values{"external_id": {id}})
	if err != nil {
		return VM{}, err
	}
	for _, vm := range vms {
		if vm.ExternalID == id {
			return vm, nil
		}
	}
	return VM{}, fmt.Errorf("vm %s: %w", id, ErrNotFound)
}

func (m managerAPI) byName(ctx context.Context, name string) ([]VM, error) {
	return m.get(ctx, opFindVMs, url.Values{"display_name": {name}})
}

func (m managerAPI) list(ctx context.Context, fn func([]VM) error) error {
	r := request{op: opListVMs, method: http.MethodGet, path: managerVMs,
		query: url.Values{"page_size": {strconv.Itoa(m.c.cfg.PageSize)}}}
	for {
		body, err := m.c.do(ctx, r)
		if err != nil {
			return err
		}
		var l vmList
		if err := json.Unmarshal(body, &l); err != nil {
			return fmt.Errorf("nsx GET %s: decode answer: %w", managerVMs, err)
		}
		if len(l.Results) > 0 {
			if err := fn(l.Results); err != nil {
				return err
			}
		}
		if l.Cursor == "" || len(l.Results) == 0 {
			return nil
		}
		r.query.Set("cursor", l.Cursor)
	}
}

func (m managerAPI) apply(ctx context.Context, vm VM, ch Change) error {
	for _, a := range []struct {
		action, op string
		tags       []Tag
	}{{"remove_tags", opRemove, ch.Remove}, {"add_tags", opAddTags, ch.Add}} {
		if len(a.tags) == 0 {
			continue
		}
		body, _ := json.Marshal(tagsUpdate{ExternalID: vm.ExternalID, Tags: a.tags})
		_, err := m.c.do(ctx, request{op: a.op, method: http.MethodPost, path: managerVMs,
			query: url.Values{"action": {a.action}}, body: body, ctype: "application/json"})
		if err != nil {
			return err
		}
	}
	return nil
}
