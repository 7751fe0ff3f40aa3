package nsxgroups

import (
	"context"
	"fmt"
	"strings"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/sinks/nsx"
)

// PolicyPath returns the Policy API path of group id in domain:
// "/infra/domains/<domain>/groups/<id>", the Group.ID of a Policy group.
func PolicyPath(domain, id string) string {
	return "/infra/domains/" + domain + "/groups/" + id
}

// ParsePolicyPath splits a Policy API group path into domain and id.
func ParsePolicyPath(path string) (domain, id string, err error) {
	rest, ok := strings.CutPrefix(path, "/infra/domains/")
	if ok {
		domain, id, ok = strings.Cut(rest, "/groups/")
	}
	if !ok || domain == "" || id == "" || strings.Contains(id, "/") {
		return "", "", fmt.Errorf("%q is not a policy group path (/infra/domains/<domain>/groups/<id>)", path)
	}
	return domain, id, nil
}

// PolicyLister lists the members of Policy API groups (NSX-T, NSX 4.x,
// VMware Cloud on AWS) through c: Group.ID is the group's path (see
// PolicyPath), read with GET
// /policy/api/v1/infra/domains/{domain}/groups/{id}/members/virtual-machines.
func PolicyLister(c *nsx.Client) Lister {
	return ListerFunc(func(ctx context.Context, group string) ([]Member, error) {
		domain, id, err := ParsePolicyPath(group)
		if err != nil {
			return nil, pipeline.Permanent(err)
		}
		vms, err := c.GroupVMs(ctx, domain, id)
		if err != nil {
			return nil, err
		}
		out := make([]Member, len(vms))
		for i, vm := range vms {
			out[i] = Member{ExternalID: vm.ExternalID, Name: vm.DisplayName}
		}
		return out, nil
	})
}
