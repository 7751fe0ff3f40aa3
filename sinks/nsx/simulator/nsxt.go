package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// vmJSON is the VirtualMachine object as NSX writes it. tags is omitted
// when the VM has none, as NSX does (SDK doc: "tags property is not
// returned").
type vmJSON struct {
	ResourceType string   `json:"resource_type"`
	ID           string   `json:"id,omitempty"`
	DisplayName  string   `json:"display_name"`
	ExternalID   string   `json:"external_id"`
	ComputeIDs   []string `json:"compute_ids,omitempty"`
	PowerState   string   `json:"power_state"`
	Type         string   `json:"type"`
	Tags         []Tag    `json:"tags,omitempty"`
}

func (v *VM) json() vmJSON {
	ids := []string{"instanceUuid:" + v.ExternalID}
	if v.MoRef != "" {
		ids = append(ids, "moIdOnHost:"+v.MoRef)
	}
	if v.BiosUUID != "" {
		ids = append(ids, "biosUuid:"+v.BiosUUID)
	}
	return vmJSON{
		ResourceType: "VirtualMachine", ID: v.ExternalID, DisplayName: v.DisplayName, ExternalID: v.ExternalID,
		ComputeIDs: ids, PowerState: "VM_RUNNING", Type: "REGULAR", Tags: slices.Clone(v.Tags),
	}
}

// page selects what a cursor (an offset, as the simulator issues them) and
// page_size pick from vms, and the next cursor ("" at the end).
func page(r *http.Request, vms []vmJSON) ([]vmJSON, string, bool) {
	start := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return nil, "", false
		}
		start = min(n, len(vms))
	}
	size := 1000
	if ps := r.URL.Query().Get("page_size"); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 {
			return nil, "", false
		}
		size = min(n, 1000)
	}
	end := min(start+size, len(vms))
	next := ""
	if end < len(vms) {
		next = strconv.Itoa(end)
	}
	return vms[start:end], next, true
}

// byExternalID returns the VM with external id id, as a one-element
// selection, or none: the fast path of lookups by id.
func (s *Server) byExternalID(id string) []vmJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vms[id]; ok {
		return []vmJSON{v.json()}
	}
	return nil
}

// selectVMs returns the VMs matching keep, in inventory order.
func (s *Server) selectVMs(keep func(*VM) bool) []vmJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []vmJSON
	for _, id := range s.order {
		if v := s.vms[id]; keep(v) {
			out = append(out, v.json())
		}
	}
	return out
}

func listResult(results []vmJSON, cursor string, count int, withCursor bool) map[string]any {
	if results == nil {
		results = []vmJSON{}
	}
	m := map[string]any{"results": results, "sort_ascending": true}
	if withCursor {
		m["result_count"] = count
		if cursor != "" {
			m["cursor"] = cursor
		}
	}
	return m
}

// managerList is GET /api/v1/fabric/virtual-machines with the external_id
// and display_name filters.
func (s *Server) managerList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ext, name := q.Get("external_id"), q.Get("display_name")
	var vms []vmJSON
	if ext != "" {
		vms = slices.DeleteFunc(s.byExternalID(ext), func(v vmJSON) bool { return name != "" && v.DisplayName != name })
	} else {
		vms = s.selectVMs(func(v *VM) bool { return name == "" || v.DisplayName == name })
	}
	p, next, ok := page(r, vms)
	if !ok {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {invalid cursor or page_size}")
		return
	}
	writeJSON(w, http.StatusOK, listResult(p, next, len(vms), true))
}

// tagUpdate is VirtualMachineTagUpdate (manager: external_id) and
// VirtualMachineTagsUpdate (policy: virtual_machine_id).
type tagUpdate struct {
	ExternalID       *string `json:"external_id"`
	VirtualMachineID *string `json:"virtual_machine_id"`
	Tags             *[]Tag  `json:"tags"`
}

