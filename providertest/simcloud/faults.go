package simcloud

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// FaultKind is a misbehaviour the cloud can be told to show.
type FaultKind int

// The faults a Cloud can inject.
const (
	FaultNone FaultKind = iota
	// FaultRateLimit answers 429 with a Retry-After header (EC2: 503
	// RequestLimitExceeded).
	FaultRateLimit
	// FaultRateLimitBare answers 429 without Retry-After.
	FaultRateLimitBare
	// FaultInternal answers 500.
	FaultInternal
	// FaultBadGateway answers 502.
	FaultBadGateway
	// FaultUnavailable answers 503.
	FaultUnavailable
	// FaultDrop closes the connection before the operation runs.
	FaultDrop
	// FaultSlow answers after Fault.Delay.
	FaultSlow
	// FaultLoseResponse runs the operation, then closes the connection
	// without answering: the change is made but the caller never hears of it.
	FaultLoseResponse
	// FaultConsistency applies to creates: the new instance stays invisible
	// to reads for Fault.Delay (eventual consistency).
	FaultConsistency
	// FaultMalformed answers 200 with a body that does not parse.
	FaultMalformed
	// FaultTruncated answers 200 with a body cut short.
	FaultTruncated
	// FaultHuge answers 200 with a body of 64 MiB that never ends its first
	// value.
	FaultHuge
	faultKinds
)

var faultNames = [...]string{"none", "429", "429-bare", "500", "502", "503", "drop", "slow",
	"lost-response", "consistency", "malformed", "truncated", "huge"}

// String names the fault ("429", "lost-response").
func (k FaultKind) String() string {
	if k < 0 || k >= faultKinds {
		return fmt.Sprintf("FaultKind(%d)", int(k))
	}
	return faultNames[k]
}

// Fault is an injected misbehaviour: the next Count calls of Op show Kind.
type Fault struct {
	Op    Op
	Kind  FaultKind
	Count int
	// Delay is the slowness of FaultSlow, the Retry-After of FaultRateLimit
	// (default 1 s) and the invisibility window of FaultConsistency
	// (default 1 s).
	Delay time.Duration
}

// Inject queues a fault: the next f.Count calls (default 1) of f.Op show
// f.Kind. Faults queued for the same Op apply in order.
func (c *Cloud) Inject(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	if f.Delay <= 0 && (f.Kind == FaultRateLimit || f.Kind == FaultConsistency) {
		f.Delay = time.Second
	}
	c.mu.Lock()
	c.faults[f.Op] = append(c.faults[f.Op], &f)
	c.mu.Unlock()
}

// ClearFaults drops every queued and random fault.
func (c *Cloud) ClearFaults() {
	c.mu.Lock()
	c.faults = make(map[Op][]*Fault)
	c.random = randomFaults{}
	c.mu.Unlock()
}

// RandomFaults makes a share of calls misbehave, drawn from the cloud's
// seeded generator.
type RandomFaults struct {
	// Rate is the probability that a call shows a fault, 0 to 1.
	Rate float64
	// Kinds are drawn uniformly; FaultConsistency applies to creates only.
	Kinds []FaultKind
	// Ops limits the faults to these operations; nil means all.
	Ops []Op
	// Delay is as in Fault.
	Delay time.Duration
}

type randomFaults struct {
	RandomFaults
	on bool
}

// SetRandomFaults turns random faults on (or off with a zero Rate).
func (c *Cloud) SetRandomFaults(r RandomFaults) {
	c.mu.Lock()
	c.random = randomFaults{RandomFaults: r, on: r.Rate > 0 && len(r.Kinds) > 0}
	c.mu.Unlock()
}

// takeFaultLocked returns the fault the next call of op shows.
func (c *Cloud) takeFaultLocked(op Op) (FaultKind, time.Duration) {
	q := c.faults[op]
	for i, f := range q {
		if f.Kind == FaultConsistency {
			continue // consumed by CreateInstance
		}
		f.Count--
		if f.Count <= 0 {
			c.faults[op] = slices.Delete(slices.Clone(q), i, i+1)
		}
		return f.Kind, f.Delay
	}
	if r := c.random; r.on && (r.Ops == nil || slices.Contains(r.Ops, op)) && c.rng.Float64() < r.Rate {
		k := r.Kinds[c.rng.IntN(len(r.Kinds))]
		if k == FaultConsistency && op != OpCreateInstance {
			return FaultNone, 0
		}
		if k == FaultConsistency {
			c.randomConsistency = true
		}
		d := r.Delay
		if d <= 0 {
			d = time.Second
			if k == FaultSlow {
				d = 200 * time.Millisecond
			}
		}
		return k, d
	}
	return FaultNone, 0
}

