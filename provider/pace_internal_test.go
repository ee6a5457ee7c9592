package provider

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// A Wait cancelled while it waits gives its slot back, so abandoned callers
// do not push later ones further out.
func TestPacerCancelledWaitReturnsSlot(t *testing.T) {
	t.Parallel()
	p := NewPacer(RateLimit{Requests: 1, Per: time.Hour})
	if err := p.Wait(context.Background()); err != nil { // the only token
		t.Fatal(err)
	}
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err := p.Wait(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait past the limit = %v, want DeadlineExceeded", err)
		}
	}
	p.mu.Lock()
	tokens := p.buckets[0].tokens
	p.mu.Unlock()
	if tokens < -0.5 {
		t.Errorf("tokens = %.2f after 5 cancelled waits; their slots were not given back", tokens)
	}
	if st := p.Stats(); st.Requests != 6 || st.Delayed != 5 {
		t.Errorf("Stats = %+v", st)
	}
}

// Observe subtracts the requests still in flight from RateLimit-Remaining.
func TestPacerObserveCountsInflight(t *testing.T) {
	t.Parallel()
	p := NewPacer(RateLimit{Requests: 100, Per: time.Hour})
	p.mu.Lock()
	p.inflight = 3
	p.mu.Unlock()
	p.Observe(200, map[string][]string{"Ratelimit-Remaining": {"10"}, "Ratelimit-Limit": {"100"}})
	p.mu.Lock()
	defer p.mu.Unlock()
	if got := p.buckets[0].tokens; got > 7.01 || got < 6.99 {
		t.Errorf("tokens = %.2f, want 10 remaining - 3 in flight = 7", got)
	}
}

func (p *Pacer) tokens() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buckets[0].tokens
}

// A window with a class paces only the requests of that class; the
// windows without one pace every request.
func TestPacerClasses(t *testing.T) {
	t.Parallel()
	p := NewPacer(RateLimit{Requests: 10, Per: time.Hour}, RateLimit{Requests: 2, Per: time.Hour, Class: "run"})
	ctx := context.Background()
	for range 2 {
		if err := p.wait(ctx, "run"); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := p.wait(short, "run"); err == nil {
		t.Error("a third request of class run was admitted; its window holds 2 an hour")
	}
	if err := p.wait(ctx, "read"); err != nil {
		t.Errorf("a request of another class waited: %v", err)
	}
	if got := p.tokens(); got > 7.01 || got < 6.99 {
		t.Errorf("tokens of the window of every request = %.2f, want 7 (the refused one given back)", got)
	}
	if got := p.share(time.Second, "run"); got > 0.01 {
		t.Errorf("share of class run = %.2f, want 0 (its window is spent)", got)
	}
	if got := p.share(time.Second, "read"); got <= 0 {
		t.Errorf("share of class read = %.2f, want some", got)
	}
}

// After a throttle, the callers held back resume one by one at the refill
// rate, not all at once when the pause ends. Only the window that ran out
// is emptied.
func TestPacerThrottleSpacesCallers(t *testing.T) {
	t.Parallel()
	for _, viaHeader := range []bool{false, true} {
		// The per-second window runs out; the hourly one has plenty.
		p := NewPacer(RateLimit{Requests: 100, Per: time.Second}, RateLimit{Requests: 100000, Per: time.Hour})
		p.mu.Lock()
		p.buckets[0].tokens = 10
		p.mu.Unlock()
		if viaHeader {
			p.Observe(429, map[string][]string{"Retry-After": {"2"}})
		} else {
			p.Throttled(2 * time.Second)
		}
		p.mu.Lock()
		now := time.Now()
		var got []time.Duration
		for range 5 {
			got = append(got, p.takeLocked(now, ""))
		}
		p.mu.Unlock()
		for i, d := range got {
			// The pause, then 10 ms apart.
			want := 2*time.Second + time.Duration(i+1)*10*time.Millisecond
			if d < want-time.Millisecond || d > want+time.Millisecond {
				t.Errorf("header %v: caller %d waits %v, want %v (the pause, then 10 ms apart)", viaHeader, i, d, want)
			}
		}
	}
}

// A 429 whose RateLimit-Remaining says budget is left (a fault, or a limit
// of another kind) pauses for its Retry-After but keeps the window's
// tokens; one that says the budget is spent empties the window.
func TestPacer429KeepsBudgetTheHeaderReports(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		remaining string
		drained   bool
	}{{"3000", false}, {"0", true}} {
		p := NewPacer(RateLimit{Requests: 3600, Per: time.Hour})
		p.Observe(429, map[string][]string{
			"Retry-After": {"0.020"}, "Ratelimit-Limit": {"3600"}, "Ratelimit-Remaining": {tc.remaining},
		})
		p.mu.Lock()
		now := time.Now()
		var last time.Duration
		for range 5 {
			last = p.takeLocked(now, "")
		}
		p.mu.Unlock()
		// Drained, five callers need about four tokens at 1/s; kept, they
		// only wait out the 20 ms pause.
		if drained := last > time.Second; drained != tc.drained {
			t.Errorf("Remaining %s: the 5th caller waits %v; drained = %v, want %v", tc.remaining, last, drained, tc.drained)
		}
	}
}

