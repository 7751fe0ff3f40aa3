package simulator

import "github.com/vpipe/vpipe/pipeline/vcd"

// DemoToken is the provider API token of the Demo fixture.
const DemoToken = "vcdsim-provider-token"

// Demo returns a small fixture: two tenants with NSX-T Org VDCs, a Data
// Center Group and gateways owned by a VDC and by a group, one NSX-V Org
// VDC, the provider token DemoToken and a tenant token "vcdsim-acme-token"
// for org acme.
func Demo() *Fixture {
	ref := func(kind, uuid, name string) vcd.Ref {
		return vcd.Ref{ID: "urn:vcloud:" + kind + ":" + uuid, Name: name}
	}
	acme := ref("org", "0b5f6c2e-1d3a-4c8e-9f10-2a3b4c5d6e7f", "acme")
	globex := ref("org", "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "globex")
	acmeVDC := ref("vdc", "a93c9db9-7471-3192-8d09-a8f7eeda85f9", "acme-vdc1")
	acmeV := ref("vdc", "4e2a9f10-3b7c-4d5e-a6f7-8091a2b3c4d5", "acme-nsxv")
	globexVDC := ref("vdc", "c0ffee00-1234-4abc-9def-0123456789ab", "globex-vdc1")
	group := ref("vdcGroup", "5f0e8d7c-6b5a-4938-8271-605f4e3d2c1b", "acme-dcgroup")
	return &Fixture{
		Orgs: []vcd.Org{
			{ID: "urn:vcloud:org:a1b2c3d4-0000-4000-8000-000000000001", Name: "System", DisplayName: "System", IsEnabled: true},
			{ID: acme.ID, Name: acme.Name, DisplayName: "ACME Corporation", IsEnabled: true},
			{ID: globex.ID, Name: globex.Name, DisplayName: "Globex", IsEnabled: true},
		},
		VDCs: []vcd.VDC{
			{ID: acmeVDC.ID, Name: acmeVDC.Name, AllocationType: "Flex", Org: acme},
			{ID: acmeV.ID, Name: acmeV.Name, AllocationType: "AllocationPool", Org: acme},
			{ID: globexVDC.ID, Name: globexVDC.Name, AllocationType: "Flex", Org: globex},
		},
		VDCGroups: []vcd.VDCGroup{{
			ID: group.ID, OrgID: acme.ID, Name: group.Name, Type: "LOCAL", NetworkProviderType: "NSX_T", DFWEnabled: true, Status: "REALIZED",
			ParticipatingOrgVDCs: []vcd.ParticipantVDC{{VDCRef: acmeVDC, OrgRef: acme}},
		}},
		EdgeGateways: []vcd.EdgeGateway{
			{ID: "urn:vcloud:gateway:d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6", Name: "acme-edge1", OwnerRef: &acmeVDC, OrgVDC: &acmeVDC, OrgRef: acme},
			{ID: "urn:vcloud:gateway:e9f8a7b6-c5d4-4e3f-a2b1-c0d9e8f7a6b5", Name: "acme-grp-edge", OwnerRef: &group, OrgRef: acme},
			{ID: "urn:vcloud:gateway:f00dbabe-0001-4002-8003-000400050006", Name: "globex-gw", OwnerRef: &globexVDC, OrgVDC: &globexVDC, OrgRef: globex},
		},
		Tokens: map[string]string{DemoToken: "System", "vcdsim-acme-token": "acme"},
	}
}
