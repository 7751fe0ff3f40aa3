package simulator

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
)

// NSX-V security groups, reduced to what vpipe reads: effective membership
// from GET /api/2.0/services/securitygroup/{id}/translation/virtualmachines
// (vmware-archive/nsxraml nsxvapi.raml; the <vmnodes> element names as
// PowerNSX reads them). Membership is static members (by managed object
// id) plus the VMs carrying any of the group's security tags (the dynamic
// "VM has security tag" criterion), minus static excludes.

// SecurityGroup is an NSX-V security group.
type SecurityGroup struct {
	ID   string // objectId, e.g. "securitygroup-10"
	Name string
	// Include and Exclude are static members: VM managed object ids.
	Include, Exclude []string
	// Tags are security tag names: a VM with any of them is a member.
	Tags []string
}

type xmlVMNode struct {
	VMID   string `xml:"vmId"`
	VMName string `xml:"vmName"`
}

type xmlVMNodes struct {
	XMLName xml.Name    `xml:"vmnodes"`
	Nodes   []xmlVMNode `xml:"vmnode"`
}

// AddSecurityGroup adds g, or replaces the group with its ID. Its tags are
// created as security tags when missing.
func (s *Server) AddSecurityGroup(g SecurityGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.Include, g.Exclude, g.Tags = slices.Clone(g.Include), slices.Clone(g.Exclude), slices.Clone(g.Tags)
	if s.secgroups == nil {
		s.secgroups = map[string]*SecurityGroup{}
	}
	s.secgroups[g.ID] = &g
	for _, name := range g.Tags {
		s.secTagByNameLocked(name, true)
	}
}

// SetSecurityTags replaces the NSX-V security tags on the VM with external
// id or managed object id id; false when there is no such VM.
func (s *Server) SetSecurityTags(id string, names []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vmByIDLocked(id)
	if v == nil {
		return false
	}
	v.SecurityTags = slices.Clone(names)
	for _, name := range names {
		s.secTagByNameLocked(name, true)
	}
	return true
}

func (s *Server) securityGroupMembersLocked(g *SecurityGroup) []*VM {
	var out []*VM
	for _, id := range s.order {
		v := s.vms[id]
		if slices.Contains(g.Exclude, v.MoRef) {
			continue
		}
		in := slices.Contains(g.Include, v.MoRef)
		for _, t := range v.SecurityTags {
			in = in || slices.Contains(g.Tags, t)
		}
		if in {
			out = append(out, v)
		}
	}
	return out
}

// vSecurityGroupVMs is GET /api/2.0/services/securitygroup/{id}/translation/virtualmachines.
func (s *Server) vSecurityGroupVMs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	g := s.secgroups[r.PathValue("id")]
	if g == nil {
		s.mu.Unlock()
		writeXMLError(w, http.StatusNotFound, 202, fmt.Sprintf("The requested object : %s could not be found. Object identifiers are case sensitive.", r.PathValue("id")))
		return
	}
	var out xmlVMNodes
	for _, v := range s.securityGroupMembersLocked(g) {
		out.Nodes = append(out.Nodes, xmlVMNode{VMID: v.MoRef, VMName: v.DisplayName})
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, out)
}
