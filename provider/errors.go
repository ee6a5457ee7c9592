package provider

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
type Kind int

// The kinds of error a Provider returns. They follow the original spuff's
// ProviderError variants.
const (
	// KindUnknown is an error that fits no other kind.
	KindUnknown Kind = iota
	// KindAuthentication: the credentials are missing, wrong or lack a
	// permission (HTTP 401 or 403).
	KindAuthentication
	// KindRateLimit: the account's API rate limit was hit (HTTP 429, EC2
	// RequestLimitExceeded). Error.RetryAfter says how long to wait, when the
	// cloud said.
	KindRateLimit
	// KindNotFound: the instance, snapshot or other resource does not exist.
	KindNotFound
	// KindQuotaExceeded: an account limit (machines, snapshots, cores) stops
	// the operation.
	KindQuotaExceeded
	// KindInvalidConfig: the request or configuration is invalid;
	// Error.Field names the offending field when it is known.
	KindInvalidConfig
	// KindNotSupported: the provider cannot do this.
	KindNotSupported
	// KindTimeout: an operation did not finish in time; Error.Elapsed and
	// Error.LastState say how long it ran and what it last saw.
	KindTimeout
	// KindAPI: the cloud answered with an error status not covered by the
	// other kinds; Error.Status has the HTTP status.
	KindAPI
	// KindUnknownProvider: no provider is registered under the name asked for.
	KindUnknownProvider
	// KindNetwork: the request did not reach the cloud or its answer was lost
	// (connection refused or reset, EOF, DNS failure).
	KindNetwork
	// KindConflict: the request collides with a resource that already
	// exists: a machine of the same name with other settings, or one spuff
	// does not manage. Error.Existing names that resource; it is not the
	// caller's to clean up.
	KindConflict
	// KindOutcomeUnknown: a call that changes something (a create) may or
	// may not have made its change, and spuff could not find out in time.
	// Nothing was made a second time. Repeating the same request resolves
	// it: the resource is adopted if it exists, made if it does not.
	KindOutcomeUnknown
)

var kindNames = [...]string{
	"unknown error", "authentication failed", "rate limited", "not found",
	"quota exceeded", "invalid config", "not supported", "timed out",
	"API error", "unknown provider", "network error", "conflict",
	"outcome unknown",
}

// String returns a short description of the kind ("not found").
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return kindNames[0]
	}
	return kindNames[k]
}

// Sentinel errors, one per Kind, for use with errors.Is:
//
//	if errors.Is(err, provider.ErrNotFound) { ... }
//
// An *Error matches the sentinel of its Kind. A driver may also return a
// sentinel directly.
var (
	ErrAuthentication  = &sentinel{KindAuthentication}
	ErrRateLimit       = &sentinel{KindRateLimit}
	ErrNotFound        = &sentinel{KindNotFound}
	ErrQuotaExceeded   = &sentinel{KindQuotaExceeded}
	ErrInvalidConfig   = &sentinel{KindInvalidConfig}
	ErrNotSupported    = &sentinel{KindNotSupported}
	ErrTimeout         = &sentinel{KindTimeout}
	ErrAPI             = &sentinel{KindAPI}
	ErrUnknownProvider = &sentinel{KindUnknownProvider}
	ErrNetwork         = &sentinel{KindNetwork}
	ErrConflict        = &sentinel{KindConflict}
	ErrOutcomeUnknown  = &sentinel{KindOutcomeUnknown}
)

type sentinel struct{ kind Kind }

func (s *sentinel) Error() string { return "spuff: " + s.kind.String() }

