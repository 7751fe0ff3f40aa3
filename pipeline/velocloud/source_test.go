package velocloud_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/metrictest"
	"github.com/vpipe/vpipe/pipeline/velocloud"
	"github.com/vpipe/vpipe/pipeline/velocloud/simulator"
)

// checkOnce checks that evs hold every event of the simulator exactly
// once, keyed and labelled by enterprise, and, per enterprise, in
// eventTime order except for late events.
func checkOnce(t *testing.T, sim *simulator.Server, in *inserter, evs []vcoEvent) {
	t.Helper()
	names := map[int64]string{}
	want := map[[2]int64]bool{}
	for _, ent := range sim.Enterprises() {
		names[ent.ID] = ent.Name
		for _, e := range sim.Events(ent.ID) {
			want[[2]int64{ent.ID, e.ID}] = true
		}
	}
	got := map[[2]int64]int{}
	last := map[int64]vcoEvent{}
	for _, e := range evs {
		k := [2]int64{e.Enterprise, e.VCOID}
		got[k]++
		if got[k] == 2 {
			t.Errorf("enterprise %d event %d published twice", e.Enterprise, e.VCOID)
		}
		if !want[k] {
			t.Errorf("enterprise %d event %d was never in the VCO", e.Enterprise, e.VCOID)
		}
		if id := strconv.FormatInt(e.Enterprise, 10); e.Key != id || e.OrgID != id || e.OrgName != names[e.Enterprise] {
			t.Errorf("event %d: key %q, organization %q/%q; want %q, %q", e.VCOID, e.Key, e.OrgID, e.OrgName, id, names[e.Enterprise])
		}
		if e.Error != "" {
			t.Errorf("event %d: error %s", e.VCOID, e.Error)
		}
		if in != nil && in.isLate(e.VCOID) {
			continue
		}
		if p, ok := last[e.Enterprise]; ok && (e.Time.Before(p.Time) || e.Time.Equal(p.Time) && e.VCOID < p.VCOID) {
			t.Errorf("enterprise %d: event %d (%s) after event %d (%s)", e.Enterprise, e.VCOID, e.Time, p.VCOID, p.Time)
		}
		last[e.Enterprise] = e
	}
	for k := range want {
		if got[k] == 0 {
			t.Errorf("enterprise %d event %d missing", k[0], k[1])
		}
	}
}

// TestSourceOverTime: three enterprises, events arriving over time and
// some whose eventTime is older than the last poll: Kafka gets each
// exactly once, keyed by enterprise, in order.
func TestSourceOverTime(t *testing.T) {
	sim, url := startSim(t, simConfig())
	addr := startBroker(t)
	h := newHarness(t, addr, "vpipe.")
	in := newInserter(sim)
	stop := runSource(t, sourceConfig("vco1", url), h.deps(t))
	tick := time.NewTicker(20 * time.Millisecond)
	for range 60 {
		<-tick.C
		in.insert(t, 5, time.Second) // late by 1s: ten polls ago
	}
	tick.Stop()
	n := total(sim)
	waitFor(t, 30*time.Second, "every event in kafka", func() bool { return countTopic(t, addr, "vpipe.velocloud") >= n })
	stop()
	evs := readEvents(t, addr, "vpipe.velocloud", n, 10*time.Second)
	if len(evs) != n {
		t.Errorf("%d records, want %d", len(evs), n)
	}
	checkOnce(t, sim, in, evs)
	for _, ent := range sim.Enterprises() {
		e := strconv.FormatInt(ent.ID, 10)
		if got := metrictest.Sum(t, h.reg, "vpipe_velocloud_events_total", "enterprise", e); int(got) != len(sim.Events(ent.ID)) {
			t.Errorf("enterprise %s: events_total %v, want %d", e, got, len(sim.Events(ent.ID)))
		}
		if metrictest.Sum(t, h.reg, "vpipe_velocloud_late_events_total", "enterprise", e) == 0 {
			t.Errorf("enterprise %s: no late events counted", e)
		}
		if metrictest.Sum(t, h.reg, "vpipe_velocloud_last_success_timestamp_seconds", "enterprise", e) == 0 {
			t.Errorf("enterprise %s: no last success", e)
		}
		if lag := metrictest.Sum(t, h.reg, "vpipe_velocloud_lag_seconds", "enterprise", e); lag <= 0 || lag > 30 {
			t.Errorf("enterprise %s: lag %v", e, lag)
		}
	}
	if metrictest.Sum(t, h.reg, "vpipe_velocloud_duplicates_total") == 0 {
		t.Error("the overlapping windows found no duplicates to skip")
	}
}

