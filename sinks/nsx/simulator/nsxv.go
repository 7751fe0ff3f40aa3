package simulator

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

// The NSX-V security tag API (vmware-archive/nsxraml nsxvapi.raml; element
// names as sky-uk/gonsx's tests show them, apis.md §2).

type xmlTag struct {
	XMLName        xml.Name `xml:"securityTag"`
	ObjectID       string   `xml:"objectId"`
	ObjectTypeName string   `xml:"objectTypeName"`
	VsmUUID        string   `xml:"vsmUuid"`
	Revision       int      `xml:"revision"`
	TypeName       string   `xml:"type>typeName"`
	Name           string   `xml:"name"`
	Description    string   `xml:"description"`
	IsUniversal    bool     `xml:"isUniversal"`
	SystemResource bool     `xml:"systemResource"`
	VMCount        int      `xml:"vmCount"`
}

type xmlTags struct {
	XMLName xml.Name `xml:"securityTags"`
	Tags    []xmlTag `xml:"securityTag"`
}

type xmlBasicInfo struct {
	ObjectID string `xml:"objectId"`
	Name     string `xml:"name"`
}

type xmlBasicInfoList struct {
	XMLName xml.Name       `xml:"basicinfolist"`
	Items   []xmlBasicInfo `xml:"basicinfo"`
}

type xmlAttachedVM struct {
	ObjectID     string `xml:"objectId"`
	Name         string `xml:"name"`
	InstanceUUID string `xml:"instanceUUID"`
	BiosUUID     string `xml:"biosUUID"`
}

type xmlAttachedVMs struct {
	XMLName xml.Name        `xml:"attachedVMList"`
	VMs     []xmlAttachedVM `xml:"attachedVM"`
}

const vsmUUID = "4220D5C6-5E4E-4E6A-9F3B-5C1A3D2B7E10"

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(v)
}

// writeXMLError writes NSX-V's error body.
func writeXMLError(w http.ResponseWriter, status, code int, details string) {
	writeXML(w, status, struct {
		XMLName    xml.Name `xml:"error"`
		Details    string   `xml:"details"`
		ErrorCode  int      `xml:"errorCode"`
		ModuleName string   `xml:"moduleName"`
	}{Details: details, ErrorCode: code, ModuleName: "core-services"})
}

// secTagByNameLocked returns the tag named name, creating it with create.
func (s *Server) secTagByNameLocked(name string, create bool) *secTag {
	for _, t := range s.sectags {
		if t.Name == name {
			return t
		}
	}
	if !create {
		return nil
	}
	s.tagSeq++
	t := &secTag{ID: "securitytag-" + strconv.Itoa(s.tagSeq), Name: name}
	s.sectags[t.ID] = t
	return t
}

// vmByIDLocked finds a VM by instance UUID or MoRef (NSX-V takes either as
// vmId).
func (s *Server) vmByIDLocked(id string) *VM {
	if v, ok := s.vms[id]; ok {
		return v
	}
	for _, v := range s.vms {
		if v.MoRef == id {
			return v
		}
	}
	return nil
}

func (s *Server) tagXMLLocked(t *secTag) xmlTag {
	n := 0
	for _, v := range s.vms {
		if slices.Contains(v.SecurityTags, t.Name) {
			n++
		}
	}
	return xmlTag{ObjectID: t.ID, ObjectTypeName: "SecurityTag", VsmUUID: vsmUUID, Revision: 1,
		TypeName: "SecurityTag", Name: t.Name, Description: t.Description, IsUniversal: t.Universal, VMCount: n}
}

func (s *Server) sortedTagsLocked() []*secTag {
	out := make([]*secTag, 0, len(s.sectags))
	for _, t := range s.sectags {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *secTag) int {
		ai, _ := strconv.Atoi(a.ID[len("securitytag-"):])
		bi, _ := strconv.Atoi(b.ID[len("securitytag-"):])
		return ai - bi
	})
	return out
}

// vList is GET /api/2.0/services/securitytags/tag.
func (s *Server) vList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var out xmlTags
	for _, t := range s.sortedTagsLocked() {
		out.Tags = append(out.Tags, s.tagXMLLocked(t))
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, out)
}

