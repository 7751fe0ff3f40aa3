package tenantsyslog_test

import (
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/tenants"
	"github.com/vpipe/vpipe/sinks/tenantsyslog"
)

// scale picks a count: small under the race detector, larger otherwise.
func scale(normal, race int) int {
	if raceEnabled || testing.Short() {
		return race
	}
	return normal
}

// labelGen makes labels for one tenant, in the shapes VCD writes, with
// random characters where the public sources leave the rule open.
type labelGen struct {
	dataset string
	make    func(rng *mrand.Rand) string
	// nearMiss changes one character of the part that identifies the
	// tenant.
	nearMiss func(rng *mrand.Rand, label string) string
}

const hexDigits = "0123456789abcdef"

func randString(rng *mrand.Rand, n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// changeOne replaces one character of s[from:to] by another of alphabet.
func changeOne(rng *mrand.Rand, s string, from, to int, alphabet string) string {
	b := []byte(s)
	i := from + rng.IntN(to-from)
	for {
		c := alphabet[rng.IntN(len(alphabet))]
		if c != b[i] {
			b[i] = c
			return string(b)
		}
	}
}

// oracle decides, independently of the registry's maps, which tenants a
// label belongs to: a scan over every tenant's identifying parts.
type oracle struct {
	gatewayPrefixes [][]string // by tenant: 10-character parent prefixes
	dfwParts        [][]string // 27-character UUID parts (both readings)
	nsxv            [][]string // whole UUIDs
	verbatim        [][]string
}

func (o *oracle) owners(dataset, label string) []int {
	var out []int
	add := func(i int) {
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	for i := range o.verbatim {
		if slices.Contains(o.verbatim[i], label) {
			return []int{i}
		}
	}
	l := strings.ToLower(label)
	for i := range o.gatewayPrefixes {
		switch dataset {
		case pipeline.DatasetNSXGatewayFW:
			if len(l) >= 10 && len(l) <= 35 && slices.Contains(o.gatewayPrefixes[i], l[:10]) {
				add(i)
			}
		case pipeline.DatasetNSXDFW:
			if len(l) >= 27 && len(l) <= 47 && slices.Contains(o.dfwParts[i], l[len(l)-27:]) {
				add(i)
			}
		case pipeline.DatasetNSXVDFW:
			if slices.Contains(o.nsxv[i], l) {
				add(i)
			}
		}
	}
	return out
}

// TestRandomTenants: 50 tenants with gateway, DFW, NSX-V, verbatim and
// project labels, behind TCP (both framings, all formats), TLS (mTLS) and
// UDP receivers, some with two destinations; events with random labels of
// theirs, unknown labels and near-misses (one character off in the part
// that identifies the tenant). Every tenant receives exactly its events,
// none of another's, and the unresolved ones reach the catch-all.
func TestRandomTenants(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 7))
	n := scale(100_000, 8_000)
	const nTenants = 50
	addr := brokertest.Start(t, "firewall", "parked", "dlq")
	c := newCerts(t)

	var (
		ts    []tenants.Tenant
		recvs [][]*receiver
		gens  [][]labelGen
		or    = &oracle{}
	)
	for k := 0; k < nTenants; k++ {
		tn := tenants.Tenant{ID: fmt.Sprintf("tenant-%02d", k), Name: fmt.Sprintf("Tenant %d", k)}
		var g []labelGen
		var gw, dfw, nsxv, verb []string
		shapes := 1 + rng.IntN(2)
		for s := 0; s < shapes; s++ {
			switch (k + s) % 5 {
			case 0: // an Org VDC with a gateway
				vdc, gwID := randomUUID(rng), randomUUID(rng)
				name := fmt.Sprintf("gw%d-%s", k, randString(rng, 3, "abcxyz"))
				tn.OrgVDCs = append(tn.OrgVDCs, tenants.Object{Name: "vdc", ID: vdc})
				tn.EdgeGateways = append(tn.EdgeGateways, tenants.Gateway{Name: name, ID: gwID, Parent: vdc})
				gw = append(gw, vdc[:10])
				nsxv = append(nsxv, vdc)
				g = append(g, labelGen{
					dataset: pipeline.DatasetNSXGatewayFW,
					make: func(rng *mrand.Rand) string {
						if rng.IntN(2) == 0 {
							return tenants.GatewayLabel(vdc, name, gwID)
						}
						// Name and UUID parts are unconfirmed: any will do.
						return vdc[:10] + randString(rng, 10, "abcdefghij0123456789-")
					},
					nearMiss: func(rng *mrand.Rand, l string) string { return changeOne(rng, l, 0, 10, hexDigits+"-") },
				})
			case 1: // a Data Center Group
				grp := randomUUID(rng)
				name := fmt.Sprintf("grp%02d-%s", k, randString(rng, 4, "qrst"))
				tn.DCGroups = append(tn.DCGroups, tenants.Object{Name: name, ID: grp})
				gw = append(gw, grp[:10])
				dfw = append(dfw, grp[:27], grp[9:])
				g = append(g, labelGen{
					dataset: pipeline.DatasetNSXDFW,
					make: func(rng *mrand.Rand) string {
						first, last := tenants.DFWLabels(name, grp)
						switch rng.IntN(3) {
						case 0:
							return first
						case 1:
							return last
						}
						return randString(rng, rng.IntN(6), "xyz") + grp[9:] // a short or odd name part
					},
					nearMiss: func(rng *mrand.Rand, l string) string {
						return changeOne(rng, l, len(l)-27, len(l), hexDigits)
					},
				})
			case 2: // an NSX-V Org VDC
				vdc := randomUUID(rng)
				tn.NSXVOrgVDCs = append(tn.NSXVOrgVDCs, vdc)
				nsxv = append(nsxv, vdc)
				g = append(g, labelGen{
					dataset: pipeline.DatasetNSXVDFW,
					make: func(rng *mrand.Rand) string {
						if rng.IntN(4) == 0 {
							return strings.ToUpper(vdc)
						}
						return vdc
					},
					nearMiss: func(rng *mrand.Rand, l string) string { return changeOne(rng, l, 0, 8, hexDigits) },
				})
			case 3: // a label listed verbatim
				l := fmt.Sprintf("T%02d-%s", k, randString(rng, 8, "ABCDEFGH"))
				tn.Labels = append(tn.Labels, l)
				verb = append(verb, l)
				g = append(g, labelGen{
					dataset:  pipeline.DatasetNSXDFW,
					make:     func(*mrand.Rand) string { return l },
					nearMiss: func(rng *mrand.Rand, l string) string { return changeOne(rng, l, 4, len(l), "ABCDEFGH") },
				})
			case 4: // an NSX project short log id
				p := fmt.Sprintf("proj%02d%s", k, randString(rng, 4, "mnop"))
				tn.Projects = append(tn.Projects, p)
				verb = append(verb, p)
				g = append(g, labelGen{
					dataset:  pipeline.DatasetNSXGatewayFW,
					make:     func(*mrand.Rand) string { return p },
					nearMiss: func(rng *mrand.Rand, l string) string { return changeOne(rng, l, 6, len(l), "mnop") },
				})
			}
		}
		var rs []*receiver
		transport := "tcp"
		switch {
		case k%10 == 3:
			transport = "tls"
		case k%12 == 5:
			transport = "udp"
		}
		r := newReceiver(t, transport)
		if transport == "tls" {
			r.tlsConf = c.server
		}
		d := r.destination(c)
		switch k % 4 {
		case 1:
			d.Format, d.Framing = tenantsyslog.FormatJSON, tenantsyslog.FramingNewline
		case 2:
			d.Format, d.Framing = tenantsyslog.FormatRFC3164, tenantsyslog.FramingNewline
		}
		if transport == "udp" {
			d.Framing = ""
			d.RateLimit, d.Burst = 4000, 200 // loopback UDP drops bursts a receiver cannot absorb
		} else if transport == "tls" {
			d.Framing = tenantsyslog.FramingOctetCounting
		}
		r.expect(d)
		tn.Destinations = append(tn.Destinations, d)
		rs = append(rs, r)
		if k%9 == 0 { // a second destination
			r2 := newReceiver(t, "tcp")
			d2 := r2.destination(c)
			d2.Name = "second"
			tn.Destinations = append(tn.Destinations, d2)
			rs = append(rs, r2)
		}
		ts = append(ts, tn)
		recvs = append(recvs, rs)
		gens = append(gens, g)
		or.gatewayPrefixes = append(or.gatewayPrefixes, gw)
		or.dfwParts = append(or.dfwParts, dfw)
		or.nsxv = append(or.nsxv, nsxv)
		or.verbatim = append(or.verbatim, append(verb, tn.Projects...))
	}
	reg, probs := tenants.Build(ts)
	if len(probs) > 0 {
		t.Fatalf("registry: %v", probs)
	}
	catchAll := newReceiver(t, "tcp")
	catchAll.start()
	for _, rs := range recvs {
		for _, r := range rs {
			r.start()
		}
	}

	want := make([][]int, nTenants)
	var wantCatchAll []int
	events := make([]*pipeline.Event, 0, n)
	kinds := map[string]int{}
	for i := 0; i < n; i++ {
		k := rng.IntN(nTenants)
		g := gens[k][rng.IntN(len(gens[k]))]
		label, kind := g.make(rng), "tenant"
		switch p := rng.IntN(100); {
		case p < 5:
			label, kind = g.nearMiss(rng, label), "near-miss"
		case p < 8:
			label, kind = randomUUID(rng), "unknown"
		case p < 9:
			label, kind = "", "no-label"
		}
		owners := or.owners(g.dataset, label)
		switch {
		case kind == "near-miss" && len(owners) > 0:
			// The change made another valid label: not a near miss.
			kind = "tenant"
		case kind == "tenant" && (len(owners) != 1 || owners[0] != k):
			t.Fatalf("generated label %q (%s) for %s, but the oracle says %v", label, g.dataset, ts[k].ID, owners)
		}
		kinds[kind]++
		if len(owners) == 1 {
			want[owners[0]] = append(want[owners[0]], i)
		} else {
			wantCatchAll = append(wantCatchAll, i)
		}
		events = append(events, fwEvent(i, g.dataset, label))
	}
	t.Logf("%d events: %v", n, kinds)
	produce(t, addr, "firewall", events)

	cfg := sinkConfig(addr)
	cfg.Unknown = tenantsyslog.UnknownCatchAll
	cfg.CatchAll = []tenants.Destination{catchAll.destination(c)}
	cfg.DeliverTimeout = 2 * time.Second
	cfg.StallTimeout = time.Second // a TLS handshake under -race
	start := time.Now()
	f := startForward(t, stageConfig(addr, 1000), cfg, reg)

	check := func(name string, r *receiver, want []int) {
		t.Helper()
		waitFor(t, 120*time.Second, name+"'s events", func() bool { return r.distinct() >= len(want) })
		got := r.received()
		slices.Sort(got)
		got = slices.Compact(got)
		if !slices.Equal(got, want) {
			extra, missing := diff(got, want)
			t.Errorf("%s (%s): got %d events, want %d; not theirs: %v; missing: %v", name, r.transport, len(got), len(want), head(extra), head(missing))
		}
		if bad := r.badCount(); bad > 0 {
			t.Errorf("%s: %d messages without a seq", name, bad)
		}
	}
	for k, rs := range recvs {
		for _, r := range rs {
			check(ts[k].ID, r, want[k])
		}
	}
	check("catch-all", catchAll, wantCatchAll)
	elapsed := time.Since(start)
	dups := 0
	for _, rs := range recvs {
		for _, r := range rs {
			dups += r.count() - r.distinct()
		}
	}
	resent := f.metric(t, "vpipe_tenant_resent_total")
	replayed := f.metric(t, "vpipe_tenant_replayed_total")
	t.Logf("delivered in %s; duplicates %d, resent %v, parked %v, replayed %v", elapsed.Round(time.Millisecond), dups,
		resent, f.metric(t, "vpipe_tenant_parked_total"), replayed)
	if float64(dups) > resent+replayed {
		t.Errorf("%d duplicates, more than the %v events vpipe counted as possibly sent twice", dups, resent+replayed)
	}
	unresolved := f.metric(t, "vpipe_tenant_unresolved_total", "result", tenantsyslog.ResultCatchAll)
	if int(unresolved) != len(wantCatchAll) {
		t.Errorf("vpipe_tenant_unresolved_total{result=catch_all} = %v, want %d", unresolved, len(wantCatchAll))
	}
}