// TestSourceRestart: the source stops and starts again (a new process
// reading the checkpoints) while events keep arriving: nothing is lost
// and nothing is published twice.
func TestSourceRestart(t *testing.T) {
	sim, url := startSim(t, simConfig())
	addr := startBroker(t)
	h := newHarness(t, addr, "vpipe.")
	in := newInserter(sim)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for run := range 3 {
		stop := runSource(t, sourceConfig("vco1", url), h.deps(t))
		for range 15 {
			<-tick.C
			in.insert(t, 4, time.Second)
		}
		if run < 2 {
			stop() // events keep arriving while it is down
			for range 5 {
				<-tick.C
				in.insert(t, 4, time.Second)
			}
			continue
		}
		n := total(sim)
		waitFor(t, 30*time.Second, "every event in kafka", func() bool { return countTopic(t, addr, "vpipe.velocloud") >= n })
		stop()
	}
	n := total(sim)
	evs := readEvents(t, addr, "vpipe.velocloud", n, 10*time.Second)
	if len(evs) != n {
		t.Errorf("%d records, want %d", len(evs), n)
	}
	checkOnce(t, sim, in, evs)
}

// TestSourceErrors: each VCO failure is retried or reported, never a
// silent gap; the events all arrive once.
func TestSourceErrors(t *testing.T) {
	addr := startBroker(t)
	tests := []struct {
		name  string
		auth  velocloud.Auth
		fails []simulator.Failure
		// check looks at the metrics and logs afterwards.
		check func(t *testing.T, h *harness, sim *simulator.Server)
	}{
		{"401 token", velocloud.Auth{Token: testToken},
			[]simulator.Failure{{Kind: simulator.FailUnauthorized, Count: 2}},
			func(t *testing.T, h *harness, _ *simulator.Server) {
				if metrictest.Sum(t, h.reg, "vpipe_velocloud_requests_total", "result", "auth") < 2 {
					t.Error("401s not counted")
				}
				if len(h.logs.lines("read events failed")) == 0 {
					t.Error("401 not logged")
				}
			}},
		{"401 session re-login", velocloud.Auth{Username: testOperator, Password: testPassword},
			[]simulator.Failure{{Kind: simulator.FailUnauthorized, Count: 1}},
			func(t *testing.T, h *harness, sim *simulator.Server) {
				if got := metrictest.Sum(t, h.reg, "vpipe_velocloud_logins_total", "result", "ok"); got < 2 {
					t.Errorf("%v logins, want a second one after the 401", got)
				}
			}},
		{"429", velocloud.Auth{Token: testToken},
			[]simulator.Failure{{Kind: simulator.FailRateLimit, Count: 2}},
			func(t *testing.T, h *harness, _ *simulator.Server) {
				if metrictest.Sum(t, h.reg, "vpipe_velocloud_requests_total", "result", "rate_limited") < 2 {
					t.Error("429s not counted")
				}
				if len(h.logs.lines("rate limited")) == 0 {
					t.Error("429 not logged")
				}
			}},
		{"500", velocloud.Auth{Token: testToken},
			[]simulator.Failure{{Kind: simulator.FailServer, Count: 3}},
			func(t *testing.T, h *harness, _ *simulator.Server) {
				if metrictest.Sum(t, h.reg, "vpipe_velocloud_requests_total", "result", "server_error") < 3 {
					t.Error("500s not counted")
				}
			}},
		{"malformed then fine", velocloud.Auth{Token: testToken},
			[]simulator.Failure{{Kind: simulator.FailMalformed, Count: 2}},
			func(t *testing.T, h *harness, _ *simulator.Server) {
				if metrictest.Sum(t, h.reg, "vpipe_velocloud_requests_total", "result", "malformed") < 2 {
					t.Error("malformed answers not counted")
				}
				if metrictest.Sum(t, h.reg, "vpipe_velocloud_gaps_total") != 0 {
					t.Error("a gap after two malformed answers; they should be retried")
				}
			}},
		{"html page", velocloud.Auth{Token: testToken},
			[]simulator.Failure{{Kind: simulator.FailHTML, Count: 6}},
			func(t *testing.T, h *harness, _ *simulator.Server) {
				if metrictest.Sum(t, h.reg, "vpipe_velocloud_requests_total", "result", "malformed") < 6 {
					t.Error("html answers not counted")
				}
				if metrictest.Sum(t, h.reg, "vpipe_velocloud_gaps_total") != 0 || metrictest.Sum(t, h.reg, "vpipe_velocloud_window_splits_total") != 0 {
					t.Error("an html page (not the window's fault) split or skipped the window")
				}
			}},
		{"timeout", velocloud.Auth{Token: testToken},
			[]simulator.Failure{{Kind: simulator.FailTimeout, Count: 2}},
			func(t *testing.T, h *harness, _ *simulator.Server) {
				if metrictest.Sum(t, h.reg, "vpipe_velocloud_requests_total", "result", "timeout") < 2 {
					t.Error("timeouts not counted")
				}
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim, url := startSim(t, simConfig())
			prefix := fmt.Sprintf("t%d.", i)
			h := newHarness(t, addr, prefix)
			in := newInserter(sim)
			in.insert(t, 0, 0)
			for _, f := range tc.fails {
				sim.Fail(f)
			}
			cfg := sourceConfig("vco1", url)
			cfg.Client.Auth = tc.auth
			cfg.Client.Timeout = 300 * time.Millisecond
			stop := runSource(t, cfg, h.deps(t))
			tick := time.NewTicker(20 * time.Millisecond)
			for range 10 {
				<-tick.C
				in.insert(t, 3, time.Second)
			}
			tick.Stop()
			n := total(sim)
			waitFor(t, 30*time.Second, "every event in kafka", func() bool { return countTopic(t, addr, prefix+"velocloud") >= n })
			stop()
			evs := readEvents(t, addr, prefix+"velocloud", n, 10*time.Second)
			if len(evs) != n {
				t.Errorf("%d records, want %d", len(evs), n)
			}
			checkOnce(t, sim, in, evs)
			if sim.Stats().Injected < tc.fails[0].Count {
				t.Errorf("%d failures injected, want %d", sim.Stats().Injected, tc.fails[0].Count)
			}
			tc.check(t, h, sim)
		})
	}
}

