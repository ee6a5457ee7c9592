package provider

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Backoff is a schedule of delays between polls or attempts: NextBackOff
// returns the next delay, or backoff.Stop (-1) to give up.
// *backoff.ExponentialBackOff from github.com/cenkalti/backoff/v4 satisfies it.
type Backoff interface {
	NextBackOff() time.Duration
}

// WaitPolicy builds the schedule of one wait. The waiter polls once at once,
// then sleeps for each delay its Backoff yields before polling again.
type WaitPolicy func() Backoff

// FixedWait polls every d: the original spuff's strategy (5 s), and
// hcloud-go's action polling (500 ms).
func FixedWait(d time.Duration) WaitPolicy {
	return func() Backoff { return backoff.NewConstantBackOff(d) }
}

// DefaultWait is the wait policy a Provider uses when Config.WaitPolicy is
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

// ExponentialWait polls after delays that grow from initial by factor up to
// max, each randomized by ±jitter (0.2 means ±20 %).
func ExponentialWait(initial, max time.Duration, factor, jitter float64) WaitPolicy {
	return func() Backoff {
		b := &backoff.ExponentialBackOff{
			InitialInterval:     initial,
			RandomizationFactor: jitter,
			Multiplier:          factor,
			MaxInterval:         max,
			MaxElapsedTime:      0,
			Stop:                backoff.Stop,
			Clock:               backoff.SystemClock,
		}
		b.Reset()
		return b
	}
}

// AdaptiveWait is the default wait policy. It expects the awaited change
// after about expected (the cloud's typical boot or snapshot time) and
// concentrates its polls where the change is likely to happen:
//
//   - after the waiter's immediate poll, the first poll comes at 4/5 of
//     expected;
//   - then polls come at even gaps of 6 % of expected (never shorter than
//     minGap nor longer than maxGap) until 1.35 × expected;
//   - past that, the machine is late: gaps grow by half each time, up to
//     maxGap.
//
// Readiness is thus noticed a few percent of the boot time after it
// happens, at a handful of calls: far fewer than fixed 5 s polling for
// boots of 30 s and more, and no more for boots of 10 s and more.
//
// Waits made through a Policy keep to their share of the account's rate
// budget (a fleet of machines awaited at once): the waits in progress
// share half of what the rate limit admits. When a wait's share affords
// fewer polls than the window above holds, it makes that many, spread
// evenly over the window, the last at its end; the polls between them are
// made only when the account has calls to spare at that moment, that is
// when they cost the fleet's creates and destroys nothing.
//
// Every poll is jittered by ±10 % of the gap between polls, so that many
// waiters do not poll in step.
//
// The schedule can resume part-way (it is a Resumer): a wait that starts
// when the awaited change is already under way (the instance was created
// age ago, see waiter.Since and the create) skips the immediate poll
// and the polls that would have come before age.
//
// With expected 0 nothing is known: gaps are a tenth of the time waited so
// far, within [minGap, maxGap]. A minGap of 0 means 50 ms; a maxGap
// shorter than minGap is raised to it.
func AdaptiveWait(expected, minGap, maxGap time.Duration) WaitPolicy {
	if minGap <= 0 {
		minGap = 50 * time.Millisecond
	}
	if maxGap < minGap {
		maxGap = minGap
	}
	return func() Backoff {
		e := float64(expected)
		return &adaptive{expected: expected, minGap: minGap, maxGap: maxGap,
			first: time.Duration(adaptiveFirst * e), end: time.Duration(adaptiveLate * e),
			gap: min(max(time.Duration(adaptiveGap*e), minGap), maxGap)}
	}
}

// The shape of AdaptiveWait's schedule, as fractions of the expected time.
const (
	adaptiveFirst  = 0.8  // first poll
	adaptiveGap    = 0.06 // gap while the change is due
	adaptiveLate   = 1.35 // end of the window where the change is due
	adaptiveGrowth = 1.5  // growth of the gaps past the window
	adaptiveJitter = 0.1  // ±10 % of the gap
)

type adaptive struct {
	expected, minGap, maxGap time.Duration
	// first is when the first poll comes, end when the window where the
	// change is due ends, gap the gap between polls in it.
	first, end, gap time.Duration
	// prop, if set, makes the gap in the window this fraction of the
	// time elapsed (within [minGap, maxGap]) rather than gap; growth, if
	// set, is the growth of the gaps past the window (adaptiveGrowth).
	prop, growth float64
	elapsed      time.Duration // since the change began, as scheduled
	lateGap      time.Duration // last gap past the window
	n            int
	late         bool // past the window

	// budget, if set, returns how many polls the wait may make over the
	// next d (see waiter).
	budget func(d time.Duration) float64
	// must is the time (as elapsed) from which the next poll in the
	// window is one the budget affords; the polls before it are
	// optional: made only when the account has calls to spare.
	must time.Duration
	opt  bool // the poll the last delay leads to is optional
}

