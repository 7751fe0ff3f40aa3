package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Event is one enterprise event, with the members of the swagger's event
// object (shared/reference/apis.md §4.3, formats.md §5).
type Event struct {
	ID        int64 // assigned by Insert when 0
	EventTime time.Time
	Event     string // e.g. EDGE_UP, LINK_DEAD, VPN_DATACENTER_STATUS
	Category  string // SYSTEM, NETWORK, APPLICATION, USER, SECURITY, EDGE, GATEWAY, CONFIGURATION, ENTERPRISE
	Severity  string // EMERGENCY ... DEBUG
	Message   string
	// Detail is a JSON document carried as a string, as VCO does; ""
	// is written as null.
	Detail             string
	EnterpriseUsername string // "" is null
	EdgeName           string // "" is null
	SegmentName        string // "" is null
}

// JSON returns the event as VCO writes it in event/getEnterpriseEvents.
func (e Event) JSON() []byte {
	b := make([]byte, 0, 256+len(e.Message)+len(e.Detail))
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `,"eventTime":"`...)
	b = e.EventTime.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","event":`...)
	b = appendString(b, e.Event)
	b = append(b, `,"category":`...)
	b = appendString(b, e.Category)
	b = append(b, `,"severity":`...)
	b = appendString(b, e.Severity)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	b = append(b, `,"detail":`...)
	b = appendNullable(b, e.Detail)
	b = append(b, `,"enterpriseUsername":`...)
	b = appendNullable(b, e.EnterpriseUsername)
	b = append(b, `,"edgeName":`...)
	b = appendNullable(b, e.EdgeName)
	b = append(b, `,"segmentName":`...)
	b = appendNullable(b, e.SegmentName)
	return append(b, '}')
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// eventLog is one enterprise's events, sorted by eventTime then id.
type eventLog struct {
	items []item
}

type item struct {
	t    time.Time
	ev   Event
	json []byte
}

func (l *eventLog) add(it item) {
	i := sort.Search(len(l.items), func(i int) bool {
		x := l.items[i]
		return x.t.After(it.t) || x.t.Equal(it.t) && x.ev.ID > it.ev.ID
	})
	l.items = slices.Insert(l.items, i, it)
}

// query returns up to limit events with start <= eventTime <= end, in
// the configured order, and whether more matched.
func (l *eventLog) query(start, end time.Time, limit int, ascending bool) ([]item, bool) {
	lo := sort.Search(len(l.items), func(i int) bool { return !l.items[i].t.Before(start) })
	hi := sort.Search(len(l.items), func(i int) bool { return l.items[i].t.After(end) })
	if hi <= lo {
		return nil, false
	}
	n := hi - lo
	more := n > limit
	n = min(n, limit)
	out := make([]item, 0, n)
	if ascending {
		out = append(out, l.items[lo:lo+n]...)
	} else {
		for i := hi - 1; i >= hi-n; i-- {
			out = append(out, l.items[i])
		}
	}
	return out, more
}

// Insert stores e as an event of the enterprise, visible to the next
// request, and returns it with its id. Like a VCO database row id, the id
// is assigned in insertion order, so an event inserted late (an eventTime
// in the past) has a higher id than events newer than it. A non-zero
// e.ID is kept as it is.
func (s *Server) Insert(enterpriseID int64, e Event) (Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	log, ok := s.store[enterpriseID]
	if !ok {
		return Event{}, fmt.Errorf("no enterprise %d", enterpriseID)
	}
	if e.ID == 0 {
		s.nextID++
		e.ID = s.nextID
	}
	e.EventTime = e.EventTime.UTC().Truncate(time.Millisecond)
	log.add(item{t: e.EventTime, ev: e, json: e.JSON()})
	return e, nil
}

// Events returns the events of an enterprise sorted by eventTime, then
// id.
func (s *Server) Events(enterpriseID int64) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.store[enterpriseID]
	if log == nil {
		return nil
	}
	out := make([]Event, len(log.items))
	for i, it := range log.items {
		out[i] = it.ev
	}
	return out
}

