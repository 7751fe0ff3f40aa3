// Package ticket reads the webhook a help desk posts when a ticket's lock
// (or state, or VM field) changes, and turns it into a ticket.lock event
// for the jit-access stage. The event is a trigger only: the stage reads
// the ticket's current state from the help desk (TicketGet), so a webhook
// that arrives late, twice, or out of order changes nothing it should not.
//
// Accepted bodies (shared/reference/apis.md §5.1, §5.3):
//
//   - Znuny's Ticket::Generic invoker (Kernel/GenericInterface/Invoker/
//     Ticket/Generic.pm) bound to TicketLockUpdate:
//     {"Ticket": {<TicketDeepGet: TicketID, TicketNumber, Lock, Owner, ...>},
//     "Event": {"TicketID": "7"}} (the event's data; TicketLockUpdate carries
//     only TicketID). Either part may be left out by the invoker's
//     configuration, as long as one of them names the ticket.
//   - a plain {"TicketID": 7} (or "7"), as a web service with the Test::
//     TestSimple invoker, a Generic Agent script or curl sends it; OTNSX's
//     otnsx-activate-middleware.sh sends {"TicketNR": <number>, "TicketID": <id>}.
//   - {"TicketNumber": "..."} alone (OTRS's Test::Test invoker): the stage
//     then looks the ticket up by number.
//
// Optional members of the plain form: "TicketNumber" (or "TicketNR"),
// "Lock", "Owner". Numbers may be JSON numbers or strings.
package ticket

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// Label keys of ticket.lock events. LabelTicketID is the event's Kafka key
// on the tickets topic.
const (
	LabelTicketID     = "ticket_id"     // TicketID, a positive integer
	LabelTicketNumber = "ticket_number" // TicketNumber (TicketNR)
	LabelLock         = "ticket_lock"   // the lock the body reported (a hint; the stage reads the ticket)
)

// Webhook reads one webhook body and emits one ticket.lock event that emit
// may keep. It has the shape of httpin.WebhookParser. The event has
// event.original (the body), event.created, event.dataset ticket.lock,
// labels ticket_id and/or ticket_number (at least one), ticket_lock and
// user.name (the owner) when the body has them, and event.action "lock",
// "unlock" or "tmp_lock" from the same hint. When the body names no
// ticket, is not a JSON object, or has a member of the wrong type,
// Webhook returns an error saying which member, and emits nothing.
func Webhook(body []byte, created time.Time, emit func(*pipeline.Event)) error {
	e := &pipeline.Event{Original: bytes.Clone(body), Created: created}
	if err := Parse(e, e.Original); err != nil {
		return err
	}
	emit(e)
	return nil
}

// Parse fills e (whose Original is body) from one webhook body; see
// Webhook. It does not change e when it fails.
func Parse(e *pipeline.Event, body []byte) error {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return errors.New("ticket webhook: body is not a JSON object")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return fmt.Errorf("ticket webhook: %v at offset %d", se, se.Offset)
		}
		return fmt.Errorf("ticket webhook: %w", err)
	}
	var f fields
	if err := f.read(top, ""); err != nil {
		return err
	}
	if raw, ok := top["Ticket"]; ok && !isNull(raw) {
		tk, err := object(raw, "Ticket")
		if err != nil {
			return err
		}
		var tf fields
		if err := tf.read(tk, "Ticket."); err != nil {
			return err
		}
		if err := f.merge(&tf); err != nil {
			return err
		}
	}
	if raw, ok := top["Event"]; ok && !isNull(raw) {
		// Event is the ticket event's data, an object; some senders put
		// the event's name here instead.
		if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			ev, err := object(raw, "Event")
			if err != nil {
				return err
			}
			var ef fields
			if err := ef.read(ev, "Event."); err != nil {
				return err
			}
			if err := f.merge(&ef); err != nil {
				return err
			}
		}
	}
	if f.id == "" && f.number == "" {
		return errors.New("ticket webhook: no TicketID or TicketNumber (in the body, Ticket or Event)")
	}
	e.Dataset = pipeline.DatasetTicketLock
	e.Kind = "event"
	if f.id != "" {
		e.AddLabel(LabelTicketID, f.id)
	}
	if f.number != "" {
		e.AddLabel(LabelTicketNumber, f.number)
	}
	if f.lock != "" {
		e.AddLabel(LabelLock, f.lock)
		e.Action = f.lock
	}
	e.User.Name = f.owner
	name := f.number
	if name == "" {
		name = "#" + f.id
	}
	if f.lock != "" {
		e.Message = fmt.Sprintf("ticket %s changed (lock: %s)", name, f.lock)
	} else {
		e.Message = fmt.Sprintf("ticket %s changed", name)
	}
	return nil
}

