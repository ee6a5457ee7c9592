package provider_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
)

// newPolicy returns a Policy with its own pacer and millisecond schedules.
func newPolicy(t *testing.T) *provider.Policy {
	t.Helper()
	p := provider.NewPolicy("toy", provider.Config{
		Pacer:      provider.NewPacer(),
		WaitPolicy: fast,
		Retry:      quick(4),
		Timeouts:   provider.ProviderTimeouts{HTTPRequest: time.Minute},
	}, provider.PolicyDefaults{})
	return p
}

func requireLocated(t *testing.T, err error, op string) *provider.Error {
	t.Helper()
	var perr *provider.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %T %v is not a *provider.Error", err, err)
	}
	if perr.Provider != "toy" || perr.Op != op {
		t.Errorf("Provider, Op = %q, %q; want toy, %q", perr.Provider, perr.Op, op)
	}
	return perr
}

func TestPolicyCall(t *testing.T) {
	t.Parallel()
	notFound := func() error { return &provider.Error{Kind: provider.KindNotFound, Status: 404} }
	tests := []struct {
		name        string
		errs        []func() error
		wantKind    provider.Kind // KindUnknown with wantOK means success
		wantOK      bool
		wantCalls   int64
		wantRetries int64
	}{
		{"success", nil, 0, true, 1, 0},
		{"retries a 503", []func() error{api503}, 0, true, 2, 1},
		{"retries twice", []func() error{api503, api503}, 0, true, 3, 2},
		{"gives up after MaxAttempts", []func() error{api503, api503, api503, api503, api503}, provider.KindAPI, false, 4, 3},
		{"does not retry not found", []func() error{notFound}, provider.KindNotFound, false, 1, 0},
		{"classifies a raw deadline", []func() error{
			func() error { return context.DeadlineExceeded }, func() error { return context.DeadlineExceeded },
			func() error { return context.DeadlineExceeded }, func() error { return context.DeadlineExceeded },
		}, provider.KindTimeout, false, 4, 3},
		{"classifies a raw error", []func() error{func() error { return errors.New("odd") }}, provider.KindUnknown, false, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newPolicy(t)
			var n int
			err := p.Call(context.Background(), "GetInstance", func(ctx context.Context) error {
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
			st := p.Stats()
			if st.Calls != tt.wantCalls || st.Retries != tt.wantRetries {
				t.Errorf("Stats = %+v, want %d calls, %d retries", st, tt.wantCalls, tt.wantRetries)
			}
		})
	}
}

func TestPolicyCallUserOnRetryAndThrottle(t *testing.T) {
	t.Parallel()
	p := newPolicy(t)
	var userRetries atomic.Int32
	p.Retry.OnRetry = func(int, error, time.Duration) { userRetries.Add(1) }
	n := 0
	err := p.Call(context.Background(), "ListInstances", func(context.Context) error {
		n++
		if n == 1 {
			return &provider.Error{Kind: provider.KindRateLimit, Status: 429, RetryAfter: time.Millisecond}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if userRetries.Load() != 1 {
		t.Errorf("the caller's OnRetry ran %d times, want 1", userRetries.Load())
	}
	if st := p.Stats(); st.Retries != 1 || st.Pacer.Throttled != 1 {
		t.Errorf("Stats = %+v, want 1 retry and the rate limit reported to the pacer", st)
	}
}

func TestPolicyCallOnce(t *testing.T) {
	t.Parallel()
	p := provider.NewPolicy("toy", provider.Config{
		Pacer:    provider.NewPacer(),
		Retry:    quick(5),
		Timeouts: provider.ProviderTimeouts{HTTPRequest: 50 * time.Millisecond},
	}, provider.PolicyDefaults{})
	calls := 0
	var deadline time.Duration
	err := p.CallOnce(context.Background(), "CreateInstance", func(ctx context.Context) error {
		calls++
		if dl, ok := ctx.Deadline(); ok {
			deadline = time.Until(dl)
		}
		return api503()
	})
	perr := requireLocated(t, err, "CreateInstance")
	if perr.Kind != provider.KindAPI || !provider.IsRetryable(err) {
		t.Errorf("err = %v, want the retryable 503 returned as is", err)
	}
	if calls != 1 {
		t.Errorf("CallOnce made %d calls, want exactly 1", calls)
	}
	if deadline <= 0 || deadline > 50*time.Millisecond {
		t.Errorf("the call's deadline is in %v, want within Timeouts.HTTPRequest", deadline)
	}
	if st := p.Stats(); st.Calls != 1 || st.Retries != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if err := p.CallOnce(context.Background(), "CreateInstance", func(context.Context) error { return nil }); err != nil {
		t.Errorf("CallOnce success = %v", err)
	}
}

func TestPolicyWaitFor(t *testing.T) {
	t.Parallel()
	t.Run("done after polls", func(t *testing.T) {
		t.Parallel()
		p := newPolicy(t)
		s := &script{steps: []step{{state: "new"}, {err: api503()}, {done: true, state: "active"}}}
		if err := p.WaitFor(context.Background(), "WaitReady", "instance", "1", time.Minute, s.poll); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.Calls != 3 {
			t.Errorf("Stats.Calls = %d, want 3 polls", st.Calls)
		}
	})
	t.Run("timeout is located", func(t *testing.T) {
		t.Parallel()
		p := newPolicy(t)
		s := &script{steps: []step{{state: "new"}}}
		err := p.WaitFor(context.Background(), "WaitReady", "instance", "i-9", 20*time.Millisecond, s.poll)
		perr := requireLocated(t, err, "WaitReady")
		if perr.Kind != provider.KindTimeout || perr.LastState != "new" || perr.ID != "i-9" || perr.Resource != "instance" {
			t.Errorf("err = %#v", perr)
		}
	})
	t.Run("raw permanent error is classified and located", func(t *testing.T) {
		t.Parallel()
		p := newPolicy(t)
		boom := errors.New("boom")
		err := p.WaitFor(context.Background(), "CreateSnapshot", "snapshot", "s", time.Minute, func(context.Context) (bool, string, error) {
			return false, "", boom
		})
		requireLocated(t, err, "CreateSnapshot")
		if !errors.Is(err, boom) {
			t.Errorf("err = %v does not wrap the poll's error", err)
		}
		if p.Stats().Calls != 1 {
			t.Errorf("polls = %d, want 1", p.Stats().Calls)
		}
	})
	t.Run("raw transient error is ridden over", func(t *testing.T) {
		t.Parallel()
		p := newPolicy(t)
		n := 0
		err := p.WaitFor(context.Background(), "WaitReady", "instance", "1", time.Minute, func(context.Context) (bool, string, error) {
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
	t.Run("each poll is bounded by HTTPRequest", func(t *testing.T) {
		t.Parallel()
		p := provider.NewPolicy("toy", provider.Config{
			Pacer: provider.NewPacer(), WaitPolicy: fast,
			Timeouts: provider.ProviderTimeouts{HTTPRequest: 10 * time.Millisecond},
		}, provider.PolicyDefaults{})
		n := 0
		err := p.WaitFor(context.Background(), "WaitReady", "instance", "1", time.Minute, func(ctx context.Context) (bool, string, error) {
			n++
			if n == 1 {
				<-ctx.Done() // a poll that hangs: its own deadline ends it
				return false, "", ctx.Err()
			}
			return true, "", nil
		})
		if err != nil || n != 2 {
			t.Errorf("WaitFor = %v after %d polls; a hung poll must time out and be retried", err, n)
		}
	})
}

func TestNewPolicyDefaults(t *testing.T) {
	t.Parallel()
	cfg := provider.Config{Timeouts: provider.ProviderTimeouts{PollInterval: 2 * time.Second}}
	d := provider.PolicyDefaults{Credential: "tok-policy-defaults", Endpoint: "http://127.0.0.1:9", RateLimits: []provider.RateLimit{{Requests: 10, Per: time.Second}}, ExpectedBoot: 10 * time.Second}
	p := provider.NewPolicy("spuff-test-policy-defaults", cfg, d)
	if p.Provider != "spuff-test-policy-defaults" || p.Log == nil || p.Wait == nil || p.Pacer == nil {
		t.Fatalf("NewPolicy = %+v", p)
	}
	if p.Timeouts.PollInterval != 2*time.Second || p.Timeouts.InstanceReady != 5*time.Minute {
		t.Errorf("Timeouts = %+v, want the caller's with defaults", p.Timeouts)
	}
	if p.Retry.AttemptTimeout != p.Timeouts.HTTPRequest {
		t.Errorf("Retry.AttemptTimeout = %v, want HTTPRequest %v", p.Retry.AttemptTimeout, p.Timeouts.HTTPRequest)
	}
	// Same account: one shared pacer. Another credential: another pacer.
	q := provider.NewPolicy("spuff-test-policy-defaults", provider.Config{}, d)
	if q.Pacer != p.Pacer {
		t.Error("two policies of one account do not share a pacer")
	}
	d.Credential = "another"
	if r := provider.NewPolicy("spuff-test-policy-defaults", provider.Config{}, d); r.Pacer == p.Pacer {
		t.Error("two accounts share a pacer")
	}
	// The default wait schedule never waits longer than PollInterval
	// between polls after the first.
	b := p.Wait()
	b.NextBackOff()
	for i := range 50 {
		if d := b.NextBackOff(); d > time.Duration(float64(2*time.Second)*1.1) {
			t.Fatalf("gap %d = %v exceeds PollInterval", i+1, d)
		}
	}
}

func TestPolicyClient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	p := newPolicy(t)
	c := p.Client(srv.Client())
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := p.Stats(); st.Pacer.Requests != 1 || st.Pacer.Throttled != 1 {
		t.Errorf("Stats.Pacer = %+v, want the request paced and the 429 seen", st.Pacer)
	}
	if p.Client(nil) == nil {
		t.Error("Client(nil) = nil")
	}
}

// Time queued behind the rate limit does not count against the attempt's
// timeout: the call starts with its whole HTTPRequest budget.
func TestPolicyPacingOutsideAttemptTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	p := provider.NewPolicy("toy", provider.Config{
		Pacer:    provider.NewPacer(provider.RateLimit{Requests: 1, Per: 200 * time.Millisecond}),
		Retry:    quick(1),
		Timeouts: provider.ProviderTimeouts{HTTPRequest: timeout},
	}, provider.PolicyDefaults{})
	left := func(ctx context.Context) error {
		if err := p.Pacer.Wait(ctx); err != nil { // as the paced transport does
			return err
		}
		dl, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		if l := time.Until(dl); l < timeout/2 {
			return fmt.Errorf("attempt began with %v of its %v left", l, timeout)
		}
		return nil
	}
	for i := range 2 { // the second waits ~200 ms for its slot
		if err := p.Call(context.Background(), "Get", left); err != nil {
			t.Errorf("Call %d: %v", i, err)
		}
	}
	if err := p.CallOnce(context.Background(), "Create", left); err != nil {
		t.Errorf("CallOnce: %v", err)
	}
	if st := p.Stats(); st.Pacer.Requests != 3 || st.Pacer.Delayed != 2 {
		t.Errorf("pacer stats = %+v, want 3 requests, 2 delayed", st.Pacer)
	}
}

// A wait on a resource the driver just created does not poll before the
// expected time; a wait on any other polls at once.
func TestPolicyWaitForCreated(t *testing.T) {
	t.Parallel()
	p := provider.NewPolicy("toy", provider.Config{
		Pacer:      provider.NewPacer(),
		WaitPolicy: provider.AdaptiveWait(time.Hour, time.Minute, time.Hour),
	}, provider.PolicyDefaults{})
	p.Created("instance", "new")
	var polls atomic.Int32
	poll := func(context.Context) (bool, string, error) { polls.Add(1); return true, "ready", nil }

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.WaitFor(ctx, "WaitReady", "instance", "new", time.Minute, poll); !errors.Is(err, provider.ErrTimeout) {
		t.Errorf("WaitFor just created = %v, want a timeout", err)
	}
	if n := polls.Load(); n != 0 {
		t.Errorf("polls of a machine created just now = %d, want 0", n)
	}
	for _, id := range []struct{ resource, id string }{{"instance", "old"}, {"snapshot", "new"}} {
		if err := p.WaitFor(context.Background(), "WaitReady", id.resource, id.id, time.Minute, poll); err != nil {
			t.Errorf("WaitFor %s %s = %v", id.resource, id.id, err)
		}
	}
	if n := polls.Load(); n != 2 {
		t.Errorf("polls = %d, want 2 (one each, at once)", n)
	}
}
