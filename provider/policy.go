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

	born Recent // resource/id -> when the driver created it
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
	// Remember creations as long as a wait on them may last.
	p.born.TTL = max(t.InstanceReady, t.ActionComplete, ConsistencyWindow)
	if p.Pacer == nil {
		p.Pacer = SharedPacer(AccountKey(name, d.Endpoint, d.Credential), d.RateLimits...)
	}
	if p.Wait == nil {
		p.Wait = DefaultWait(d.ExpectedBoot, t)
	}
	return p
}

// DefaultWait is the wait policy a driver gets when Config.WaitPolicy is
// nil: AdaptiveWait(expected, minGap, t.PollInterval) with minGap 3/10 of
// t.PollInterval or a twelfth of expected, whichever is shorter. With the
// default 5 s poll interval, polls come at gaps of 1.5 s to 5 s around the
// cloud's expected boot time (1.25 s for a 15 s boot): closer polls would
// notice readiness less than a second sooner, at the price of more calls.
// Zero fields of t take their defaults.
func DefaultWait(expected time.Duration, t ProviderTimeouts) WaitPolicy {
	t = t.WithDefaults()
	minGap := t.PollInterval * 3 / 10
	if expected > 0 {
		minGap = min(minGap, expected/12)
	}
	return AdaptiveWait(expected, minGap, t.PollInterval)
}

// Client returns c (or a new client when c is nil) with its transport paced
// by the Policy's Pacer and its answers bounded to MaxResponseBytes (see
// LimitBody). Drivers hand the result to their SDK.
func (p *Policy) Client(c *http.Client) *http.Client {
	pc := p.Pacer.Client(c)
	pc.Transport = LimitTransport(pc.Transport, MaxResponseBytes)
	return pc
}

// Call runs fn, which must be safe to repeat, under the retry policy: a
// retryable error is retried with backoff, each attempt bounded by
// Timeouts.HTTPRequest. fn returns errors already classified (an *Error);
// Call fills in the provider and op.
//
// Each attempt first takes its slot under the account's rate limit, bounded
// by ctx only: time queued behind the rate limit (a fleet of creates on
// one account) does not count against the attempt's timeout.
func (p *Policy) Call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	defer p.creating(op)()
	r := p.Retry
	timeout := r.AttemptTimeout
	r.AttemptTimeout = 0 // applied by attempt, after the pacer's wait
	user := p.Retry.OnRetry
	r.OnRetry = logRetry(p.Log, p.Provider, op, func(attempt int, err error, delay time.Duration) {
		p.retries.Add(1)
		if user != nil {
			user(attempt, err, delay)
		}
	})
	err := r.Do(ctx, func(ctx context.Context) error {
		return p.attempt(ctx, timeout, fn)
	})
	return p.finish(op, err)
}

// attempt runs fn once: it waits for a slot under the account's rate limit
// (bounded by ctx only), then runs fn with that slot, bounded by timeout
// (none when 0).
func (p *Policy) attempt(ctx context.Context, timeout time.Duration, fn func(ctx context.Context) error) error {
	s, err := p.Pacer.reserve(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	if s != nil {
		ctx = s
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	p.calls.Add(1)
	err = fn(ctx)
	if s == nil || !s.throttled.Load() {
		// A rate-limit answer the paced transport did not see (EC2's 503
		// RequestLimitExceeded, or a client the driver did not build).
		p.noteThrottle(err)
	}
	return err
}

// CallOnce runs fn once, bounded by Timeouts.HTTPRequest (once its slot
// under the rate limit is taken, as with Call), for calls that must not
// be repeated blindly (a create without idempotency key).
func (p *Policy) CallOnce(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	defer p.creating(op)()
	err := p.attempt(ctx, p.Timeouts.HTTPRequest, fn)
	return p.finish(op, err)
}

// creating counts a call of a create as a wait in progress on the account
// until the returned function is called: the machine it makes is about to
// be awaited, and the waits' share of the rate budget is planned with it.
func (p *Policy) creating(op string) (end func()) {
	if op != "CreateInstance" {
		return func() {}
	}
	return p.Pacer.beginWait()
}

// noteThrottle pauses the account's pacer on a rate-limit error.
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
// bounded by timeout and ctx. See Waiter. When the driver recorded the
// resource's creation with Created, the schedule starts from that moment
// (see Resumer): a wait begun right after a create first polls near the
// expected boot time instead of at once. The waits in progress on the
// account share half its rate budget, which AdaptiveWait's schedule keeps
// to. Each poll takes its slot under the account's rate limit before its
// Timeouts.HTTPRequest starts.
func (p *Policy) WaitFor(ctx context.Context, op, resource, id string, timeout time.Duration, poll PollFunc) error {
	w := Waiter{
		Provider: p.Provider, Op: op, Resource: resource, ID: id,
		Timeout: timeout, Policy: p.Wait, Logger: p.Log,
		Since:  p.createdAt(resource, id),
		budget: p.Pacer.share,
		spare:  p.Pacer.spare,
	}
	defer p.Pacer.beginWait()()
	return w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		var (
			done  bool
			state string
		)
		err := p.attempt(ctx, p.Timeouts.HTTPRequest, func(ctx context.Context) error {
			var err error
			done, state, err = poll(ctx)
			return err
		})
		if err != nil {
			err = Classify(p.Provider, op, 0, nil, err)
		}
		return done, state, err
	})
}

// Created records that the driver has just created resource id (an
// instance), so that a later WaitFor on it schedules its polls from this
// moment (the machine cannot be ready before its boot time, and polling it
// at once would spend a call of the account's rate budget for nothing), and
// so that Fresh knows it.
func (p *Policy) Created(resource, id string) {
	p.born.Add(resource + "/" + id)
}

// createdAt returns when resource id was recorded by Created, or the zero
// time.
func (p *Policy) createdAt(resource, id string) time.Time {
	age, ok := p.born.Age(resource + "/" + id)
	if !ok {
		return time.Time{}
	}
	return time.Now().Add(-age)
}

// Fresh reports whether the driver created resource id (see Created) less
// than ConsistencyWindow ago, and how much of the window is left: a "not
// found" for it then means "not visible yet".
func (p *Policy) Fresh(resource, id string) (left time.Duration, ok bool) {
	age, known := p.born.Age(resource + "/" + id)
	if !known || age >= ConsistencyWindow {
		return 0, false
	}
	return ConsistencyWindow - age, true
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
