package velocloud

import (
	"bytes"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// Webhook reads a webhook body holding one VeloCloud Orchestrator event
// (an event/getEnterpriseEvents item, as ParseEvent reads it) and emits it
// as a velocloud.event. It has the shape of httpin.WebhookParser; on error
// it emits nothing.
func Webhook(body []byte, created time.Time, emit func(*pipeline.Event)) error {
	e := &pipeline.Event{Original: bytes.Clone(bytes.TrimSpace(body)), Created: created}
	if err := ParseEvent(e, e.Original); err != nil {
		return err
	}
	emit(e)
	return nil
}