func readUpdate(w http.ResponseWriter, r *http.Request) (tagUpdate, bool) {
	var u tagUpdate
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &u)
	}
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {request body is not valid JSON: "+err.Error()+"}")
		return u, false
	}
	if u.Tags == nil {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {required property tags is missing}")
		return u, false
	}
	for _, t := range *u.Tags {
		if len(t.Scope) > 128 {
			writeAPIError(w, http.StatusBadRequest, 255, fmt.Sprintf("Field level validation errors: {scope %q exceeds 128 characters}", t.Scope[:32]+"…"))
			return u, false
		}
		if len(t.Tag) > 256 {
			writeAPIError(w, http.StatusBadRequest, 255, fmt.Sprintf("Field level validation errors: {tag %q exceeds 256 characters}", t.Tag[:32]+"…"))
			return u, false
		}
	}
	return u, true
}

// managerAction is POST /api/v1/fabric/virtual-machines?action=add_tags |
// remove_tags | update_tags (204).
func (s *Server) managerAction(w http.ResponseWriter, r *http.Request) {
	action := r.URL.Query().Get("action")
	if action != "add_tags" && action != "remove_tags" && action != "update_tags" {
		writeAPIError(w, http.StatusBadRequest, 255, fmt.Sprintf("Field level validation errors: {action %q is not one of add_tags, remove_tags, update_tags}", action))
		return
	}
	u, ok := readUpdate(w, r)
	if !ok {
		return
	}
	if u.ExternalID == nil || *u.ExternalID == "" {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {required property external_id is missing}")
		return
	}
	s.changeTags(w, *u.ExternalID, action, *u.Tags)
}

