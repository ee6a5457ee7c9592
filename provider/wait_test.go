package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fast polls every millisecond, so that waits in tests are short.
var fast = FixedWait(time.Millisecond)

// script returns a pollFunc that plays the given steps in order and then
// repeats the last one forever, counting the polls.
type step struct {
	done  bool
	state string
	err   error
}

type script struct {
	mu    sync.Mutex
	steps []step
	polls int
	times []time.Time
}

func (s *script) poll(ctx context.Context) (bool, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.polls, len(s.steps)-1)
	s.polls++
	s.times = append(s.times, time.Now())
	st := s.steps[i]
	return st.done, st.state, st.err
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls
}

func api503() error {
	return &Error{Kind: KindAPI, Status: 503, Err: &waitSDKError{503, "unavailable"}}
}

func TestWaiterSucceeds(t *testing.T) {
	t.Parallel()
	booting := step{state: "new"}
	tests := []struct {
		name      string
		steps     []step
		wantPolls int
		wantErrs  int
	}{
		{"done on first poll", []step{{done: true, state: "active"}}, 1, 0},
		{"done after five polls", []step{booting, booting, booting, booting, {done: true, state: "active"}}, 5, 0},
		{"rides over 503s", []step{{err: api503()}, {err: api503()}, {done: true}}, 3, 2},
		{"rides over every transient kind", []step{
			{err: api503()},
			{err: &Error{Kind: KindRateLimit, Status: 429}},
			{err: &Error{Kind: KindNetwork, Err: errors.New("connection reset")}},
			{err: fmt.Errorf("get: %w", context.DeadlineExceeded)}, // an attempt's own deadline
			{err: ErrNetwork},
			{done: true, state: "active"},
		}, 6, 5},
		{"done with an error is not done", []step{{done: true, err: api503()}, {done: true}}, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &script{steps: tt.steps}
			var onPolls, onErrs atomic.Int32
			w := waiter{Policy: fast, Timeout: time.Minute, OnPoll: func(_ string, err error) {
				onPolls.Add(1)
				if err != nil {
					onErrs.Add(1)
				}
			}}
			if err := w.Wait(context.Background(), s.poll); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if got := s.count(); got != tt.wantPolls {
				t.Errorf("polls = %d, want %d", got, tt.wantPolls)
			}
			if got := int(onPolls.Load()); got != tt.wantPolls {
				t.Errorf("OnPoll calls = %d, want %d", got, tt.wantPolls)
			}
			if got := int(onErrs.Load()); got != tt.wantErrs {
				t.Errorf("OnPoll errors = %d, want %d", got, tt.wantErrs)
			}
		})
	}
}

func TestWaiterStopsOnPermanentError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
	}{
		{"not found", &Error{Kind: KindNotFound, Status: 404}},
		{"authentication", &Error{Kind: KindAuthentication, Status: 401}},
		{"api 409", &Error{Kind: KindAPI, Status: 409}},
		{"plain", errors.New("instance is in an error state")},
		{"canceled from inside", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &script{steps: []step{{state: "new"}, {state: "errored", err: tt.err}}}
			// A slow schedule: if the waiter did not stop at once, the
			// test would hang until its failsafe.
			w := waiter{Policy: FixedWait(time.Millisecond), Timeout: time.Minute}
			err := w.Wait(context.Background(), s.poll)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Wait = %v, want %v", err, tt.err)
			}
			if errors.Is(err, ErrTimeout) {
				t.Errorf("a permanent error became a timeout: %v", err)
			}
			if got := s.count(); got != 2 {
				t.Errorf("polls = %d, want 2", got)
			}
		})
	}
}

func TestWaiterTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		steps        []step
		wantState    string
		wantDeadline bool  // errors.Is(err, context.DeadlineExceeded)
		wantWrapped  error // errors.Is(err, wantWrapped) when set
	}{
		{"never ready", []step{{state: "new"}, {state: "active, no public IP"}}, "active, no public IP", true, nil},
		{"transient errors only", []step{{err: api503()}}, "not polled yet", false, ErrAPI},
		{"state then transient errors", []step{{state: "new"}, {err: api503()}}, "new", false, ErrAPI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &script{steps: tt.steps}
			const timeout = 30 * time.Millisecond
			w := waiter{Provider: "hetzner", Op: "WaitReady", Resource: "instance", ID: "42", Timeout: timeout, Policy: fast}
			err := w.Wait(context.Background(), s.poll)
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("Wait = %v, want ErrTimeout", err)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatal("not a *Error")
			}
			if perr.Kind != KindTimeout || perr.LastState != tt.wantState {
				t.Errorf("Kind, LastState = %v, %q; want timeout, %q", perr.Kind, perr.LastState, tt.wantState)
			}
			if perr.Elapsed < timeout {
				t.Errorf("Elapsed = %v, want at least %v", perr.Elapsed, timeout)
			}
			if perr.Provider != "hetzner" || perr.Op != "WaitReady" || perr.Resource != "instance" || perr.ID != "42" {
				t.Errorf("error location = %q %q %q %q", perr.Provider, perr.Op, perr.Resource, perr.ID)
			}
			if got := errors.Is(err, context.DeadlineExceeded); got != tt.wantDeadline {
				t.Errorf("errors.Is(err, DeadlineExceeded) = %v, want %v", got, tt.wantDeadline)
			}
			if tt.wantWrapped != nil && !errors.Is(err, tt.wantWrapped) {
				t.Errorf("the last transient error is not wrapped: %v", err)
			}
			if !strings.Contains(err.Error(), "last state: "+tt.wantState) {
				t.Errorf("error text %q does not name the last state", err)
			}
			if s.count() < 2 {
				t.Errorf("polls = %d; a 1ms schedule over %v polls more than once", s.count(), timeout)
			}
		})
	}
}

// A deadline on the caller's context ends the wait as a timeout too.
func TestWaiterContextDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	s := &script{steps: []step{{state: "pending"}}}
	w := waiter{Policy: fast}
	err := w.Wait(ctx, s.poll)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want a timeout matching context.DeadlineExceeded", err)
	}
	var perr *Error
	if errors.As(err, &perr) && perr.LastState != "pending" {
		t.Errorf("LastState = %q", perr.LastState)
	}
}

// A poll that honours ctx returns the deadline error itself.
func TestWaiterPollSeesDeadline(t *testing.T) {
	t.Parallel()
	w := waiter{Policy: fast, Timeout: 20 * time.Millisecond}
	err := w.Wait(context.Background(), func(ctx context.Context) (bool, string, error) {
		<-ctx.Done()
		return false, "stuck", ctx.Err()
	})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "stuck") {
		t.Errorf("error %q does not name the last state", err)
	}
}

func TestWaiterCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// pollHonoursCtx makes the poll block until ctx ends.
		pollHonoursCtx bool
	}{
		{"cancel while sleeping", false},
		{"cancel during a poll", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			polled := make(chan struct{}, 1)
			poll := func(ctx context.Context) (bool, string, error) {
				select {
				case polled <- struct{}{}:
				default:
				}
				if tt.pollHonoursCtx {
					<-ctx.Done()
					return false, "booting", ctx.Err()
				}
				return false, "booting", nil
			}
			// An hour-long schedule and timeout: only the cancellation
			// can end this wait.
			w := waiter{Policy: FixedWait(time.Hour), Timeout: time.Hour, Op: "WaitReady"}
			errc := make(chan error, 1)
			go func() { errc <- w.Wait(ctx, poll) }()
			<-polled
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Wait = %v, want context.Canceled", err)
				}
				if errors.Is(err, ErrTimeout) || IsRetryable(err) {
					t.Errorf("a cancellation is a timeout or retryable: %v", err)
				}
				var perr *Error
				if errors.As(err, &perr) && perr.LastState != "booting" {
					t.Errorf("LastState = %q, want booting", perr.LastState)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Wait did not return after cancel")
			}
		})
	}
}

func TestWaiterAlreadyCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := &script{steps: []step{{state: "new"}}}
	w := waiter{Policy: FixedWait(time.Hour)}
	if err := w.Wait(ctx, s.poll); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if s.count() > 1 {
		t.Errorf("polls = %d after cancellation", s.count())
	}
}

// A Retry-After longer than the schedule's delay holds the next poll back.
func TestWaiterHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	t.Run("delays the next poll", func(t *testing.T) {
		t.Parallel()
		const ra = 30 * time.Millisecond
		s := &script{steps: []step{
			{err: &Error{Kind: KindRateLimit, Status: 429, RetryAfter: ra}},
			{done: true},
		}}
		w := waiter{Policy: fast, Timeout: time.Minute}
		if err := w.Wait(context.Background(), s.poll); err != nil {
			t.Fatal(err)
		}
		if gap := s.times[1].Sub(s.times[0]); gap < ra {
			t.Errorf("second poll came %v after the 429, want at least its Retry-After %v", gap, ra)
		}
	})
	t.Run("bounds the poll count", func(t *testing.T) {
		t.Parallel()
		// Every poll is throttled for an hour; within a 100ms timeout a
		// 1ms schedule would poll ~100 times, the Retry-After allows one
		// (plus at most one at the deadline).
		s := &script{steps: []step{{state: "new", err: &Error{Kind: KindRateLimit, RetryAfter: time.Hour}}}}
		w := waiter{Policy: fast, Timeout: 100 * time.Millisecond}
		start := time.Now()
		err := w.Wait(context.Background(), s.poll)
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrRateLimit) {
			t.Fatalf("Wait = %v, want a timeout wrapping the rate limit", err)
		}
		if n := s.count(); n > 2 {
			t.Errorf("polls = %d, want at most 2 under an hour-long Retry-After", n)
		}
		if el := time.Since(start); el > 30*time.Second {
			t.Errorf("Wait took %v; a Retry-After past the deadline must not oversleep it", el)
		}
	})
}

