package tenantsyslog_test

import (
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/tenants"
)

func TestSmoke(t *testing.T) {
	addr := brokertest.Start(t, "firewall", "parked", "dlq")
	a, b := newReceiver(t, "tcp"), newReceiver(t, "tcp")
	a.start()
	vdc := "a93c9db9-7471-3192-8d09-a8f7eeda85f9"
	grp := "5f0e8d7c-6b5a-4938-8271-605f4e3d2c1b"
	reg, probs := tenants.Build([]tenants.Tenant{
		{ID: "acme", OrgVDCs: []tenants.Object{{Name: "v", ID: vdc}}, Destinations: []tenants.Destination{a.destination(nil)}},
		{ID: "globex", DCGroups: []tenants.Object{{Name: "group", ID: grp}}, Destinations: []tenants.Destination{b.destination(nil)}},
	})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	var evs []*pipeline.Event
	for i := 0; i < 200; i++ {
		if i%2 == 0 {
			evs = append(evs, fwEvent(i, pipeline.DatasetNSXGatewayFW, vdc[:10]+"edge1abcde"))
		} else {
			first, _ := tenants.DFWLabels("group", grp)
			evs = append(evs, fwEvent(i, pipeline.DatasetNSXDFW, first))
		}
	}
	produce(t, addr, "firewall", evs)
	f := startForward(t, stageConfig(addr, 50), sinkConfig(addr), reg)
	waitFor(t, 20*time.Second, "acme's events", func() bool { return a.distinct() == 100 })
	waitFor(t, 20*time.Second, "globex's events parked", func() bool { return f.metric(t, "vpipe_tenant_parked_total", "tenant", "globex") == 100 })
	b.start()
	waitFor(t, 20*time.Second, "globex's events replayed", func() bool { return b.distinct() == 100 })
	t.Logf("acme %d globex %d", a.count(), b.count())
}