// Error is the error type every Provider returns. Match its Kind with
// errors.Is against the sentinels (ErrNotFound, ...), or get the details with
// errors.As:
//
//	var perr *provider.Error
//	if errors.As(err, &perr) && perr.Kind == provider.KindInvalidConfig {
//		fmt.Println("bad field:", perr.Field)
//	}
//
// The underlying SDK error stays reachable through Unwrap. Error text never
// contains credentials or user data.
type Error struct {
	// Kind classifies the error.
	Kind Kind
	// Provider is the provider's registered name ("hetzner").
	Provider string
	// Op is the operation that failed ("CreateInstance").
	Op string
	// Resource is the kind of resource concerned ("instance", "snapshot").
	Resource string
	// ID is the ID of the resource the call was about (the instance a
	// DestroyInstance named). It is never a reason to destroy anything:
	// see Leftover.
	ID string
	// Leftover is the ID of a machine or snapshot that this very call
	// made and left behind (it could not finish or clean up). It is set
	// only for a resource this call created, never for one that existed
	// before; the caller owns it and may destroy it. Cleanup code reads
	// this field and no other.
	Leftover string
	// Existing is the ID of a resource that was there before the call and
	// stands in its way, for KindConflict (the machine that holds the
	// name). It is not the caller's to clean up.
	Existing string
	// Field names the invalid field for KindInvalidConfig ("Name",
	// `Labels["env"]`).
	Field string
	// Status is the HTTP status the cloud answered, or 0.
	Status int
	// Code is the cloud's own error code ("uniqueness_error",
	// "InvalidInstanceID.NotFound"), when it sent one.
	Code string
	// RetryAfter is how long the cloud asked to wait, for KindRateLimit; 0
	// when it did not say.
	RetryAfter time.Duration
	// Elapsed is how long the operation ran, for KindTimeout.
	Elapsed time.Duration
	// LastState is the last state seen before a KindTimeout ("new",
	// "running without public IP").
	LastState string
	// Message is a human-readable description.
	Message string
	// Err is the underlying error (typically the SDK's), or nil.
	Err error
}

