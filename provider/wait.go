package provider

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Backoff is a schedule of delays between polls or attempts: NextBackOff
// returns the next delay, or backoff.Stop (-1) to give up.
// *backoff.ExponentialBackOff from github.com/cenkalti/backoff/v4 satisfies it.
type Backoff interface {
	NextBackOff() time.Duration
}

// WaitPolicy builds the schedule of one wait. The waiter polls once at once,
// then sleeps for each delay its Backoff yields before polling again.
type WaitPolicy func() Backoff

// FixedWait polls every d: the original spuff's strategy (5 s), and
// hcloud-go's action polling (500 ms).
func FixedWait(d time.Duration) WaitPolicy {
	return func() Backoff { return backoff.NewConstantBackOff(d) }
}

// ExponentialWait polls after delays that grow from initial by factor up to
// max, each randomized by ±jitter (0.2 means ±20 %).
func ExponentialWait(initial, max time.Duration, factor, jitter float64) WaitPolicy {
	return func() Backoff {
		b := &backoff.ExponentialBackOff{
			InitialInterval:     initial,
			RandomizationFactor: jitter,
			Multiplier:          factor,
			MaxInterval:         max,
			MaxElapsedTime:      0,
			Stop:                backoff.Stop,
			Clock:               backoff.SystemClock,
		}
		b.Reset()
		return b
	}
}

// AdaptiveWait is the default wait policy. It expects the awaited change
// after about expected (the cloud's typical boot or snapshot time): it polls
// at once, then first near half of expected, then at gaps of a tenth of the
// time waited so far, never shorter than minGap nor longer than maxGap, each
// with ±10 % jitter so that many waiters do not poll in step. Readiness is
// thus noticed within about 5 % of the time it took, at few calls.
func AdaptiveWait(expected, minGap, maxGap time.Duration) WaitPolicy {
	if minGap <= 0 {
		minGap = 50 * time.Millisecond
	}
	if maxGap < minGap {
		maxGap = minGap
	}
	return func() Backoff {
		return &adaptive{expected: expected, minGap: minGap, maxGap: maxGap}
	}
}

type adaptive struct {
	expected, minGap, maxGap time.Duration
	elapsed                  time.Duration
	n                        int
}

func (a *adaptive) NextBackOff() time.Duration {
	var d time.Duration
	if a.n == 0 && a.expected > 0 {
		d = a.expected / 2
		if d > a.maxGap && a.maxGap > 0 {
			// A first poll later than the longest gap would overshoot
			// machines that boot faster than usual; approach in steps.
			d = max(a.maxGap, a.expected/2-a.maxGap)
		}
	} else {
		d = time.Duration(float64(a.elapsed) * 0.1)
		d = min(max(d, a.minGap), a.maxGap)
	}
	a.n++
	d = jitter(d, 0.1)
	a.elapsed += d
	return d
}

func jitter(d time.Duration, f float64) time.Duration {
	if d <= 0 || f <= 0 {
		return d
	}
	delta := (rand.Float64()*2 - 1) * f * float64(d)
	return time.Duration(math.Max(0, float64(d)+delta))
}

// PollFunc is one check of a wait. It returns done once the awaited
// condition holds, and a short description of the state it saw, reported in
// logs and in the timeout error. A retryable error (see IsRetryable) is
// ridden over and the wait goes on; any other error ends the wait.
type PollFunc func(ctx context.Context) (done bool, state string, err error)

// Waiter polls until a condition holds, the timeout passes or ctx ends. It is
// the one waiting loop every driver uses, for WaitReady, actions and
// snapshots.
type Waiter struct {
	// Provider, Op, Resource and ID name what is awaited, for errors and logs.
	Provider, Op, Resource, ID string
	// Timeout bounds the wait; 0 leaves only ctx to bound it.
	Timeout time.Duration
	// Policy schedules the polls; nil means AdaptiveWait(0, 50ms, 5s).
	Policy WaitPolicy
	// Logger receives a debug line per poll; nil discards.
	Logger *slog.Logger
	// OnPoll, if set, is called after every poll (for counting).
	OnPoll func(state string, err error)
}