func diff(got, want []int) (extra, missing []int) {
	g, w := map[int]bool{}, map[int]bool{}
	for _, x := range got {
		g[x] = true
	}
	for _, x := range want {
		w[x] = true
		if !g[x] {
			missing = append(missing, x)
		}
	}
	for _, x := range got {
		if !w[x] {
			extra = append(extra, x)
		}
	}
	return extra, missing
}

func head(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// isolationRun is one run of the dead-and-slow scenario: ten tenants over
// TCP; with bad set, tenant 0's endpoint is down until the others have
// received half their events, and tenant 1's reads one message a second
// through small socket buffers. It returns how long the eight others took
// to receive all their events.
type isolationRun struct {
	perTenant int
	bad       bool
	batch     int
	// results
	healthy       time.Duration // from the first event delivered to the healthy tenants' last
	healthyCPU    time.Duration // the process's CPU time meanwhile
	deadParked    float64
	slowParked    float64
	deadDelivered int
	// The stage's Sink.Write calls until the healthy tenants had their
	// events: how many, their mean duration, and how many took over 64ms.
	writes    uint64
	writeMean time.Duration
	slowWrite uint64
}

func (run *isolationRun) do(tb testing.TB) {
	tb.Helper()
	const nTenants = 10
	// Closed at the end, not at the end of the test: a benchmark runs
	// several of these, each with a million events in memory.
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Topics: []string{"firewall", "parked", "dlq"}})
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	addr := b.Addr()
	rng := mrand.New(mrand.NewPCG(1, 2))
	var ts []tenants.Tenant
	var recvs []*receiver
	var labels []string
	for k := 0; k < nTenants; k++ {
		vdc := randomUUID(rng)
		r := newReceiver(tb, "tcp")
		d := r.destination(nil)
		if run.bad && k == 1 {
			r.rcvBuf = 4096
			r.pace.Store(int64(time.Second))
			d.SendBuffer = 4096
		}
		r.expect(d)
		if !run.bad || k != 0 {
			r.start()
		}
		ts = append(ts, tenants.Tenant{ID: fmt.Sprintf("t%d", k), OrgVDCs: []tenants.Object{{ID: vdc}}, Destinations: []tenants.Destination{d}})
		recvs = append(recvs, r)
		labels = append(labels, vdc[:10]+"gw-01"+"abcde")
	}
	reg, probs := tenants.Build(ts)
	if len(probs) > 0 {
		tb.Fatal(probs)
	}
	total := nTenants * run.perTenant
	events := make([]*pipeline.Event, 0, total)
	for i := 0; i < total; i++ {
		k := i % nTenants
		events = append(events, fwEvent(i, pipeline.DatasetNSXGatewayFW, labels[k]))
	}
	produce(tb, addr, "firewall", events)
	cfg := sinkConfig(addr)
	cfg.DeliverTimeout = time.Second
	cfg.StallTimeout = 100 * time.Millisecond
	f := startForward(tb, stageConfig(addr, run.batch), cfg, reg)
	defer f.stop()
	healthy := func(frac float64) bool {
		for k := 2; k < nTenants; k++ {
			if float64(recvs[k].distinct()) < frac*float64(run.perTenant) {
				return false
			}
		}
		return true
	}
	// The clock starts with the first event delivered, so that the group
	// join, whose time varies, is not part of the throughput.
	waitFor(tb, 120*time.Second, "a first event", func() bool {
		for k := 2; k < nTenants; k++ {
			if recvs[k].count() > 0 {
				return true
			}
		}
		return false
	})
	start, cpu0 := time.Now(), cpuTime()
	if run.bad {
		waitFor(tb, 120*time.Second, "half of the healthy tenants' events", func() bool { return healthy(0.5) })
		recvs[0].start()
	}
	waitFor(tb, 120*time.Second, "the healthy tenants' events", func() bool { return healthy(1) })
	run.healthy, run.healthyCPU = time.Since(start), cpuTime()-cpu0
	n, sum, slow := f.histogram(tb, "vpipe_stage_write_seconds", 0.064)
	run.writes, run.slowWrite = n, slow
	if n > 0 {
		run.writeMean = time.Duration(sum / float64(n) * float64(time.Second))
	}
	waitFor(tb, 120*time.Second, "the dead tenant's events after it came back", func() bool { return recvs[0].distinct() == run.perTenant })
	waitFor(tb, 60*time.Second, "the stage to confirm every batch", func() bool {
		return f.metric(tb, "vpipe_stage_delivered_total") >= float64(total)
	})
	run.deadDelivered = recvs[0].distinct()
	run.deadParked = f.metric(tb, "vpipe_tenant_parked_total", "tenant", "t0")
	run.slowParked = f.metric(tb, "vpipe_tenant_parked_total", "tenant", "t1")
	for k := 2; k < nTenants; k++ {
		if d := recvs[k].count() - recvs[k].distinct(); d > 0 {
			tb.Errorf("healthy tenant t%d received %d duplicates", k, d)
		}
	}
	// The dead tenant's events come in order: all were parked in order
	// and replayed in order.
	got := recvs[0].received()
	if !slices.IsSorted(got) {
		tb.Errorf("the dead tenant's events arrived out of order")
	}
}

