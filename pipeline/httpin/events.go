package httpin

import (
	"time"

	"github.com/vpipe/vpipe/parsers/record"
	"github.com/vpipe/vpipe/pipeline"
)

// fillJSON makes e the event of the object body[sp.start:sp.end].
//
// An object that decodes as a vpipe event ((*pipeline.Event).DecodeJSON:
// nested ECS names, as AppendJSON writes them) keeps every field it
// carries, and becomes an http.generic event when it names no
// event.dataset. Any other object (one whose members have other shapes,
// such as "event": "x") becomes an http.generic event whose message is its
// top-level "message" string. Either way e.Original is the object's exact
// bytes, e.LogSource the client's address, e.Created now, and e.ID, unless
// the object carried one, is derived like a syslog record's (record.ID), so
// that a client's retry of the same request yields the same ids.
//
// scratch is a buffer for unescaping, returned for reuse.
func fillJSON(e *pipeline.Event, body []byte, sp span, remote string, now time.Time, scratch []byte) []byte {
	obj := body[sp.start:sp.end]
	if err := e.DecodeJSON(obj); err == nil {
		// DecodeJSON keeps no string in e.Original (they live in e's
		// scratch space), so it may be overwritten.
		e.Original = append(e.Original[:0], obj...)
		if e.Timestamp.IsZero() {
			e.Timestamp = e.Created // DecodeJSON leaves it zero when equal
		}
	} else {
		e.Reset()
		e.Original = append(e.Original, obj...)
		if sp.msgEnd > 0 {
			raw := e.Original[sp.msgStart-sp.start : sp.msgEnd-sp.start]
			if sp.msgEscaped {
				scratch = appendUnquoted(scratch[:0], raw)
				e.Message = e.Intern(scratch)
			} else {
				e.Message = e.Alias(raw[1 : len(raw)-1])
			}
		}
	}
	if e.Dataset == "" {
		e.Dataset = pipeline.DatasetHTTPGeneric
	}
	e.LogSource = remote
	e.Created = now
	if e.ID == "" {
		e.ID = record.ID(e)
	}
	return scratch
}
