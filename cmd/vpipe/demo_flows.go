//go:build !nodemo

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vmware/govmomi/event"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline/tenants"
	vcosim "github.com/vpipe/vpipe/pipeline/velocloud/simulator"
	znsim "github.com/vpipe/vpipe/pipeline/znuny/simulator"
	"github.com/vpipe/vpipe/sinks/forensics"
	"github.com/vpipe/vpipe/sinks/ndjson"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
)

// demoResult is what one workflow did and where its result is.
type demoResult struct {
	Title  string   // "vCenter tag → NSX tag"
	Stage  string   // the role that did the work
	Did    []string // what the demo did, as a user or a system would
	Result []string // what vpipe did, read back from the simulators
	Took   time.Duration
	Err    error
	Hints  []string // the pipeline's warnings while it failed
}

// demoRun is the demo once everything runs: the simulators and the
// pipeline, and what the workflows need to find them.
type demoRun struct {
	sims    *demoSims
	p       *proc
	timeout time.Duration // per workflow
	// exited is closed when the pipeline stopped, serveErr why.
	exited   chan struct{}
	serveErr error
}

// wait polls cond until it holds, cond fails or d.timeout passes.
func (d *demoRun) wait(ctx context.Context, what string, cond func() (bool, error)) error {
	wctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted while waiting for %s", what)
			}
			return fmt.Errorf("timed out after %s waiting for %s", d.timeout, what)
		case <-d.exited:
			return fmt.Errorf("vpipe stopped while waiting for %s: %v", what, d.serveErr)
		case <-tick.C:
		}
	}
}

func (d *demoRun) nsxHas(uuid string, tag nsxsim.Tag) (bool, error) {
	vm, ok := d.sims.nsx.VM(uuid)
	if !ok {
		return false, fmt.Errorf("the NSX simulator lost VM %s", uuid)
	}
	return slices.Contains(vm.Tags, tag), nil
}

func (d *demoRun) nsxTags(uuid string) string {
	vm, _ := d.sims.nsx.VM(uuid)
	var s []string
	for _, t := range vm.Tags {
		s = append(s, t.Scope+"|"+t.Tag)
	}
	return strings.Join(s, ", ")
}

// tagSync attaches a vSphere tag to a VM in vcsim and posts the tagging
// event vCenter would log; tag-sync puts the mapped NSX tag on the VM.
func (d *demoRun) tagSync(ctx context.Context) (r demoResult) {
	r = demoResult{Title: "vCenter tag → NSX tag", Stage: "tag-sync"}
	vm := d.sims.vms[demoVMTagged]
	tm := tags.NewManager(d.sims.vc.REST)
	catID, err := tm.CreateCategory(ctx, &tags.Category{Name: "security-zone", Cardinality: "MULTIPLE", AssociableTypes: []string{"VirtualMachine"}})
	if err != nil {
		r.Err = fmt.Errorf("vcsim: create category: %w", err)
		return r
	}
	tagID, err := tm.CreateTag(ctx, &tags.Tag{Name: "pci", CategoryID: catID})
	if err != nil {
		r.Err = fmt.Errorf("vcsim: create tag: %w", err)
		return r
	}
	// The reconciliation at start would apply the tag too: let it finish
	// first, so that what follows shows the event's path.
	if r.Err = d.wait(ctx, "tag-sync's first reconciliation", func() (bool, error) {
		return d.metric("vpipe_tagsync_reconcile_last_success_timestamp_seconds", nil) > 0, nil
	}); r.Err != nil {
		return r
	}
	start := time.Now()
	if err := tm.AttachTag(ctx, tagID, vm.Ref); err != nil {
		r.Err = fmt.Errorf("vcsim: attach tag: %w", err)
		return r
	}
	// vcsim does not log tagging events itself; vCenter would log this
	// one (arguments Tag, Object, User; no entity).
	const user = `VSPHERE.LOCAL\administrator`
	ev := &types.EventEx{
		EventTypeId: "com.vmware.cis.tagging.attach", Severity: "info",
		Message:   "User " + user + " attached tag pci to object " + vm.Name,
		Arguments: []types.KeyAnyValue{{Key: "Tag", Value: "pci"}, {Key: "Object", Value: vm.Name}, {Key: "User", Value: user}},
	}
	if err := event.NewManager(d.sims.vc.VIM).PostEvent(ctx, ev); err != nil {
		r.Err = fmt.Errorf("vcsim: post the tagging event: %w", err)
		return r
	}
	r.Did = []string{
		fmt.Sprintf("attached vSphere tag pci (category security-zone) to VM %s in vcsim", vm.Name),
		"vCenter's event com.vmware.cis.tagging.attach → vcenter poller → vpipe.vcenter",
	}
	want := nsxsim.Tag{Scope: "zone", Tag: "pci"}
	r.Err = d.wait(ctx, "NSX tag zone|pci on "+vm.Name, func() (bool, error) { return d.nsxHas(vm.UUID, want) })
	r.Took = time.Since(start)
	r.Result = []string{
		fmt.Sprintf("NSX: VM %s (external_id %s) has tags %s", vm.Name, vm.UUID, d.nsxTags(vm.UUID)),
		fmt.Sprintf(`changed on the event: vpipe_tagsync_vm_syncs_total{cause="event",result="changed"} %g`,
			d.metric("vpipe_tagsync_vm_syncs_total", map[string]string{"cause": "event", "result": "changed"})),
	}
	return r
}

