package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// testPolicy returns a policy with its own pacer and millisecond
// schedules.
func testPolicy(t *testing.T) *policy {
	t.Helper()
	return toyPolicy(NewPacer(), fast, quick(4))
}

func toyPolicy(pacer *Pacer, wait WaitPolicy, retry RetryPolicy) *policy {
	return &policy{name: "toy", t: ProviderTimeouts{HTTPRequest: time.Minute}.WithDefaults(), retry: retry, wait: wait,
		pacer: pacer, log: slog.New(slog.DiscardHandler)}
}

func requireLocated(t *testing.T, err error, op string) *Error {
	t.Helper()
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %T %v is not a *Error", err, err)
	}
	if perr.Provider != "toy" || perr.Op != op {
		t.Errorf("Provider, Op = %q, %q; want toy, %q", perr.Provider, perr.Op, op)
	}
	return perr
}

func TestPolicyCall(t *testing.T) {
	t.Parallel()
	notFound := func() error { return &Error{Kind: KindNotFound, Status: 404} }
	tests := []struct {
		name        string
		errs        []func() error
		wantKind    Kind // KindUnknown with wantOK means success
		wantOK      bool
		wantCalls   int64
		wantRetries int64
	}{
		{"success", nil, 0, true, 1, 0},
		{"retries a 503", []func() error{api503}, 0, true, 2, 1},
		{"retries twice", []func() error{api503, api503}, 0, true, 3, 2},
		{"gives up after MaxAttempts", []func() error{api503, api503, api503, api503, api503}, KindAPI, false, 4, 3},
		{"does not retry not found", []func() error{notFound}, KindNotFound, false, 1, 0},
		{"classifies a raw deadline", []func() error{
			func() error { return context.DeadlineExceeded }, func() error { return context.DeadlineExceeded },
			func() error { return context.DeadlineExceeded }, func() error { return context.DeadlineExceeded },
		}, KindTimeout, false, 4, 3},
		{"classifies a raw error", []func() error{func() error { return errors.New("odd") }}, KindUnknown, false, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := testPolicy(t)
			var n int
			err := p.call(context.Background(), "GetInstance", func(ctx context.Context) error {
				n++
				if n <= len(tt.errs) {
					return tt.errs[n-1]()
				}
				return nil
			})
			if tt.wantOK {
				if err != nil {
					t.Fatalf("Call = %v", err)
				}
			} else {
				perr := requireLocated(t, err, "GetInstance")
				if perr.Kind != tt.wantKind {
					t.Errorf("Kind = %v, want %v", perr.Kind, tt.wantKind)
				}
			}
			st := p.stats()
			if st.Calls != tt.wantCalls || st.Retries != tt.wantRetries {
				t.Errorf("Stats = %+v, want %d calls, %d retries", st, tt.wantCalls, tt.wantRetries)
			}
		})
	}
}

