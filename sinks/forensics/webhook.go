package forensics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// Webhook is a group's further action: an HTTP POST of a JSON document
// (WebhookBody) to a ticket system or chat after the stage acted on a
// join or leave.
type Webhook struct {
	URL string
	// Header is sent with every request (e.g. Authorization, read from a
	// secret file by the wiring). Content-Type and Idempotency-Key are set
	// by the stage.
	Header http.Header
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration
}

// WebhookBody is what a webhook receives. ID is the membership event's
// id, also sent as the Idempotency-Key header: a redelivered change posts
// the same document again, which a receiver can recognise.
type WebhookBody struct {
	ID        string          `json:"id"`
	Change    string          `json:"change"` // joined or left
	Group     string          `json:"group"`
	GroupName string          `json:"group_name,omitempty"`
	VM        WebhookVM       `json:"vm"`
	Time      time.Time       `json:"time"` // when the membership changed
	Actions   []WebhookAction `json:"actions"`
}

// WebhookVM identifies the VM in a WebhookBody.
type WebhookVM struct {
	ExternalID string `json:"external_id"` // vCenter instance UUID
	Name       string `json:"name,omitempty"`
	Ref        string `json:"ref,omitempty"` // vCenter managed object id
	VCenter    string `json:"vcenter,omitempty"`
}

// WebhookAction is one action the stage took, as audited.
type WebhookAction struct {
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Target  string `json:"target,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Error   string `json:"error,omitempty"`
}

// DefaultWebhookTimeout bounds one webhook request.
const DefaultWebhookTimeout = 10 * time.Second

// post sends body to w. 2xx is success; 408, 425, 429, 5xx and network
// errors are retryable; any other status is permanent.
func (w *Webhook) post(ctx context.Context, hc *http.Client, body *WebhookBody) error {
	b, err := json.Marshal(body)
	if err != nil {
		return pipeline.Permanent(err)
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("webhook %s: %w", redact(w.URL), err))
	}
	for k, v := range w.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", body.ID)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", redact(w.URL), err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusRequestTimeout, s == http.StatusTooEarly, s == http.StatusTooManyRequests, s >= 500:
		return fmt.Errorf("webhook %s: %s: %s", redact(w.URL), resp.Status, bytes.TrimSpace(snippet))
	default:
		return pipeline.Permanent(fmt.Errorf("webhook %s: %s: %s", redact(w.URL), resp.Status, bytes.TrimSpace(snippet)))
	}
}

// redact drops the user info and query of a URL (which may hold tokens)
// for logs and audit events.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid url)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}
