package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind classifies an error portably, whatever cloud it came from.
// provider.Kind is this type.
type Kind int

// The kinds of error. They follow the original spuff's ProviderError
// variants, plus conflict and outcome-unknown.
const (
	// KindUnknown is an error that fits no other kind.
	KindUnknown Kind = iota
	// KindAuthentication: the credentials are missing, wrong or lack a
	// permission (HTTP 401 or 403).
	KindAuthentication
	// KindRateLimit: the account's API rate limit was hit.
	KindRateLimit
	// KindNotFound: the resource does not exist.
	KindNotFound
	// KindQuotaExceeded: an account limit stops the operation.
	KindQuotaExceeded
	// KindInvalidConfig: the request or configuration is invalid.
	KindInvalidConfig
	// KindNotSupported: the provider cannot do this.
	KindNotSupported
	// KindTimeout: an operation did not finish in time.
	KindTimeout
	// KindAPI: the cloud answered with an error no other kind covers.
	KindAPI
	// KindUnknownProvider: no provider is registered under the name.
	KindUnknownProvider
	// KindNetwork: the request got no usable answer.
	KindNetwork
	// KindConflict: the request collides with a resource that exists (a
	// name taken).
	KindConflict
	// KindOutcomeUnknown: a change may or may not have been made.
	KindOutcomeUnknown
	// KindCapacity: the cloud has no room for this size in this region
	// or zone now (not the account's quota, not a size that never
	// exists); another placement, or later, may work.
	KindCapacity
)

var kindNames = [...]string{
	"unknown error", "authentication failed", "rate limited", "not found",
	"quota exceeded", "invalid config", "not supported", "timed out",
	"API error", "unknown provider", "network error", "conflict",
	"outcome unknown", "no capacity",
}

// String returns a short description of the kind ("not found").
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return kindNames[0]
	}
	return kindNames[k]
}

// Error is the error a Driver returns for an answer of the cloud: its Kind
// and what the cloud said. The portable layer turns it into a
// provider.Error, adding the provider, operation and resource.
type Error struct {
	// Kind classifies the error.
	Kind Kind
	// Status is the HTTP status the cloud answered, or 0.
	Status int
	// Code is the cloud's own error code ("uniqueness_error").
	Code string
	// Field names the request field at fault, for KindInvalidConfig.
	Field string
	// RetryAfter is how long the cloud asked to wait, for KindRateLimit
	// and other errors worth repeating later; 0 when it did not say.
	RetryAfter time.Duration
	// Retry marks an error the cloud says is worth repeating although its
	// Kind is not (Hetzner's conflict and locked).
	Retry bool
	// Message is a human-readable description, with no credential or
	// user data in it.
	Message string
	// Err is the SDK's error, or nil.
	Err error
}

// Error formats the error as "<kind> [HTTP <status> <code>]: <message>: <cause>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	if e.Field != "" {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " [HTTP %d", e.Status)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		b.WriteByte(']')
	} else if e.Code != "" {
		fmt.Fprintf(&b, " [%s]", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Err != nil && e.Err.Error() != "" {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the SDK's error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind with a formatted message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an *Error of KindInvalidConfig naming field.
func Invalid(field, message string) *Error {
	return &Error{Kind: KindInvalidConfig, Field: field, Message: message}
}

// NotFound returns an *Error of KindNotFound.
func NotFound(message string) *Error { return &Error{Kind: KindNotFound, Message: message} }

// Lost returns the error of an answer that came but cannot be used (an
// empty or garbled success body): as good as a lost answer, so a create
// that got it may have made its machine.
func Lost(message string, cause error) *Error {
	return &Error{Kind: KindNetwork, Message: message, Err: cause}
}

// FromStatus returns the *Error of an HTTP answer with the given status:
// its Kind from KindForStatus, RetryAfter from the Retry-After header of a
// 429, and cause as Err. Drivers refine it with the cloud's codes.
func FromStatus(status int, header http.Header, message string, cause error) *Error {
	e := &Error{Kind: KindForStatus(status), Status: status, Message: message, Err: cause}
	if e.Kind == KindUnknown {
		e.Kind = KindAPI // a status the API does not answer errors with
	}
	if status == http.StatusTooManyRequests && header != nil {
		e.RetryAfter = ParseRetryAfter(header.Get("Retry-After"), time.Now())
	}
	return e
}

// KindForStatus maps an HTTP status to the Kind every cloud shares: 401
// and 403 are authentication, 404 not found, 400 and 422 invalid config,
// 409 conflict, 429 rate limit, other 4xx and 5xx API errors.
func KindForStatus(status int) Kind {
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return KindAuthentication
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusBadRequest, status == http.StatusUnprocessableEntity:
		return KindInvalidConfig
	case status == http.StatusTooManyRequests:
		return KindRateLimit
	case status >= 400:
		return KindAPI
	}
	return KindUnknown
}

// ParseRetryAfter parses a Retry-After value: delay seconds (whole or
// fractional) or an HTTP date, relative to now. It returns 0 for an empty
// or malformed value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if !(secs > 0 && secs <= 86400) { // also rejects NaN
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Quiet wraps an SDK error whose text only repeats what Error.Message says
// (with a request URL to boot, as godo's does): errors.As still reaches it,
// but it adds nothing to the error's text.
func Quiet(err error) error {
	if err == nil {
		return nil
	}
	return quiet{err}
}

type quiet struct{ err error }

func (q quiet) Error() string { return "" }
func (q quiet) Unwrap() error { return q.err }

// KindOf returns the Kind of an error a driver call returned: the Kind of
// the first *Error in its chain, KindTimeout for an expired context,
// KindNetwork for a request that got no answer, else KindUnknown.
func KindOf(err error) Kind {
	if err == nil {
		return KindUnknown
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var k interface{ SpuffKind() Kind }
	if errors.As(err, &k) {
		return k.SpuffKind()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	if IsNetwork(err) {
		return KindNetwork
	}
	return KindUnknown
}

// IsNetwork reports whether err is a transport failure: the request got no
// HTTP answer, or its answer broke off.
func IsNetwork(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	var tl *BodyTooLargeError
	if errors.As(err, &tl) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection reset", "connection refused", "broken pipe", "EOF", "server closed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// BodyTooLargeError is the error of reading an API answer past the bound
// the portable layer's HTTP client sets (32 MiB): the answer is unusable,
// as good as lost (KindNetwork).
type BodyTooLargeError struct {
	// Limit is the number of bytes that could be read.
	Limit int64
}

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("API answer larger than %d bytes", e.Limit)
}