// TestDeadAndSlowTenants: one tenant's endpoint is down for the first half
// of the run and another reads one message a second; the other tenants
// get all their events about as fast as in a run where both behave, the
// stage commits everything, and the dead one gets all its events, in
// order, once it is back. (BenchmarkIsolation measures the throughput
// ratio with larger counts.)
func TestDeadAndSlowTenants(t *testing.T) {
	per := scale(5000, 600)
	base := &isolationRun{perTenant: per, batch: 500}
	base.do(t)
	bad := &isolationRun{perTenant: per, batch: 500, bad: true}
	bad.do(t)
	t.Logf("healthy tenants: %s with all endpoints well, %s with one dead and one slow (%.0f%%); parked: dead %v, slow %v",
		base.healthy.Round(time.Millisecond), bad.healthy.Round(time.Millisecond),
		100*bad.healthy.Seconds()/base.healthy.Seconds(), bad.deadParked, bad.slowParked)
	if bad.deadParked < float64(per)/2 {
		t.Errorf("the dead tenant had %v events parked, want at least half of %d", bad.deadParked, per)
	}
	if bad.slowParked == 0 {
		t.Errorf("the slow tenant had nothing parked: the stage waited for it")
	}
	// Loose: timing on a shared machine (and under -race) is noisy; the
	// benchmark reports the ratio.
	if limit := 2*base.healthy + 2*time.Second; bad.healthy > limit {
		t.Errorf("healthy tenants took %s with a dead and a slow one, more than %s", bad.healthy, limit)
	}
}
