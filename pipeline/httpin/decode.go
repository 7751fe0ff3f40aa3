package httpin

import "github.com/vpipe/vpipe/pipeline"

// decodeEvent makes e the event obj encodes when obj is a vpipe event (it
// carries event.dataset), with e.Original set to obj's exact bytes, and
// reports whether it did.
func decodeEvent(e *pipeline.Event, obj []byte) bool { return false }