func (a *adaptive) setBudget(f func(time.Duration) float64) { a.budget = f }

// optional reports whether the poll the last delay led to may be skipped
// when the account has no call to spare, and the gap to the next poll.
func (a *adaptive) optional() (bool, time.Duration) { return a.opt, a.dueGap() }

// NextBackOff returns the next delay.
func (a *adaptive) NextBackOff() time.Duration {
	d := a.next()
	a.n++
	// ±10 % of the gap between polls: a first poll far off is not
	// jittered by a tenth of its distance.
	scale := d
	if a.expected > 0 {
		scale = min(d, max(a.lateGap, a.dueGap()))
	}
	if scale > 0 {
		d += jitter(scale, adaptiveJitter) - scale
	}
	a.elapsed += d
	a.opt = false
	if a.budget != nil && a.expected > 0 && !a.late {
		if a.elapsed < a.must {
			a.opt = true
		} else {
			a.plan()
		}
	}
	return d
}

func (a *adaptive) next() time.Duration {
	first, late := a.first, a.end
	switch {
	case a.expected <= 0:
		return min(max(a.elapsed/10, a.minGap), a.maxGap)
	case a.n == 0 && a.elapsed < first:
		if a.budget != nil {
			a.planFrom(first)
		}
		return first - a.elapsed
	case a.elapsed < late:
		return a.dueGap()
	}
	if !a.late {
		// Late: a few polls close together first (the machine is
		// likely just past the window), then longer and longer gaps.
		a.late, a.lateGap = true, a.dueGap()
	}
	growth := a.growth
	if growth <= 1 {
		growth = adaptiveGrowth
	}
	a.lateGap = min(time.Duration(float64(a.lateGap)*growth), a.maxGap)
	if a.budget != nil && a.budget(a.lateGap) < 1 {
		a.lateGap = a.maxGap
	}
	return a.lateGap
}

// plan is called at a poll the budget affords, at a.elapsed in the
// window: it sets when the next such poll comes.
func (a *adaptive) plan() { a.planFrom(a.elapsed) }

// planFrom sets a.must for a window of polls from t (as elapsed) to its
// end: 0 when the budget affords every poll of it (at the due gap), else
// the polls it affords spread evenly to the end, the first of them one
// spread after t.
func (a *adaptive) planFrom(t time.Duration) {
	late, g := a.end, a.dueGap()
	left := late - t
	if left <= 0 || g <= 0 {
		a.must = 0
		return
	}
	want := float64(left/g) + 1
	have := math.Floor(a.budget(late - a.elapsed))
	if have >= want {
		a.must = 0
		return
	}
	a.must = t + left/time.Duration(max(1, have))
}

// dueGap is the gap between polls while the change is due.
func (a *adaptive) dueGap() time.Duration {
	if a.prop > 0 {
		return min(max(time.Duration(a.prop*float64(a.elapsed)), a.minGap), a.maxGap)
	}
	return a.gap
}

// Resume starts the schedule age after the awaited change began: it
// returns the delay before the first poll, 0 when the first poll is due
// at once (age is past the schedule's first poll).
func (a *adaptive) Resume(age time.Duration) time.Duration {
	if age <= 0 {
		return 0
	}
	a.elapsed = age
	if a.expected <= 0 || age >= a.first {
		a.n = 1
		if a.budget != nil && a.expected > 0 {
			a.plan()
		}
		return 0
	}
	return a.NextBackOff()
}

// A Resumer is a Backoff that can start part-way through its schedule,
// for a wait that begins after the awaited change did (an instance
// created age ago). Resume returns the delay before the first poll, which
// replaces the waiter's immediate poll: 0 polls at once.
type Resumer interface {
	Backoff
	Resume(age time.Duration) time.Duration
}

func jitter(d time.Duration, f float64) time.Duration {
	if d <= 0 || f <= 0 {
		return d
	}
	delta := (rand.Float64()*2 - 1) * f * float64(d)
	return time.Duration(math.Max(0, float64(d)+delta))
}

// pollFunc is one check of a wait. It returns done once the awaited
// condition holds, and a short description of the state it saw, reported in
// logs and in the timeout error. A retryable error (see IsRetryable) is
// ridden over and the wait goes on; any other error ends the wait.
type pollFunc func(ctx context.Context) (done bool, state string, err error)

