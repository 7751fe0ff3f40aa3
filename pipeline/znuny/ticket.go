package znuny

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Ticket is one ticket as TicketGet returns it (Znuny
// Kernel/GenericInterface/Operation/Ticket/TicketGet.pm; apis.md §5.2).
// Only the fields vpipe reads are decoded; Znuny writes ids and numbers
// as JSON strings or numbers depending on their origin, and both are
// accepted.
type Ticket struct {
	TicketID     Scalar
	TicketNumber Scalar
	Title        string
	State        string
	StateType    string // new, open, closed, pending reminder, pending auto, removed, merged
	Lock         string // lock, unlock, tmp_lock
	Queue        string
	Owner        string // the agent's login
	OwnerID      Scalar
	Responsible  string
	Created      string // "2024-05-15 19:41:25", the system's time zone
	Changed      string
	// UnlockTimeout is when the ticket was last locked or an agent last
	// wrote to the customer (epoch seconds; Kernel::System::Ticket
	// TicketLockSet sets it on every lock).
	UnlockTimeout Scalar
	// DynamicField holds the ticket's dynamic fields, sorted by name, when
	// they were asked for (DynamicFields=1) and any are set. Look a field up
	// by name with Field, never by position.
	DynamicField []DynamicField
}

// DynamicField is one dynamic field of a ticket. Value is a string, an
// array (multiselect fields) or null, as Znuny wrote it.
type DynamicField struct {
	Name  string
	Value json.RawMessage
}

// Field returns the dynamic field called name.
func (t *Ticket) Field(name string) (DynamicField, bool) {
	for _, f := range t.DynamicField {
		if f.Name == name {
			return f, true
		}
	}
	return DynamicField{}, false
}

// Locked reports whether an agent holds the ticket: Lock is "lock" (not
// "unlock", and not "tmp_lock", which Znuny sets for the moment of a
// bulk action and OTNSX also treated as unlocked).
func (t *Ticket) Locked() bool { return strings.EqualFold(t.Lock, "lock") }

// Closed reports whether the ticket's state type ends its life: closed,
// merged or removed.
func (t *Ticket) Closed() bool {
	switch strings.ToLower(t.StateType) {
	case "closed", "merged", "removed":
		return true
	}
	return false
}

// Values returns the field's values, trimmed and without empty ones: one
// for a text or dropdown field, any number for a multiselect field, none
// for null. Numbers and booleans are returned as their JSON text.
func (f DynamicField) Values() []string {
	v := bytes.TrimSpace(f.Value)
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	if v[0] == '[' {
		var items []json.RawMessage
		if json.Unmarshal(v, &items) != nil {
			return nil
		}
		var out []string
		for _, it := range items {
			if s := scalarText(it); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	if s := scalarText(v); s != "" {
		return []string{s}
	}
	return nil
}

func scalarText(v json.RawMessage) string {
	var s Scalar
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return strings.TrimSpace(string(s))
}

// Scalar is a JSON string, number or boolean kept as text: Znuny (Perl)
// writes the same field as "42" or 42 depending on where the value came
// from. null decodes as "".
type Scalar string

// UnmarshalJSON implements json.Unmarshaler.
func (s *Scalar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return fmt.Errorf("empty value")
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = Scalar(v)
	case string(b) == "null":
		*s = ""
	case string(b) == "true" || string(b) == "false" || b[0] == '-' || b[0] >= '0' && b[0] <= '9':
		var n json.Number
		if b[0] != 't' && b[0] != 'f' {
			if err := json.Unmarshal(b, &n); err != nil {
				return err
			}
		}
		*s = Scalar(b)
	default:
		return fmt.Errorf("want a string or a number, got %.20s", b)
	}
	return nil
}

// Int returns s as an integer, and whether it is one.
func (s Scalar) Int() (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64)
	return n, err == nil
}

// ValidTicketID reports whether id looks like a Znuny TicketID: a positive
// decimal integer.
func ValidTicketID(id string) bool {
	if id == "" || len(id) > 19 || id[0] == '0' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}
