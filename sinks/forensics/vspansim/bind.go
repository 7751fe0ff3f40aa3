package vspansim

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// BindNICs replaces the network adapters of the VM vm by one vmxnet3
// adapter per port key in ports (none: the VM is left without any), each connected to that port of the
// distributed portgroup named portgroup, as vCenter reports a vNIC on a
// distributed switch (VirtualEthernetCardDistributedVirtualPortBackingInfo
// with switch UUID, portgroup key and port key). vcsim connects its VMs to
// portgroups without binding ports, and a VSPAN session mirrors ports, so
// a forensics test or demo binds them first. It goes through the vSphere
// API on c (ReconfigVM_Task), so the model stays as a client made it; r
// only finds the portgroup.
func BindNICs(ctx context.Context, c *vim25.Client, r *simulator.Registry, vm types.ManagedObjectReference, portgroup string, ports ...string) error {
	var swUUID, pgKey string
	for _, e := range r.All("DistributedVirtualPortgroup") {
		if pg := e.(*simulator.DistributedVirtualPortgroup); pg.Name == portgroup {
			sw, ok := r.Get(*pg.Config.DistributedVirtualSwitch).(*simulator.DistributedVirtualSwitch)
			if !ok {
				return fmt.Errorf("portgroup %s: no switch", portgroup)
			}
			swUUID, pgKey = sw.Uuid, pg.Key
		}
	}
	if pgKey == "" {
		return fmt.Errorf("no distributed portgroup %s", portgroup)
	}
	v := object.NewVirtualMachine(c, vm)
	devs, err := v.Device(ctx)
	if err != nil {
		return err
	}
	if nics := devs.SelectByType((*types.VirtualEthernetCard)(nil)); len(nics) > 0 {
		if err := v.RemoveDevice(ctx, false, nics...); err != nil {
			return err
		}
	}
	if len(ports) == 0 {
		return nil
	}
	add := make([]types.BaseVirtualDevice, 0, len(ports))
	for _, p := range ports {
		add = append(add, &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
			VirtualDevice: types.VirtualDevice{Backing: &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
				Port: types.DistributedVirtualSwitchPortConnection{SwitchUuid: swUUID, PortgroupKey: pgKey, PortKey: p},
			}},
		}}})
	}
	return v.AddDevice(ctx, add...)
}
