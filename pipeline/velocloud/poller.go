package velocloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// poller polls one enterprise. Its fields are owned by its run goroutine,
// except the name, which reconcile may change.
type poller struct {
	s      *Source
	id     int64
	nameP  atomic.Pointer[string]
	key    string
	log    *slog.Logger
	m      entMetrics
	cancel context.CancelFunc

	st     *state
	span   time.Duration // the window length to ask for next
	events []*pipeline.Event
}

func (s *Source) newPoller(e EnterpriseInfo) *poller {
	p := &poller{
		s:    s,
		id:   e.ID,
		key:  s.cfg.CheckpointPrefix + strconv.FormatInt(e.ID, 10),
		log:  s.log.With("enterprise_id", e.ID),
		m:    s.m.forEnterprise(s.cfg.Name, e.ID),
		span: s.cfg.MaxWindow,
	}
	p.setName(e.Name)
	return p
}

func (p *poller) name() string        { return *p.nameP.Load() }
func (p *poller) setName(name string) { p.nameP.Store(&name) }

// run polls until ctx ends.
func (p *poller) run(ctx context.Context) {
	p.load()
	p.log.Info("polling enterprise", "enterprise", p.name(), "cursor", p.st.cursor, "seen", len(p.st.seen))
	for {
		p.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		p.st.prune(p.st.cursor.Add(-p.s.cfg.Lookback-time.Second), true)
		if !backoff.Wait(ctx, p.s.cfg.Interval) {
			return
		}
	}
}

// load reads the checkpoint, or starts Backfill ago.
func (p *poller) load() {
	if data, ok := p.s.ckpt.Get(p.key); ok {
		st, err := unmarshalState(data)
		if err == nil {
			p.st = st
			p.m.cursor.Store(st.cursor.UnixNano())
			return
		}
		p.log.Error("checkpoint unreadable; starting from the backfill window", "key", p.key, "error", err)
	}
	start := time.Now().Add(-p.s.cfg.Backfill)
	p.st = &state{cursor: start, floor: start, seen: map[int64]int64{}}
	p.m.cursor.Store(start.UnixNano())
}

// poll reads [cursor-Lookback, now] window by window. It returns when it
// reached now or ctx ended.
func (p *poller) poll(ctx context.Context) {
	cfg := &p.s.cfg
	now := time.Now()
	a := p.st.cursor.Add(-cfg.Lookback)
	if a.Before(p.st.floor) {
		a = p.st.floor
	}
	failures, attempts := 0, 0
	for a.Before(now) {
		b := a.Add(p.span)
		if b.After(now) {
			b = now
		}
		page, err := p.s.fetch(ctx, p.id, a, b)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ae *APIError
			switch {
			case errors.Is(err, ErrRateLimited):
				d := cfg.RateLimitBackoff
				if errors.As(err, &ae) && ae.RetryAfter > 0 {
					d = ae.RetryAfter
				}
				p.log.Warn("rate limited by the VCO; pausing the source's requests", "pause", d)
				p.s.pauseFor(d)
			case errors.Is(err, ErrMalformed) && !errors.Is(err, errNotJSON):
				// A broken JSON answer for this window (a cut body, an
				// event the VCO cannot serialise): retried, then read
				// in halves, then skipped as a gap. Anything else is
				// retried for as long as it lasts.
				attempts++
				if attempts < cfg.MaxAttempts {
					d := backoff.Delay(attempts-1, p.s.cfg.MinBackoff, p.s.cfg.MaxBackoff)
					p.log.Warn("bad answer for a window; retrying", "start", a, "end", b, "attempt", attempts, "backoff", d, "error", err)
					if !backoff.Wait(ctx, d) {
						return
					}
					continue
				}
				attempts = 0
				if half := b.Sub(a) / 2; half >= cfg.MinWindow {
					p.span = half
					p.m.splits.Inc()
					p.log.Warn("bad answers for a window; reading it in halves", "start", a, "end", b, "error", err)
					continue
				}
				p.gap(a, b, err)
				if !p.advance(ctx, b) {
					return
				}
				a = b
			default:
				d := backoff.Delay(failures, p.s.cfg.MinBackoff, p.s.cfg.MaxBackoff)
				failures++
				level := slog.LevelWarn
				switch Result(err) {
				case ResultAuth, ResultForbidden, ResultClient, ResultMalformed:
					// Not going away by itself: configuration, or
					// what stands between vpipe and the VCO.
					level = slog.LevelError
				}
				p.log.Log(ctx, level, "read events failed; retrying", "start", a, "end", b, "attempt", failures, "backoff", d, "error", err)
				if !backoff.Wait(ctx, d) {
					return
				}
			}
			continue
		}
		if failures > 0 {
			p.log.Info("read events succeeded after failures", "failures", failures)
		}
		failures = 0
		var incomplete error
		if page.More {
			if half := b.Sub(a) / 2; half >= cfg.MinWindow {
				p.span = half
				p.m.splits.Inc()
				continue
			}
			incomplete = fmt.Errorf("more than %d events within %s: the VCO left some out", page.Limit, b.Sub(a))
		}
		if err := p.publish(ctx, page.Events); err != nil {
			if ctx.Err() != nil {
				return
			}
			attempts++
			d := backoff.Delay(attempts-1, p.s.cfg.MinBackoff, p.s.cfg.MaxBackoff)
			p.log.Error("publish failed; reading the window again", "start", a, "end", b, "backoff", d, "error", err)
			if attempts >= cfg.MaxAttempts {
				attempts = 0
				p.gap(a, b, err)
				if !p.advance(ctx, b) {
					return
				}
				a = b
			}
			if !backoff.Wait(ctx, d) {
				return
			}
			continue
		}
		attempts = 0
		if incomplete != nil {
			p.gap(a, b, incomplete)
		}
		p.m.lastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
		if !p.advance(ctx, b) {
			return
		}
		a = b
		if !page.More && len(page.Events) < cfg.PageLimit/4 {
			p.span = min(cfg.MaxWindow, 2*p.span)
		}
		p.st.prune(p.st.cursor.Add(-cfg.Lookback-time.Second), false)
	}
}