// Reaching the deadline ends the wait at once: the waiter must not poll in
// a tight loop between its own timer firing at the deadline and ctx being
// cancelled for it (a spin that hammers the API when the machine is busy).
func TestWaiterDoesNotSpinAtDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		st   step
	}{
		{"not ready", step{state: "new"}},
		{"transient error", step{err: api503()}},
		{"rate limited", step{err: &Error{Kind: KindRateLimit, RetryAfter: time.Hour}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for range 20 {
				s := &script{steps: []step{tt.st}}
				// The slow schedule sleeps straight to the deadline.
				w := waiter{Policy: FixedWait(time.Hour), Timeout: 5 * time.Millisecond}
				if err := w.Wait(context.Background(), s.poll); !errors.Is(err, ErrTimeout) {
					t.Fatalf("Wait = %v, want a timeout", err)
				}
				if n := s.count(); n > 2 {
					t.Fatalf("polls = %d, want at most 2 (one at the start, one at the deadline)", n)
				}
			}
		})
	}
}

// backoffStop is a schedule that gives up at once.
type backoffStop struct{}

func (backoffStop) NextBackOff() time.Duration { return -1 }

func TestWaiterScheduleGivesUp(t *testing.T) {
	t.Parallel()
	s := &script{steps: []step{{state: "new"}}}
	w := waiter{Policy: func() Backoff { return backoffStop{} }}
	err := w.Wait(context.Background(), s.poll)
	if !errors.Is(err, ErrTimeout) || s.count() != 1 {
		t.Fatalf("Wait = %v after %d polls, want a timeout after 1", err, s.count())
	}
}

func TestWaiterDefaultPolicy(t *testing.T) {
	t.Parallel()
	s := &script{steps: []step{{state: "new"}, {done: true}}}
	var w waiter // nil Policy, nil Logger, no timeout
	if err := w.Wait(context.Background(), s.poll); err != nil || s.count() != 2 {
		t.Fatalf("Wait = %v after %d polls", err, s.count())
	}
}

func TestWaiterLogs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := &script{steps: []step{{state: "new"}, {err: api503()}, {done: true, state: "active"}}}
	w := waiter{Provider: "do", Op: "WaitReady", ID: "7", Policy: fast, Logger: log}
	if err := w.Wait(context.Background(), s.poll); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"wait done", "polls=3", "rides over error", "provider=do"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestWaitersConcurrent(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			steps := make([]step, i%5)
			for j := range steps {
				steps[j] = step{state: "new"}
			}
			s := &script{steps: append(steps, step{done: true})}
			w := waiter{Policy: AdaptiveWait(0, time.Millisecond, 2*time.Millisecond), Timeout: time.Minute}
			if err := w.Wait(context.Background(), s.poll); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// delays draws n delays from a fresh schedule of p.
func delays(p WaitPolicy, n int) []time.Duration {
	b := p()
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = b.NextBackOff()
	}
	return out
}

func within(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }

func scale(d time.Duration, f float64) time.Duration { return time.Duration(float64(d) * f) }

func TestFixedWait(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{time.Millisecond, 500 * time.Millisecond, 5 * time.Second} {
		for i, got := range delays(FixedWait(d), 20) {
			if got != d {
				t.Errorf("FixedWait(%v) delay %d = %v", d, i, got)
			}
		}
	}
}

func TestExponentialWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		initial, max   time.Duration
		factor, jitter float64
	}{
		{10 * time.Millisecond, 200 * time.Millisecond, 2, 0.2},
		{time.Second, 15 * time.Second, 1.5, 0},
		{time.Millisecond, time.Millisecond, 3, 0.5},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%v-%v-x%v-j%v", tt.initial, tt.max, tt.factor, tt.jitter)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for range 20 { // jitter is random: sample several schedules
				ds := delays(ExponentialWait(tt.initial, tt.max, tt.factor, tt.jitter), 30)
				for i, d := range ds {
					if d <= 0 {
						t.Fatalf("delay %d = %v, want positive (a schedule that never stops)", i, d)
					}
					if !within(d, scale(tt.initial, 1-tt.jitter)-1, scale(tt.max, 1+tt.jitter)+1) {
						t.Errorf("delay %d = %v outside [%v, %v]", i, d, scale(tt.initial, 1-tt.jitter), scale(tt.max, 1+tt.jitter))
					}
				}
				if !within(ds[0], scale(tt.initial, 1-tt.jitter)-1, scale(tt.initial, 1+tt.jitter)+1) {
					t.Errorf("first delay %v, want about %v", ds[0], tt.initial)
				}
				if last := ds[len(ds)-1]; !within(last, scale(tt.max, 1-tt.jitter)-1, scale(tt.max, 1+tt.jitter)+1) {
					t.Errorf("delay after 30 steps %v, want about the cap %v", last, tt.max)
				}
			}
			if tt.jitter == 0 {
				ds := delays(ExponentialWait(tt.initial, tt.max, tt.factor, 0), 3)
				if ds[1] != scale(tt.initial, tt.factor) {
					t.Errorf("second delay %v, want %v", ds[1], scale(tt.initial, tt.factor))
				}
			}
		})
	}
}

func TestAdaptiveWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                     string
		expected, minGap, maxGap time.Duration
		firstLo, firstHi         time.Duration // bounds of the first delay, jitter included
		due                      time.Duration // the gap while the change is due
	}{
		// The first poll comes at 4/5 of the expected time, then gaps of
		// 6 % of it, clamped to [minGap, maxGap].
		{"boot 1s", time.Second, 10 * time.Millisecond, time.Second, 720 * time.Millisecond, 880 * time.Millisecond, 60 * time.Millisecond},
		{"boot 45s", 45 * time.Second, 1500 * time.Millisecond, 5 * time.Second, scale(36*time.Second, 0.9), scale(36*time.Second, 1.1), 2700 * time.Millisecond},
		{"boot 15s min gap", 15 * time.Second, 1500 * time.Millisecond, 5 * time.Second, scale(12*time.Second, 0.9), scale(12*time.Second, 1.1), 1500 * time.Millisecond},
		{"boot 300s max gap", 300 * time.Second, time.Second, 5 * time.Second, scale(240*time.Second, 0.9), scale(240*time.Second, 1.1), 5 * time.Second},
		// No expectation: start at the shortest gap.
		{"no expectation", 0, 50 * time.Millisecond, 5 * time.Second, 45 * time.Millisecond, 55 * time.Millisecond, 0},
		// Defaults: minGap 50ms, maxGap raised to minGap.
		{"zero gaps", 0, 0, 0, 45 * time.Millisecond, 55 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			minGap, maxGap := tt.minGap, tt.maxGap
			if minGap <= 0 {
				minGap = 50 * time.Millisecond
			}
			maxGap = max(maxGap, minGap)
			for range 20 {
				ds := delays(AdaptiveWait(tt.expected, tt.minGap, tt.maxGap), 60)
				if !within(ds[0], tt.firstLo, tt.firstHi) {
					t.Errorf("first delay %v, want within [%v, %v]", ds[0], tt.firstLo, tt.firstHi)
				}
				elapsed := ds[0]
				prev := time.Duration(0)
				for i, d := range ds[1:] {
					if d <= 0 {
						t.Fatalf("delay %d = %v, want positive", i+1, d)
					}
					if !within(d, scale(minGap, 0.9)-1, scale(maxGap, 1.1)+1) {
						t.Errorf("delay %d = %v outside [minGap, maxGap] = [%v, %v] ±10%%", i+1, d, minGap, maxGap)
					}
					switch {
					case tt.expected == 0:
						// A gap is a tenth of the time waited so far, clamped.
						want := min(max(elapsed/10, minGap), maxGap)
						if !within(d, scale(want, 0.9)-1, scale(want, 1.1)+1) {
							t.Errorf("delay %d = %v after %v, want about %v", i+1, d, elapsed, want)
						}
					case elapsed < scale(tt.expected, 1.35):
						if !within(d, scale(tt.due, 0.9)-1, scale(tt.due, 1.1)+1) {
							t.Errorf("delay %d = %v after %v (change due), want about %v", i+1, d, elapsed, tt.due)
						}
					default:
						// Late: gaps grow (jitter aside) up to maxGap.
						if d < scale(min(prev, maxGap), 0.8) {
							t.Errorf("delay %d = %v after %v (late) shrank from %v", i+1, d, elapsed, prev)
						}
					}
					prev = d
					elapsed += d
				}
				if last := ds[len(ds)-1]; tt.expected > 0 && last < scale(maxGap, 0.9) {
					t.Errorf("last delay %v, want the schedule to have reached maxGap %v", last, maxGap)
				}
			}
		})
	}
}

