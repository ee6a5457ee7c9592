package provider

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// quick is a RetryPolicy with millisecond backoffs.
func quick(maxAttempts int) RetryPolicy {
	return RetryPolicy{MaxAttempts: maxAttempts, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
}

// failing returns fn that fails with errs in order and then succeeds,
// counting its calls.
func failing(errs ...error) (fn func(context.Context) error, calls func() int) {
	var mu sync.Mutex
	n := 0
	return func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			n++
			if n <= len(errs) {
				return errs[n-1]
			}
			return nil
		}, func() int {
			mu.Lock()
			defer mu.Unlock()
			return n
		}
}

func TestRetryPolicyDo(t *testing.T) {
	t.Parallel()
	rate := &Error{Kind: KindRateLimit, Status: 429}
	notFound := &Error{Kind: KindNotFound, Status: 404}
	plain := errors.New("bad request")
	tests := []struct {
		name        string
		maxAttempts int
		errs        []error
		wantErr     error
		wantCalls   int
		wantRetries []int // attempts passed to OnRetry
	}{
		{"success at once", 3, nil, nil, 1, nil},
		{"success after two 503s", 5, []error{api503(), api503()}, nil, 3, []int{1, 2}},
		{"success after mixed transient errors", 5, []error{rate, ErrNetwork, context.DeadlineExceeded}, nil, 4, []int{1, 2, 3}},
		{"attempts run out", 3, []error{api503(), api503(), rate, api503()}, rate, 3, []int{1, 2}},
		{"single attempt", 1, []error{api503()}, ErrAPI, 1, nil},
		{"not found stops at once", 5, []error{notFound}, notFound, 1, nil},
		{"permanent after transient", 5, []error{api503(), notFound}, notFound, 2, []int{1}},
		{"plain error stops at once", 5, []error{plain}, plain, 1, nil},
		{"zero MaxAttempts means 5", 0, []error{api503(), api503(), api503(), api503(), api503(), api503()}, ErrAPI, 5, []int{1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fn, calls := failing(tt.errs...)
			var retries []int
			p := quick(tt.maxAttempts)
			p.OnRetry = func(attempt int, err error, delay time.Duration) {
				retries = append(retries, attempt)
				if err == nil || !IsRetryable(err) {
					t.Errorf("OnRetry got a non-retryable error %v", err)
				}
				if delay <= 0 || delay > 3*time.Millisecond+time.Millisecond {
					t.Errorf("OnRetry delay %v outside (0, 1.5×MaxDelay]", delay)
				}
			}
			err := p.Do(context.Background(), fn)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Do = %v, want %v", err, tt.wantErr)
			}
			if got := calls(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if len(retries) != len(tt.wantRetries) {
				t.Fatalf("OnRetry attempts = %v, want %v", retries, tt.wantRetries)
			}
			for i := range retries {
				if retries[i] != tt.wantRetries[i] {
					t.Errorf("OnRetry attempts = %v, want %v", retries, tt.wantRetries)
					break
				}
			}
		})
	}
}

func TestRetryPolicyRetryAfter(t *testing.T) {
	t.Parallel()
	const ra = 20 * time.Millisecond
	fn, calls := failing(&Error{Kind: KindRateLimit, RetryAfter: ra})
	var delay time.Duration
	p := quick(3)
	p.OnRetry = func(_ int, _ error, d time.Duration) { delay = d }
	start := time.Now()
	if err := p.Do(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
	if delay < ra {
		t.Errorf("OnRetry delay = %v, want at least the Retry-After %v", delay, ra)
	}
	if el := time.Since(start); el < ra {
		t.Errorf("Do returned after %v, before the Retry-After %v", el, ra)
	}
	if calls() != 2 {
		t.Errorf("calls = %d", calls())
	}
}

func TestRetryPolicyCancel(t *testing.T) {
	t.Parallel()
	t.Run("cancelled during an attempt", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := quick(5).Do(ctx, func(context.Context) error {
			calls++
			cancel()
			return api503()
		})
		if calls != 1 || err == nil {
			t.Errorf("Do = %v after %d calls, want the error after 1", err, calls)
		}
	})
	t.Run("cancelled while backing off", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// An hour-long backoff: only the cancellation can end Do.
		p := RetryPolicy{MaxAttempts: 5, InitialDelay: time.Hour, MaxDelay: time.Hour}
		p.OnRetry = func(int, error, time.Duration) { go cancel() }
		calls := 0
		done := make(chan error, 1)
		go func() {
			done <- p.Do(ctx, func(context.Context) error { calls++; return api503() })
		}()
		select {
		case err := <-done:
			if err == nil || calls != 1 {
				t.Errorf("Do = %v after %d calls", err, calls)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Do did not return after cancel")
		}
	})
	t.Run("no time left before the deadline", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p := RetryPolicy{MaxAttempts: 5, InitialDelay: time.Hour, MaxDelay: time.Hour}
		fn, calls := failing(api503(), api503())
		start := time.Now()
		if err := p.Do(ctx, fn); !errors.Is(err, ErrAPI) {
			t.Errorf("Do = %v", err)
		}
		if calls() != 1 || time.Since(start) > 30*time.Second {
			t.Errorf("Do slept past the deadline or retried: %d calls", calls())
		}
	})
}

func TestRetryPolicyAttemptTimeout(t *testing.T) {
	t.Parallel()
	const attemptTimeout = 10 * time.Millisecond
	p := quick(3)
	p.AttemptTimeout = attemptTimeout
	var mu sync.Mutex
	var deadlines []time.Duration
	calls := 0
	err := p.Do(context.Background(), func(ctx context.Context) error {
		mu.Lock()
		calls++
		dl, ok := ctx.Deadline()
		if ok {
			deadlines = append(deadlines, time.Until(dl))
		}
		mu.Unlock()
		<-ctx.Done() // a request that hangs until its own deadline
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do = %v, want the attempts' deadline error", err)
	}
	if calls != 3 || len(deadlines) != 3 {
		t.Fatalf("calls = %d with %d deadlines, want 3 attempts each with a deadline", calls, len(deadlines))
	}
	for i, d := range deadlines {
		if d > attemptTimeout {
			t.Errorf("attempt %d deadline in %v, want at most %v", i+1, d, attemptTimeout)
		}
	}
}

// The parent's deadline is not treated as an attempt timeout to retry.
func TestRetryPolicyParentDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Millisecond)
	defer cancel()
	calls := 0
	err := quick(10).Do(ctx, func(ctx context.Context) error {
		calls++
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) || calls != 1 {
		t.Errorf("Do = %v after %d calls, want DeadlineExceeded after 1", err, calls)
	}
}