// metric sums the samples of the pipeline's metric name whose labels
// include want.
func (d *demoRun) metric(name string, want map[string]string) float64 {
	mfs, err := d.p.reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			n := 0
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
					n++
				}
			}
			if n < len(want) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// demoLine is one firewall line the demo sends and the tenant it is for.
type demoLine struct {
	tenant, label, line string
}

// firewallLines are NSX DFW and gateway firewall lines with the log labels
// VCD would write for each tenant's objects, as the registry computes them
// from what the VCD simulator says, and one with a label of no tenant.
func firewallLines(reg *tenants.Registry, ids []string) ([]demoLine, error) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	dfw := func(action, label string) string {
		return "<134>1 " + now + " esx01.demo.local FIREWALL-PKTLOG - - - 8b4a1980 INET match " + action +
			" 1044 IN 80 TCP 10.0.0.11/51000->10.0.0.12/443 S " + label
	}
	gw := func(action, label string) string {
		return "<181>1 " + now + ` edge01.demo.local NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd.firewallpkt" level="INFO"]` +
			" <1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match " + action + " 1005 OUT 60 TCP 10.1.1.10/45120->203.0.113.38/443 S " + label
	}
	var lines []demoLine
	for _, id := range ids {
		i := reg.Index(id)
		if i < 0 {
			return nil, fmt.Errorf("tenant %s is not in the registry", id)
		}
		n := len(lines)
		for _, l := range reg.Labels(i) {
			switch {
			case l.Ambiguous || strings.HasSuffix(l.Label, "…"):
			case l.Shape == tenants.ShapeGateway:
				lines = append(lines, demoLine{id, l.Label, gw("PASS", l.Label)}, demoLine{id, l.Label, gw("DROP", l.Label)})
			case l.Shape == tenants.ShapeDFWFirst27 || l.Shape == tenants.ShapeDFWLast27:
				lines = append(lines, demoLine{id, l.Label, dfw("PASS", l.Label)}, demoLine{id, l.Label, dfw("DROP", l.Label)})
			}
		}
		if len(lines) == n {
			return nil, fmt.Errorf("tenant %s has no gateway or DFW label (did VCD discovery work?)", id)
		}
	}
	const nobody = "ffffffff-fnobodfffff"
	lines = append(lines, demoLine{"provider", nobody, gw("DROP", nobody)})
	return lines, nil
}