// waiter polls until a condition holds, the timeout passes or ctx ends. It is
// the one waiting loop every driver uses, for WaitReady, actions and
// snapshots.
type waiter struct {
	// Provider, Op, Resource and ID name what is awaited, for errors and logs.
	Provider, Op, Resource, ID string
	// Timeout bounds the wait; 0 leaves only ctx to bound it.
	Timeout time.Duration
	// Policy schedules the polls; nil means AdaptiveWait(0, 50ms, 5s).
	Policy WaitPolicy
	// Logger receives a debug line per poll; nil discards.
	Logger *slog.Logger
	// OnPoll, if set, is called after every poll (for counting).
	OnPoll func(state string, err error)
	// Since, if set, is when the awaited change began (the instance was
	// created then). A schedule that is a Resumer then starts part-way:
	// a wait begun right after a create does not poll at once, when the
	// machine cannot be ready yet, but near its expected boot time.
	Since time.Time

	// budget, if set, tells AdaptiveWait's schedule how many polls the
	// wait may make over a time (its share of the account's rate budget),
	// and spare whether the account has a call to spare now for a poll
	// that could otherwise come gap later: a poll the schedule marks
	// optional is skipped when it has not.
	budget func(d time.Duration) float64
	spare  func(gap time.Duration) bool

	// stage, if set, names the stage of a staged wait (WaitSSH) each poll
	// belongs to, for WaitEvent.Stage.
	stage func() Stage
}

// Wait polls until poll reports done. The first poll is immediate, unless
// Since is set and the schedule resumes part-way (see Resumer). On
// timeout it returns an *Error of KindTimeout with the elapsed time and the
// last state seen, wrapping the last transient error if any; when ctx is
// cancelled it returns an error matching context.Canceled.
func (w *waiter) Wait(ctx context.Context, poll pollFunc) error {
	start := time.Now()
	if w.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.Timeout)
		defer cancel()
	}
	policy := w.Policy
	if policy == nil {
		policy = AdaptiveWait(0, 50*time.Millisecond, 5*time.Second)
	}
	sched := policy()
	if b, ok := sched.(interface {
		setBudget(func(time.Duration) float64)
	}); ok && w.budget != nil {
		b.setBudget(w.budget)
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	trace := ContextWaitTrace(ctx)
	var (
		lastState = "not polled yet"
		lastErr   error
		timer     *time.Timer
	)
	// A wait whose deadline comes before the next poll polls once more
	// just before the deadline: it never ends on a timeout without
	// looking at the last moment (nor without polling at all).
	final := finalPoll{}
	if deadline, ok := ctx.Deadline(); ok {
		final.margin = min(max(time.Until(deadline)/10, 5*time.Millisecond), 2*time.Second)
	}
	sleep := final.sleep
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	scheduled := false // the next poll is one of the schedule's, not the immediate one
	if r, ok := sched.(Resumer); ok && !w.Since.IsZero() {
		if first := r.Resume(time.Since(w.Since)); first > 0 {
			scheduled = true
			log.Debug("spuff: waiting", "provider", w.Provider, "op", w.Op, "id", w.ID, "state", lastState, "next", first)
			if !sleep(ctx, &timer, first) {
				return w.ended(ctx, start, lastState, lastErr)
			}
		}
	}
	opt, _ := sched.(interface{ optional() (bool, time.Duration) })
	for attempt := 1; ; attempt++ {
		for scheduled && opt != nil && w.spare != nil {
			if o, gap := opt.optional(); !o || w.spare(gap) {
				break
			}
			// A poll the schedule makes only with calls to spare:
			// none now, so on to the next.
			next := sched.NextBackOff()
			if next == backoff.Stop {
				return w.timeout(start, lastState, lastErr)
			}
			if !sleep(ctx, &timer, next) {
				return w.ended(ctx, start, lastState, lastErr)
			}
		}
		scheduled = true
		done, state, err := poll(ctx)
		if w.OnPoll != nil {
			w.OnPoll(state, err)
		}
		if trace != nil && trace.Polled != nil {
			ev := WaitEvent{Provider: w.Provider, Op: w.Op, ID: w.ID, State: state, Done: done && err == nil, Err: err, Polls: attempt, Elapsed: time.Since(start)}
			if w.stage != nil {
				ev.Stage = w.stage()
			}
			trace.Polled(ev)
		}
		if state != "" {
			lastState = state
		}
		if err == nil && done {
			log.Debug("spuff: wait done", "provider", w.Provider, "op", w.Op, "id", w.ID, "polls", attempt, "elapsed", time.Since(start))
			return nil
		}
		var delay time.Duration
		if err != nil {
			if ctx.Err() != nil || deadlinePassed(ctx) {
				return w.ended(ctx, start, lastState, err)
			}
			if !IsRetryable(err) {
				return err
			}
			lastErr = err
			if ra, ok := RetryAfter(err); ok {
				delay = ra
			}
			log.Debug("spuff: wait rides over error", "provider", w.Provider, "op", w.Op, "id", w.ID, "kind", KindOf(err).String())
		}
		next := sched.NextBackOff()
		if next == backoff.Stop {
			return w.timeout(start, lastState, lastErr)
		}
		delay = max(delay, next)
		log.Debug("spuff: waiting", "provider", w.Provider, "op", w.Op, "id", w.ID, "state", lastState, "next", delay)
		if !sleep(ctx, &timer, delay) {
			return w.ended(ctx, start, lastState, lastErr)
		}
	}
}

