package httpin

import (
	"slices"
	"strings"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// RouteWebhooks is the prefix of the vendor webhook routes, and their
// route label on the metrics: POST /v1/webhooks/<name>.
const RouteWebhooks = "/v1/webhooks/"

// WebhookParser turns one webhook body (a vendor's JSON payload) into
// events, calling emit with each; created is when the request arrived.
// It must validate the whole body before it returns nil: on an error the
// request is answered 400 with the error text and nothing it emitted is
// published. The events it emits must not be reused by it; the handler sets
// their log.source.address and, derived from their bytes, event.id.
type WebhookParser func(body []byte, created time.Time, emit func(*pipeline.Event)) error

// webhookSplit returns the splitFunc of the webhook at path: it runs the
// parser, keeps its events in q.webhook and gives each a span whose start
// is its index there.
func (h *Handler) webhookSplit(path string, q *request, now time.Time) splitFunc {
	parse := h.webhooks[strings.TrimPrefix(path, RouteWebhooks)]
	return func(spans []span, body []byte, limit int) ([]span, error) {
		err := parse(body, now, func(e *pipeline.Event) {
			q.webhook = append(q.webhook, e)
		})
		if err != nil {
			clear(q.webhook)
			q.webhook = q.webhook[:0]
			return spans, &bodyError{reasonMalformed, err.Error()}
		}
		if len(q.webhook) > limit {
			clear(q.webhook)
			q.webhook = q.webhook[:0]
			return spans, tooMany(limit)
		}
		for i := range q.webhook {
			spans = append(spans, span{start: i})
		}
		return spans, nil
	}
}

// webhookNames lists the webhooks served, for the 404 answer.
func (h *Handler) webhookNames() string {
	names := make([]string, 0, len(h.webhooks))
	for n := range h.webhooks {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}