// Fill inserts n generated events for the enterprise, their eventTimes
// spread evenly over [from, to). It is the backlog a poller finds when it
// starts or catches up.
func (s *Server) Fill(enterpriseID int64, from, to time.Time, n int, seed uint64) error {
	ent, ok := s.enterprise(enterpriseID)
	if !ok {
		return fmt.Errorf("no enterprise %d", enterpriseID)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(enterpriseID)))
	step := to.Sub(from) / time.Duration(max(n, 1))
	for i := range n {
		if _, err := s.Insert(enterpriseID, RandomEvent(rng, ent, from.Add(time.Duration(i)*step))); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) enterprise(id int64) (Enterprise, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.enterprises {
		if e.ID == id {
			return e, true
		}
	}
	return Enterprise{}, false
}

// GenerateConfig shapes the stream Generate produces.
type GenerateConfig struct {
	// Rate is the events a second per enterprise (default 1).
	Rate float64
	// LateFraction is the share of events that arrive late: their
	// eventTime is up to MaxLateness before the moment they are inserted,
	// as VCO's documentation warns ("data for interval t may appear only
	// by t+10 min").
	LateFraction float64
	// MaxLateness defaults to 10 minutes.
	MaxLateness time.Duration
	// Seed makes the stream's content reproducible.
	Seed uint64
	// OnInsert, if set, is called with each inserted event.
	OnInsert func(enterpriseID int64, e Event)
}

// Generate inserts events for every enterprise at g.Rate until ctx ends.
func (s *Server) Generate(ctx context.Context, g GenerateConfig) {
	if g.Rate <= 0 {
		g.Rate = 1
	}
	if g.MaxLateness <= 0 {
		g.MaxLateness = 10 * time.Minute
	}
	ents := s.Enterprises()
	rng := rand.New(rand.NewPCG(g.Seed, 0x5eed))
	tick := time.NewTicker(max(10*time.Millisecond, time.Duration(float64(time.Second)/g.Rate)))
	defer tick.Stop()
	start := s.cfg.Now()
	done := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := s.cfg.Now()
		due := int(now.Sub(start).Seconds() * g.Rate)
		for ; done < due; done++ {
			for _, ent := range ents {
				t := now
				if rng.Float64() < g.LateFraction {
					t = now.Add(-time.Duration(rng.Int64N(int64(g.MaxLateness))))
				}
				e, err := s.Insert(ent.ID, RandomEvent(rng, ent, t))
				if err == nil && g.OnInsert != nil {
					g.OnInsert(ent.ID, e)
				}
			}
		}
	}
}

// kind is one sort of VCO event with how to write its message and
// detail. Names and severities follow formats.md §5 and the VMware SD-WAN
// admin guide's event list; the messages are plausible, not captured.
type kind struct {
	event, category, severity string
	message                   func(r *rand.Rand, ent Enterprise, edge string) string
	detail                    func(r *rand.Rand, ent Enterprise, edge string) string
	user                      bool
	segment                   bool
}

var links = []string{"GE3", "GE4", "GE5", "INTERNET1", "MPLS1"}