func TestPolicyCallUserOnRetryAndThrottle(t *testing.T) {
	t.Parallel()
	p := testPolicy(t)
	var userRetries atomic.Int32
	p.retry.OnRetry = func(int, error, time.Duration) { userRetries.Add(1) }
	n := 0
	err := p.call(context.Background(), "ListInstances", func(context.Context) error {
		n++
		switch n {
		case 1: // a 429: the paced transport saw it and paused the pacer
			return &Error{Kind: KindRateLimit, Status: 429, RetryAfter: time.Millisecond}
		case 2: // EC2's RequestLimitExceeded, a 503 the transport cannot tell
			return &Error{Kind: KindRateLimit, Status: 503, RetryAfter: time.Millisecond}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if userRetries.Load() != 2 {
		t.Errorf("the caller's OnRetry ran %d times, want 2", userRetries.Load())
	}
	if st := p.stats(); st.Retries != 2 || st.Pacer.Throttled != 1 {
		t.Errorf("Stats = %+v, want 2 retries and the 503 rate limit (only) reported to the pacer", st)
	}
}

func TestPolicyCallOnce(t *testing.T) {
	t.Parallel()
	p := toyPolicy(NewPacer(), fast, quick(5))
	calls := 0
	err := p.once(context.Background(), "CreateInstance", func(ctx context.Context) error {
		calls++
		return api503()
	})
	perr := requireLocated(t, err, "CreateInstance")
	if perr.Kind != KindAPI || !IsRetryable(err) {
		t.Errorf("err = %v, want the retryable 503 returned as is", err)
	}
	if calls != 1 {
		t.Errorf("CallOnce made %d calls, want exactly 1", calls)
	}
	if st := p.stats(); st.Calls != 1 || st.Retries != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if err := p.once(context.Background(), "CreateInstance", func(context.Context) error { return nil }); err != nil {
		t.Errorf("CallOnce success = %v", err)
	}
}

func TestPolicyWaitFor(t *testing.T) {
	t.Parallel()
	t.Run("done after polls", func(t *testing.T) {
		t.Parallel()
		p := testPolicy(t)
		s := &script{steps: []step{{state: "new"}, {err: api503()}, {done: true, state: "active"}}}
		if err := p.waitFor(context.Background(), "WaitReady", "instance", "1", time.Minute, nil, time.Time{}, s.poll); err != nil {
			t.Fatal(err)
		}
		if st := p.stats(); st.Calls != 3 {
			t.Errorf("Stats.Calls = %d, want 3 polls", st.Calls)
		}
	})
	t.Run("timeout is located", func(t *testing.T) {
		t.Parallel()
		p := testPolicy(t)
		s := &script{steps: []step{{state: "new"}}}
		err := p.waitFor(context.Background(), "WaitReady", "instance", "i-9", 20*time.Millisecond, nil, time.Time{}, s.poll)
		perr := requireLocated(t, err, "WaitReady")
		if perr.Kind != KindTimeout || perr.LastState != "new" || perr.ID != "i-9" || perr.Resource != "instance" {
			t.Errorf("err = %#v", perr)
		}
	})
	t.Run("raw permanent error is classified and located", func(t *testing.T) {
		t.Parallel()
		p := testPolicy(t)
		boom := errors.New("boom")
		err := p.waitFor(context.Background(), "CreateSnapshot", "snapshot", "s", time.Minute, nil, time.Time{}, func(context.Context) (bool, string, error) {
			return false, "", boom
		})
		requireLocated(t, err, "CreateSnapshot")
		if !errors.Is(err, boom) {
			t.Errorf("err = %v does not wrap the poll's error", err)
		}
		if p.stats().Calls != 1 {
			t.Errorf("polls = %d, want 1", p.stats().Calls)
		}
	})
	t.Run("raw transient error is ridden over", func(t *testing.T) {
		t.Parallel()
		p := testPolicy(t)
		n := 0
		err := p.waitFor(context.Background(), "WaitReady", "instance", "1", time.Minute, nil, time.Time{}, func(context.Context) (bool, string, error) {
			n++
			if n == 1 {
				return false, "", fmt.Errorf("read: %w", io.ErrUnexpectedEOF)
			}
			return true, "active", nil
		})
		if err != nil || n != 2 {
			t.Errorf("WaitFor = %v after %d polls", err, n)
		}
	})
}

// Time queued behind the rate limit does not count against a request's
// deadline: each request gets its whole HTTPRequest budget once paced.
func TestPacedTransportDeadlineAfterPacing(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dl, ok := r.Context().Deadline()
		_ = dl
		_ = ok
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	pacer := NewPacer(RateLimit{Requests: 1, Per: 200 * time.Millisecond})
	var left []time.Duration
	tr := &pacedTransport{pacer: pacer, timeout: timeout, limit: maxResponseBytes,
		base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if dl, ok := r.Context().Deadline(); ok {
				left = append(left, time.Until(dl))
			}
			return http.DefaultTransport.RoundTrip(r)
		})}
	c := &http.Client{Transport: tr}
	for i := range 2 { // the second waits ~200 ms for its slot
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
	}
	if len(left) != 2 || left[1] < timeout/2 {
		t.Errorf("deadlines left when the requests left: %v, want each near %v", left, timeout)
	}
	if st := pacer.Stats(); st.Requests != 2 || st.Delayed != 1 {
		t.Errorf("pacer stats = %+v, want 2 requests, 1 delayed", st)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A wait on a resource the driver just created does not poll before the
// expected time; a wait on any other polls at once.
func TestPolicyWaitForCreated(t *testing.T) {
	t.Parallel()
	p := toyPolicy(NewPacer(), AdaptiveWait(time.Hour, time.Minute, time.Hour), RetryPolicy{})
	created := time.Now()
	var polls atomic.Int32
	poll := func(context.Context) (bool, string, error) { polls.Add(1); return true, "ready", nil }

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.waitFor(ctx, "WaitReady", "instance", "new", time.Minute, nil, created, poll); err != nil {
		t.Errorf("WaitFor just created = %v, want the final poll to see it done", err)
	}
	if n := polls.Load(); n != 1 {
		t.Errorf("polls of a machine created just now = %d, want 1 (the final one, before the deadline)", n)
	}
	for _, id := range []struct{ resource, id string }{{"instance", "old"}, {"snapshot", "other"}} {
		if err := p.waitFor(context.Background(), "WaitReady", id.resource, id.id, time.Minute, nil, time.Time{}, poll); err != nil {
			t.Errorf("WaitFor %s %s = %v", id.resource, id.id, err)
		}
	}
	if n := polls.Load(); n != 3 {
		t.Errorf("polls = %d, want 3 (then one each, at once)", n)
	}
}