// Error formats the error as
// "spuff: <provider>: <op> <resource> <id>: <kind>: <message>: <cause>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("spuff: ")
	if e.Provider != "" {
		b.WriteString(e.Provider)
		b.WriteString(": ")
	}
	if e.Op != "" {
		b.WriteString(e.Op)
		if e.Resource != "" || e.ID != "" {
			b.WriteByte(' ')
		}
	}
	if e.Resource != "" {
		b.WriteString(e.Resource)
		if e.ID != "" {
			b.WriteByte(' ')
		}
	}
	if e.ID != "" {
		b.WriteString(e.ID)
	}
	if e.Op != "" || e.Resource != "" || e.ID != "" {
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	switch e.Kind {
	case KindInvalidConfig:
		if e.Field != "" {
			fmt.Fprintf(&b, " (field %s)", e.Field)
		}
	case KindRateLimit:
		if e.RetryAfter > 0 {
			fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
		}
	case KindTimeout:
		fmt.Fprintf(&b, " after %s", e.Elapsed.Round(time.Millisecond))
		if e.LastState != "" {
			fmt.Fprintf(&b, " (last state: %s)", e.LastState)
		}
	}
	if e.Status != 0 && e.Kind != KindTimeout {
		fmt.Fprintf(&b, " [HTTP %d", e.Status)
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		b.WriteByte(']')
	} else if e.Code != "" {
		fmt.Fprintf(&b, " [%s]", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's Kind.
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	return ok && s.kind == e.Kind
}

// KindOf returns the Kind of err: the Kind of the first *Error in its chain,
// the kind of a sentinel, KindTimeout for context.DeadlineExceeded,
// KindNetwork for network errors, or KindUnknown.
func KindOf(err error) Kind {
	if err == nil {
		return KindUnknown
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var s *sentinel
	if errors.As(err, &s) {
		return s.kind
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	if isNetworkError(err) {
		return KindNetwork
	}
	return KindUnknown
}

// IsRetryable reports whether repeating the failed call may succeed: true for
// rate limits, timeouts, network errors (as in the original spuff) and API
// errors with a 5xx status. A cancelled context is never retryable.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch KindOf(err) {
	case KindRateLimit, KindTimeout, KindNetwork:
		return true
	case KindAPI:
		var e *Error
		if errors.As(err, &e) {
			return e.Status >= 500
		}
	}
	return false
}

// RetryAfter returns how long the cloud asked the caller to wait before
// retrying, and whether it said. It reads Error.RetryAfter.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// KindForStatus maps an HTTP status to the Kind every cloud shares: 401 and
// 403 are authentication, 404 not found, 400 and 422 invalid config, 429
// rate limit, other 4xx and 5xx API errors. Drivers refine it with the
// cloud's error codes (a quota is a 403 on Hetzner, a 422 on DigitalOcean).
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

// ParseRetryAfter parses a Retry-After header value: delay seconds (whole or
// fractional) or an HTTP date, relative to now. It returns 0 for an empty or
// malformed value.
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

// isNetworkError reports whether err is a transport failure: the request did
// not get an HTTP answer.
func isNetworkError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
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

// Classify turns err, returned by an SDK call that got the given HTTP status
// (0 when no response arrived), into an *Error of the right Kind for the
// provider and operation. A nil err gives nil; an err that already holds an
// *Error or is a context error is returned with provider and op filled in;
// an err wrapping a sentinel (ErrNotFound, ...) keeps the sentinel's Kind.
// Drivers refine the result with the cloud's own codes.
func Classify(providerName, op string, status int, header http.Header, err error) error {
	if err == nil {
		return nil
	}
	var existing *Error
	if errors.As(err, &existing) {
		if existing.Provider == "" {
			existing.Provider = providerName
		}
		if existing.Op == "" {
			existing.Op = op
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Kind: KindUnknown, Provider: providerName, Op: op, Message: "canceled", Err: err}
	}
	e := &Error{Provider: providerName, Op: op, Status: status, Err: err}
	var s *sentinel
	var tooLarge *BodyTooLargeError
	switch {
	case errors.As(err, &s):
		// A driver that returned a sentinel (ErrNotFound, ...) has
		// already said what kind of error it is.
		e.Kind = s.kind
	case errors.As(err, &tooLarge):
		// An answer that cannot be read whole is as good as lost.
		e.Kind = KindNetwork
	case status >= 300:
		e.Kind = KindForStatus(status)
		if e.Kind == KindUnknown {
			// A status the API does not answer errors with (a redirect
			// the client did not follow).
			e.Kind = KindAPI
		}
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindTimeout
	case isNetworkError(err):
		e.Kind = KindNetwork
	default:
		e.Kind = KindUnknown
	}
	if e.Kind == KindRateLimit && header != nil {
		e.RetryAfter = ParseRetryAfter(header.Get("Retry-After"), time.Now())
	}
	return e
}

// OutcomeUnknown reports whether a failed call that changes something (a
// create, a snapshot, a delete) may nonetheless have made the change: no
// answer, a garbled or empty one, a timeout, a cancellation after the
// request left, or a 5xx. A 3xx or 4xx answer, or an error found before
// any call, means the change was not made. Drivers use it to decide when to
// look for what a create may have made before making it again.
func OutcomeUnknown(err error) bool {
	if err == nil {
		return false
	}
	var perr *Error
	if errors.As(err, &perr) {
		switch {
		case perr.Status >= 500, perr.Status >= 200 && perr.Status < 300:
			// A 5xx, or a success whose answer could not be read.
			return true
		case perr.Status != 0:
			return false
		}
	}
	switch KindOf(err) {
	case KindInvalidConfig, KindAuthentication, KindNotSupported, KindNotFound, KindUnknownProvider:
		return false
	}
	return true
}

// MalformedID returns the error of an ID that cannot be one of the cloud's
// (not of its format), found before any call. For a lookup (GetInstance,
// WaitReady) it is an *Error of KindNotFound: no resource has that ID. For
// an operation on the resource (DestroyInstance, CreateSnapshot,
// DeleteSnapshot) it is an *Error of KindInvalidConfig naming the field
// "id": the caller passed something that is not an ID at all, and
// reporting success (destroy is idempotent) would hide the mistake.
func MalformedID(providerName, op, resource, id, message string, lookup bool) *Error {
	e := &Error{Provider: providerName, Op: op, Resource: resource, ID: id, Message: message}
	if lookup {
		e.Kind = KindNotFound
	} else {
		e.Kind, e.Field = KindInvalidConfig, "id"
	}
	return e
}
