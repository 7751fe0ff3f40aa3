package ticket

import (
	"net/http"
	"strings"
)

// BasicAuthAsBearer wraps the HTTP ingest handler so that a POST to path
// (default /v1/webhooks/ticket) may present vpipe's bearer token as the
// password of HTTP Basic authentication: "Authorization: Basic
// base64(<any user>:<token>)" is handed on as "Authorization: Bearer
// <token>", which httpin then checks as for every ingest route. Every other
// request, and one without Basic credentials, goes on unchanged.
//
// Znuny's HTTP::REST requester can authenticate only with Basic auth
// (Kernel/GenericInterface/Transport/HTTP/REST.pm, RequesterPerformRequest:
// Authentication AuthType BasicAuth), not with a bearer token; with this
// wrapper its invoker reaches a vpipe whose ingest requires one.
func BasicAuthAsBearer(next http.Handler, path string) http.Handler {
	if path == "" {
		path = "/v1/webhooks/ticket"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path && r.Method == http.MethodPost {
			if _, pass, ok := r.BasicAuth(); ok && pass != "" {
				r = r.Clone(r.Context())
				r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(pass))
			}
		}
		next.ServeHTTP(w, r)
	})
}
