package nsx

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// ErrNotFound is returned (wrapped, check with errors.Is) when NSX does not
// know the VM: it is not, or not yet, in NSX's inventory. NSX learns a new
// VM from its host within seconds to minutes.
var ErrNotFound = errors.New("not found in nsx")

// ErrUnsupported is returned by an operation the configured API has no
// endpoint for (e.g. finding VMs by name on NSX-V).
var ErrUnsupported = errors.New("not supported by this nsx api")

// Error is an NSX API error: the HTTP status and the body NSX sent, which
// for NSX-T / NSX 4.x is an ApiError
// (https://developer.broadcom.com/xapis/nsx-t-data-center-rest-api/2.2/data-structures/ApiError)
// and for NSX-V an <error> document (nsxraml). Check with errors.As.
//
// errors.Is(err, pipeline.ErrPermanent) holds for statuses that retrying
// the same request cannot fix (400, 404, 409, 412, 413, 422 and other 4xx
// except those below); 401, 403, 408, 429, 5xx are retryable: a bad
// password or a missing permission is fixed by the operator, and a stage
// should stall visibly rather than send every record to its DLQ.
// errors.Is(err, ErrNotFound) holds for 404.
type Error struct {
	Op         string // the request, e.g. "POST /api/v1/fabric/virtual-machines?action=add_tags"
	StatusCode int
	Code       int    // NSX error_code (NSX-V errorCode); 0 when absent
	Message    string // error_message (NSX-V details)
	Module     string // module_name, e.g. "common-services"
	// Related holds related_errors' messages, when NSX gave any.
	Related []string
	// RetryAfter is what the Retry-After header asked for (0: absent).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nsx %s: %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != 0 {
		fmt.Fprintf(&b, ": error %d", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	for _, r := range e.Related {
		b.WriteString("; ")
		b.WriteString(r)
	}
	return b.String()
}

// Retryable reports whether the same request may succeed later.
func (e *Error) Retryable() bool {
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	return e.StatusCode >= 500 || e.StatusCode < 400
}

// Is implements errors.Is for pipeline.ErrPermanent and ErrNotFound.
func (e *Error) Is(target error) bool {
	switch target {
	case pipeline.ErrPermanent:
		return !e.Retryable()
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	}
	return false
}

// apiError is NSX-T's ApiError body.
type apiError struct {
	ErrorCode     int    `json:"error_code"`
	ErrorMessage  string `json:"error_message"`
	ModuleName    string `json:"module_name"`
	Details       string `json:"details"`
	RelatedErrors []struct {
		ErrorCode    int    `json:"error_code"`
		ErrorMessage string `json:"error_message"`
	} `json:"related_errors"`
}

// nsxvError is NSX-V's error body: <error><details>…</details><errorCode>…</errorCode><moduleName>…</moduleName></error>.
type nsxvError struct {
	XMLName     xml.Name `xml:"error"`
	Details     string   `xml:"details"`
	Description string   `xml:"description"`
	ErrorCode   int      `xml:"errorCode"`
	ModuleName  string   `xml:"moduleName"`
}

// newError builds the Error of a non-2xx answer from its body, JSON or XML.
func newError(op string, status int, body []byte, retryAfter time.Duration) *Error {
	e := &Error{Op: op, StatusCode: status, RetryAfter: retryAfter}
	trimmed := strings.TrimSpace(string(body))
	switch {
	case strings.HasPrefix(trimmed, "{"):
		var a apiError
		if json.Unmarshal(body, &a) == nil {
			e.Code, e.Message, e.Module = a.ErrorCode, a.ErrorMessage, a.ModuleName
			if e.Message == "" {
				e.Message = a.Details
			}
			for _, r := range a.RelatedErrors {
				e.Related = append(e.Related, fmt.Sprintf("error %d: %s", r.ErrorCode, r.ErrorMessage))
			}
			return e
		}
	case strings.HasPrefix(trimmed, "<"):
		var x nsxvError
		if xml.Unmarshal(body, &x) == nil {
			e.Code, e.Message, e.Module = x.ErrorCode, x.Details, x.ModuleName
			if e.Message == "" {
				e.Message = x.Description
			}
			return e
		}
	}
	if len(trimmed) > 200 {
		trimmed = trimmed[:200] + "…"
	}
	e.Message = trimmed
	return e
}