// advance moves the cursor to b (if later) and writes the checkpoint; it
// returns false when ctx ended.
func (p *poller) advance(ctx context.Context, b time.Time) bool {
	if b.After(p.st.cursor) {
		p.st.cursor = b
		p.m.cursor.Store(b.UnixNano())
	}
	p.save(ctx)
	return ctx.Err() == nil
}

// save writes the checkpoint; after ctx ended, under ShutdownTimeout.
func (p *poller) save(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.s.cfg.ShutdownTimeout)
	defer cancel()
	if err := p.s.ckpt.Put(cctx, p.key, p.st.marshal(p.name())); err != nil {
		p.s.m.ckptErrors.WithLabelValues(p.s.cfg.Name).Inc()
		p.log.Warn("write checkpoint; it is written again after the next window", "key", p.key, "error", err)
	}
}

// gap reports a window whose events could not all be read.
func (p *poller) gap(a, b time.Time, err error) {
	p.m.gaps.Inc()
	p.m.gapSeconds.Add(b.Sub(a).Seconds())
	p.log.Error("events of a window could not be read: gap", "enterprise", p.name(),
		"start", a.UTC().Format(time.RFC3339Nano), "end", b.UTC().Format(time.RFC3339Nano), "error", err)
}

// ack is Kafka's answer for one published event.
type ack struct {
	key, ms int64
	late    bool
	err     error
}

// publish normalises raws, publishes those not seen yet in eventTime
// order, waits for Kafka to acknowledge them (under ShutdownTimeout once
// ctx ended) and adds the acknowledged ones to the seen set. It returns
// nil when every event is published; after an error, the acknowledged
// ones are in the seen set and the checkpoint is written, so that reading
// the window again publishes only the rest.
func (p *poller) publish(ctx context.Context, raws []json.RawMessage) error {
	for len(p.events) < len(raws) {
		p.events = append(p.events, new(pipeline.Event))
	}
	evs := p.events[:len(raws)]
	now := time.Now()
	for i, raw := range raws {
		p.normalise(evs[i], raw, now)
	}
	sortEvents(evs)
	cursor := p.st.cursor
	acks := make(chan ack, len(evs))
	sent := 0
	var pubErr error
	for _, e := range evs {
		k := dedupeKey(e)
		if _, dup := p.st.seen[k]; dup {
			p.m.duplicates.Inc()
			continue
		}
		ms := e.Timestamp.UnixMilli()
		if e.Timestamp.IsZero() {
			ms = now.UnixMilli()
		}
		a := ack{key: k, ms: ms, late: !e.Timestamp.IsZero() && e.Timestamp.Before(cursor)}
		if pubErr = p.s.pub.Publish(ctx, e, func(err error) {
			a.err = err
			acks <- a
		}); pubErr != nil {
			break
		}
		sent++
	}
	// Wait as long as Kafka needs (the producer retries until it is
	// back); once ctx ended, at most ShutdownTimeout more.
	failed, lost := 0, 0
	var firstErr error
	done := ctx.Done()
	var timeout <-chan time.Time
wait:
	for got := 0; got < sent; {
		select {
		case a := <-acks:
			got++
			if a.err != nil {
				failed++
				if firstErr == nil {
					firstErr = a.err
				}
				continue
			}
			p.st.seen[a.key] = a.ms
			p.m.events.Inc()
			if a.late {
				p.m.late.Inc()
			}
		case <-done:
			done = nil
			t := time.NewTimer(p.s.cfg.ShutdownTimeout)
			defer t.Stop()
			timeout = t.C
		case <-timeout:
			lost = sent - got
			break wait
		}
	}
	var err error
	switch {
	case lost > 0:
		err = fmt.Errorf("%d events not acknowledged by kafka within %s of shutdown", lost, p.s.cfg.ShutdownTimeout)
	case failed > 0:
		err = fmt.Errorf("%d events not delivered: %w", failed, firstErr)
	case pubErr != nil:
		err = fmt.Errorf("publish: %w", pubErr)
	}
	if err != nil {
		p.save(ctx)
	}
	return err
}
