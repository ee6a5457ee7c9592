package provider

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// Policy applies the cross-cutting policies of this package — retry of safe
// calls, pacing under the account's rate limit, waiting, per-request
// timeouts and logging — to one driver's API calls, so that a driver is
// mostly translation. A driver builds one in its constructor with NewPolicy.
type Policy struct {
	// Provider is the driver's registered name.
	Provider string
	// Timeouts are the caller's timeouts with defaults filled in.
	Timeouts ProviderTimeouts
	// Retry is the policy for calls that are safe to repeat.
	Retry RetryPolicy
	// Wait schedules polls.
	Wait WaitPolicy
	// Pacer paces the account's calls; see Client.
	Pacer *Pacer
	// Log receives debug logs; never nil.
	Log *slog.Logger

	retries atomic.Int64
	calls   atomic.Int64
}

// PolicyDefaults are a driver's defaults for NewPolicy.
type PolicyDefaults struct {
	// Credential identifies the account for the shared pacer (its hash is
	// used, never the value).
	Credential string
	// Endpoint is the API endpoint in use.
	Endpoint string
	// RateLimits are the cloud's published limits.
	RateLimits []RateLimit
	// ExpectedBoot is the cloud's typical time from create to ready, which
	// tunes the default wait policy.
	ExpectedBoot time.Duration
}

// NewPolicy builds the Policy of a driver named name from the caller's
// Config and the driver's defaults.
func NewPolicy(name string, cfg Config, d PolicyDefaults) *Policy {
	t := cfg.Timeouts.WithDefaults()
	p := &Policy{
		Provider: name,
		Timeouts: t,
		Log:      cfg.Log(),
		Pacer:    cfg.Pacer,
		Wait:     cfg.WaitPolicy,
		Retry:    cfg.Retry,
	}
	if p.Retry.AttemptTimeout <= 0 {
		p.Retry.AttemptTimeout = t.HTTPRequest
	}
	if p.Pacer == nil {
		p.Pacer = SharedPacer(AccountKey(name, d.Endpoint, d.Credential), d.RateLimits...)
	}
	if p.Wait == nil {
		p.Wait = AdaptiveWait(d.ExpectedBoot, min(time.Second, t.PollInterval), t.PollInterval)
	}
	return p
}

// Client returns c (or a new client when c is nil) with its transport paced
// by the Policy's Pacer. Drivers hand the result to their SDK.
func (p *Policy) Client(c *http.Client) *http.Client { return p.Pacer.Client(c) }

// Call runs fn, which must be safe to repeat, under the retry policy: a
// retryable error is retried with backoff, each attempt bounded by
// Timeouts.HTTPRequest. fn returns errors already classified (an *Error);
// Call fills in the provider and op.
func (p *Policy) Call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	r := p.Retry
	user := p.Retry.OnRetry
	r.OnRetry = logRetry(p.Log, p.Provider, op, func(attempt int, err error, delay time.Duration) {
		p.retries.Add(1)
		p.noteThrottle(err)
		if user != nil {
			user(attempt, err, delay)
		}
	})
	err := r.Do(ctx, func(ctx context.Context) error {
		p.calls.Add(1)
		return fn(ctx)
	})
	return p.finish(op, err)
}

// CallOnce runs fn once, bounded by Timeouts.HTTPRequest, for calls that
// must not be repeated blindly (a create without idempotency key).
func (p *Policy) CallOnce(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeouts.HTTPRequest)
	defer cancel()
	p.calls.Add(1)
	err := fn(ctx)
	p.noteThrottle(err)
	return p.finish(op, err)
}

// noteThrottle pauses the account's pacer on a rate-limit error, which the
// paced transport cannot always recognise (EC2 throttles with a 503).
func (p *Policy) noteThrottle(err error) {
	if err != nil && KindOf(err) == KindRateLimit {
		d, _ := RetryAfter(err)
		p.Pacer.Throttled(d)
	}
}

func (p *Policy) finish(op string, err error) error {
	if err == nil {
		return nil
	}
	return Classify(p.Provider, op, 0, nil, err)
}

// WaitFor polls until poll reports done, under the Policy's wait policy,
// bounded by timeout and ctx. See Waiter.
func (p *Policy) WaitFor(ctx context.Context, op, resource, id string, timeout time.Duration, poll PollFunc) error {
	w := Waiter{
		Provider: p.Provider, Op: op, Resource: resource, ID: id,
		Timeout: timeout, Policy: p.Wait, Logger: p.Log,
		OnPoll: func(_ string, err error) { p.noteThrottle(err) },
	}
	return w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		actx, cancel := context.WithTimeout(ctx, p.Timeouts.HTTPRequest)
		defer cancel()
		p.calls.Add(1)
		done, state, err := poll(actx)
		if err != nil {
			err = Classify(p.Provider, op, 0, nil, err)
		}
		return done, state, err
	})
}

// PolicyStats counts what a Policy did.
type PolicyStats struct {
	// Calls is the number of attempts made through Call, CallOnce and WaitFor.
	Calls int64
	// Retries is the number of retries Call made.
	Retries int64
	// Pacer is the account pacer's statistics (shared with other Providers
	// of the same account).
	Pacer PacerStats
}

// Stats returns what the Policy has done so far.
func (p *Policy) Stats() PolicyStats {
	return PolicyStats{Calls: p.calls.Load(), Retries: p.retries.Load(), Pacer: p.Pacer.Stats()}
}
