package nsx

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// NSX-V security tag API (vmware-archive/nsxraml nsxvapi.raml, apis.md §2).
const nsxvTags = "/api/2.0/services/securitytags"

// SecurityTag is an NSX-V security tag as the XML API writes it.
type SecurityTag struct {
	XMLName        xml.Name `xml:"securityTag"`
	ObjectID       string   `xml:"objectId,omitempty"`
	ObjectTypeName string   `xml:"objectTypeName,omitempty"`
	TypeName       string   `xml:"type>typeName,omitempty"`
	Name           string   `xml:"name"`
	Description    string   `xml:"description,omitempty"`
	IsUniversal    bool     `xml:"isUniversal"`
	VMCount        int      `xml:"vmCount,omitempty"`
}

// SecurityTags is the <securityTags> list.
type SecurityTags struct {
	XMLName xml.Name      `xml:"securityTags"`
	Tags    []SecurityTag `xml:"securityTag"`
}

// AttachedVMs is the vmDetail answer: <attachedVMList><attachedVM>….
type AttachedVMs struct {
	XMLName xml.Name     `xml:"attachedVMList"`
	VMs     []AttachedVM `xml:"attachedVM"`
}

// AttachedVM is one VM a security tag is attached to.
type AttachedVM struct {
	ObjectID     string `xml:"objectId"`
	Name         string `xml:"name"`
	InstanceUUID string `xml:"instanceUUID"`
	BiosUUID     string `xml:"biosUUID"`
}

// nsxvAPI maps Tag{Scope, Tag} to the security tag named
// "<scope><sep><tag>" (NSX-V tags have names only) and attaches and
// detaches tags one at a time with PUT / DELETE
// /api/2.0/services/securitytags/tag/{tagId}/vm/{vmId}, vmId being the
// instance UUID (which the raml documents next to the MoRef). A tag that
// does not exist yet is created.
type nsxvAPI struct {
	c   *Client
	sep string

	mu  sync.Mutex
	ids map[string]string // tag name → objectId
}

// NSXVName is the NSX-V security tag name of t: Tag alone when Scope is
// empty, else Scope, sep, Tag.
func NSXVName(t Tag, sep string) string {
	if t.Scope == "" {
		return t.Tag
	}
	return t.Scope + sep + t.Tag
}

// nsxvTag is the inverse of NSXVName.
func nsxvTag(name, sep string) Tag {
	if s, t, ok := strings.Cut(name, sep); ok {
		return Tag{Scope: s, Tag: t}
	}
	return Tag{Tag: name}
}

func (v *nsxvAPI) xmlGet(ctx context.Context, op, path string, out any) error {
	body, err := v.c.do(ctx, request{op: op, method: http.MethodGet, path: path, accept: "application/xml"})
	if err != nil {
		return err
	}
	if err := xml.Unmarshal(body, out); err != nil {
		return fmt.Errorf("nsx GET %s: decode answer: %w", path, err)
	}
	return nil
}

func (v *nsxvAPI) vm(ctx context.Context, id string) (VM, error) {
	var st SecurityTags
	if err := v.xmlGet(ctx, opGetVM, nsxvTags+"/vm/"+url.PathEscape(id), &st); err != nil {
		return VM{}, err
	}
	vm := VM{ExternalID: id}
	for _, t := range st.Tags {
		vm.Tags = append(vm.Tags, nsxvTag(t.Name, v.sep))
	}
	return vm, nil
}

func (v *nsxvAPI) byName(context.Context, string) ([]VM, error) {
	return nil, fmt.Errorf("find vms by name: %w", ErrUnsupported)
}

