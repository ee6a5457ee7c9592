package provider

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// checkpoints draws n delays from a fresh AdaptiveWait schedule with the
// given budget and returns, for each, the time it leads to and whether the
// poll there is optional.
func checkpoints(expected time.Duration, budget func(time.Duration) float64, n int) (at []time.Duration, opt []bool) {
	a := AdaptiveWait(expected, expected/100, expected/10)().(*adaptive)
	a.setBudget(budget)
	var t time.Duration
	for range n {
		t += a.NextBackOff()
		o, _ := a.optional()
		at, opt = append(at, t), append(opt, o)
	}
	return at, opt
}

// With a budget that affords every poll of the window, none is optional;
// with one that affords a single poll, every poll before the window's end
// is optional and the first at its end is not.
func TestAdaptiveWaitBudget(t *testing.T) {
	t.Parallel()
	const expected = 100 * time.Second
	end := expected * 135 / 100 // adaptiveLate
	for range 10 {
		_, opt := checkpoints(expected, func(time.Duration) float64 { return 1000 }, 30)
		for i, o := range opt {
			if o {
				t.Fatalf("ample budget: poll %d optional", i)
			}
		}
		at, opt := checkpoints(expected, func(time.Duration) float64 { return 1 }, 30)
		mandatory := -1
		for i := range at {
			if !opt[i] {
				mandatory = i
				break
			}
		}
		if mandatory < 1 {
			t.Fatalf("budget of one poll: first mandatory poll is #%d (at %v), want a later one", mandatory, at)
		}
		if got := at[mandatory]; got < end || got > end+expected/10 {
			t.Errorf("budget of one poll: the mandatory poll comes at %v, want just past the window's end %v", got, end)
		}
		if got := at[0]; got < expected*3/4 || got > expected*17/20 {
			t.Errorf("first check-point at %v, want near 4/5 of %v", got, expected)
		}
	}
}

// A Waiter skips the optional polls when the account has no call to spare,
// and makes them when it has.
func TestWaiterSkipsOptionalPolls(t *testing.T) {
	t.Parallel()
	for _, spare := range []bool{false, true} {
		var polls, asked atomic.Int32
		w := waiter{
			Policy: AdaptiveWait(100*time.Millisecond, time.Millisecond, 10*time.Millisecond),
			Since:  time.Now(), Timeout: time.Minute,
			budget: func(time.Duration) float64 { return 1 },
			spare:  func(time.Duration) bool { asked.Add(1); return spare },
		}
		err := w.Wait(context.Background(), func(context.Context) (bool, string, error) {
			polls.Add(1)
			return true, "ready", nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if polls.Load() != 1 {
			t.Errorf("spare %v: %d polls, want 1", spare, polls.Load())
		}
		switch {
		case spare && asked.Load() != 1:
			t.Errorf("calls to spare: asked %d times, want once (the first check-point polls)", asked.Load())
		case !spare && asked.Load() < 3:
			t.Errorf("no call to spare: asked %d times, want every check-point before the window's end", asked.Load())
		}
	}
}