// fields are what one object of the body says about the ticket.
type fields struct {
	id, number, lock, owner string
}

// read takes the ticket's members from obj; path prefixes member names in
// errors.
func (f *fields) read(obj map[string]json.RawMessage, path string) error {
	var err error
	if f.id, err = member(obj, path, "TicketID"); err != nil {
		return err
	}
	if f.id != "" && !validID(f.id) {
		return fmt.Errorf("ticket webhook: %sTicketID %q is not a positive integer", path, f.id)
	}
	for _, k := range []string{"TicketNumber", "TicketNR"} {
		n, err := member(obj, path, k)
		if err != nil {
			return err
		}
		if n == "" {
			continue
		}
		if len(n) > 64 || strings.ContainsFunc(n, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			return fmt.Errorf("ticket webhook: %s%s %q is not a ticket number", path, k, n)
		}
		if f.number != "" && f.number != n {
			return fmt.Errorf("ticket webhook: %sTicketNumber %q and %sTicketNR %q differ", path, f.number, path, n)
		}
		f.number = n
	}
	if f.lock, err = member(obj, path, "Lock"); err != nil {
		return err
	}
	f.lock = strings.ToLower(f.lock)
	switch f.lock {
	case "", "lock", "unlock", "tmp_lock":
	default:
		return fmt.Errorf("ticket webhook: %sLock %q is not lock, unlock or tmp_lock", path, f.lock)
	}
	if f.owner, err = member(obj, path, "Owner"); err != nil {
		return err
	}
	return nil
}

// merge takes o's members where f has none; two different ticket ids or
// numbers are an error.
func (f *fields) merge(o *fields) error {
	switch {
	case f.id != "" && o.id != "" && f.id != o.id:
		return fmt.Errorf("ticket webhook: TicketID %s and %s differ", f.id, o.id)
	case f.number != "" && o.number != "" && f.number != o.number:
		return fmt.Errorf("ticket webhook: TicketNumber %s and %s differ", f.number, o.number)
	}
	if f.id == "" {
		f.id = o.id
	}
	if f.number == "" {
		f.number = o.number
	}
	if f.lock == "" {
		f.lock = o.lock
	}
	if f.owner == "" {
		f.owner = o.owner
	}
	return nil
}

// member returns obj[key] as text: a string, or a number as written;
// null and absent are "". Any other type is an error naming path+key.
func member(obj map[string]json.RawMessage, path, key string) (string, error) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return "", nil
	}
	raw = bytes.TrimSpace(raw)
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("ticket webhook: %s%s: %w", path, key, err)
		}
		return strings.TrimSpace(s), nil
	case c == '-' || c >= '0' && c <= '9':
		return string(raw), nil
	}
	return "", fmt.Errorf("ticket webhook: %s%s: want a string or a number", path, key)
}

func object(raw json.RawMessage, name string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("ticket webhook: %s: want an object", name)
	}
	return obj, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// validID reports whether s is a positive decimal integer of at most 19
// digits (a TicketID).
func validID(s string) bool {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
