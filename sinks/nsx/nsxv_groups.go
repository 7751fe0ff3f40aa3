package nsx

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
)

// NSX-V security groups (vmware-archive/nsxraml nsxvapi.raml,
// /2.0/services/securitygroup/{objectId}/translation/virtualmachines:
// "Retrieve effective membership of a security group in terms of virtual
// machines", static include + dynamic - static exclude). The answer's
// element names (<vmnodes><vmnode><vmId>vm-N</vmId><vmName>…</vmName>)
// are those PowerNSX reads ($x.vmnodes.vmnode) and a Ruby NSX-V client's
// spec stubs; the raml has no example body for this call.
const nsxvSecurityGroups = "/api/2.0/services/securitygroup"

// SecurityGroupVM is one VM of an NSX-V security group's effective
// membership.
type SecurityGroupVM struct {
	// ID is the VM's vCenter managed object id, "vm-42".
	ID   string `xml:"vmId"`
	Name string `xml:"vmName"`
}

// vmNodes is the translation/virtualmachines answer.
type vmNodes struct {
	XMLName xml.Name          `xml:"vmnodes"`
	VMs     []SecurityGroupVM `xml:"vmnode"`
}

// SecurityGroupVMs returns the VMs that are members of NSX-V security
// group id ("securitygroup-10") now, as NSX evaluated its static and
// dynamic membership
// (GET /api/2.0/services/securitygroup/{id}/translation/virtualmachines).
// NSX-V only: the Policy API has GroupVMs.
func (c *Client) SecurityGroupVMs(ctx context.Context, id string) ([]SecurityGroupVM, error) {
	if c.cfg.API != APINSXV {
		return nil, fmt.Errorf("security group members: %w", ErrUnsupported)
	}
	path := nsxvSecurityGroups + "/" + url.PathEscape(id) + "/translation/virtualmachines"
	body, err := c.do(ctx, request{op: opGroup, method: http.MethodGet, path: path, accept: "application/xml"})
	if err != nil {
		return nil, err
	}
	var l vmNodes
	if err := xml.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("nsx GET %s: decode answer: %w", path, err)
	}
	return l.VMs, nil
}
