package simcloud

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// RateLimit is one window of a rate limit: Requests per Per. By default it
// is a token bucket that starts full and refills continuously (Requests/Per
// tokens a second), as EC2 and Hetzner document theirs; Sliding makes it
// DigitalOcean's kind, where each request counts for Per after it is made.
type RateLimit struct {
	// Requests is the window's size; Per its period (cloud time, scaled by
	// Options.TimeScale).
	Requests int
	Per      time.Duration
	// Sliding counts each admitted request against the window for Per after
	// it was made ("each request instead has its own timer", DigitalOcean
	// API reference, Rate Limit): remaining is Requests minus the requests
	// of the last Per, and the window's reset is when the oldest of them
	// expires.
	Sliding bool
	// Ops limits the window to these operations (DigitalOcean's 10 GET
	// /v2/account/keys per 60 s); nil means every call.
	Ops []Op
	// Name names the window for the dialects' headers ("minute", "hour").
	Name string
	// NoRetryAfter makes a refusal by this window carry no Retry-After:
	// DigitalOcean sends one only for its burst limit.
	NoRetryAfter bool
}

func (r RateLimit) applies(op Op) bool { return r.Ops == nil || slices.Contains(r.Ops, op) }

// Charge is what one call takes from a named bucket of Options.Buckets:
// EC2 throttles each API action on its own bucket sized by its class, and
// some actions also on a bucket of resources (instances launched or
// terminated).
type Charge struct {
	// Bucket names the bucket's definition in Options.Buckets; a name the
	// options lack charges nothing.
	Bucket string
	// Key separates buckets of the same definition (one per API action:
	// "DescribeImages" and "DescribeKeyPairs" each have a non-mutating
	// bucket of their own); empty means Bucket.
	Key string
	// Tokens is the cost; 0 means 1.
	Tokens int
}

// Call is one API call as a dialect presents it for admission.
type Call struct {
	// Op is the operation, for counting and faults.
	Op Op
	// Credential identifies the account.
	Credential string
	// Scope separates the account's limits further: EC2 throttles per
	// account and region. Empty for one scope.
	Scope string
	// Charges are the named buckets the call draws from, besides the
	// account's RateLimits.
	Charges []Charge
}

// meter is one window's state.
type meter struct {
	limit   int
	per     time.Duration
	sliding bool
	tokens  float64     // bucket: tokens now
	last    time.Time   // bucket: when tokens was computed
	log     []time.Time // sliding: admission times, oldest first
}

func newMeter(r RateLimit, per time.Duration, now time.Time) *meter {
	return &meter{limit: r.Requests, per: per, sliding: r.Sliding, tokens: float64(r.Requests), last: now}
}

func (m *meter) advance(now time.Time) {
	if m.sliding {
		i := 0
		for i < len(m.log) && !now.Before(m.log[i].Add(m.per)) {
			i++
		}
		if i > 0 {
			m.log = slices.Delete(m.log, 0, i)
		}
		return
	}
	if el := now.Sub(m.last).Seconds(); el > 0 {
		m.tokens = math.Min(float64(m.limit), m.tokens+el*m.rate())
		m.last = now
	}
}

func (m *meter) rate() float64 { return float64(m.limit) / m.per.Seconds() }

// wait returns how long until n tokens are available (0: now). A cost over
// the window's size waits a full period, then again.
func (m *meter) wait(now time.Time, n int) time.Duration {
	if m.sliding {
		over := len(m.log) + n - m.limit
		switch {
		case over <= 0:
			return 0
		case over > len(m.log):
			return m.per
		}
		return m.log[over-1].Add(m.per).Sub(now)
	}
	if m.tokens >= float64(n) {
		return 0
	}
	if n > m.limit {
		return m.per
	}
	return time.Duration(math.Ceil((float64(n) - m.tokens) / m.rate() * float64(time.Second)))
}

func (m *meter) take(now time.Time, n int) {
	if m.sliding {
		for range n {
			m.log = append(m.log, now)
		}
		return
	}
	m.tokens -= float64(n)
}

func (m *meter) state(now time.Time) (remaining int, reset time.Time) {
	if m.sliding {
		if len(m.log) == 0 {
			return m.limit, now
		}
		return max(0, m.limit-len(m.log)), m.log[0].Add(m.per)
	}
	missing := float64(m.limit) - m.tokens
	return int(math.Max(0, math.Floor(m.tokens))), now.Add(time.Duration(missing / m.rate() * float64(time.Second)))
}

// WindowState is a rate-limit window as the headers report it.
type WindowState struct {
	// Name is the window's RateLimit.Name.
	Name string
	// Limit is the window's size in requests.
	Limit int
	// Remaining is the number of requests left now.
	Remaining int
	// Reset is when the window will be full again (a token bucket), or when
	// its oldest request expires (a sliding window).
	Reset time.Time
	// Per is the window's period (wall-clock, scaled).
	Per time.Duration
	// Throttled reports that this window refused the call.
	Throttled bool
}

// meterLocked returns the meter of key in the account's scope, made from r
// on first use.
func (c *Cloud) meterLocked(scope, key string, r RateLimit, now time.Time) *meter {
	ms := c.limiters[scope]
	if ms == nil {
		ms = make(map[string]*meter)
		c.limiters[scope] = ms
	}
	m := ms[key]
	if m == nil {
		m = newMeter(r, c.Scale(r.Per), now)
		ms[key] = m
	}
	m.advance(now)
	return m
}

// throttleLocked applies the account's rate limits and the call's charges:
// either the call fits every window and takes from each, or it takes from
// none and is refused with the wait until it would fit. sendRetryAfter is
// false when a refusing window says no Retry-After is sent.
func (c *Cloud) throttleLocked(call Call, now time.Time) (ok bool, wait time.Duration, sendRetryAfter bool, windows []WindowState) {
	type use struct {
		m      *meter
		n      int
		window int // index into windows, or -1
		noRA   bool
	}
	scope := call.Credential + "\x00" + call.Scope
	var uses []use
	for i, r := range c.opts.RateLimits {
		if r.Requests <= 0 || r.Per <= 0 || !r.applies(call.Op) {
			continue
		}
		m := c.meterLocked(scope, "window:"+strconv.Itoa(i), r, now)
		windows = append(windows, WindowState{Name: r.Name, Limit: r.Requests, Per: m.per})
		uses = append(uses, use{m: m, n: 1, window: len(windows) - 1, noRA: r.NoRetryAfter})
	}
	for _, ch := range call.Charges {
		r, defined := c.opts.Buckets[ch.Bucket]
		if !defined || r.Requests <= 0 || r.Per <= 0 {
			continue
		}
		key := ch.Key
		if key == "" {
			key = ch.Bucket
		}
		m := c.meterLocked(scope, "bucket:"+ch.Bucket+"\x00"+key, r, now)
		uses = append(uses, use{m: m, n: max(ch.Tokens, 1), window: -1, noRA: r.NoRetryAfter})
	}
	sendRetryAfter = true
	for _, u := range uses {
		if d := u.m.wait(now, u.n); d > 0 {
			wait = max(wait, d)
			if u.noRA {
				sendRetryAfter = false
			}
			if u.window >= 0 {
				windows[u.window].Throttled = true
			}
		}
	}
	ok = wait == 0
	if ok {
		for _, u := range uses {
			u.m.take(now, u.n)
		}
	}
	for _, u := range uses {
		if u.window >= 0 {
			w := &windows[u.window]
			w.Remaining, w.Reset = u.m.state(now)
		}
	}
	return ok, wait, sendRetryAfter, windows
}