// A window of 20 requests or more keeps a twentieth in reserve; smaller
// ones use all their tokens.
func TestPacerReserve20th(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit, free int
	}{
		{3, 3}, {19, 19}, {20, 19}, {100, 95}, {250, 238}, {3600, 3420},
	}
	for _, tt := range tests {
		p := NewPacer(RateLimit{Requests: tt.limit, Per: time.Hour})
		p.mu.Lock()
		now := time.Now()
		free := 0
		for p.takeLocked(now, "") == 0 {
			free++
		}
		p.mu.Unlock()
		if free != tt.free {
			t.Errorf("limit %d: %d requests admitted at once, want %d", tt.limit, free, tt.free)
		}
	}
}

// A 429 without Retry-After pauses for the time the fastest window needs
// to refill one token, at most 1 s; "Retry-After: 0" does not pause beyond
// the emptied window.
func TestPacerDefaultPause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limits []RateLimit
		header map[string][]string
		want   time.Duration // the first caller's wait
	}{
		{"no windows, no header", nil, nil, time.Second},
		{"no header: one token's time", []RateLimit{{Requests: 100, Per: time.Second}}, nil, 10*time.Millisecond + 10*time.Millisecond},
		{"Retry-After 0", []RateLimit{{Requests: 100, Per: time.Second}}, map[string][]string{"Retry-After": {"0"}}, 10 * time.Millisecond},
		{"small window, no header", []RateLimit{{Requests: 10, Per: time.Second}}, nil, 100*time.Millisecond + 100*time.Millisecond},
		{"slow window, no header: at most 1 s", []RateLimit{{Requests: 3600, Per: time.Hour}}, nil, time.Second + time.Second},
		{"two windows: the fastest's token", []RateLimit{{Requests: 100, Per: time.Second}, {Requests: 1000, Per: time.Hour}}, nil, 10*time.Millisecond + 10*time.Millisecond},
	}
	for _, tt := range tests {
		p := NewPacer(tt.limits...)
		before := time.Now()
		p.Observe(429, tt.header)
		now := time.Now()
		p.mu.Lock()
		got := p.takeLocked(now, "")
		p.mu.Unlock()
		// The pause runs from Observe's clock: what a loaded machine
		// spent between the two calls is already waited.
		if elapsed := now.Sub(before); got < tt.want-elapsed-2*time.Millisecond || got > tt.want+2*time.Millisecond {
			t.Errorf("%s: first caller waits %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A wait's share of the budget is half of what the tightest window can
// admit, divided among the waits in progress.
func TestPacerShare(t *testing.T) {
	t.Parallel()
	p := NewPacer(RateLimit{Requests: 100, Per: time.Second}, RateLimit{Requests: 1000, Per: time.Hour})
	end1 := p.beginWait()
	// 95 tokens above the reserve, +100/s.
	if got := p.share(time.Second, ""); got < 97 || got > 98 {
		t.Errorf("one wait, 1 s: share %.1f, want 97.5", got)
	}
	end2 := p.beginWait()
	if got := p.share(0, ""); got < 23.7 || got > 23.8 {
		t.Errorf("two waits, now: share %.2f, want 23.75", got)
	}
	end1()
	end2()
	for range 200 { // deep in debt: nothing to share
		p.mu.Lock()
		p.takeLocked(time.Now(), "")
		p.mu.Unlock()
	}
	if got := p.share(0, ""); got != 0 {
		t.Errorf("in debt: share %.2f, want 0", got)
	}
	if got := NewPacer().share(time.Second, ""); !math.IsInf(got, 1) {
		t.Errorf("no windows: share %v, want +Inf", got)
	}
	var nilPacer *Pacer
	nilPacer.beginWait()()
	if got := nilPacer.share(time.Second, ""); !math.IsInf(got, 1) {
		t.Errorf("nil pacer: share %v, want +Inf", got)
	}
}

// A sliding window (DigitalOcean's per-request timers) admits no more than
// its size less the reserve in any one period: a bucket's burst and refill
// together would admit nearly twice that, and the cloud would answer 429.
func TestPacerSlidingWindow(t *testing.T) {
	t.Parallel()
	for _, sliding := range []bool{false, true} {
		p := NewPacer(RateLimit{Requests: 20, Per: time.Second, Sliding: sliding})
		now := time.Now()
		p.mu.Lock()
		for i := range 19 {
			if d := p.takeLocked(now, ""); d != 0 {
				t.Fatalf("sliding %v: request %d waits %v, want 0 (19 of 20 admitted at once)", sliding, i+1, d)
			}
		}
		got := p.takeLocked(now, "")
		// Half a second on: the bucket has refilled 10 tokens; the
		// window still holds the 19 requests made at now.
		later := p.takeLocked(now.Add(500*time.Millisecond), "")
		p.mu.Unlock()
		want, wantLater := 50*time.Millisecond, time.Duration(0)
		if sliding {
			want, wantLater = time.Second, 500*time.Millisecond
		}
		if got < want-time.Millisecond || got > want+time.Millisecond || later < wantLater-time.Millisecond || later > wantLater+time.Millisecond {
			t.Errorf("sliding %v: the 20th request waits %v and the 21st, 500 ms later, %v; want %v and %v", sliding, got, later, want, wantLater)
		}
	}
}

// New work (a create) yields to calls for machines already made: it does
// not join a queue longer than two tokens' time, so a poll that comes
// after it goes first.
func TestPacerNewWorkYields(t *testing.T) {
	t.Parallel()
	p := NewPacer(RateLimit{Requests: 10, Per: time.Second}) // 10 at once, then one every 100 ms
	p.mu.Lock()
	now := time.Now()
	for range 20 { // a queue of 1 s
		p.takeLocked(now, "")
	}
	tokens := p.buckets[0].tokens
	p.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.wait(yieldToProgress(ctx), "") }()
	time.Sleep(100 * time.Millisecond)
	p.mu.Lock()
	taken := tokens - p.buckets[0].tokens // the refill aside: tokens only grow if the create took none
	p.mu.Unlock()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the yielding create's wait: %v, want context.Canceled (it should still be waiting to join)", err)
	}
	if taken > 0 {
		t.Errorf("a create joined a queue of 1 s (took %.1f tokens); want it to wait until the queue is under 200 ms", taken)
	}
	if got := p.Stats().Requests; got != 0 {
		t.Errorf("Stats().Requests = %d, want 0 (the create was never admitted)", got)
	}
}