// Wait polls until poll reports done. The first poll is immediate. On
// timeout it returns an *Error of KindTimeout with the elapsed time and the
// last state seen, wrapping the last transient error if any; when ctx is
// cancelled it returns an error matching context.Canceled.
func (w *Waiter) Wait(ctx context.Context, poll PollFunc) error {
	start := time.Now()
	if w.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.Timeout)
		defer cancel()
	}
	policy := w.Policy
	if policy == nil {
		policy = AdaptiveWait(0, 50*time.Millisecond, 5*time.Second)
	}
	sched := policy()
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	trace := ContextWaitTrace(ctx)
	var (
		lastState = "not polled yet"
		lastErr   error
		timer     *time.Timer
	)
	for attempt := 1; ; attempt++ {
		done, state, err := poll(ctx)
		if w.OnPoll != nil {
			w.OnPoll(state, err)
		}
		if trace != nil && trace.Polled != nil {
			trace.Polled(WaitEvent{Provider: w.Provider, Op: w.Op, ID: w.ID, State: state, Done: done && err == nil, Err: err, Polls: attempt, Elapsed: time.Since(start)})
		}
		if state != "" {
			lastState = state
		}
		if err == nil && done {
			log.Debug("spuff: wait done", "provider", w.Provider, "op", w.Op, "id", w.ID, "polls", attempt, "elapsed", time.Since(start))
			return nil
		}
		var delay time.Duration
		if err != nil {
			if ctx.Err() != nil || deadlinePassed(ctx) {
				return w.ended(ctx, start, lastState, err)
			}
			if !IsRetryable(err) {
				return err
			}
			lastErr = err
			if ra, ok := RetryAfter(err); ok {
				delay = ra
			}
			log.Debug("spuff: wait rides over error", "provider", w.Provider, "op", w.Op, "id", w.ID, "kind", KindOf(err).String())
		}
		next := sched.NextBackOff()
		if next == backoff.Stop {
			return w.timeout(start, lastState, lastErr)
		}
		delay = max(delay, next)
		log.Debug("spuff: waiting", "provider", w.Provider, "op", w.Op, "id", w.ID, "state", lastState, "next", delay)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			// Sleep to the deadline only: the error then comes at the
			// promised time, not after an oversleep.
			delay = max(0, time.Until(deadline))
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			return w.ended(ctx, start, lastState, lastErr)
		case <-timer.C:
		}
		if deadlinePassed(ctx) {
			// The timer slept to the deadline and fired before ctx's
			// own timer cancelled it: polling again would spin until
			// it does.
			return w.ended(ctx, start, lastState, lastErr)
		}
	}
}

// deadlinePassed reports whether ctx's deadline is reached, even if ctx has
// not been cancelled for it yet.
func deadlinePassed(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}

// ended reports why ctx ended: a timeout error for a deadline, a
// cancellation error otherwise.
func (w *Waiter) ended(ctx context.Context, start time.Time, lastState string, lastErr error) error {
	if err := ctx.Err(); err == nil || errors.Is(err, context.DeadlineExceeded) {
		return w.timeout(start, lastState, lastErr)
	}
	return &Error{Kind: KindUnknown, Provider: w.Provider, Op: w.Op, Resource: w.Resource, ID: w.ID,
		LastState: lastState, Message: "canceled while waiting (last state: " + lastState + ")", Err: ctx.Err()}
}

func (w *Waiter) timeout(start time.Time, lastState string, lastErr error) error {
	err := lastErr
	if err == nil {
		err = context.DeadlineExceeded
	}
	return &Error{Kind: KindTimeout, Provider: w.Provider, Op: w.Op, Resource: w.Resource, ID: w.ID,
		Elapsed: time.Since(start), LastState: lastState, Err: err}
}

// WaitEvent describes one poll of a wait, for a WaitTrace.
type WaitEvent struct {
	// Provider, Op and ID name the wait ("digitalocean", "WaitReady", "123").
	Provider, Op, ID string
	// State is what the poll saw ("new", "active without public IP").
	State string
	// Done reports that the awaited condition holds.
	Done bool
	// Err is the poll's error, if any (transient errors are ridden over).
	Err error
	// Polls is the number of polls so far, this one included.
	Polls int
	// Elapsed is the time since the wait began.
	Elapsed time.Duration
}

// WaitTrace receives progress of the waits made with a context, as
// net/http/httptrace's ClientTrace does for requests: a CLI shows elapsed
// time and state while WaitReady runs. Its functions must be quick and safe
// for concurrent use.
type WaitTrace struct {
	// Polled is called after every poll.
	Polled func(WaitEvent)
}

type waitTraceKey struct{}

// WithWaitTrace returns a context whose waits report to trace.
func WithWaitTrace(ctx context.Context, trace *WaitTrace) context.Context {
	return context.WithValue(ctx, waitTraceKey{}, trace)
}

// ContextWaitTrace returns the WaitTrace of ctx, or nil.
func ContextWaitTrace(ctx context.Context) *WaitTrace {
	t, _ := ctx.Value(waitTraceKey{}).(*WaitTrace)
	return t
}
