package ticket

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBasicAuthAsBearer(t *testing.T) {
	var got string
	h := BasicAuthAsBearer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
	}), "")
	for _, tc := range []struct {
		name, method, path, user, pass, header, want string
	}{
		{"znuny basic auth", "POST", "/v1/webhooks/ticket", "znuny", "tok", "", "Bearer tok"},
		{"bearer unchanged", "POST", "/v1/webhooks/ticket", "", "", "Bearer tok", "Bearer tok"},
		{"no credentials", "POST", "/v1/webhooks/ticket", "", "", "", ""},
		{"empty password", "POST", "/v1/webhooks/ticket", "znuny", "", "", "Basic " + "em51bnk6"},
		{"other route", "POST", "/v1/events", "znuny", "tok", "", "Basic em51bnk6dG9r"},
		{"other method", "GET", "/v1/webhooks/ticket", "znuny", "tok", "", "Basic em51bnk6dG9r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}"))
			if tc.user != "" {
				r.SetBasicAuth(tc.user, tc.pass)
			}
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			got = ""
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tc.want {
				t.Fatalf("Authorization %q, want %q", got, tc.want)
			}
		})
	}
}
