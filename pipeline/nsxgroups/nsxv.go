package nsxgroups

import (
	"context"

	"github.com/vpipe/vpipe/sinks/nsx"
)

// NSXVLister lists the members of NSX-V security groups through c (an
// NSX-V client): Group.ID is the security group's objectId
// ("securitygroup-10"), read with GET
// /api/2.0/services/securitygroup/{id}/translation/virtualmachines. NSX-V
// names members by vCenter managed object id, so Member.Ref is set and
// Member.ExternalID is not.
func NSXVLister(c *nsx.Client) Lister {
	return ListerFunc(func(ctx context.Context, group string) ([]Member, error) {
		vms, err := c.SecurityGroupVMs(ctx, group)
		if err != nil {
			return nil, err
		}
		out := make([]Member, len(vms))
		for i, vm := range vms {
			out[i] = Member{Ref: vm.ID, Name: vm.Name}
		}
		return out, nil
	})
}
