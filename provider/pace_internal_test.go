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
