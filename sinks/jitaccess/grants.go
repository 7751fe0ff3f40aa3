package jitaccess

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// grant is the record of a ticket holding a VM, stored as JSON under
// <prefix>ticket/<TicketID>. It is written before the tag is added and
// deleted after the tag was removed (or when the ticket no longer asks
// for access after its grant expired).
type grant struct {
	Ticket  string    `json:"ticket_id"`
	Number  string    `json:"ticket_number,omitempty"`
	Owner   string    `json:"owner,omitempty"`
	VMName  string    `json:"vm_name"`
	VMUUID  string    `json:"vm_instance_uuid"`
	VMRef   string    `json:"vm_ref,omitempty"`
	Since   time.Time `json:"since"`             // when the stage first saw the ticket locked
	Expired bool      `json:"expired,omitempty"` // the tag came off at Since+MaxDuration
}

func (s *Sink) ticketKey(id string) string { return s.cfg.KeyPrefix + "ticket/" + id }
func (s *Sink) indexKey() string           { return s.cfg.KeyPrefix + "index" }

// loadIndex reads the index (the ticket ids with a record) and their
// records.
func (s *Sink) loadIndex() error {
	raw, ok := s.d.Store.Get(s.indexKey())
	if !ok {
		return nil
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return fmt.Errorf("grant index %s: %w", s.indexKey(), err)
	}
	for _, id := range ids {
		if g, ok := s.readGrant(id); ok {
			s.grants[id] = g
		}
	}
	s.m.grants.Set(float64(len(s.grants)))
	return nil
}

// grant returns ticket id's record: the one this process knows, or one
// the Store read at Open (written by an earlier owner of the ticket's
// partition).
func (s *Sink) grant(id string) (grant, bool) {
	if g, ok := s.grants[id]; ok {
		return g, true
	}
	g, ok := s.readGrant(id)
	if ok {
		s.grants[id] = g
		s.m.grants.Set(float64(len(s.grants)))
	}
	return g, ok
}

func (s *Sink) readGrant(id string) (grant, bool) {
	raw, ok := s.d.Store.Get(s.ticketKey(id))
	if !ok {
		return grant{}, false
	}
	var g grant
	if err := json.Unmarshal(raw, &g); err != nil || g.VMUUID == "" {
		s.log.Warn("unreadable grant record ignored", "key", s.ticketKey(id), "error", err)
		return grant{}, false
	}
	return g, true
}

// putGrant stores g durably, then the index if g is new.
func (s *Sink) putGrant(ctx context.Context, g grant) error {
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	if err := s.d.Store.Put(ctx, s.ticketKey(g.Ticket), b); err != nil {
		return fmt.Errorf("store grant of ticket %s: %w", g.Ticket, err)
	}
	_, known := s.grants[g.Ticket]
	s.grants[g.Ticket] = g
	s.m.grants.Set(float64(len(s.grants)))
	s.nudge()
	if known {
		return nil
	}
	return s.putIndex(ctx)
}

// deleteGrant deletes ticket id's record, then updates the index.
func (s *Sink) deleteGrant(ctx context.Context, id string) error {
	if err := s.d.Store.Put(ctx, s.ticketKey(id), nil); err != nil {
		return fmt.Errorf("delete grant of ticket %s: %w", id, err)
	}
	delete(s.grants, id)
	s.m.grants.Set(float64(len(s.grants)))
	s.nudge()
	return s.putIndex(ctx)
}

// putIndex writes the ids of the records this process knows. (Several
// processes running the stage overwrite each other's index; a record left
// out of it is still found by its ticket's next event, and only a ticket
// that is unlocked while no process runs and locked again later is
// affected: it finds its old record and may start expired. Fail closed.)
func (s *Sink) putIndex(ctx context.Context) error {
	ids := make([]string, 0, len(s.grants))
	for id := range s.grants {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b, _ := json.Marshal(ids)
	if err := s.d.Store.Put(ctx, s.indexKey(), b); err != nil {
		return fmt.Errorf("store grant index: %w", err)
	}
	return nil
}

// nudge tells Run that the next expiry may have changed.
func (s *Sink) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