var kinds = []kind{
	{event: "LINK_ALIVE", category: "NETWORK", severity: "INFO",
		message: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf("Link %s is no longer DEAD", pick(r, links))
		},
		detail: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf(`{"interface": %q, "linkIpAddress": "203.0.113.%d", "logicalId": "%08x-aaaa-4bbb-8ccc-%012x"}`,
				pick(r, links), r.IntN(250)+1, r.Uint32(), r.Uint64()&0xffffffffffff)
		}},
	{event: "LINK_DEAD", category: "NETWORK", severity: "WARNING",
		message: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf("Link %s is now DEAD", pick(r, links))
		},
		detail: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf(`{"interface": %q, "linkIpAddress": "198.51.100.%d", "lossPct": %d}`, pick(r, links), r.IntN(250)+1, 20+r.IntN(80))
		}},
	{event: "VPN_DATACENTER_STATUS", category: "SYSTEM", severity: "NOTICE",
		message: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf("Tunnel to [Azure-SIN] - Failed to negotiate child SA IKEv2_I with 13.76.153.%d. Error: ERR_IKE_TIMEOUT", r.IntN(250)+1)
		},
		detail: func(r *rand.Rand, ent Enterprise, _ string) string {
			state := pick(r, []string{"UP", "DOWN"})
			return fmt.Sprintf(`{"enterpriseLogicalId": %q, "dataCenterLogicalId": "bb395d4c-5963-4d14-8e6d-c2822c9dfadc", "ipAddress": "13.76.153.%d", "ikeState": %q, "numberP2SA": %d, "Hint": "No response from peer or no proposal chosen; check VPN type, GWIP, DH Group, IKE-ID, subnets."}`,
				ent.LogicalID, r.IntN(250)+1, state, r.IntN(3))
		}},
	{event: "EDGE_UP", category: "EDGE", severity: "NOTICE",
		message: func(_ *rand.Rand, _ Enterprise, edge string) string { return "Edge [" + edge + "] is up" }},
	{event: "EDGE_DOWN", category: "EDGE", severity: "CRITICAL",
		message: func(_ *rand.Rand, _ Enterprise, edge string) string { return "Edge [" + edge + "] is down" }},
	{event: "EDGE_INTERFACE_UP", category: "EDGE", severity: "INFO",
		message: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf("Interface %s is up", pick(r, links))
		}},
	{event: "EDGE_HEALTH_ALERT", category: "EDGE", severity: "EMERGENCY",
		message: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf("Edge health alert: CPU %d%%, memory %d%%", 90+r.IntN(10), 80+r.IntN(20))
		},
		detail: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf(`{"cpuPct": %d, "memoryPct": %d, "flowCount": %d}`, 90+r.IntN(10), 80+r.IntN(20), r.IntN(100000))
		}},
	{event: "EDGE_BGP_NEIGHBOR_DOWN", category: "NETWORK", severity: "ERROR", segment: true,
		message: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf("BGP neighbor 10.%d.%d.1 is down", r.IntN(255), r.IntN(255))
		},
		detail: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf(`{"neighborIp": "10.%d.%d.1", "neighborAsn": %d, "state": "IDLE"}`, r.IntN(255), r.IntN(255), 64512+r.IntN(1000))
		}},
	{event: "USER_LOGIN", category: "USER", severity: "INFO", user: true,
		message: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf("User logged in from 192.0.2.%d", r.IntN(250)+1)
		}},
	{event: "USER_LOGIN_FAILURE", category: "USER", severity: "WARNING", user: true,
		message: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf("Failed login from 192.0.2.%d: invalid password", r.IntN(250)+1)
		}},
	{event: "FIREWALL_LOG_ENABLE", category: "CONFIGURATION", severity: "NOTICE", user: true, segment: true,
		message: func(_ *rand.Rand, _ Enterprise, edge string) string { return "Firewall logging enabled on " + edge }},
	{event: "HA_FAILED", category: "EDGE", severity: "ALERT",
		message: func(_ *rand.Rand, _ Enterprise, edge string) string { return "HA failed over on " + edge },
		detail: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf(`{"haState": "FAILED", "reason": "heartbeat lost", "peerSerial": "VC0%07d"}`, r.IntN(10000000))
		}},
	{event: "GATEWAY_DOWN", category: "GATEWAY", severity: "CRITICAL",
		message: func(r *rand.Rand, _ Enterprise, _ string) string {
			return fmt.Sprintf("Gateway vcg%d-sin1 is down", r.IntN(200))
		}},
}

var users = []string{"admin@example.com", "noc@example.com", "jdoe@example.com"}

// RandomEvent returns a plausible event of ent at t (without id).
func RandomEvent(r *rand.Rand, ent Enterprise, t time.Time) Event {
	k := kinds[r.IntN(len(kinds))]
	edge := "b1-edge1"
	if len(ent.Edges) > 0 {
		edge = pick(r, ent.Edges)
	}
	e := Event{
		EventTime: t,
		Event:     k.event,
		Category:  k.category,
		Severity:  k.severity,
		Message:   k.message(r, ent, edge),
	}
	if k.category == "EDGE" || k.category == "NETWORK" || k.category == "CONFIGURATION" {
		e.EdgeName = edge
	}
	if k.detail != nil {
		e.Detail = k.detail(r, ent, edge)
	}
	if k.user {
		e.EnterpriseUsername = pick(r, users)
	}
	if k.segment {
		e.SegmentName = "Global Segment"
	}
	return e
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// AddEnterprise adds an enterprise (for tests of enterprise discovery).
func (s *Server) AddEnterprise(e Enterprise) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.LogicalID == "" {
		e.LogicalID = fmt.Sprintf("%08x-0000-4000-8000-%012x", e.ID, e.ID)
	}
	if len(e.Edges) == 0 {
		e.Edges = []string{"b1-edge1", "b2-edge1"}
	}
	s.enterprises = append(s.enterprises, e)
	if s.store[e.ID] == nil {
		s.store[e.ID] = &eventLog{}
	}
}
