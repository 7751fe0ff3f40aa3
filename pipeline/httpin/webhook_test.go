package httpin

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/parsers/loginsight"
	"github.com/vpipe/vpipe/pipeline"
)

// TestWebhook serves the Log Insight alert webhook with its real parser.
func TestWebhook(t *testing.T) {
	body, err := os.ReadFile("../../testdata/samples/loginsight-webhook.json")
	if err != nil {
		t.Fatal(err)
	}
	pub := &testPublisher{}
	h := NewHandler(Config{}, Deps{
		Parser: lineParser{}, Publisher: pub, Metrics: NewMetrics(prometheus.NewRegistry()),
		Webhooks: map[string]WebhookParser{"loginsight": loginsight.ParseWebhook},
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	v := &env{h: h, srv: srv, pub: pub}

	a := v.post(t, "/v1/webhooks/loginsight", "application/json", string(body))
	if a.code != 202 {
		t.Fatalf("answer %d %s", a.code, a.raw)
	}
	evs := pub.published()
	if len(evs) == 0 || float64(len(evs)) != a.body["accepted"] {
		t.Fatalf("published %d events, answer %s", len(evs), a.raw)
	}
	for _, e := range evs {
		if e.ID == "" || e.LogSource == "" || e.Dataset == "" || e.Original == "" {
			t.Errorf("event lacks id, source, dataset or original: %+v", e)
		}
	}

	wantError(t, v.post(t, "/v1/webhooks/loginsight", "application/json", `{"messages": [`), 400, "log insight webhook")
	wantError(t, v.post(t, "/v1/webhooks/loginsight", "text/plain", string(body)), 415)
	wantError(t, v.post(t, "/v1/webhooks/nope", "application/json", string(body)), 404, "loginsight")
	if n := len(pub.published()); n != len(evs) {
		t.Fatalf("rejected requests published %d events", n-len(evs))
	}
	tag := `{"AlertType":1,"AlertName":"vTagSync","messages":[{"text":"User VSPHERE.LOCAL\\Administrator attached tag example-tag to object example-vm","timestamp":1451940578545,"fields":[]}]}`
	wantAccepted(t, v.post(t, "/v1/webhooks/loginsight", "application/json", tag), 1)
	last := pub.published()[len(evs)]
	if last.Dataset != pipeline.DatasetVCenterEvent || !strings.Contains(last.Original, "attached tag") {
		t.Fatalf("tag attach alert became %+v", last)
	}
}