// A schedule resumed part-way skips what came before.
func TestAdaptiveWaitResume(t *testing.T) {
	t.Parallel()
	const expected = 10 * time.Second
	p := AdaptiveWait(expected, 100*time.Millisecond, 5*time.Second)
	due := 600 * time.Millisecond // 6 % of expected
	tests := []struct {
		name             string
		age              time.Duration
		firstLo, firstHi time.Duration
		nextLo, nextHi   time.Duration
	}{
		{"just created", time.Millisecond, scale(8*time.Second, 0.9), scale(8*time.Second, 1.1), scale(due, 0.9), scale(due, 1.1)},
		{"half way to the first poll", 4 * time.Second, scale(4*time.Second, 0.9), scale(4*time.Second, 1.1), scale(due, 0.9), scale(due, 1.1)},
		{"due: poll at once", 9 * time.Second, 0, 0, scale(due, 0.9), scale(due, 1.1)},
		{"late: poll at once, then longer gaps", time.Minute, 0, 0, scale(due, 1.5*0.9), scale(5*time.Second, 1.1)},
		{"no age: poll at once", 0, 0, 0, scale(8*time.Second, 0.9), scale(8*time.Second, 1.1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for range 20 {
				b, ok := p().(Resumer)
				if !ok {
					t.Fatal("AdaptiveWait's schedule is not a Resumer")
				}
				first := b.Resume(tt.age)
				if !within(first, tt.firstLo, tt.firstHi) {
					t.Errorf("Resume(%v) = %v, want within [%v, %v]", tt.age, first, tt.firstLo, tt.firstHi)
				}
				if next := b.NextBackOff(); !within(next, tt.nextLo, tt.nextHi) {
					t.Errorf("after Resume(%v): next delay %v, want within [%v, %v]", tt.age, next, tt.nextLo, tt.nextHi)
				}
			}
		})
	}
}

// A waiter told when the change began does not poll before the schedule
// says so, and polls at once when the change is past due.
func TestWaiterSince(t *testing.T) {
	t.Parallel()
	policy := AdaptiveWait(time.Hour, time.Minute, time.Hour)
	t.Run("just created", func(t *testing.T) {
		t.Parallel()
		// The schedule's first poll would come in 48 minutes: the wait
		// polls once, just before its deadline, and not before.
		s := &script{steps: []step{{state: "new"}, {done: true}}}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		w := waiter{Policy: policy, Since: time.Now()}
		start := time.Now()
		err := w.Wait(ctx, s.poll)
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("Wait = %v, want a timeout", err)
		}
		var perr *Error
		if errors.As(err, &perr) && perr.LastState != "new" {
			t.Errorf("timeout's last state %q, want the final poll's \"new\"", perr.LastState)
		}
		if n := s.count(); n != 1 {
			t.Errorf("polls = %d, want 1 (the final one)", n)
		}
		if el := time.Since(start); el < 150*time.Millisecond {
			t.Errorf("the final poll came after %v, want just before the 200ms deadline", el)
		}
	})
	t.Run("past due", func(t *testing.T) {
		t.Parallel()
		s := &script{steps: []step{{done: true}}}
		w := waiter{Policy: policy, Since: time.Now().Add(-2 * time.Hour), Timeout: time.Minute}
		if err := w.Wait(context.Background(), s.poll); err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if n := s.count(); n != 1 {
			t.Errorf("polls = %d, want 1", n)
		}
	})
	t.Run("schedule that cannot resume", func(t *testing.T) {
		t.Parallel()
		s := &script{steps: []step{{done: true}}}
		w := waiter{Policy: FixedWait(time.Hour), Since: time.Now(), Timeout: time.Minute}
		if err := w.Wait(context.Background(), s.poll); err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if n := s.count(); n != 1 {
			t.Errorf("polls = %d, want 1 (at once)", n)
		}
	})
}

// Two schedules of the same policy are independent and jittered: many
// waiters do not poll in step.
func TestAdaptiveWaitJitter(t *testing.T) {
	t.Parallel()
	p := AdaptiveWait(10*time.Second, time.Second, 5*time.Second)
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[p().NextBackOff()] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 schedules gave the same first delay: no jitter")
	}
}

// waitSDKError stands in for an SDK's error type.
type waitSDKError struct {
	Status int
	Code   string
}

func (e *waitSDKError) Error() string { return fmt.Sprintf("sdk: %d %s", e.Status, e.Code) }