// tenantForward sends firewall lines of two tenants (and one of nobody)
// to vpipe's syslog listener; each tenant's syslog server must receive
// exactly its lines, the provider's catch-all the rest.
func (d *demoRun) tenantForward(ctx context.Context, cfgTenants func(context.Context) (*tenants.Registry, error)) (r demoResult) {
	r = demoResult{Title: "firewall logs to each tenant", Stage: "tenant-forward"}
	reg, err := cfgTenants(ctx)
	if err != nil {
		r.Err = fmt.Errorf("tenant registry: %w", err)
		return r
	}
	ids := []string{"acme", "globex"}
	lines, err := firewallLines(reg, ids)
	if err != nil {
		r.Err = err
		return r
	}
	want := map[string]int{}
	labels := map[string][]string{}
	for _, l := range lines {
		want[l.tenant]++
		if !slices.Contains(labels[l.tenant], l.label) {
			labels[l.tenant] = append(labels[l.tenant], l.label)
		}
	}
	start := time.Now()
	addr := d.p.listeners[0].Addr().String()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		r.Err = err
		return r
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l.line + "\n")
	}
	_, err = c.Write(b.Bytes())
	c.Close()
	if err != nil {
		r.Err = err
		return r
	}
	r.Did = []string{fmt.Sprintf("sent %d NSX gateway and DFW firewall lines over syslog TCP to %s: %d with acme's labels, %d with globex's, %d with a label of no tenant",
		len(lines), addr, want["acme"], want["globex"], want["provider"])}
	for _, id := range ids {
		t := reg.Tenant(reg.Index(id))
		r.Did = append(r.Did, fmt.Sprintf("  %s labels (computed from VCD's objects): %s", t.ID, strings.Join(labels[id], ", ")))
	}
	r.Err = d.wait(ctx, "lines at every tenant's syslog server", func() (bool, error) {
		for who, n := range want {
			if got := len(d.sims.syslog[who].got()); got < n {
				return false, nil
			}
		}
		return true, nil
	})
	r.Took = time.Since(start)
	for _, who := range append(ids, "provider") {
		frames := d.sims.syslog[who].got()
		wrong := 0
		for _, f := range frames {
			own := slices.ContainsFunc(labels[who], func(l string) bool { return strings.Contains(f, l) })
			if who != "provider" && !strings.Contains(f, `tenant="`+who+`"`) {
				own = false
			}
			if !own {
				wrong++
			}
		}
		name := who + "'s syslog server"
		if who == "provider" {
			name = "the provider's catch-all"
		}
		res := fmt.Sprintf("%s %s received %s", name, d.sims.syslog[who].addr(), plural(len(frames), "line"))
		if wrong > 0 {
			res += fmt.Sprintf(", %d NOT ITS OWN", wrong)
			if r.Err == nil {
				r.Err = fmt.Errorf("%s received %d lines of another tenant", name, wrong)
			}
		} else if who != "provider" && len(frames) > 0 {
			res += fmt.Sprintf(`, all its own (RFC 5424, [vpipe@32473 tenant="%s" ...])`, who)
		}
		r.Result = append(r.Result, res)
	}
	if r.Err == nil && len(d.sims.syslog["provider"].got()) != want["provider"] {
		r.Err = fmt.Errorf("the catch-all received %d lines, want %d", len(d.sims.syslog["provider"].got()), want["provider"])
	}
	return r
}