// vCreate is POST /api/2.0/services/securitytags/tag: 201 with the new id
// as text; 400 errorCode 210 when the name exists.
func (s *Server) vCreate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		XMLName     xml.Name `xml:"securityTag"`
		Name        string   `xml:"name"`
		Description string   `xml:"description"`
		IsUniversal bool     `xml:"isUniversal"`
	}
	if err := xml.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil || in.Name == "" {
		writeXMLError(w, http.StatusBadRequest, 100, "Invalid securityTag body: a name is required.")
		return
	}
	s.mu.Lock()
	if s.secTagByNameLocked(in.Name, false) != nil {
		s.mu.Unlock()
		writeXMLError(w, http.StatusBadRequest, 210, fmt.Sprintf("Security tag with name %s already exists.", in.Name))
		return
	}
	t := s.secTagByNameLocked(in.Name, true)
	t.Description, t.Universal = in.Description, in.IsUniversal
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Location", "/api/2.0/services/securitytags/tag/"+t.ID)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, t.ID)
}

func (s *Server) lookupSecTag(w http.ResponseWriter, r *http.Request) *secTag {
	t := s.sectags[r.PathValue("tag")]
	if t == nil {
		writeXMLError(w, http.StatusNotFound, 202, fmt.Sprintf("The requested object : %s could not be found. Object identifiers are case sensitive.", r.PathValue("tag")))
	}
	return t
}

// vDelete is DELETE /api/2.0/services/securitytags/tag/{tag}.
func (s *Server) vDelete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookupSecTag(w, r)
	if t == nil {
		return
	}
	delete(s.sectags, t.ID)
	for _, v := range s.vms {
		v.SecurityTags = slices.DeleteFunc(v.SecurityTags, func(n string) bool { return n == t.Name })
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) taggedLocked(t *secTag) []*VM {
	var out []*VM
	for _, id := range s.order {
		if v := s.vms[id]; slices.Contains(v.SecurityTags, t.Name) {
			out = append(out, v)
		}
	}
	return out
}

// vTagVMs is GET .../tag/{tag}/vm: <basicinfolist>.
func (s *Server) vTagVMs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	t := s.lookupSecTag(w, r)
	if t == nil {
		s.mu.Unlock()
		return
	}
	var out xmlBasicInfoList
	for _, v := range s.taggedLocked(t) {
		out.Items = append(out.Items, xmlBasicInfo{ObjectID: v.MoRef, Name: v.DisplayName})
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, out)
}

// vTagVMDetail is GET .../tag/{tag}/vmDetail: <attachedVMList>.
func (s *Server) vTagVMDetail(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	t := s.lookupSecTag(w, r)
	if t == nil {
		s.mu.Unlock()
		return
	}
	var out xmlAttachedVMs
	for _, v := range s.taggedLocked(t) {
		out.VMs = append(out.VMs, xmlAttachedVM{ObjectID: v.MoRef, Name: v.DisplayName, InstanceUUID: v.ExternalID, BiosUUID: v.BiosUUID})
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, out)
}

func (s *Server) attach(w http.ResponseWriter, r *http.Request, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.lookupSecTag(w, r)
	if t == nil {
		return
	}
	v := s.vmByIDLocked(r.PathValue("vm"))
	if v == nil {
		writeXMLError(w, http.StatusNotFound, 202, fmt.Sprintf("The requested object : %s could not be found. Object identifiers are case sensitive.", r.PathValue("vm")))
		return
	}
	has := slices.Contains(v.SecurityTags, t.Name)
	switch {
	case on && !has:
		v.SecurityTags = append(v.SecurityTags, t.Name)
	case !on && has:
		v.SecurityTags = slices.DeleteFunc(v.SecurityTags, func(n string) bool { return n == t.Name })
	}
	s.stats.TagWrites++
	w.WriteHeader(http.StatusOK)
}

// vAttach is PUT .../tag/{tag}/vm/{vm}.
func (s *Server) vAttach(w http.ResponseWriter, r *http.Request) { s.attach(w, r, true) }

// vDetach is DELETE .../tag/{tag}/vm/{vm}.
func (s *Server) vDetach(w http.ResponseWriter, r *http.Request) { s.attach(w, r, false) }

// vVMTags is GET /api/2.0/services/securitytags/vm/{vm}: the tags on a VM.
func (s *Server) vVMTags(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	v := s.vmByIDLocked(r.PathValue("vm"))
	if v == nil {
		s.mu.Unlock()
		writeXMLError(w, http.StatusNotFound, 202, fmt.Sprintf("The requested object : %s could not be found. Object identifiers are case sensitive.", r.PathValue("vm")))
		return
	}
	var out xmlTags
	for _, name := range v.SecurityTags {
		if t := s.secTagByNameLocked(name, false); t != nil {
			out.Tags = append(out.Tags, s.tagXMLLocked(t))
		}
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, out)
}
