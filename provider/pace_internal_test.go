package provider

import (
	"context"
	"errors"
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

// A reserved slot is taken by the first Wait on its pacer under the
// context (or one derived from it), and given back when no request took it.
func TestPacerReserve(t *testing.T) {
	t.Parallel()
	p := NewPacer(RateLimit{Requests: 10, Per: time.Hour})
	q := NewPacer(RateLimit{Requests: 10, Per: time.Hour})
	ctx, release, err := p.reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := p.tokens(); got > 9.01 || got < 8.99 {
		t.Fatalf("tokens after reserve = %.2f, want 9", got)
	}
	derived, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.Wait(derived); err != nil {
		t.Fatal(err)
	}
	if got := p.tokens(); got > 9.01 || got < 8.99 {
		t.Errorf("tokens after the Wait that took the slot = %.2f, want still 9", got)
	}
	if err := p.Wait(derived); err != nil { // a second request pays
		t.Fatal(err)
	}
	if err := q.Wait(ctx); err != nil { // another pacer ignores the slot
		t.Fatal(err)
	}
	release() // the slot was used: nothing to give back
	if got, gotQ := p.tokens(), q.tokens(); got > 8.01 || got < 7.99 || gotQ > 9.01 || gotQ < 8.99 {
		t.Errorf("tokens = %.2f and %.2f, want 8 and 9", got, gotQ)
	}

	_, release, err = p.reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	release()
	if got := p.tokens(); got > 8.01 || got < 7.99 {
		t.Errorf("tokens after an unused reservation = %.2f, want 8 (given back once)", got)
	}
	if st := p.Stats(); st.Requests != 3 {
		t.Errorf("Stats.Requests = %d, want 3 (two reservations and one paid Wait)", st.Requests)
	}

	var nilPacer *Pacer
	if _, release, err := nilPacer.reserve(context.Background()); err != nil {
		t.Errorf("nil pacer reserve = %v", err)
	} else {
		release()
	}
}

// After a throttle, the callers held back resume one by one at the refill
// rate, not all at once when the pause ends.
func TestPacerThrottleSpacesCallers(t *testing.T) {
	t.Parallel()
	for _, viaHeader := range []bool{false, true} {
		p := NewPacer(RateLimit{Requests: 100, Per: time.Second}) // full: 100 tokens
		if viaHeader {
			p.Observe(429, map[string][]string{"Retry-After": {"2"}})
		} else {
			p.Throttled(2 * time.Second)
		}
		p.mu.Lock()
		now := time.Now()
		var got []time.Duration
		for range 5 {
			got = append(got, p.takeLocked(now))
		}
		p.mu.Unlock()
		for i, d := range got {
			want := 2*time.Second + time.Duration(i+1)*10*time.Millisecond
			if d < want-time.Millisecond || d > want+time.Millisecond {
				t.Errorf("header %v: caller %d waits %v, want %v (the pause, then 10 ms apart)", viaHeader, i, d, want)
			}
		}
	}
}