// jitAccess locks a ticket naming a VM in the Znuny simulator, whose
// invoker posts the webhook to vpipe; jit-access tags the VM in NSX
// (the tag's group opens SSH). Unlocking removes the tag.
func (d *demoRun) jitAccess(ctx context.Context) (r demoResult) {
	r = demoResult{Title: "help desk ticket → just-in-time SSH", Stage: "jit-access"}
	vm := d.sims.vms[demoVMJIT]
	zn := d.sims.zn
	id, number := zn.CreateTicket(znsim.NewTicket{Title: "Patch " + vm.Name, DynamicFields: map[string]any{"JITAccessVM": vm.Name}})
	tag := nsxsim.Tag{Scope: "jit", Tag: "ssh"}
	start := time.Now()
	inv, err := zn.Lock(ctx, id, "agent.smith")
	if err == nil {
		err = invoked(inv)
	}
	if err != nil {
		r.Err = fmt.Errorf("znuny: lock ticket %s: %w", number, err)
		return r
	}
	r.Did = []string{fmt.Sprintf("agent.smith locked ticket %s (JITAccessVM: %s) in Znuny; its invoker posted TicketLockUpdate to vpipe (%d)", number, vm.Name, inv[0].Status)}
	if r.Err = d.wait(ctx, "NSX tag jit|ssh on "+vm.Name, func() (bool, error) { return d.nsxHas(vm.UUID, tag) }); r.Err != nil {
		r.Took = time.Since(start)
		return r
	}
	granted := time.Since(start)
	r.Result = []string{fmt.Sprintf("NSX: VM %s got tag jit|ssh %s after the lock: tags %s", vm.Name, granted.Round(time.Millisecond), d.nsxTags(vm.UUID))}
	unlock := time.Now()
	inv, err = zn.Unlock(ctx, id)
	if err == nil {
		err = invoked(inv)
	}
	if err != nil {
		r.Err = fmt.Errorf("znuny: unlock ticket %s: %w", number, err)
		return r
	}
	r.Did = append(r.Did, fmt.Sprintf("then unlocked it; the invoker posted again (%d)", inv[0].Status))
	r.Err = d.wait(ctx, "jit|ssh removed from "+vm.Name, func() (bool, error) {
		has, err := d.nsxHas(vm.UUID, tag)
		return !has, err
	})
	r.Took = time.Since(start)
	if r.Err == nil {
		r.Result = append(r.Result, fmt.Sprintf("NSX: tag removed %s after the unlock: tags %s", time.Since(unlock).Round(time.Millisecond), d.nsxTags(vm.UUID)))
	}
	return r
}

// invoked checks that the invoker's webhook reached vpipe.
func invoked(inv []znsim.Invocation) error {
	if len(inv) == 0 {
		return errors.New("the invoker posted nothing")
	}
	for _, i := range inv {
		if i.Status/100 != 2 {
			return fmt.Errorf("the invoker's webhook got %d %s%s", i.Status, strings.TrimSpace(i.Answer), i.Error)
		}
	}
	return nil
}

// forensics tags a VM in NSX the way an AV partner would, so that it joins
// the Quarantine group; the nsx-groups poller sees the join and forensics
// takes a snapshot and creates a port-mirroring session in vcsim.
func (d *demoRun) forensics(ctx context.Context) (r demoResult) {
	r = demoResult{Title: "quarantine → snapshot and port mirror", Stage: "nsx-groups + forensics"}
	vm := d.sims.vms[demoVMQuarantine]
	start := time.Now()
	if _, err := d.sims.nsxc.AddTags(ctx, vm.UUID, demoQuarantineTag); err != nil {
		r.Err = fmt.Errorf("nsx: tag %s: %w", vm.Name, err)
		return r
	}
	r.Did = []string{fmt.Sprintf("tagged VM %s av|infected through the NSX API, as an AV partner would: it joined group Quarantine", vm.Name)}
	v := forensics.NewVCenter(d.sims.vc.VIM)
	var snap *types.VirtualMachineSnapshotTree
	var sess []forensics.SwitchSession
	r.Err = d.wait(ctx, "snapshot and mirror session of "+vm.Name, func() (bool, error) {
		fv, err := v.FindVM(ctx, vm.UUID)
		if err != nil {
			return false, err
		}
		snap = nil
		for i := range fv.Snapshots {
			if forensics.IsVpipeSnapshot(&fv.Snapshots[i]) {
				snap = &fv.Snapshots[i]
			}
		}
		if sess, err = v.Sessions(ctx, vm.UUID); err != nil {
			return false, err
		}
		return snap != nil && len(sess) > 0, nil
	})
	r.Took = time.Since(start)
	if snap != nil {
		r.Result = append(r.Result, fmt.Sprintf("vcsim: snapshot %q of VM %s (%s)", snap.Name, vm.Name, snap.Snapshot.Value))
	}
	for _, s := range sess {
		ports := []string{}
		if p := s.Session.SourcePortReceived; p != nil {
			ports = p.PortKey
		}
		dest := ""
		if s.Session.DestinationPort != nil {
			dest = strings.Join(s.Session.DestinationPort.IpAddress, ",")
		}
		r.Result = append(r.Result, fmt.Sprintf("vcsim: port mirror session %q on switch %s: ports %s, both directions → %s (%s)",
			s.Session.Name, s.Switch, strings.Join(ports, ", "), dest, s.Session.EncapType))
	}
	return r
}

