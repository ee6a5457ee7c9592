package provider

import (
	"context"
	"github.com/spuffgo/spuff/provider/driver"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimit is one window of a cloud's API rate limit: at most Requests
// requests in any period Per; with a Class, only requests of that class
// (EC2's bucket per action).
type RateLimit = driver.RateLimit

// Pacer spaces API calls so that an account stays under its rate limit:
// one token bucket per RateLimit window, refilled continuously, corrected by
// the RateLimit-Remaining and Retry-After headers the cloud returns, and
// paused after a 429. Callers reserve a slot in turn, so many goroutines
// sharing a Pacer are served in order rather than racing: a fleet of
// concurrent creates slows down before the cloud answers 429.
//
// A window of 20 requests or more keeps a twentieth of its bucket in
// reserve: requests paced exactly to the limit may reach the cloud closer
// together than they left (network and scheduling jitter), and the reserve
// absorbs that. Waits on the account (Policy.WaitFor) share what remains
// with the other calls: see AdaptiveWait. A nil *Pacer paces nothing. Safe
// for concurrent use.
type Pacer struct {
	mu       sync.Mutex
	buckets  []bucket
	until    time.Time // no request starts before this
	gen      uint64    // throttles seen: a slot taken before one is retaken
	inflight int
	stats    PacerStats
	waits    atomic.Int64 // waits in progress on the account
}

type bucket struct {
	class  string // "" covers every request
	limit  int
	margin float64 // tokens kept in reserve
	rate   float64 // tokens per second
	tokens float64
	last   time.Time
	// A sliding window's log: the send times of its last limit-margin
	// requests, a ring whose next slot (the oldest) is head.
	per  time.Duration
	log  []time.Time
	head int
}

// slide returns how long after now a request may leave under b's
// sliding log: when the oldest of its last limit-margin requests leaves
// the window (0 for a bucket without a log, or before it is full).
func (b *bucket) slide(now time.Time) time.Duration {
	if len(b.log) == 0 || b.log[b.head].IsZero() {
		return 0
	}
	return max(0, b.log[b.head].Add(b.per).Sub(now))
}

// PacerStats counts what a Pacer did.
type PacerStats struct {
	// Requests is the number of requests admitted.
	Requests int64
	// Delayed is the number of requests that had to wait.
	Delayed int64
	// Waited is the total time requests spent waiting.
	Waited time.Duration
	// Throttled is the number of rate-limit signals seen: a 429 seen by the
	// paced transport, and rate-limit errors reported by a Policy (a 429
	// seen by both counts twice).
	Throttled int64
}

// NewPacer returns a Pacer for the given windows, each starting full.
// Windows with no requests or no period are ignored; with none left, the
// Pacer only honours Retry-After.
func NewPacer(limits ...RateLimit) *Pacer {
	p := &Pacer{}
	now := time.Now()
	for _, l := range limits {
		if l.Requests <= 0 || l.Per <= 0 {
			continue
		}
		b := bucket{
			class:  l.Class,
			limit:  l.Requests,
			margin: float64(l.Requests / 20),
			rate:   float64(l.Requests) / l.Per.Seconds(),
			tokens: float64(l.Requests),
			last:   now,
		}
		if l.Sliding {
			b.per, b.log = l.Per, make([]time.Time, l.Requests-l.Requests/20)
		}
		p.buckets = append(p.buckets, b)
	}
	return p
}

var sharedPacers sync.Map // account key -> *Pacer

// sharedPacer returns the process-wide Pacer of the account named by key,
// creating it with limits on first use. Every Provider built for the same
// account shares it, so one budget covers all their goroutines.
func sharedPacer(key string, limits ...RateLimit) *Pacer {
	if p, ok := sharedPacers.Load(key); ok {
		return p.(*Pacer)
	}
	p, _ := sharedPacers.LoadOrStore(key, NewPacer(limits...))
	return p.(*Pacer)
}

// Wait blocks until the account may make one more request, or ctx ends. It
// takes the request's slot under the windows that cover every request.
func (p *Pacer) Wait(ctx context.Context) error { return p.wait(ctx, "") }

// wait is Wait for a request of the given class: it takes a slot of the
// windows of that class too.
func (p *Pacer) wait(ctx context.Context, class string) error {
	if p == nil {
		return ctx.Err()
	}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	sleep := func(d time.Duration) bool {
		if t == nil {
			t = time.NewTimer(d)
		} else {
			t.Reset(d)
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	yields := yieldsToProgress(ctx)
	var yielded time.Duration // how long new work stood aside
	counted := false          // the request is in the stats
	for {
		p.mu.Lock()
		now := time.Now()
		if yields {
			// New work (a create) joins the queue only when it is short:
			// calls for machines already made (polls, destroys) that come
			// later then go first, instead of behind minutes of creates.
			if over := p.backlogLocked(now, class) - p.horizonLocked(class); over > 0 {
				p.mu.Unlock()
				if !sleep(over) {
					return ctx.Err()
				}
				yielded += over
				continue
			}
		}
		delay, gen := p.takeLocked(now, class), p.gen
		p.stats.Requests += b2i(!counted)
		if delay > 0 || yielded > 0 {
			p.stats.Delayed += b2i(!counted)
			p.stats.Waited += delay + yielded
			yielded = 0
		}
		counted = true
		p.mu.Unlock()
		if delay <= 0 {
			return ctx.Err()
		}
		if !sleep(delay) {
			p.giveBack(class)
			return ctx.Err()
		}
		// A slot taken before the cloud throttled the account may fall
		// inside the pause: take a new one after it.
		p.mu.Lock()
		again := p.gen != gen && time.Now().Before(p.until)
		p.mu.Unlock()
		if !again {
			return nil
		}
	}
}

// yieldKey marks, in a context, the requests of new work (see
// yieldToProgress).
type yieldKey struct{}

// yieldToProgress returns a context whose paced requests are new work: the
// calls that make a machine (its create, the look-ups before it). They
// yield to the calls for machines already made — the polls that see them
// ready and the destroys that stop their bill — by joining the pacer's
// queue only when it is shorter than horizonLocked: a fleet of creates
// under the rate limit then never queues ahead of its own machines' waits
// (which, behind minutes of creates, timed out before their first poll).
// Creates still use the whole budget the waits leave.
func yieldToProgress(ctx context.Context) context.Context {
	return context.WithValue(ctx, yieldKey{}, true)
}

// yieldsToProgress reports whether ctx's requests are new work.
func yieldsToProgress(ctx context.Context) bool {
	y, _ := ctx.Value(yieldKey{}).(bool)
	return y
}

// backlogLocked returns how long a request of class taking its slot now
// would wait: the pause, or the deficit of the tightest window covering
// it.
func (p *Pacer) backlogLocked(now time.Time, class string) time.Duration {
	var backlog time.Duration
	if d := p.until.Sub(now); d > 0 {
		backlog = d
	}
	for i := range p.buckets {
		b := &p.buckets[i]
		if !b.covers(class) {
			continue
		}
		b.refill(now)
		if left := b.tokens - 1; left < b.margin {
			backlog = max(backlog, time.Duration((b.margin-left)/b.rate*float64(time.Second)))
		}
		backlog = max(backlog, b.slide(now))
	}
	return backlog
}

// horizonLocked is the longest queue new work joins: two tokens' time of
// the slowest window covering class (1.44 s under DigitalOcean's 5,000 an
// hour, 1 s for EC2's RunInstances at 2/s), so that creates still keep
// the budget busy.
func (p *Pacer) horizonLocked(class string) time.Duration {
	var h time.Duration
	for i := range p.buckets {
		b := &p.buckets[i]
		if b.covers(class) {
			h = max(h, time.Duration(2/b.rate*float64(time.Second)))
		}
	}
	return h
}

// covers reports whether bucket b paces requests of class.
func (b *bucket) covers(class string) bool { return b.class == "" || b.class == class }

// takeLocked takes a token from every window covering class and returns
// how long the request must wait for it (backlogLocked's wait).
func (p *Pacer) takeLocked(now time.Time, class string) time.Duration {
	delay := p.backlogLocked(now, class)
	for i := range p.buckets {
		b := &p.buckets[i]
		if !b.covers(class) {
			continue
		}
		b.tokens--
		// The request leaves at now+delay: that is its time in a sliding
		// log (a slot given back stays in it, erring on the slow side).
		if len(b.log) > 0 {
			b.log[b.head] = now.Add(delay)
			b.head = (b.head + 1) % len(b.log)
		}
	}
	return delay
}

// pollShare is the fraction of the account's budget that its waits in
// progress share between them; the rest is left to the calls that make
// progress (creates, destroys).
const pollShare = 0.5

// share returns how many requests each wait in progress on the account may
// make over the next d without taking more than its share of the budget:
// pollShare of what the tightest window can admit in that time (its
// tokens above the reserve, less what is already queued, plus its refill),
// divided among the waits. +Inf for a Pacer without windows.
func (p *Pacer) share(d time.Duration, class string) float64 {
	if p == nil {
		return math.Inf(1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	supply := math.Inf(1)
	now := time.Now()
	for i := range p.buckets {
		b := &p.buckets[i]
		if !b.covers(class) {
			continue
		}
		b.refill(now)
		supply = min(supply, b.tokens-b.margin+b.rate*d.Seconds())
	}
	if math.IsInf(supply, 1) {
		return supply
	}
	return pollShare * max(0, supply) / float64(max(1, p.waits.Load()))
}

// spare reports whether the account has a call to spare now, for a poll
// that may otherwise come gap later: every window's tokens would reach its
// bucket's size within gap (so a token spent now would otherwise be lost
// to the full bucket), and no pause is on. Such a poll costs the other
// calls nothing.
func (p *Pacer) spare(gap time.Duration, class string) bool {
	if p == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Before(p.until) {
		return false
	}
	for i := range p.buckets {
		b := &p.buckets[i]
		if !b.covers(class) {
			continue
		}
		b.refill(now)
		if b.tokens < b.margin+1 || b.tokens+b.rate*gap.Seconds() < float64(b.limit) {
			return false
		}
	}
	return true
}

// beginWait counts a wait in progress on the account until end is called.
func (p *Pacer) beginWait() (end func()) {
	if p == nil {
		return func() {}
	}
	p.waits.Add(1)
	return func() { p.waits.Add(-1) }
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// giveBack returns an unused slot to every window covering class.
func (p *Pacer) giveBack(class string) {
	p.mu.Lock()
	for i := range p.buckets {
		if p.buckets[i].covers(class) {
			p.buckets[i].tokens++
		}
	}
	p.mu.Unlock()
}

func (b *bucket) refill(now time.Time) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(float64(b.limit), b.tokens+el*b.rate)
		b.last = now
	}
}

// Observe corrects the Pacer with an API answer's headers: RateLimit-Limit
// and RateLimit-Remaining cap the tokens of the matching window (less the
// requests still in flight), and a 429 pauses every caller for its
// Retry-After and, unless the answer's RateLimit-Remaining says budget is
// left (a 429 for another reason), empties the window that ran out, so
// that the callers held back resume one by one at the refill rate rather
// than all at once when the pause ends. A 429 without Retry-After pauses for the time the fastest
// window takes to refill one token, at most 1 s (1 s for a Pacer without
// windows).
func (p *Pacer) Observe(status int, h http.Header) {
	if p == nil {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	left := false // the answer says budget is left
	if rem, err := strconv.Atoi(header(h, "Ratelimit-Remaining")); err == nil {
		left = rem > 0
		limit, _ := strconv.Atoi(header(h, "Ratelimit-Limit"))
		if b := p.window(limit); b != nil {
			b.refill(now)
			if capTokens := float64(rem - p.inflight); b.tokens > capTokens {
				b.tokens = capTokens
			}
		}
	}
	if status == http.StatusTooManyRequests {
		d := time.Duration(-1) // no Retry-After: the default pause
		if v := header(h, "Retry-After"); v != "" {
			d = driver.ParseRetryAfter(v, now) // 0 for "retry now"
		}
		p.throttledLocked(now, d, !left)
	}
}

// header returns the first value of the header with the canonical name
// key: h.Get without the allocation of canonicalizing a constant that
// http.CanonicalHeaderKey would spell otherwise ("RateLimit-Remaining").
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Throttled records a rate-limit answer the transport could not recognise
// (EC2's RequestLimitExceeded is a 503) and pauses every caller for d, as a
// 429 does (see Observe); d 0 means the answer gave no Retry-After, and
// takes Observe's default pause.
func (p *Pacer) Throttled(d time.Duration) {
	if p == nil {
		return
	}
	if d <= 0 {
		d = -1
	}
	p.mu.Lock()
	p.throttledLocked(time.Now(), d, true)
	p.mu.Unlock()
}

// throttledLocked pauses every caller for d (a negative d means the
// default pause) and, with drain, empties the window that ran out.
func (p *Pacer) throttledLocked(now time.Time, d time.Duration, drain bool) {
	if d < 0 {
		d = time.Second
		for _, b := range p.buckets {
			d = min(d, time.Duration(float64(time.Second)/b.rate))
		}
	}
	p.stats.Throttled++
	p.gen++
	if t := now.Add(d); t.After(p.until) {
		p.until = t
	}
	// The cloud says the budget is spent. The window that ran out is the
	// one with the least left (for its size; the fastest of equals): it
	// holds no token beyond its reserve until the pause ends, so that the
	// requests queued behind the pause then come at its refill rate, not
	// in a burst that would be throttled again.
	var out *bucket
	for i := range p.buckets {
		b := &p.buckets[i]
		b.refill(now)
		if out == nil || b.tokens/float64(b.limit) < out.tokens/float64(out.limit) ||
			b.tokens/float64(b.limit) == out.tokens/float64(out.limit) && b.rate > out.rate {
			out = b
		}
	}
	if out != nil && drain {
		out.tokens = min(out.tokens, out.margin-d.Seconds()*out.rate)
	}
}

// window returns the bucket whose limit matches the header's, else the one
// with the largest limit.
func (p *Pacer) window(limit int) *bucket {
	var best *bucket
	for i := range p.buckets {
		b := &p.buckets[i]
		if b.limit == limit {
			return b
		}
		if best == nil || b.limit > best.limit {
			best = b
		}
	}
	return best
}

// Stats returns what the Pacer has done so far.
func (p *Pacer) Stats() PacerStats {
	if p == nil {
		return PacerStats{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Transport returns a RoundTripper that waits on the Pacer before each
// request and feeds it each answer's headers, for an SDK client a caller
// builds. A nil base means http.DefaultTransport.
func (p *Pacer) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if p == nil {
		return base
	}
	return &pacedTransport{pacer: p, base: base}
}

// Client returns a copy of c (or of a new client when c is nil) whose
// transport is paced by p.
func (p *Pacer) Client(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	cp.Transport = p.Transport(cp.Transport)
	return &cp
}

// pacedTransport waits on the pacer before each request, then bounds the
// request (its answer's body included) by timeout — so that time queued
// behind the rate limit does not count against it — and its answer's body
// by limit, and feeds the pacer the answer's headers.
type pacedTransport struct {
	pacer   *Pacer
	base    http.RoundTripper
	timeout time.Duration              // 0: none
	limit   int64                      // 0: none
	class   func(*http.Request) string // nil: every request is of class ""
}

func (t *pacedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	class := ""
	if t.class != nil {
		class = t.class(req)
	}
	if err := t.pacer.wait(req.Context(), class); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if at, ok := req.Context().Value(sentAtKey{}).(*atomic.Int64); ok {
		at.Store(time.Now().UnixNano())
	}
	cancel := context.CancelFunc(func() {})
	if t.timeout > 0 {
		var ctx context.Context
		ctx, cancel = context.WithTimeout(req.Context(), t.timeout)
		req = req.WithContext(ctx)
	}
	t.pacer.mu.Lock()
	t.pacer.inflight++
	t.pacer.mu.Unlock()
	resp, err := t.base.RoundTrip(req)
	t.pacer.mu.Lock()
	t.pacer.inflight--
	t.pacer.mu.Unlock()
	if resp == nil || resp.Body == nil {
		cancel()
		return resp, err
	}
	t.pacer.Observe(resp.StatusCode, resp.Header)
	if t.limit > 0 {
		limitBody(resp, t.limit)
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, err
}

// sentAtKey keys, in a request's context, the *atomic.Int64 that the paced
// transport sets to the time the request leaves it (Unix nanoseconds): when
// the cloud got a create, for the boot clock of its machine.
type sentAtKey struct{}

// withSentAt returns a context whose paced requests record when they
// leave, and a function returning the time the last of them left (zero if
// none did).
func withSentAt(ctx context.Context) (context.Context, func() time.Time) {
	at := new(atomic.Int64)
	return context.WithValue(ctx, sentAtKey{}, at), func() time.Time {
		if n := at.Load(); n != 0 {
			return time.Unix(0, n)
		}
		return time.Time{}
	}
}

// cancelBody ends a request's own deadline once its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