// pendingConsistencyLocked consumes a queued or drawn consistency fault for
// a create and returns its window.
func (c *Cloud) pendingConsistencyLocked() time.Duration {
	if c.randomConsistency {
		c.randomConsistency = false
		c.faultsInjected[FaultConsistency]++
		d := c.random.Delay
		if d <= 0 {
			d = time.Second
		}
		return d
	}
	q := c.faults[OpCreateInstance]
	for i, f := range q {
		if f.Kind != FaultConsistency {
			continue
		}
		f.Count--
		if f.Count <= 0 {
			c.faults[OpCreateInstance] = slices.Delete(slices.Clone(q), i, i+1)
		}
		c.faultsInjected[FaultConsistency]++
		return f.Delay
	}
	return 0
}

// limiter is one account's token buckets.
type limiter struct {
	windows []window
}

type window struct {
	limit  int
	rate   float64 // tokens per second
	tokens float64
	last   time.Time
}

func newLimiter(limits []RateLimit, now time.Time) *limiter {
	l := &limiter{}
	for _, r := range limits {
		if r.Requests <= 0 || r.Per <= 0 {
			continue
		}
		l.windows = append(l.windows, window{limit: r.Requests, rate: float64(r.Requests) / r.Per.Seconds(), tokens: float64(r.Requests), last: now})
	}
	return l
}

// take consumes one token from every window, or returns how long until one
// is available in all.
func (l *limiter) take(now time.Time) (ok bool, retryAfter time.Duration) {
	for i := range l.windows {
		w := &l.windows[i]
		if el := now.Sub(w.last).Seconds(); el > 0 {
			w.tokens = math.Min(float64(w.limit), w.tokens+el*w.rate)
			w.last = now
		}
		if w.tokens < 1 {
			if d := time.Duration((1 - w.tokens) / w.rate * float64(time.Second)); d > retryAfter {
				retryAfter = d
			}
		}
	}
	if retryAfter > 0 {
		return false, retryAfter
	}
	for i := range l.windows {
		l.windows[i].tokens--
	}
	return true, 0
}

// WindowState is a rate-limit window as the headers report it.
type WindowState struct {
	// Limit is the window's size in requests.
	Limit int
	// Remaining is the number of requests left now.
	Remaining int
	// Reset is when the window will be full again.
	Reset time.Time
	// Per is the window's period.
	Per time.Duration
}

func (l *limiter) state(now time.Time) []WindowState {
	out := make([]WindowState, len(l.windows))
	for i, w := range l.windows {
		missing := float64(w.limit) - w.tokens
		out[i] = WindowState{
			Limit:     w.limit,
			Remaining: int(math.Max(0, math.Floor(w.tokens))),
			Reset:     now.Add(time.Duration(missing / w.rate * float64(time.Second))),
			Per:       time.Duration(float64(w.limit) / w.rate * float64(time.Second)),
		}
	}
	return out
}

// Decision is what the cloud decided for one API call before running it.
type Decision struct {
	// Op is the operation.
	Op Op
	// Fault is the misbehaviour to show, or FaultNone. A call over the rate
	// limit gets FaultRateLimit with Throttled set.
	Fault FaultKind
	// Throttled reports a real rate-limit rejection (not an injected fault).
	Throttled bool
	// Delay is the fault's delay (see Fault.Delay).
	Delay time.Duration
	// RetryAfter is the wait to advertise with a 429.
	RetryAfter time.Duration
	// Windows are the account's rate-limit windows after this call.
	Windows []WindowState
}

// Admit counts one call of op by the account holding credential, checks
// the credential (CodeUnauthorized), applies the rate limit and picks the
// fault to show. Dialects call it through Serve.
func (c *Cloud) Admit(op Op, credential string) (Decision, *Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.calls[op]++
	d := Decision{Op: op}
	if credential == "" || !c.tokens[credential] {
		return d, errf(CodeUnauthorized, "unable to authenticate you")
	}
	l := c.limiters[credential]
	if l == nil {
		l = newLimiter(c.opts.RateLimits, now)
		c.limiters[credential] = l
	}
	ok, wait := l.take(now)
	d.Windows = l.state(now)
	if !ok {
		c.rateLimited++
		d.Fault, d.Throttled, d.RetryAfter = FaultRateLimit, true, wait
		return d, nil
	}
	d.Fault, d.Delay = c.takeFaultLocked(op)
	if d.Fault == FaultConsistency {
		d.Fault = FaultNone // counted when the create consumes it
	}
	if d.Fault != FaultNone {
		c.faultsInjected[d.Fault]++
		if d.Fault == FaultRateLimit {
			d.RetryAfter = d.Delay
		}
	}
	return d, nil
}
