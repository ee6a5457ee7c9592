package provider

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// BootTimes remembers how long machines took to become ready, by provider,
// region, size and image, so that waits schedule their polls from what was
// seen rather than from the cloud's typical boot time alone. A wait for a
// machine of a kind never seen polls around the cloud's typical time
// (widely, as it may be off by half or double); each machine seen ready
// narrows the schedule to the boot times observed. Safe for concurrent use.
// Its JSON form persists it (a CLI keeps it between runs); the zero value
// is ready to use.
type BootTimes struct {
	mu   sync.Mutex
	m    map[string][]time.Duration // newest last, at most maxBootSamples
	seen map[string]int             // boot times observed, by kind
}

// maxBootSamples bounds the boot times remembered per kind of machine.
const maxBootSamples = 32

// defaultBootTimes is the process's, for Configs that give none.
var defaultBootTimes BootTimes

// observe records that a machine of kind took d to become ready.
func (b *BootTimes) observe(kind string, d time.Duration) {
	if d <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m, b.seen = map[string][]time.Duration{}, map[string]int{}
	}
	b.seen[kind]++
	s := append(b.m[kind], d)
	if len(s) > maxBootSamples {
		s = s[len(s)-maxBootSamples:]
	}
	b.m[kind] = s
}

// samples returns a sorted copy of the boot times of kind.
func (b *BootTimes) samples(kind string) []time.Duration {
	s, _ := b.snapshot(kind)
	return s
}

// snapshot returns a sorted copy of the boot times of kind and how many
// have been observed.
func (b *BootTimes) snapshot(kind string) ([]time.Duration, int) {
	b.mu.Lock()
	s, seen := slices.Clone(b.m[kind]), b.seen[kind]
	b.mu.Unlock()
	slices.Sort(s)
	return s, seen
}