// TestSourceGap: a window the VCO keeps answering with garbage is split,
// then skipped: counted, and logged with its time range; the events
// after it still arrive.
func TestSourceGap(t *testing.T) {
	sim, url := startSim(t, simConfig(simulator.Enterprise{ID: 1, Name: "Acme"}))
	addr := startBroker(t)
	h := newHarness(t, addr, "vpipe.")
	sim.Fail(simulator.Failure{Kind: simulator.FailMalformed, Count: 1 << 30})
	cfg := sourceConfig("vco1", url)
	cfg.Backfill = 2 * time.Second
	cfg.MaxWindow = 4 * time.Second
	cfg.MinWindow = time.Second
	cfg.MaxAttempts = 2
	stop := runSource(t, cfg, h.deps(t))
	waitFor(t, 30*time.Second, "a gap", func() bool { return metrictest.Sum(t, h.reg, "vpipe_velocloud_gaps_total") > 0 })
	gaps := h.logs.lines("gap")
	if len(gaps) == 0 {
		t.Fatal("no gap logged")
	}
	for _, key := range []string{"start", "end", "error", "enterprise", "enterprise_id"} {
		if gaps[0][key] == nil {
			t.Errorf("gap log line without %s: %v", key, gaps[0])
		}
	}
	start, _ := time.Parse(time.RFC3339Nano, gaps[0]["start"].(string))
	end, _ := time.Parse(time.RFC3339Nano, gaps[0]["end"].(string))
	if d := end.Sub(start); d <= 0 || d >= 2*cfg.MinWindow {
		t.Errorf("gap %s..%s: want a window of min_window..2*min_window", start, end)
	}
	if metrictest.Sum(t, h.reg, "vpipe_velocloud_window_splits_total") == 0 {
		t.Error("the window was not split before it was skipped")
	}
	if metrictest.Sum(t, h.reg, "vpipe_velocloud_gap_seconds_total") <= 0 {
		t.Error("no gap seconds")
	}
	// The VCO recovers: new events arrive.
	sim.ClearFailures()
	sim.Insert(1, simulator.Event{EventTime: time.Now(), Event: "EDGE_UP", Category: "EDGE", Severity: "NOTICE", Message: "up"})
	evs := readEvents(t, addr, "vpipe.velocloud", 1, 30*time.Second)
	stop()
	if len(evs) != 1 {
		t.Errorf("%d events after the recovery, want 1", len(evs))
	}
}

