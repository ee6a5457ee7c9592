package provider_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/spuffgo/spuff/provider/driver"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
)

// sdkError stands in for a cloud SDK's own error type (godo.ErrorResponse,
// hcloud.Error, smithy.APIError).
type sdkError struct {
	Status int
	Code   string
}

func (e *sdkError) Error() string { return fmt.Sprintf("sdk: %d %s", e.Status, e.Code) }

var sentinels = []struct {
	kind provider.Kind
	err  error
}{
	{provider.KindAuthentication, provider.ErrAuthentication},
	{provider.KindRateLimit, provider.ErrRateLimit},
	{provider.KindNotFound, provider.ErrNotFound},
	{provider.KindQuotaExceeded, provider.ErrQuotaExceeded},
	{provider.KindInvalidConfig, provider.ErrInvalidConfig},
	{provider.KindNotSupported, provider.ErrNotSupported},
	{provider.KindTimeout, provider.ErrTimeout},
	{provider.KindAPI, provider.ErrAPI},
	{provider.KindUnknownProvider, provider.ErrUnknownProvider},
	{provider.KindNetwork, provider.ErrNetwork},
}

func TestErrorIsMatchesOnlyItsSentinel(t *testing.T) {
	t.Parallel()
	for _, s := range sentinels {
		t.Run(s.kind.String(), func(t *testing.T) {
			t.Parallel()
			inner := &sdkError{Status: 500, Code: "boom"}
			e := &provider.Error{Kind: s.kind, Provider: "hetzner", Op: "GetInstance", Err: inner}
			wrapped := fmt.Errorf("outer: %w", e)
			for _, err := range []error{e, wrapped} {
				for _, other := range sentinels {
					if got, want := errors.Is(err, other.err), other.kind == s.kind; got != want {
						t.Errorf("errors.Is(%v, %v) = %v, want %v", err, other.err, got, want)
					}
				}
				var perr *provider.Error
				if !errors.As(err, &perr) || perr != e {
					t.Errorf("errors.As did not reach the *Error")
				}
				var sdk *sdkError
				if !errors.As(err, &sdk) || sdk != inner {
					t.Errorf("errors.As did not reach the SDK error through Unwrap")
				}
				if !errors.Is(err, inner) {
					t.Errorf("errors.Is(err, inner) = false")
				}
				if got := provider.KindOf(err); got != s.kind {
					t.Errorf("KindOf = %v, want %v", got, s.kind)
				}
			}
			// A sentinel returned bare matches itself only.
			for _, other := range sentinels {
				if got, want := errors.Is(s.err, other.err), other.kind == s.kind; got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", s.err, other.err, got, want)
				}
			}
			if got := provider.KindOf(fmt.Errorf("x: %w", s.err)); got != s.kind {
				t.Errorf("KindOf(wrapped sentinel) = %v, want %v", got, s.kind)
			}
			if !strings.HasPrefix(s.err.Error(), "spuff: ") || !strings.Contains(s.err.Error(), s.kind.String()) {
				t.Errorf("sentinel text %q", s.err.Error())
			}
		})
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, s := range sentinels {
		name := s.kind.String()
		if name == "" || seen[name] {
			t.Errorf("Kind %d has empty or duplicate name %q", s.kind, name)
		}
		seen[name] = true
	}
	for _, k := range []provider.Kind{provider.KindUnknown, -1, 1000} {
		if got := k.String(); got != "unknown error" {
			t.Errorf("Kind(%d).String() = %q", k, got)
		}
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want provider.Kind
	}{
		{"nil", nil, provider.KindUnknown},
		{"plain", errors.New("x"), provider.KindUnknown},
		{"deadline", context.DeadlineExceeded, provider.KindTimeout},
		{"wrapped deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), provider.KindTimeout},
		{"unexpected EOF", io.ErrUnexpectedEOF, provider.KindNetwork},
		{"op error", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, provider.KindNetwork},
		{"outer *Error wins", &provider.Error{Kind: provider.KindTimeout, Err: &provider.Error{Kind: provider.KindAPI}}, provider.KindTimeout},
	}
	for _, tt := range tests {
		if got := provider.KindOf(tt.err); got != tt.want {
			t.Errorf("%s: KindOf = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	opErr := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"rate limit sentinel", provider.ErrRateLimit, true},
		{"rate limit error", &provider.Error{Kind: provider.KindRateLimit, Status: 429}, true},
		{"timeout sentinel", provider.ErrTimeout, true},
		{"deadline exceeded", context.DeadlineExceeded, true},
		{"network sentinel", provider.ErrNetwork, true},
		{"net.OpError", opErr, true},
		{"wrapped net.OpError", fmt.Errorf("get: %w", opErr), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"API 500", &provider.Error{Kind: provider.KindAPI, Status: 500}, true},
		{"API 502", &provider.Error{Kind: provider.KindAPI, Status: 502}, true},
		{"API 503 wrapped", fmt.Errorf("x: %w", &provider.Error{Kind: provider.KindAPI, Status: 503}), true},
		{"API 409", &provider.Error{Kind: provider.KindAPI, Status: 409}, false},
		{"API 418", &provider.Error{Kind: provider.KindAPI, Status: 418}, false},
		{"not found", provider.ErrNotFound, false},
		{"not found error", &provider.Error{Kind: provider.KindNotFound, Status: 404}, false},
		{"invalid config", &provider.Error{Kind: provider.KindInvalidConfig, Field: "Name"}, false},
		{"outcome unknown", &provider.Error{Kind: provider.KindOutcomeUnknown}, true},
		{"conflict", &provider.Error{Kind: provider.KindConflict}, false},
		{"capacity", &provider.Error{Kind: provider.KindCapacity, Status: 500}, false},
		{"authentication", &provider.Error{Kind: provider.KindAuthentication, Status: 401}, false},
		{"quota", provider.ErrQuotaExceeded, false},
		{"not supported", provider.ErrNotSupported, false},
		{"unknown provider", provider.ErrUnknownProvider, false},
		{"context canceled", context.Canceled, false},
		{"rate limit wrapping canceled", &provider.Error{Kind: provider.KindRateLimit, Err: context.Canceled}, false},
		{"plain error", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := provider.IsRetryable(tt.err); got != tt.want {
				t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		want   time.Duration
		wantOK bool
	}{
		{"nil", nil, 0, false},
		{"plain", errors.New("x"), 0, false},
		{"sentinel", provider.ErrRateLimit, 0, false},
		{"rate limit without delay", &provider.Error{Kind: provider.KindRateLimit}, 0, false},
		{"rate limit with delay", &provider.Error{Kind: provider.KindRateLimit, RetryAfter: 3 * time.Second}, 3 * time.Second, true},
		{"wrapped", fmt.Errorf("x: %w", &provider.Error{Kind: provider.KindRateLimit, RetryAfter: time.Second}), time.Second, true},
	}
	for _, tt := range tests {
		got, ok := provider.RetryAfter(tt.err)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: RetryAfter = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

// classify does what the portable layer does with a driver's error: the
// driver makes an HTTP answer a *driver.Error (driver.FromStatus), the
// portable layer wraps it.
func classify(prov, op string, status int, h http.Header, err error) error {
	if status >= 300 && err != nil {
		err = driver.FromStatus(status, h, "", err)
	}
	return provider.WrapErr(prov, op, err)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	const prov, op = "digitalocean", "GetInstance"
	retryAfter := func(v string) http.Header { return http.Header{"Retry-After": []string{v}} }
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name       string
		status     int
		header     http.Header
		err        error
		kind       provider.Kind
		retryAfter time.Duration
		retryable  bool
		is         []error // errors.Is targets that must match
	}{
		{name: "404", status: 404, err: &sdkError{404, "not_found"}, kind: provider.KindNotFound, is: []error{provider.ErrNotFound}},
		{name: "401", status: 401, err: &sdkError{401, "unauthorized"}, kind: provider.KindAuthentication, is: []error{provider.ErrAuthentication}},
		{name: "422", status: 422, err: &sdkError{422, "unprocessable_entity"}, kind: provider.KindInvalidConfig, is: []error{provider.ErrInvalidConfig}},
		{name: "429 with seconds", status: 429, header: retryAfter("7"), err: &sdkError{429, "too_many_requests"},
			kind: provider.KindRateLimit, retryAfter: 7 * time.Second, retryable: true, is: []error{provider.ErrRateLimit}},
		{name: "429 without header", status: 429, err: &sdkError{429, ""}, kind: provider.KindRateLimit, retryable: true},
		{name: "429 with garbage header", status: 429, header: retryAfter("later"), err: &sdkError{429, ""}, kind: provider.KindRateLimit, retryable: true},
		{name: "500", status: 500, err: &sdkError{500, "server_error"}, kind: provider.KindAPI, retryable: true, is: []error{provider.ErrAPI}},
		{name: "503 ignores Retry-After", status: 503, header: retryAfter("9"), err: &sdkError{503, ""}, kind: provider.KindAPI, retryable: true},
		{name: "409", status: 409, err: &sdkError{409, "conflict"}, kind: provider.KindAPI},
		{name: "net.OpError", err: opErr, kind: provider.KindNetwork, retryable: true, is: []error{provider.ErrNetwork, syscall.ECONNREFUSED}},
		{name: "wrapped net.OpError", err: fmt.Errorf("Get \"http://x\": %w", opErr), kind: provider.KindNetwork, retryable: true},
		{name: "unexpected EOF", err: io.ErrUnexpectedEOF, kind: provider.KindNetwork, retryable: true, is: []error{io.ErrUnexpectedEOF}},
		{name: "connection reset text", err: errors.New("read tcp: connection reset by peer"), kind: provider.KindNetwork, retryable: true},
		{name: "deadline exceeded", err: fmt.Errorf("get: %w", context.DeadlineExceeded), kind: provider.KindTimeout,
			retryable: true, is: []error{provider.ErrTimeout, context.DeadlineExceeded}},
		{name: "canceled", err: context.Canceled, kind: provider.KindUnknown, is: []error{context.Canceled}},
		{name: "plain", err: errors.New("something odd"), kind: provider.KindUnknown},
		{name: "sentinel not found", err: provider.ErrNotFound, kind: provider.KindNotFound, is: []error{provider.ErrNotFound}},
		{name: "wrapped sentinel rate limit", err: fmt.Errorf("throttled: %w", provider.ErrRateLimit),
			kind: provider.KindRateLimit, retryable: true, is: []error{provider.ErrRateLimit}},
		{name: "driver error keeps its kind", err: &driver.Error{Kind: driver.KindQuotaExceeded, Status: 403, Err: &sdkError{403, "limit"}},
			kind: provider.KindQuotaExceeded, is: []error{provider.ErrQuotaExceeded}},
		{name: "driver error the cloud says to repeat", err: &driver.Error{Kind: driver.KindAPI, Status: 423, Retry: true, Err: &sdkError{423, "locked"}},
			kind: provider.KindAPI, retryable: true, is: []error{provider.ErrAPI}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := classify(prov, op, tt.status, tt.header, tt.err)
			var perr *provider.Error
			if !errors.As(err, &perr) {
				t.Fatalf("Classify returned %T %v, want *provider.Error", err, err)
			}
			if perr.Kind != tt.kind {
				t.Errorf("Kind = %v, want %v", perr.Kind, tt.kind)
			}
			if perr.Provider != prov || perr.Op != op {
				t.Errorf("Provider, Op = %q, %q; want %q, %q", perr.Provider, perr.Op, prov, op)
			}
			var de *driver.Error
			if want := tt.status; perr.Status != want && !(errors.As(tt.err, &de) && perr.Status == de.Status) {
				t.Errorf("Status = %d, want %d", perr.Status, want)
			}
			if perr.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", perr.RetryAfter, tt.retryAfter)
			}
			if got := provider.IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
			if !errors.Is(err, tt.err) && !errors.As(tt.err, &de) {
				t.Errorf("the original error is not reachable with errors.Is")
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = false", target)
				}
			}
			if sdk := (*sdkError)(nil); errors.As(tt.err, &sdk) {
				var got *sdkError
				if !errors.As(err, &got) || got != sdk {
					t.Errorf("errors.As did not reach the SDK error")
				}
			}
			if !strings.Contains(err.Error(), prov) || !strings.Contains(err.Error(), op) {
				t.Errorf("Error() = %q lacks provider or op", err)
			}
		})
	}
}

func TestClassifyNil(t *testing.T) {
	t.Parallel()
	if err := classify("p", "op", 500, nil, nil); err != nil {
		t.Fatalf("Classify(nil) = %v, want nil", err)
	}
}

func TestClassifyRetryAfterDate(t *testing.T) {
	t.Parallel()
	h := http.Header{"Retry-After": []string{time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}}
	d, ok := provider.RetryAfter(classify("p", "op", 429, h, errors.New("slow down")))
	if !ok || d < 58*time.Minute || d > time.Hour {
		t.Errorf("RetryAfter = %v, %v; want about 1h", d, ok)
	}
}

func TestClassifyKeepsExistingError(t *testing.T) {
	t.Parallel()
	t.Run("fills provider and op", func(t *testing.T) {
		t.Parallel()
		orig := &provider.Error{Kind: provider.KindNotFound, Resource: "instance", ID: "42", Status: 404}
		err := classify("hetzner", "GetInstance", 500, nil, fmt.Errorf("lookup: %w", orig))
		var perr *provider.Error
		if !errors.As(err, &perr) {
			t.Fatal("no *Error")
		}
		if perr.Kind != provider.KindNotFound || perr.Status != 404 {
			t.Errorf("Kind, Status = %v, %d; want not found, 404 (status argument must not override)", perr.Kind, perr.Status)
		}
		if perr.Provider != "hetzner" || perr.Op != "GetInstance" {
			t.Errorf("Provider, Op = %q, %q", perr.Provider, perr.Op)
		}
		if !errors.Is(err, provider.ErrNotFound) {
			t.Error("errors.Is(ErrNotFound) = false")
		}
	})
	t.Run("keeps provider and op already set", func(t *testing.T) {
		t.Parallel()
		orig := &provider.Error{Kind: provider.KindRateLimit, Provider: "aws", Op: "DescribeInstances", RetryAfter: time.Second}
		err := classify("other", "Other", 0, nil, orig)
		var perr *provider.Error
		if !errors.As(err, &perr) || perr.Provider != "aws" || perr.Op != "DescribeInstances" || perr.RetryAfter != time.Second {
			t.Errorf("got %#v", perr)
		}
	})
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *provider.Error
		want string
	}{
		{"bare kind", &provider.Error{Kind: provider.KindNotFound}, "spuff: not found"},
		{"full location", &provider.Error{Kind: provider.KindNotFound, Provider: "hetzner", Op: "GetInstance", Resource: "instance", ID: "42"},
			"spuff: hetzner: GetInstance instance 42: not found"},
		{"op only", &provider.Error{Kind: provider.KindAPI, Op: "ListInstances"}, "spuff: ListInstances: API error"},
		{"resource and id without op", &provider.Error{Kind: provider.KindNotFound, Resource: "snapshot", ID: "7"}, "spuff: snapshot 7: not found"},
		{"invalid config with field", &provider.Error{Kind: provider.KindInvalidConfig, Field: "Name", Message: "name is required"},
			"spuff: invalid config (field Name): name is required"},
		{"rate limit", &provider.Error{Kind: provider.KindRateLimit, Provider: "do", Op: "ListInstances", Status: 429, RetryAfter: 2 * time.Second},
			"spuff: do: ListInstances: rate limited (retry after 2s) [HTTP 429]"},
		{"timeout", &provider.Error{Kind: provider.KindTimeout, Provider: "aws", Op: "WaitReady", Resource: "instance", ID: "i-1",
			Elapsed: 1500 * time.Millisecond, LastState: "pending", Status: 503, Err: context.DeadlineExceeded},
			"spuff: aws: WaitReady instance i-1: timed out after 1.5s (last state: pending): context deadline exceeded"},
		{"api with code and cause", &provider.Error{Kind: provider.KindAPI, Status: 503, Code: "unavailable", Message: "try later", Err: errors.New("sdk said no")},
			"spuff: API error [HTTP 503 unavailable]: try later: sdk said no"},
		{"code without status", &provider.Error{Kind: provider.KindNotFound, Code: "InvalidInstanceID.NotFound"},
			"spuff: not found [InvalidInstanceID.NotFound]"},
		{"unknown provider", &provider.Error{Kind: provider.KindUnknownProvider, Op: "Open", ID: "foo"}, "spuff: Open foo: unknown provider"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// Secrets in a Config never reach an error built from it.
func TestErrorNeverContainsToken(t *testing.T) {
	t.Parallel()
	const token = "dop_v1_SUPERSECRETTOKEN"
	cfg := provider.Config{Token: token}
	err := classify("digitalocean", "Open", 401, nil, fmt.Errorf("bad token %v (%s)", cfg.Token, cfg.Token))
	if strings.Contains(err.Error(), token) || strings.Contains(fmt.Sprintf("%+v", err), token) {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestRetryAfterValuesAreSane(t *testing.T) {
	t.Parallel()
	// A Retry-After never yields a negative or absurd duration.
	for _, v := range []string{"NaN", "-1", "1e308", "-0", "0x10", "+Inf", "1e-300"} {
		d := driver.ParseRetryAfter(v, time.Now())
		if d < 0 || d > 24*time.Hour || d == math.MinInt64 {
			t.Errorf("ParseRetryAfter(%q) = %v", v, d)
		}
	}
}
