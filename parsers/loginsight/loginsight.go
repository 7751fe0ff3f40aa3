// Package loginsight reads the alert webhook that VMware Log Insight /
// Aria Operations for Logs (and Log Insight Cloud) posts when an alert
// fires. In the vTagSync workflow (shared/seeds/000_1b14502e1b048b32.txt)
// an alert on "tached tag" forwards vCenter's tag attach/detach events:
// each such message becomes the same vcenter.event as when the event
// arrives by syslog or from vCenter itself (package vcenter).
//
// The body, from vmw-loginsight/webhook-shims tests/conftest.py (VMware's
// own shim tests; shared/reference/formats.md §4):
//
//	{"AlertType": 1, "AlertName": "...", "SearchPeriod": 300000, "HitCount": 0.0, "HitOperator": 2,
//	 "messages": [{"text": "...", "timestamp": 1451940578545, "fields": [{"name": "Field_1", "content": "Content 1"}]}],
//	 "HasMoreResults": false, "Url": "https://.../s/8pgzq6", "EditUrl": "...", "Info": "...", "Recommendation": null, "NumHits": 2}
//
// AlertType 1 is a message query (messages have text, timestamp in epoch
// milliseconds, fields); 2 an aggregate query (messages have only fields).
package loginsight

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vpipe/vpipe/parsers/vcenter"
	"github.com/vpipe/vpipe/pipeline"
)

// Alert is a decoded webhook body.
type Alert struct {
	AlertType      int
	AlertName      string
	SearchPeriod   int64
	HitCount       float64
	HitOperator    int
	Messages       []json.RawMessage `json:"messages"`
	HasMoreResults bool
	URL            string `json:"Url"`
	EditURL        string `json:"EditUrl"`
	Info           string
	NumHits        int
}

// Message is one message of an alert.
type Message struct {
	Text      string  `json:"text"`
	Timestamp int64   `json:"timestamp"`
	Fields    []Field `json:"fields"`
}

// Field is one extracted field of a message.
type Field struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ParseWebhook decodes an alert webhook body and calls emit once per
// message, in order, with a new event that emit may keep:
//
//   - event.original is the message's JSON object, exactly as received;
//     event.created is created; @timestamp is the message timestamp;
//   - a message whose text holds a vCenter event line or a tag attach/detach
//     sentence (vcenter.ParseText) becomes a vcenter.event with
//     vmware.vcenter.event_type com.vmware.cis.tagging.attach|detach,
//     vmware.vcenter.tag, vmware.vcenter.object.name and user.name;
//   - any other message is an http.generic event with the text as message;
//   - every event has rule.name = AlertName and the message's fields as
//     labels (name → content; dots in names become '_', as ECS label keys
//     must not contain dots), plus labels.alert_url when the alert has a Url.
//
// An alert without messages yields one http.generic event for the alert
// itself (original: the whole body), so that nothing is dropped. When the
// body is not an alert (not a JSON object, a member of the wrong type),
// ParseWebhook returns an error and emits nothing; a message that is not
// an object is skipped and reported in the error after the others were
// emitted. The caller sets log.source.address and event.id (e.g. with
// record.ID) as for its other events.
func ParseWebhook(data []byte, created time.Time, emit func(*pipeline.Event)) error {
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return fmt.Errorf("log insight webhook: expected a JSON object")
	}
	var a Alert
	if err := json.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("log insight webhook: %w", err)
	}
	if len(a.Messages) == 0 {
		e := &pipeline.Event{Original: bytes.Clone(data), Created: created}
		e.Dataset = pipeline.DatasetHTTPGeneric
		e.Observer.Vendor, e.Observer.Product = "VMware", "Aria Operations for Logs"
		e.Message = a.AlertName
		if a.Info != "" {
			e.Message = a.AlertName + ": " + a.Info
		}
		common(e, &a)
		emit(e)
		return nil
	}
	var bad []string
	for i, raw := range a.Messages {
		var m Message
		if err := json.Unmarshal(raw, &m); err != nil {
			bad = append(bad, fmt.Sprintf("messages[%d]: %v", i, err))
			continue
		}
		e := &pipeline.Event{Original: bytes.Clone(raw), Created: created}
		if t := time.UnixMilli(m.Timestamp).UTC(); m.Timestamp > 0 && t.Year() <= 9999 {
			// Outside RFC 3339's four-digit years the time cannot be
			// written in @timestamp; event.created stands in.
			e.Timestamp = t
		}
		if m.Text == "" || !vcenter.ParseText(e, []byte(m.Text)) {
			e.Dataset = pipeline.DatasetHTTPGeneric
			e.Message = m.Text
			e.Observer.Vendor, e.Observer.Product = "VMware", "Aria Operations for Logs"
		}
		for _, f := range m.Fields {
			e.AddLabel(strings.ReplaceAll(f.Name, ".", "_"), f.Content)
		}
		common(e, &a)
		emit(e)
	}
	if len(bad) > 0 {
		return fmt.Errorf("log insight webhook: %s", strings.Join(bad, "; "))
	}
	return nil
}

func common(e *pipeline.Event, a *Alert) {
	e.Rule.Name = a.AlertName
	if a.URL != "" {
		e.AddLabel("alert_url", a.URL)
	}
}