// demoVCOEvents are the VCO events the demo inserts, per enterprise id.
var demoVCOEvents = map[int64][]vcosim.Event{
	1: {
		{Event: "EDGE_UP", Category: "EDGE", Severity: "NOTICE", Message: "Edge b1-edge1 is up", EdgeName: "b1-edge1"},
		{Event: "LINK_DEAD", Category: "NETWORK", Severity: "WARNING", Message: "Link GE3 is dead", EdgeName: "b1-edge1"},
		{Event: "LINK_ALIVE", Category: "NETWORK", Severity: "NOTICE", Message: "Link GE3 is alive", EdgeName: "b1-edge1"},
	},
	2: {
		{Event: "USER_LOGIN", Category: "USER", Severity: "INFO", Message: "User noc@globex.example logged in", EnterpriseUsername: "noc@globex.example"},
		{Event: "EDGE_DOWN", Category: "EDGE", Severity: "ERROR", Message: "Edge b2-edge1 is down", EdgeName: "b2-edge1"},
	},
}

// velocloud inserts events for two enterprises into the VCO simulator;
// the VCO poller reads them and the ndjson stage writes one file per
// enterprise.
func (d *demoRun) velocloud(ctx context.Context, dir string) (r demoResult) {
	r = demoResult{Title: "VCO events → a file per enterprise", Stage: "velocloud + ndjson"}
	names := map[int64]string{}
	for _, e := range d.sims.vco.Enterprises() {
		names[e.ID] = e.Name
	}
	start := time.Now()
	want := map[string]int{}
	var did []string
	for _, id := range slices.Sorted(maps.Keys(demoVCOEvents)) {
		for k, e := range demoVCOEvents[id] {
			e.EventTime = start.Add(time.Duration(k-len(demoVCOEvents[id])) * time.Second)
			if _, err := d.sims.vco.Insert(id, e); err != nil {
				r.Err = fmt.Errorf("vco: %w", err)
				return r
			}
		}
		path := filepath.Join(dir, ndjson.Sanitize(names[id]), "events.json")
		want[path] = len(demoVCOEvents[id])
		did = append(did, fmt.Sprintf("%s for %s", plural(len(demoVCOEvents[id]), "event"), names[id]))
	}
	r.Did = []string{"the VCO simulator logged " + strings.Join(did, " and ") + " (event/getEnterpriseEvents)"}
	got := map[string]int{}
	r.Err = d.wait(ctx, "every event in its enterprise's file", func() (bool, error) {
		for path, n := range want {
			c, err := countLines(path)
			if err != nil {
				return false, err
			}
			if got[path] = c; c < n {
				return false, nil
			}
		}
		return true, nil
	})
	r.Took = time.Since(start)
	for _, path := range slices.Sorted(maps.Keys(want)) {
		r.Result = append(r.Result, fmt.Sprintf("%s: %s (the VCO's JSON objects)", path, plural(got[path], "line")))
		if r.Err == nil && got[path] != want[path] {
			r.Err = fmt.Errorf("%s has %d lines, want %d", path, got[path], want[path])
		}
	}
	return r
}

// countLines counts the lines of a file; a missing file has none.
func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

// plural is "1 line", "2 lines".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
