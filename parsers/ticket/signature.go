package ticket

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// DefaultSignatureHeader is the header RequireSignature reads.
const DefaultSignatureHeader = "X-Vpipe-Signature"

// Signature configures RequireSignature.
type Signature struct {
	// Secret is the shared HMAC-SHA256 key. Required.
	Secret []byte
	// Header carries "sha256=<hex HMAC-SHA256 of the body>" (as GitHub's
	// X-Hub-Signature-256; a bare hex digest is accepted too). Default
	// X-Vpipe-Signature.
	Header string
	// Path is the route it guards. Default /v1/webhooks/ticket.
	Path string
	// MaxBodyBytes bounds the body read to check it; a larger body is
	// answered 413. Default 10 MiB (httpin's default limit).
	MaxBodyBytes int64
}

// Sign returns the header value for body under secret: "sha256=" and the
// hex HMAC-SHA256.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// RequireSignature wraps the HTTP ingest handler: a POST to s.Path must
// carry a valid signature of its exact body in s.Header, or it is answered
// 401 with a JSON {"error": ...} and never reaches next; every other
// request goes to next unchanged. A signed request goes on to next with
// its body intact, so the bearer token (httpin's check) is still required
// when one is configured.
//
// Znuny's own invoker cannot sign its requests (its HTTP::REST requester
// offers Basic auth and, in Znuny 7, extra headers only): use a signature
// where a script, a proxy or another help desk posts the webhook. The
// signature covers the body only, not a time: a replayed webhook makes the
// stage read the ticket again and change nothing, so replay protection is
// not needed here.
func RequireSignature(next http.Handler, s Signature) (http.Handler, error) {
	if len(s.Secret) == 0 {
		return nil, errors.New("ticket webhook signature: empty secret")
	}
	if s.Header == "" {
		s.Header = DefaultSignatureHeader
	}
	if s.Path == "" {
		s.Path = "/v1/webhooks/ticket"
	}
	if s.MaxBodyBytes <= 0 {
		s.MaxBodyBytes = 10 << 20
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != s.Path || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		got := strings.TrimSpace(r.Header.Get(s.Header))
		if got == "" {
			refuse(w, http.StatusUnauthorized, "missing "+s.Header+" header: the ticket webhook must be signed (sha256=<hex HMAC-SHA256 of the body>)")
			return
		}
		if r.ContentLength > s.MaxBodyBytes {
			refuse(w, http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(s.MaxBodyBytes, 10)+" bytes")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				refuse(w, http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(s.MaxBodyBytes, 10)+" bytes")
				return
			}
			refuse(w, http.StatusBadRequest, "read body: "+err.Error())
			return
		}
		if !Verify(s.Secret, body, got) {
			refuse(w, http.StatusUnauthorized, "bad "+s.Header+": the body's HMAC-SHA256 does not match")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	}), nil
}

// Verify reports whether sig ("sha256=<hex>" or "<hex>", hex in either
// case) is the HMAC-SHA256 of body under secret. It takes constant time
// in the digest.
func Verify(secret, body []byte, sig string) bool {
	sig = strings.TrimSpace(sig)
	if p, rest, ok := strings.Cut(sig, "="); ok {
		if !strings.EqualFold(p, "sha256") {
			return false
		}
		sig = rest
	}
	want, err := hex.DecodeString(sig)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), want)
}

func refuse(w http.ResponseWriter, code int, msg string) {
	q, _ := json.Marshal(msg)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(append([]byte(`{"error":`), q...), "}\n"...))
}
