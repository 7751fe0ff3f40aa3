package ticket

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequireSignature(t *testing.T) {
	secret := []byte("k3y")
	body := `{"TicketID": 7}`
	var reached string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reached = string(b)
		w.WriteHeader(http.StatusAccepted)
	})
	h, err := RequireSignature(next, Signature{Secret: secret, MaxBodyBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, sig, body string
		want                          int
		reaches                       bool
	}{
		{"signed", "POST", "/v1/webhooks/ticket", Sign(secret, []byte(body)), body, 202, true},
		{"bare hex upper case", "POST", "/v1/webhooks/ticket", strings.ToUpper(Sign(secret, []byte(body))[7:]), body, 202, true},
		{"missing", "POST", "/v1/webhooks/ticket", "", body, 401, false},
		{"other key", "POST", "/v1/webhooks/ticket", Sign([]byte("other"), []byte(body)), body, 401, false},
		{"body changed", "POST", "/v1/webhooks/ticket", Sign(secret, []byte(body)), `{"TicketID": 8}`, 401, false},
		{"other algorithm", "POST", "/v1/webhooks/ticket", "sha1=" + Sign(secret, []byte(body))[7:], body, 401, false},
		{"not hex", "POST", "/v1/webhooks/ticket", "sha256=zz", body, 401, false},
		{"too large", "POST", "/v1/webhooks/ticket", "sha256=00", strings.Repeat("x", 65), 413, false},
		{"other route", "POST", "/v1/events", "", body, 202, true},
		{"other method", "GET", "/v1/webhooks/ticket", "", body, 202, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached = ""
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.sig != "" {
				r.Header.Set(DefaultSignatureHeader, tc.sig)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.reaches != (reached == tc.body) {
				t.Fatalf("next got %q", reached)
			}
			if tc.want >= 400 && !strings.HasPrefix(w.Body.String(), `{"error":"`) {
				t.Errorf("answer %q is not a JSON error", w.Body)
			}
		})
	}
	if _, err := RequireSignature(next, Signature{}); err == nil {
		t.Error("an empty secret must be refused")
	}
}