// TestSourceFullWindows: answers cut at the page limit shrink the window
// until each fits; a backlog arrives whole, once, in order.
func TestSourceFullWindows(t *testing.T) {
	sim, url := startSim(t, simConfig(simulator.Enterprise{ID: 1, Name: "Acme"}, simulator.Enterprise{ID: 2, Name: "Globex"}))
	addr := startBroker(t)
	h := newHarness(t, addr, "vpipe.")
	now := time.Now()
	for _, ent := range sim.Enterprises() {
		if err := sim.Fill(ent.ID, now.Add(-10*time.Minute), now, 400, 1); err != nil {
			t.Fatal(err)
		}
	}
	// 30 events in one millisecond: more than the limit in the smallest
	// window. The first 20 are published and the rest is a gap.
	burst := now.Add(-5*time.Minute + 700*time.Millisecond) // between two backlog events
	for range 30 {
		sim.Insert(2, simulator.Event{EventTime: burst, Event: "EDGE_UP", Category: "EDGE", Severity: "NOTICE", Message: "burst"})
	}
	cfg := sourceConfig("vco1", url)
	cfg.PageLimit = 20
	stop := runSource(t, cfg, h.deps(t))
	waitFor(t, 60*time.Second, "the backlog in kafka", func() bool { return countTopic(t, addr, "vpipe.velocloud") >= 820 })
	stop()
	evs := readEvents(t, addr, "vpipe.velocloud", 820, 10*time.Second)
	if len(evs) != 820 {
		t.Errorf("%d records, want 820 (800 and 20 of the burst)", len(evs))
	}
	seen := map[int64]bool{}
	for _, e := range evs {
		if seen[e.VCOID] {
			t.Errorf("event %d twice", e.VCOID)
		}
		seen[e.VCOID] = true
	}
	for _, ent := range sim.Enterprises() {
		for _, e := range sim.Events(ent.ID) {
			if !seen[e.ID] && e.Message != "burst" {
				t.Errorf("event %d missing", e.ID)
			}
		}
	}
	if metrictest.Sum(t, h.reg, "vpipe_velocloud_window_splits_total") == 0 {
		t.Error("no window split")
	}
	// One gap for the burst (two if a window boundary falls on its very
	// millisecond: both windows include it).
	if got := metrictest.Sum(t, h.reg, "vpipe_velocloud_gaps_total", "enterprise", "2"); got < 1 || got > 2 {
		t.Errorf("enterprise 2: %v gaps, want 1 (the burst)", got)
	}
	if got := metrictest.Sum(t, h.reg, "vpipe_velocloud_gaps_total", "enterprise", "1"); got != 0 {
		t.Errorf("enterprise 1: %v gaps, want 0", got)
	}
}

// TestSourceEnterprises: configured ids and names for a partner, a name
// that does not exist (reported, the others polled), and every enterprise
// of an operator, including one added later.
func TestSourceEnterprises(t *testing.T) {
	sim, url := startSim(t, simConfig(
		simulator.Enterprise{ID: 1, Name: "Acme"},
		simulator.Enterprise{ID: 2, Name: "Globex", ProxyID: 9},
		simulator.Enterprise{ID: 3, Name: "Initech", ProxyID: 9},
	))
	addr := startBroker(t)
	for id := int64(1); id <= 3; id++ {
		sim.Insert(id, simulator.Event{EventTime: time.Now(), Event: "EDGE_UP", Category: "EDGE", Severity: "NOTICE", Message: "up"})
	}
	t.Run("partner list", func(t *testing.T) {
		h := newHarness(t, addr, "partner.")
		cfg := sourceConfig("msp", url)
		cfg.Account = velocloud.AccountPartner
		cfg.Client.Auth = velocloud.Auth{Username: "msp@example.com", Password: testPassword}
		cfg.Enterprises = []string{"Initech", "2", "Nope"}
		stop := runSource(t, cfg, h.deps(t))
		evs := readEvents(t, addr, "partner.velocloud", 2, 30*time.Second)
		waitFor(t, 10*time.Second, "the unknown name reported", func() bool { return len(h.logs.lines("resolve enterprises")) > 0 })
		stop()
		ents := map[int64]bool{}
		for _, e := range evs {
			ents[e.Enterprise] = true
		}
		if len(evs) != 2 || !ents[2] || !ents[3] {
			t.Errorf("events of %v, want enterprises 2 and 3 once each", ents)
		}
	})
	t.Run("operator all", func(t *testing.T) {
		h := newHarness(t, addr, "operator.")
		cfg := sourceConfig("op", url)
		cfg.RefreshEnterprises = 100 * time.Millisecond
		stop := runSource(t, cfg, h.deps(t))
		readEvents(t, addr, "operator.velocloud", 3, 30*time.Second)
		sim.AddEnterprise(simulator.Enterprise{ID: 4, Name: "Umbrella"})
		sim.Insert(4, simulator.Event{EventTime: time.Now(), Event: "EDGE_UP", Category: "EDGE", Severity: "NOTICE", Message: "up"})
		evs := readEvents(t, addr, "operator.velocloud", 4, 30*time.Second)
		stop()
		if len(evs) != 4 || metrictest.Sum(t, h.reg, "vpipe_velocloud_enterprise_info", "enterprise", "4", "name", "Umbrella") != 1 {
			t.Errorf("%d events, info %v", len(evs), metrictest.Sum(t, h.reg, "vpipe_velocloud_enterprise_info"))
		}
	})
}
