package vcenter

import (
	"bytes"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// Webhook reads a webhook body holding one vCenter event as JSON (the
// EventEx form ParseEventJSON reads, as the vCenter Event Broker Appliance
// forwards it) and emits it as a vcenter.event. It has the shape of
// httpin.WebhookParser; on error it emits nothing.
func Webhook(body []byte, created time.Time, emit func(*pipeline.Event)) error {
	e := &pipeline.Event{Original: bytes.Clone(body), Created: created}
	if err := ParseEventJSON(e, e.Original); err != nil {
		return err
	}
	emit(e)
	return nil
}