// list reads every security tag, then the VMs of each tag that has any.
func (v *nsxvAPI) list(ctx context.Context, fn func([]VM) error) error {
	tags, err := v.listTags(ctx)
	if err != nil {
		return err
	}
	byID := map[string]*VM{}
	var order []string
	for _, t := range tags {
		var av AttachedVMs
		if err := v.xmlGet(ctx, opTagVMs, nsxvTags+"/tag/"+url.PathEscape(t.ObjectID)+"/vmDetail", &av); err != nil {
			return err
		}
		for _, a := range av.VMs {
			id := a.InstanceUUID
			if id == "" {
				continue
			}
			vm := byID[id]
			if vm == nil {
				vm = &VM{ExternalID: id, DisplayName: a.Name}
				byID[id] = vm
				order = append(order, id)
			}
			vm.Tags = append(vm.Tags, nsxvTag(t.Name, v.sep))
		}
	}
	page := make([]VM, 0, min(len(order), v.c.cfg.PageSize))
	for _, id := range order {
		page = append(page, *byID[id])
		if len(page) == v.c.cfg.PageSize {
			if err := fn(page); err != nil {
				return err
			}
			page = page[:0]
		}
	}
	if len(page) > 0 {
		return fn(page)
	}
	return nil
}

// listTags reads every security tag and refreshes the name → id cache.
func (v *nsxvAPI) listTags(ctx context.Context) ([]SecurityTag, error) {
	var st SecurityTags
	if err := v.xmlGet(ctx, opListTags, nsxvTags+"/tag", &st); err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.ids = make(map[string]string, len(st.Tags))
	for _, t := range st.Tags {
		v.ids[t.Name] = t.ObjectID
	}
	v.mu.Unlock()
	return st.Tags, nil
}

// tagID returns the objectId of the tag named name; with create, it
// creates a missing tag.
func (v *nsxvAPI) tagID(ctx context.Context, name string, create bool) (string, error) {
	v.mu.Lock()
	id, ok := v.ids[name]
	v.mu.Unlock()
	if ok {
		return id, nil
	}
	if _, err := v.listTags(ctx); err != nil {
		return "", err
	}
	v.mu.Lock()
	id, ok = v.ids[name]
	v.mu.Unlock()
	if ok || !create {
		return id, nil
	}
	body, _ := xml.Marshal(SecurityTag{ObjectTypeName: "SecurityTag", TypeName: "SecurityTag", Name: name,
		Description: "created by vpipe tag sync"})
	out, err := v.c.do(ctx, request{op: opCreateTag, method: http.MethodPost, path: nsxvTags + "/tag",
		body: body, ctype: "application/xml", accept: "text/plain, application/xml"})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == 210 { // already exists: created meanwhile
			v.mu.Lock()
			v.ids = nil
			v.mu.Unlock()
			return v.tagID(ctx, name, false)
		}
		return "", err
	}
	id = strings.TrimSpace(string(out))
	if id == "" {
		return "", fmt.Errorf("nsx create security tag %q: empty answer", name)
	}
	v.mu.Lock()
	if v.ids == nil {
		v.ids = map[string]string{}
	}
	v.ids[name] = id
	v.mu.Unlock()
	return id, nil
}

func (v *nsxvAPI) apply(ctx context.Context, vm VM, ch Change) error {
	for _, t := range ch.Remove {
		id, err := v.tagID(ctx, NSXVName(t, v.sep), false)
		if err != nil {
			return err
		}
		if id == "" {
			continue // the tag itself is gone
		}
		if _, err := v.c.do(ctx, request{op: opDetach, method: http.MethodDelete,
			path: nsxvTags + "/tag/" + url.PathEscape(id) + "/vm/" + url.PathEscape(vm.ExternalID)}); err != nil {
			return err
		}
	}
	for _, t := range ch.Add {
		id, err := v.tagID(ctx, NSXVName(t, v.sep), true)
		if err != nil {
			return err
		}
		if _, err := v.c.do(ctx, request{op: opAttach, method: http.MethodPut,
			path: nsxvTags + "/tag/" + url.PathEscape(id) + "/vm/" + url.PathEscape(vm.ExternalID)}); err != nil {
			return err
		}
	}
	return nil
}
