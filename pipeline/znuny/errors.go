package znuny

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// ErrNotFound is returned (wrapped; check with errors.Is) when Znuny does
// not know the ticket (TicketGet.NotValidTicketID).
var ErrNotFound = errors.New("ticket not found in znuny")

// Error is a failed GenericInterface call: either an HTTP status other than
// 200 (StatusCode set) or, as Znuny answers operation errors, HTTP 200 with
// {"Error":{"ErrorCode":"TicketGet.AuthFail","ErrorMessage":"..."}}
// (Kernel/GenericInterface/Operation/Common.pm ReturnError; apis.md §5.2).
// Check with errors.As.
//
// errors.Is(err, pipeline.ErrPermanent) holds for operation errors about
// the request itself (AccessDenied, NotValidTicketID, MissingParameter,
// WrongStructure, ...): asking again cannot help. HTTP errors, network
// errors and AuthFail are retryable: a web server that is down, a wrong
// URL or a wrong password is fixed by the operator, and a stage should
// stall visibly rather than drop every ticket.
type Error struct {
	Op         string // "TicketGet", "TicketSearch", "SessionCreate"
	StatusCode int    // HTTP status when it was not 200; 0 for operation errors
	Code       string // ErrorCode, e.g. "TicketGet.AccessDenied"
	Message    string // ErrorMessage, or the start of a non-JSON body
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "znuny %s: ", e.Op)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Code != "" {
		if e.StatusCode != 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// AuthFail reports whether Znuny refused the credentials or the session.
func (e *Error) AuthFail() bool {
	return strings.HasSuffix(e.Code, ".AuthFail") || strings.HasSuffix(e.Code, ".InvalidSessionID")
}

// Retryable reports whether the same request may succeed later.
func (e *Error) Retryable() bool {
	if e.StatusCode != 0 || e.Code == "" {
		return true
	}
	return e.AuthFail()
}

// Is implements errors.Is for pipeline.ErrPermanent and ErrNotFound.
func (e *Error) Is(target error) bool {
	switch target {
	case pipeline.ErrPermanent:
		return !e.Retryable()
	case ErrNotFound:
		return strings.HasSuffix(e.Code, ".NotValidTicketID") || strings.HasSuffix(e.Code, ".NotTicketID")
	}
	return false
}
