package provider

import (
	"context"
	"errors"
	"fmt"
	"github.com/spuffgo/spuff/provider/driver"
	"strings"
	"time"
)

// Kind classifies an error portably, whatever cloud it came from.
type Kind = driver.Kind

// The kinds of error a Provider returns. They follow the original spuff's
// ProviderError variants, plus conflict, outcome unknown and capacity.
const (
	// KindUnknown is an error that fits no other kind.
	KindUnknown = driver.KindUnknown
	// KindAuthentication: the credentials are missing, wrong or lack a
	// permission (HTTP 401 or 403). The message names the environment
	// variable to set when none were found.
	KindAuthentication = driver.KindAuthentication
	// KindRateLimit: the account's API rate limit was hit (HTTP 429, EC2
	// RequestLimitExceeded). Error.RetryAfter says how long to wait, when
	// the cloud said.
	KindRateLimit = driver.KindRateLimit
	// KindNotFound: the instance, snapshot or other resource does not exist.
	KindNotFound = driver.KindNotFound
	// KindQuotaExceeded: an account limit (machines, snapshots, cores) stops
	// the operation.
	KindQuotaExceeded = driver.KindQuotaExceeded
	// KindInvalidConfig: the request or configuration is invalid;
	// Error.Field names the offending field when it is known.
	KindInvalidConfig = driver.KindInvalidConfig
	// KindNotSupported: the provider cannot do this.
	KindNotSupported = driver.KindNotSupported
	// KindTimeout: an operation did not finish in time; Error.Elapsed and
	// Error.LastState say how long it ran and what it last saw.
	KindTimeout = driver.KindTimeout
	// KindAPI: the cloud answered with an error status not covered by the
	// other kinds; Error.Status has the HTTP status.
	KindAPI = driver.KindAPI
	// KindUnknownProvider: no provider is registered under the name asked for.
	KindUnknownProvider = driver.KindUnknownProvider
	// KindNetwork: the request did not reach the cloud or its answer was lost
	// (connection refused or reset, EOF, DNS failure).
	KindNetwork = driver.KindNetwork
	// KindConflict: the request collides with a resource that already
	// exists: a machine of the same name with other settings, or one spuff
	// does not manage on a cloud whose names are unique. Error.Existing
	// names that resource; it is not the caller's to clean up.
	KindConflict = driver.KindConflict
	// KindOutcomeUnknown: a create may or may not have made its machine,
	// and spuff could not find out in time. Nothing was made a second
	// time. Repeating the same request resolves it: the machine is adopted
	// once the cloud shows it.
	KindOutcomeUnknown = driver.KindOutcomeUnknown
	// KindCapacity: the cloud has no room for this size in this region or
	// zone now (EC2 InsufficientInstanceCapacity, Hetzner
	// resource_unavailable). Unlike KindQuotaExceeded it is not the
	// account's limit, and unlike KindInvalidConfig the size exists:
	// another placement, or the same one later, may work.
	KindCapacity = driver.KindCapacity
)

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
	ErrCapacity        = &sentinel{KindCapacity}
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

	retry bool // the cloud says to repeat it (see IsRetryable)
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
	if e.Err != nil && e.Err.Error() != "" {
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
	return driver.KindOf(err)
}

// IsRetryable reports whether repeating the failed call may succeed: true for
// rate limits, timeouts, network errors (as in the original spuff), unknown
// outcomes, API errors with a 5xx status and the errors a cloud says to repeat (Hetzner's
// conflict and locked). A cancelled context is never retryable. Repeating a
// CreateInstance or CreateSnapshot is always safe: the same request never
// makes a second resource.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var e *Error
	if errors.As(err, &e) && e.retry {
		return true
	}
	switch KindOf(err) {
	case KindRateLimit, KindTimeout, KindNetwork, KindOutcomeUnknown:
		return true
	case KindAPI:
		return errors.As(err, &e) && e.Status >= 500
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

// wrapErr turns what a driver call returned into an *Error of the
// provider and operation: a *driver.Error keeps its details, a context's
// error keeps matching it, a raw error is classified. An *Error already
// made is filled in.
func wrapErr(providerName, op string, err error) error {
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
	e := &Error{Provider: providerName, Op: op, Err: err}
	var de *driver.Error
	switch {
	case errors.As(err, &de):
		e.Kind, e.Status, e.Code, e.Field, e.RetryAfter, e.Message, e.retry = de.Kind, de.Status, de.Code, de.Field, de.RetryAfter, de.Message, de.Retry
		e.Err = de.Err
	case errors.Is(err, context.Canceled):
		e.Kind, e.Message = KindUnknown, "canceled"
	default:
		e.Kind = KindOf(err)
	}
	return e
}

// outcomeUnknown reports whether a failed call that changes something (a
// create, a snapshot, a delete) may nonetheless have made the change: no
// answer, a garbled or empty one, a timeout, a cancellation after the
// request left, or a 5xx. A 3xx or 4xx answer, or an error found before
// any call, means the change was not made.
func outcomeUnknown(err error) bool {
	if err == nil {
		return false
	}
	switch KindOf(err) {
	case KindInvalidConfig, KindAuthentication, KindNotSupported, KindNotFound, KindUnknownProvider,
		KindConflict, KindQuotaExceeded, KindCapacity, KindRateLimit:
		return false // the cloud refused it (EC2 says "no capacity" with a 500)
	}
	var perr *Error
	if errors.As(err, &perr) {
		switch {
		case perr.Status >= 500, perr.Status >= 200 && perr.Status < 300:
			return true // a 5xx, or a success whose answer could not be read
		case perr.Status != 0:
			return false
		}
	}
	return true
}

// invalid returns an *Error of KindInvalidConfig naming field.
func invalid(field, message string) *Error {
	return &Error{Kind: KindInvalidConfig, Field: field, Message: message}
}
