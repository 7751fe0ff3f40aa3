package pipeline

import (
	"context"
	"errors"
)

// FormatParser recognises one family of messages (NSX DFW, vCenter, ...)
// and fills an event from it.
//
// Parse is pure: no I/O, no globals, safe for concurrent use on distinct
// events, and it never panics. msg is the syslog MSG part of e.Original (or
// the whole record when it had no syslog envelope); it aliases e.Original,
// and e's envelope fields (Syslog, Timestamp, Observer.Hostname) are already
// set. Parse returns false and leaves e untouched when msg is not of its
// format. On true it has set e.Dataset and every field it parsed; when the
// message looks like the format but does not fully parse it keeps what it
// parsed and sets e.Error with the byte offset and the expected token.
type FormatParser interface {
	Parse(e *Event, msg []byte) bool
}

// Publisher puts events on Kafka, each on the topic its dataset routes to
// (TopicFor) with its key (AppendKey).
type Publisher interface {
	// Publish encodes e and queues the record. It blocks while the
	// producer's buffer is full (backpressure) and returns ctx.Err() if ctx
	// ends first. e may be reused as soon as Publish returns. done, if not
	// nil, is called exactly once: with nil when Kafka acknowledged the
	// record (acks=all), or with the reason it was not (it then went to the
	// DLQ topic, or the producer shut down before delivering it). done must
	// not block.
	Publish(ctx context.Context, e *Event, done func(error)) error
}

// ErrPermanent marks an error that retrying cannot fix (a record the
// destination rejects, a record too large). Check with errors.Is; every
// other error is retryable.
var ErrPermanent = errors.New("permanent")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (p permanentError) Error() string        { return p.err.Error() }
func (p permanentError) Unwrap() error        { return p.err }
func (p permanentError) Is(target error) bool { return target == ErrPermanent }

// RecordParser turns a received record into a normalised event in place:
// e.Original holds the record and e.LogSource / e.Created are set; it
// parses the syslog envelope, offers the message to the format parsers and
// falls back to a generic event. It never fails: what did not parse is said
// in e.Error, and e.Original is kept. Safe for concurrent use on distinct
// events; no I/O.
type RecordParser interface {
	ParseRecord(e *Event)
}
