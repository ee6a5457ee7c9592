package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// policy applies the cross-cutting policies — retry of safe calls, pacing
// under the account's rate limit, waiting and logging — to one Provider's
// driver calls. Every driver call of the portable layer goes through it.
type policy struct {
	name      string
	t         ProviderTimeouts // with defaults
	retry     RetryPolicy
	wait      WaitPolicy // nil: DefaultWait tuned per wait
	pacer     *Pacer
	pollClass string // the rate-limit class of the polls of a wait
	log       *slog.Logger

	calls   atomic.Int64
	retries atomic.Int64
}

// call runs fn, which must be safe to repeat, under the retry policy: a
// retryable error is retried with backoff. Its error is wrapped as an
// *Error of the provider and op.
func (p *policy) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return p.loop(ctx, op, func(ctx context.Context) (bool, error) {
		err := p.once(ctx, op, fn)
		return IsRetryable(err), err
	})
}

// loop repeats fn under the retry policy while it says its error is worth
// another attempt, counting and logging the retries.
func (p *policy) loop(ctx context.Context, op string, fn func(ctx context.Context) (bool, error)) error {
	r := p.retry
	user := r.OnRetry
	r.OnRetry = func(attempt int, err error, delay time.Duration) {
		p.retries.Add(1)
		p.log.Debug("spuff: retrying", "provider", p.name, "op", op, "attempt", attempt, "kind", KindOf(err).String(), "delay", delay)
		if user != nil {
			user(attempt, err, delay)
		}
	}
	return r.loop(ctx, fn)
}

// once runs fn once, with its error wrapped. A rate-limit answer the paced
// transport could not recognise (EC2's RequestLimitExceeded is a 503)
// pauses the account's pacer.
func (p *policy) once(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	p.calls.Add(1)
	err := wrapErr(p.name, op, fn(ctx))
	var perr *Error
	if errors.As(err, &perr) && perr.Kind == KindRateLimit && perr.Status != http.StatusTooManyRequests {
		p.pacer.Throttled(perr.RetryAfter)
	}
	return err
}

// retried is call for fn with a result.
func retried[T any](ctx context.Context, p *policy, op string, fn func(ctx context.Context) (T, error)) (T, error) {
	var out T
	err := p.call(ctx, op, func(ctx context.Context) error {
		var err error
		out, err = fn(ctx)
		return err
	})
	return out, err
}

// waitFor polls until poll reports done, bounded by timeout and ctx,
// under the caller's wait policy, else sched. since, if not zero, is when
// the awaited change began (the machine was created then): the schedule
// starts from it. The waits in progress on the account share half its rate
// budget, which AdaptiveWait's schedule keeps to.
func (p *policy) waitFor(ctx context.Context, op, resource, id string, timeout time.Duration, sched WaitPolicy, since time.Time, poll pollFunc) error {
	wp := p.wait
	if wp == nil {
		wp = sched
	}
	class := p.pollClass
	w := waiter{
		Provider: p.name, Op: op, Resource: resource, ID: id,
		Timeout: timeout, Policy: wp, Logger: p.log, Since: since,
		budget: func(d time.Duration) float64 { return p.pacer.share(d, class) },
		spare:  func(gap time.Duration) bool { return p.pacer.spare(gap, class) },
	}
	defer p.pacer.beginWait()()
	return w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		p.calls.Add(1)
		done, state, err := poll(ctx)
		return done, state, wrapErr(p.name, op, err)
	})
}

// Stats counts what a Provider did.
type Stats struct {
	// Calls is the number of driver calls made (each poll of a wait
	// included).
	Calls int64
	// Retries is the number of calls repeated after a retryable error.
	Retries int64
	// Pacer is the account pacer's statistics (shared with other
	// Providers of the same account).
	Pacer PacerStats
}

func (p *policy) stats() Stats {
	return Stats{Calls: p.calls.Load(), Retries: p.retries.Load(), Pacer: p.pacer.Stats()}
}