// changeTags applies an action to a VM's tags and answers 204.
func (s *Server) changeTags(w http.ResponseWriter, id, action string, tags []Tag) {
	s.mu.Lock()
	v, ok := s.vms[id]
	if !ok {
		s.mu.Unlock()
		writeAPIError(w, http.StatusNotFound, 600, fmt.Sprintf("The requested object : %s could not be found. Object identifiers are case sensitive.", id))
		return
	}
	switch action {
	case "update_tags":
		v.Tags = dedupTags(tags)
	case "add_tags":
		for _, t := range tags {
			if !slices.Contains(v.Tags, t) {
				v.Tags = append(v.Tags, t)
			}
		}
	case "remove_tags":
		v.Tags = slices.DeleteFunc(v.Tags, func(t Tag) bool { return slices.Contains(tags, t) })
	}
	s.stats.TagWrites++
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func dedupTags(tags []Tag) []Tag {
	out := make([]Tag, 0, len(tags))
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// policyList is GET /policy/api/v1/infra/realized-state/virtual-machines:
// it honours cursor and page_size but, like the real API, returns neither
// cursor nor result_count.
func (s *Server) policyList(w http.ResponseWriter, r *http.Request) {
	vms := s.selectVMs(func(*VM) bool { return true })
	p, _, ok := page(r, vms)
	if !ok {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {invalid cursor or page_size}")
		return
	}
	writeJSON(w, http.StatusOK, listResult(p, "", 0, false))
}

// policyTags is POST /policy/api/v1/infra/realized-state/virtual-machines/{id}/tags:
// replace all tags (204); the body's virtual_machine_id is ignored.
func (s *Server) policyTags(w http.ResponseWriter, r *http.Request) {
	u, ok := readUpdate(w, r)
	if !ok {
		return
	}
	s.changeTags(w, r.PathValue("id"), "update_tags", *u.Tags)
}

// epList is the deprecated GET .../enforcement-points/{ep}/virtual-machines,
// a SearchResponse that takes a query such as external_id:ID.
func (s *Server) epList(w http.ResponseWriter, r *http.Request) {
	if !s.knownEP(w, r) {
		return
	}
	terms, ok := parseQuery(r.URL.Query().Get("query"))
	if !ok {
		writeAPIError(w, http.StatusBadRequest, 60503, "Invalid search query.")
		return
	}
	var vms []vmJSON
	if len(terms) == 1 && terms["external_id"] != "" {
		vms = s.byExternalID(terms["external_id"])
	} else {
		vms = s.selectVMs(func(v *VM) bool { return matches(v, terms) })
	}
	p, next, ok := page(r, vms)
	if !ok {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {invalid cursor or page_size}")
		return
	}
	writeJSON(w, http.StatusOK, listResult(p, next, len(vms), true))
}

// epAction is the deprecated POST .../enforcement-points/{ep}/virtual-machines?action=update_tags.
func (s *Server) epAction(w http.ResponseWriter, r *http.Request) {
	if !s.knownEP(w, r) {
		return
	}
	if a := r.URL.Query().Get("action"); a != "update_tags" {
		writeAPIError(w, http.StatusBadRequest, 255, fmt.Sprintf("Field level validation errors: {action %q is not update_tags}", a))
		return
	}
	u, ok := readUpdate(w, r)
	if !ok {
		return
	}
	if u.VirtualMachineID == nil || *u.VirtualMachineID == "" {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {required property virtual_machine_id is missing}")
		return
	}
	s.changeTags(w, *u.VirtualMachineID, "update_tags", *u.Tags)
}

func (s *Server) knownEP(w http.ResponseWriter, r *http.Request) bool {
	switch r.PathValue("ep") {
	case "default", "vmc-enforcementpoint":
		return true
	}
	writeAPIError(w, http.StatusNotFound, 600, fmt.Sprintf("The requested object : %s could not be found. Object identifiers are case sensitive.", r.PathValue("ep")))
	return false
}

// search is GET /policy/api/v1/search/query for VirtualMachine: terms
// joined by AND, each field:value (values escaped with backslashes, or
// quoted).
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	terms, ok := parseQuery(r.URL.Query().Get("query"))
	if !ok || terms["resource_type"] == "" {
		writeAPIError(w, http.StatusBadRequest, 60503, "Invalid search query.")
		return
	}
	var vms []vmJSON
	switch {
	case terms["resource_type"] != "VirtualMachine":
	case len(terms) == 2 && terms["external_id"] != "":
		vms = s.byExternalID(terms["external_id"])
	default:
		vms = s.selectVMs(func(v *VM) bool { return matches(v, terms) })
	}
	p, next, ok := page(r, vms)
	if !ok {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {invalid cursor or page_size}")
		return
	}
	writeJSON(w, http.StatusOK, listResult(p, next, len(vms), true))
}

// parseQuery reads "a:b AND c:d" into a map, unescaping values.
func parseQuery(q string) (map[string]string, bool) {
	terms := map[string]string{}
	if strings.TrimSpace(q) == "" {
		return terms, true
	}
	for _, t := range splitAND(q) {
		k, v, ok := strings.Cut(strings.TrimSpace(t), ":")
		if !ok || k == "" {
			return nil, false
		}
		terms[k] = unescape(v)
	}
	return terms, true
}

// splitAND splits at " AND " outside quotes and escapes.
func splitAND(q string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(q); i++ {
		switch {
		case q[i] == '\\':
			i++
		case q[i] == '"':
			quoted = !quoted
		case !quoted && strings.HasPrefix(q[i:], " AND "):
			out = append(out, q[start:i])
			start = i + len(" AND ")
			i = start - 1
		}
	}
	return append(out, q[start:])
}

func unescape(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func matches(v *VM, terms map[string]string) bool {
	for k, want := range terms {
		switch k {
		case "resource_type":
		case "external_id":
			if v.ExternalID != want {
				return false
			}
		case "display_name":
			if v.DisplayName != want {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (s *Server) groupPut(w http.ResponseWriter, r *http.Request) {
	var g group
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&g); err != nil {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {request body is not valid JSON}")
		return
	}
	for _, c := range g.Expression {
		switch c.ResourceType {
		case "Condition", "ConjunctionOperator":
		default:
			writeAPIError(w, http.StatusBadRequest, 255, fmt.Sprintf("Field level validation errors: {unsupported expression %q}", c.ResourceType))
			return
		}
	}
	g.Domain, g.ID = r.PathValue("domain"), r.PathValue("group")
	if g.DisplayName == "" {
		g.DisplayName = g.ID
	}
	s.mu.Lock()
	s.groups[g.Domain+"/"+g.ID] = &g
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.groupJSON(&g))
}

func (s *Server) groupJSON(g *group) map[string]any {
	return map[string]any{
		"resource_type": "Group", "id": g.ID, "display_name": g.DisplayName,
		"path":       "/infra/domains/" + g.Domain + "/groups/" + g.ID,
		"expression": g.Expression,
	}
}

func (s *Server) lookupGroup(w http.ResponseWriter, r *http.Request) *group {
	s.mu.Lock()
	g := s.groups[r.PathValue("domain")+"/"+r.PathValue("group")]
	s.mu.Unlock()
	if g == nil {
		writeAPIError(w, http.StatusNotFound, 600, fmt.Sprintf("The requested object : %s could not be found. Object identifiers are case sensitive.", r.PathValue("group")))
	}
	return g
}

func (s *Server) groupGet(w http.ResponseWriter, r *http.Request) {
	if g := s.lookupGroup(w, r); g != nil {
		writeJSON(w, http.StatusOK, s.groupJSON(g))
	}
}

// groupMembers evaluates the group's criteria against the inventory now.
func (s *Server) groupMembers(w http.ResponseWriter, r *http.Request) {
	g := s.lookupGroup(w, r)
	if g == nil {
		return
	}
	vms := s.selectVMs(func(v *VM) bool { return member(v, g.Expression) })
	p, next, ok := page(r, vms)
	if !ok {
		writeAPIError(w, http.StatusBadRequest, 255, "Field level validation errors: {invalid cursor or page_size}")
		return
	}
	writeJSON(w, http.StatusOK, listResult(p, next, len(vms), true))
}

// member evaluates conditions joined by conjunctions, left to right (OR
// when none is given, as NSX requires one between conditions).
func member(v *VM, expr []condition) bool {
	result, have := false, false
	op := "OR"
	for _, c := range expr {
		if c.ResourceType == "ConjunctionOperator" {
			op = strings.ToUpper(c.ConjunctionOperator)
			continue
		}
		m := condMatches(v, c)
		switch {
		case !have:
			result, have = m, true
		case op == "AND":
			result = result && m
		default:
			result = result || m
		}
		op = "OR"
	}
	return result
}

func condMatches(v *VM, c condition) bool {
	if c.MemberType != "" && c.MemberType != "VirtualMachine" {
		return false
	}
	switch c.Key {
	case "Tag":
		scope, tag, hasScope := strings.Cut(c.Value, "|")
		if !hasScope {
			scope, tag = "", c.Value
		}
		for _, t := range v.Tags {
			if (scope == "" && hasScope || strings.EqualFold(t.Scope, scope)) && compare(c.Operator, t.Tag, tag) {
				return true
			}
		}
	case "Name":
		return compare(c.Operator, v.DisplayName, c.Value)
	}
	return false
}

// compare applies an NSX condition operator, case-insensitively as NSX
// matches.
func compare(op, have, want string) bool {
	h, w := strings.ToLower(have), strings.ToLower(want)
	switch strings.ToUpper(op) {
	case "", "EQUALS":
		return h == w
	case "NOTEQUALS":
		return h != w
	case "CONTAINS":
		return strings.Contains(h, w)
	case "STARTSWITH":
		return strings.HasPrefix(h, w)
	case "ENDSWITH":
		return strings.HasSuffix(h, w)
	}
	return false
}
