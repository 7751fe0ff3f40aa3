package tagsync_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/vpipe/vpipe/pipeline/vcenter/vcentertest"
	"github.com/vpipe/vpipe/sinks/nsx"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
	"github.com/vpipe/vpipe/sinks/tagsync"
)

// BenchmarkReconcile10k reconciles 10,000 vcsim VMs against the NSX
// simulator (HTTPS, session auth), two ways: every VM needs a tag added
// (NSX has only an unmanaged tag), and everything already agrees. Each
// VM carries one of ten tags of a synced category. Setup (vcsim's 10,000
// VMs, their tags) is not timed.
func BenchmarkReconcile10k(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("VPIPE_BENCH_VMS")); err == nil && v > 0 {
		n = v // a smaller inventory, for profiling
	}
	model := simulator.VPX()
	model.Host, model.Cluster, model.ClusterHost, model.Machine = 0, 1, 1, n
	model.Portgroup, model.Datastore = 0, 1
	model.Autostart = false
	sim := vcentertest.Start(b, model)
	vc := sim.Dial(b)
	ctx := context.Background()

	cv, err := view.NewManager(vc.VIM).CreateContainerView(ctx, vc.VIM.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		b.Fatal(err)
	}
	var vms []mo.VirtualMachine
	if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.instanceUuid"}, &vms); err != nil {
		b.Fatal(err)
	}
	if len(vms) != n {
		b.Fatalf("%d VMs in vcsim; want %d", len(vms), n)
	}
	tm := tags.NewManager(vc.REST)
	const ntags = 10
	byTag := make([][]mo.Reference, ntags)
	for i, vm := range vms {
		byTag[i%ntags] = append(byTag[i%ntags], vm.Self)
	}
	for i := range ntags {
		id := vcentertest.Tagging(b, vc, "security", fmt.Sprintf("zone-%d", i))
		if err := tm.AttachTagToMultipleObjects(ctx, id, byTag[i]); err != nil {
			b.Fatal(err)
		}
	}

	ns := nsxsim.New(nsxsim.Options{Users: map[string]string{nsxUser: nsxPass}})
	srv := httptest.NewUnstartedServer(ns)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	b.Cleanup(srv.Close)
	reset := func() {
		for _, vm := range vms {
			ns.AddVM(nsxsim.VM{ExternalID: vm.Config.InstanceUuid, DisplayName: vm.Name, MoRef: vm.Self.Value, Tags: []nsxsim.Tag{owner}})
		}
	}
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = nsx.DefaultMaxConcurrency // as nsx.New sets its own transport
	nc, err := nsx.New(nsx.Config{URL: srv.URL, Auth: nsx.AuthSession, Username: nsxUser, Password: nsxPass,
		Transport: tr}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	sink, err := tagsync.New(tagsync.Config{VCenter: "vc1", Categories: map[string]string{"security": "sec"}, ReconcileInterval: -1},
		tagsync.Deps{VCenter: sim.Conn, NSX: nc})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()

	for _, bc := range []struct {
		name    string
		changed int
	}{{"all-change", n}, {"in-sync", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				reset()
				if bc.changed == 0 {
					if _, err := sink.Reconcile(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				start := time.Now()
				rep, err := sink.Reconcile(ctx)
				total += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if rep.VMs != n || rep.Changed != bc.changed || rep.Failed != 0 {
					b.Fatalf("report %+v", rep)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/reconcile")
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "VMs/s")
		})
	}
}
