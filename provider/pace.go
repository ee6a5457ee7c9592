package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimit is one window of a cloud's API rate limit: at most Requests
// requests in any period Per (DigitalOcean: 250 per minute and 5,000 per
// hour; Hetzner: 3,600 per hour).
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// Pacer spaces API calls so that an account stays under its rate limit:
// one token bucket per RateLimit window, refilled continuously, corrected by
// the RateLimit-Remaining and Retry-After headers the cloud returns, and
// paused after a 429. Callers reserve a slot in turn, so many goroutines
// sharing a Pacer are served in order rather than racing. A nil *Pacer
// paces nothing. Safe for concurrent use.
type Pacer struct {
	mu       sync.Mutex
	buckets  []bucket
	until    time.Time // no request starts before this
	gen      uint64    // throttles seen: a slot taken before one is retaken
	inflight int
	stats    PacerStats
}

type bucket struct {
	limit  int
	rate   float64 // tokens per second
	tokens float64
	last   time.Time
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
		p.buckets = append(p.buckets, bucket{
			limit:  l.Requests,
			rate:   float64(l.Requests) / l.Per.Seconds(),
			tokens: float64(l.Requests),
			last:   now,
		})
	}
	return p
}

var sharedPacers sync.Map // account key -> *Pacer

// SharedPacer returns the process-wide Pacer of the account named by key
// (see AccountKey), creating it with limits on first use. Every Provider
// built for the same account shares it, so one budget covers all their
// goroutines.
func SharedPacer(key string, limits ...RateLimit) *Pacer {
	if p, ok := sharedPacers.Load(key); ok {
		return p.(*Pacer)
	}
	p, _ := sharedPacers.LoadOrStore(key, NewPacer(limits...))
	return p.(*Pacer)
}

// AccountKey names an account for SharedPacer: the provider, the endpoint
// and a hash of the credential (never the credential itself).
func AccountKey(providerName, endpoint, credential string) string {
	sum := sha256.Sum256([]byte(credential))
	return providerName + "|" + endpoint + "|" + hex.EncodeToString(sum[:12])
}

// Wait blocks until the account may make one more request, or ctx ends. It
// reserves the slot it waited for. When ctx carries a slot a Policy
// reserved on p before the attempt began (so that time queued behind the
// rate limit does not eat the attempt's timeout), Wait takes that slot and
// returns at once.
func (p *Pacer) Wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	if s, ok := ctx.Value(slotKey{}).(*slot); ok && s.pacer == p && s.used.CompareAndSwap(false, true) {
		return ctx.Err()
	}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for first := true; ; first = false {
		p.mu.Lock()
		delay, gen := p.takeLocked(time.Now()), p.gen
		p.stats.Requests += b2i(first)
		if delay > 0 {
			p.stats.Delayed += b2i(first)
			p.stats.Waited += delay
		}
		p.mu.Unlock()
		if delay <= 0 {
			return ctx.Err()
		}
		if t == nil {
			t = time.NewTimer(delay)
		} else {
			t.Reset(delay)
		}
		select {
		case <-ctx.Done():
			p.giveBack()
			return ctx.Err()
		case <-t.C:
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

// takeLocked takes a token from every window and returns how long the
// request must wait for it.
func (p *Pacer) takeLocked(now time.Time) time.Duration {
	var delay time.Duration
	if d := p.until.Sub(now); d > 0 {
		delay = d
	}
	for i := range p.buckets {
		b := &p.buckets[i]
		b.refill(now)
		b.tokens--
		if b.tokens < 0 {
			if d := time.Duration(-b.tokens / b.rate * float64(time.Second)); d > delay {
				delay = d
			}
		}
	}
	return delay
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// giveBack returns an unused slot to every window.
func (p *Pacer) giveBack() {
	p.mu.Lock()
	for i := range p.buckets {
		p.buckets[i].tokens++
	}
	p.mu.Unlock()
}

type slotKey struct{}

// slot is a request slot reserved ahead of the request.
type slot struct {
	pacer *Pacer
	used  atomic.Bool
}

// reserve waits for a slot like Wait, and returns a context that carries
// it: the first Wait on p with that context, or one derived from it, takes
// the slot instead of waiting again. release gives the slot back if no
// request took it. A nil Pacer reserves nothing.
func (p *Pacer) reserve(ctx context.Context) (_ context.Context, release func(), err error) {
	if p == nil {
		return ctx, func() {}, ctx.Err()
	}
	if err := p.Wait(ctx); err != nil {
		return ctx, func() {}, err
	}
	s := &slot{pacer: p}
	return context.WithValue(ctx, slotKey{}, s), func() {
		if s.used.CompareAndSwap(false, true) {
			p.giveBack()
		}
	}, nil
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
// Retry-After (1 s if it gives none) and empties every window, so that the
// callers held back resume one by one at the refill rate rather than all
// at once when the pause ends.
func (p *Pacer) Observe(status int, h http.Header) {
	if p == nil {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if rem, err := strconv.Atoi(h.Get("RateLimit-Remaining")); err == nil {
		limit, _ := strconv.Atoi(h.Get("RateLimit-Limit"))
		if b := p.window(limit); b != nil {
			b.refill(now)
			if capTokens := float64(rem - p.inflight); b.tokens > capTokens {
				b.tokens = capTokens
			}
		}
	}
	if status == http.StatusTooManyRequests {
		d := ParseRetryAfter(h.Get("Retry-After"), now)
		if d <= 0 {
			d = time.Second
		}
		p.throttledLocked(now, d)
	}
}

// Throttled records a rate-limit answer the transport could not recognise
// (EC2's RequestLimitExceeded is a 503) and pauses every caller for d
// (1 s if d is 0), as a 429 does (see Observe).
func (p *Pacer) Throttled(d time.Duration) {
	if p == nil {
		return
	}
	if d <= 0 {
		d = time.Second
	}
	p.mu.Lock()
	p.throttledLocked(time.Now(), d)
	p.mu.Unlock()
}

func (p *Pacer) throttledLocked(now time.Time, d time.Duration) {
	p.stats.Throttled++
	p.gen++
	if t := now.Add(d); t.After(p.until) {
		p.until = t
	}
	// The cloud says the budget is spent: no window holds a token until
	// the pause ends, and the requests queued behind it then come at the
	// refill rate, not in a burst that would be throttled again.
	for i := range p.buckets {
		b := &p.buckets[i]
		b.refill(now)
		b.tokens = min(b.tokens, -d.Seconds()*b.rate)
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
// request and feeds it each answer's headers. A nil base means
// http.DefaultTransport.
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

type pacedTransport struct {
	pacer *Pacer
	base  http.RoundTripper
}

func (t *pacedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.pacer.Wait(req.Context()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	t.pacer.mu.Lock()
	t.pacer.inflight++
	t.pacer.mu.Unlock()
	resp, err := t.base.RoundTrip(req)
	t.pacer.mu.Lock()
	t.pacer.inflight--
	t.pacer.mu.Unlock()
	if resp != nil {
		t.pacer.Observe(resp.StatusCode, resp.Header)
	}
	return resp, err
}