// finalPoll makes a wait's last sleep end just before its deadline, once.
type finalPoll struct {
	margin time.Duration // how long before the deadline; 0: no final poll
	done   bool
}

// sleep sleeps for delay, or, when ctx's deadline comes first, to just
// before it for a final poll the first time, then to the deadline (the
// timeout error then comes at the promised time, not after an oversleep),
// reusing *timer. It reports false when ctx ended or its deadline passed.
func (f *finalPoll) sleep(ctx context.Context, timer **time.Timer, delay time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
		left := time.Until(deadline)
		if !f.done && f.margin > 0 && left > f.margin {
			f.done = true
			delay = left - f.margin
		} else {
			delay = max(0, left)
		}
	}
	if *timer == nil {
		*timer = time.NewTimer(delay)
	} else {
		(*timer).Reset(delay)
	}
	select {
	case <-ctx.Done():
		return false
	case <-(*timer).C:
	}
	// The timer may have slept to the deadline and fired before ctx's own
	// timer cancelled it: polling again would spin until it does.
	return !deadlinePassed(ctx)
}

// deadlinePassed reports whether ctx's deadline is reached, even if ctx has
// not been cancelled for it yet.
func deadlinePassed(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}

// ended reports why ctx ended: a timeout error for a deadline, a
// cancellation error otherwise.
func (w *waiter) ended(ctx context.Context, start time.Time, lastState string, lastErr error) error {
	if err := ctx.Err(); err == nil || errors.Is(err, context.DeadlineExceeded) {
		return w.timeout(start, lastState, lastErr)
	}
	return &Error{Kind: KindUnknown, Provider: w.Provider, Op: w.Op, Resource: w.Resource, ID: w.ID,
		LastState: lastState, Message: "canceled while waiting (last state: " + lastState + ")", Err: ctx.Err()}
}

func (w *waiter) timeout(start time.Time, lastState string, lastErr error) error {
	err := lastErr
	if err == nil {
		err = context.DeadlineExceeded
	}
	return &Error{Kind: KindTimeout, Provider: w.Provider, Op: w.Op, Resource: w.Resource, ID: w.ID,
		Elapsed: time.Since(start), LastState: lastState, Err: err}
}

// WaitEvent describes one poll of a wait, for a WaitTrace.
type WaitEvent struct {
	// Provider, Op and ID name the wait ("digitalocean", "WaitReady", "123").
	Provider, Op, ID string
	// State is what the poll saw ("new", "active without public IP").
	State string
	// Done reports that the awaited condition holds.
	Done bool
	// Err is the poll's error, if any (transient errors are ridden over).
	Err error
	// Polls is the number of polls so far, this one included.
	Polls int
	// Elapsed is the time since the wait began.
	Elapsed time.Duration
	// Stage is the stage of a staged wait (WaitSSH) the poll belongs to:
	// StageAPI for its WaitReady polls, StagePort, StageHandshake or
	// StageAuth for a connection attempt (the stage it got to),
	// StageCloudInit. Empty for the other waits.
	Stage Stage
}

// WaitTrace receives progress of the waits made with a context, as
// net/http/httptrace's ClientTrace does for requests: a CLI shows elapsed
// time and state while WaitReady runs. Its functions must be quick and safe
// for concurrent use.
type WaitTrace struct {
	// Polled is called after every poll.
	Polled func(WaitEvent)
	// StageDone, if set, is called as each stage of a staged wait
	// (WaitSSH) ends, with its duration, and with its error for the stage
	// that failed.
	StageDone func(StageEvent)
}

type waitTraceKey struct{}

// WithWaitTrace returns a context whose waits report to trace.
func WithWaitTrace(ctx context.Context, trace *WaitTrace) context.Context {
	return context.WithValue(ctx, waitTraceKey{}, trace)
}

// ContextWaitTrace returns the WaitTrace of ctx, or nil.
func ContextWaitTrace(ctx context.Context) *WaitTrace {
	t, _ := ctx.Value(waitTraceKey{}).(*WaitTrace)
	return t
}