// MarshalJSON writes the boot times seen, by kind, in seconds.
func (b *BootTimes) MarshalJSON() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string][]float64, len(b.m))
	for k, s := range b.m {
		for _, d := range s {
			out[k] = append(out[k], d.Seconds())
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote, adding to what b holds.
func (b *BootTimes) UnmarshalJSON(data []byte) error {
	var in map[string][]float64
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	for k, s := range in {
		for _, secs := range s {
			if secs > 0 && secs < 86400 {
				b.observe(k, time.Duration(secs*float64(time.Second)))
			}
		}
	}
	return nil
}

// bootKind names the kind of machine a boot time is kept for.
func bootKind(providerName string, req *InstanceRequest) string {
	return providerName + "|" + req.Region + "|" + req.Size + "|" + req.Image.String()
}

// The shape of a boot wait's schedule. Readiness is noticed, on average,
// half a gap after it happens, and at worst a gap after: gaps of 7 % of
// the median boot keep the median lag near 3.5 % of the boot time and the
// worst near 8 %, the rest of the 5 % and 10 % being left for the time a
// poll takes to come back. Below the gap floor (3/10 of PollInterval by
// default: 1.5 s) a shorter lag is not worth its calls.
const (
	bootGap      = 0.07 // gap while the machine is due, of the median boot
	bootFirstGap = 0.8  // the first poll, in gaps after the shortest boot
	bootGrowth   = 1.1  // growth of the gaps past the longest boot
	// Without a boot time seen, the prior may be off by half or double:
	// the first poll comes at priorFirst of it, the gaps are priorGap of
	// the time waited so far (so that readiness is noticed within that
	// fraction of the boot, whatever the boot), until priorEnd of it.
	priorFirst = 0.4
	priorGap   = 0.09
	priorEnd   = 2.5
	// bootFloor is the gap floor, in percent of PollInterval.
	bootFloor = 32
)

// bootWait is the wait schedule of a machine of a kind whose boot times
// seen so far are s (sorted), with prior the cloud's typical boot time.
// gapFloor and maxGap bound the gaps between polls.
//
// With samples, the machine is due from the shortest boot seen (the 5th
// percentile once there are 20) to the longest (at most three times the
// median: a machine that took far longer was stuck, not booting), ±20 %
// of the one boot seen when there is one: the first poll comes a little
// after the shortest, then polls come every 7 % of the median boot until
// a gap past the longest, then at gaps growing by a tenth each time.
// The longest counts in full because a poll past the window costs only
// the waits that get there: the few machines whose public address comes
// late are noticed as soon as the others. With
// none, from 0.4 of the prior to 2.5 times it, polled every 9 % of the
// time waited so far.
func bootWait(s []time.Duration, prior, gapFloor, maxGap time.Duration) WaitPolicy {
	return func() Backoff { return newBootPlan(s, prior, gapFloor, maxGap) }
}

// newBootPlan returns the schedule of bootWait.
func newBootPlan(s []time.Duration, prior, gapFloor, maxGap time.Duration) *adaptive {
	if gapFloor <= 0 {
		gapFloor = 50 * time.Millisecond
	}
	maxGap = max(maxGap, gapFloor)
	a := &adaptive{minGap: gapFloor, maxGap: maxGap, growth: bootGrowth}
	planBoot(a, s, prior)
	return a
}

// planBoot sets the window of a's schedule from the boot times s (sorted)
// and the prior, keeping how far the schedule has got.
func planBoot(a *adaptive, s []time.Duration, prior time.Duration) {
	scale := func(d time.Duration, f float64) time.Duration { return time.Duration(f * float64(d)) }
	if len(s) == 0 {
		if prior <= 0 {
			a.expected, a.prop, a.first, a.end = 0, 0, 0, 0
			return
		}
		a.expected, a.prop = prior, priorGap
		a.first, a.end = scale(prior, priorFirst), scale(prior, priorEnd)
		a.gap = a.dueGap()
		return
	}
	n := len(s)
	median, lo, hi := s[n/2], s[0], min(s[n-1], scale(s[n/2], 3))
	switch {
	case n == 1:
		lo, hi = scale(median, 0.8), scale(median, 1.2)
	case n >= 20:
		lo = s[n*5/100]
	}
	gap := min(max(scale(median, bootGap), a.minGap), a.maxGap)
	a.expected, a.prop, a.gap = median, 0, gap
	a.first = lo + scale(gap, bootFirstGap)
	a.end = hi + gap
}

// bootPlan is a boot wait's schedule that learns while it waits: each
// time it is asked for a delay, it replans from the boot times seen so far
// if more have been seen since it last planned (a fleet of machines
// awaited at once learns from the first ones ready). Once resumed (see
// Resumer), it keeps to the times it planned from the machine's creation:
// the time a poll takes to come back is taken off the delay to the next,
// so that a slow answer does not push every later poll back.
type bootPlan struct {
	*adaptive
	boots *BootTimes
	kind  string
	prior time.Duration
	seen  int       // boot times observed when it last planned
	start time.Time // when the machine was created, once resumed
}

// learningWait is bootWait over the boot times of kind in b, replanned as
// they come in.
func learningWait(b *BootTimes, kind string, prior, gapFloor, maxGap time.Duration) WaitPolicy {
	return func() Backoff {
		s, seen := b.snapshot(kind)
		return &bootPlan{adaptive: newBootPlan(s, prior, gapFloor, maxGap), boots: b, kind: kind, prior: prior, seen: seen}
	}
}

// NextBackOff returns the delay to the next poll, replanned from the boot
// times seen.
func (p *bootPlan) NextBackOff() time.Duration {
	return p.onTime(p.next())
}

func (p *bootPlan) next() time.Duration {
	if s, seen := p.boots.snapshot(p.kind); seen != p.seen {
		p.seen = seen
		planBoot(p.adaptive, s, p.prior)
		a := p.adaptive
		if a.elapsed < a.end {
			a.late = false // the window now reaches past where the wait is
		}
		if a.n > 0 && a.elapsed+a.dueGap() < a.first {
			// The boot times seen say the machine cannot be ready
			// before the new window: on to its first poll.
			d := a.first - a.elapsed
			a.elapsed, a.opt = a.first, false
			a.n++
			if a.budget != nil {
				a.plan()
			}
			return d
		}
	}
	return p.adaptive.NextBackOff()
}

// onTime turns d, the delay from the poll just made as planned, into the
// delay from now: less the time that poll took. A wait that fell more than
// a delay behind (a poll that took longer than a gap) polls at once and
// plans on from now.
func (p *bootPlan) onTime(d time.Duration) time.Duration {
	if p.start.IsZero() || d == backoff.Stop {
		return d
	}
	late := time.Since(p.start) - (p.adaptive.elapsed - d) // how far behind plan the poll ended
	if late <= 0 {
		return d
	}
	if late >= d {
		p.adaptive.elapsed += late - d
		return 0
	}
	return d - late
}

// Resume starts the schedule age after the machine was created.
func (p *bootPlan) Resume(age time.Duration) time.Duration {
	p.start = time.Now().Add(-age)
	return p.adaptive.Resume(age)
}
