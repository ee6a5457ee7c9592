package provider

import (
	"encoding/json"
	"slices"
	"sync"
	"time"
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
	mu sync.Mutex
	m  map[string][]time.Duration // newest last, at most maxBootSamples
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
		b.m = map[string][]time.Duration{}
	}
	s := append(b.m[kind], d)
	if len(s) > maxBootSamples {
		s = s[len(s)-maxBootSamples:]
	}
	b.m[kind] = s
}

// samples returns a sorted copy of the boot times of kind.
func (b *BootTimes) samples(kind string) []time.Duration {
	b.mu.Lock()
	s := slices.Clone(b.m[kind])
	b.mu.Unlock()
	slices.Sort(s)
	return s
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

// bootWait is the wait schedule of a machine of a kind, from its boot
// times seen, else from the cloud's typical boot time prior. gapFloor and
// maxGap bound the gaps between polls while the machine is due (3/10 of
// and the whole PollInterval by default).
//
// With samples, the window where the machine is due runs from a little
// before the shortest boot seen to a little after the longest (the 5th
// and 95th percentiles once there are 20), polled every 9 % of the median
// boot: readiness is then noticed within about 5 % of the boot time at the
// median, 10 % at worst. With one sample the window is ±20 % of it; with
// none, from 0.4 to 1.4 times the prior (boot times vary between regions
// and images by half or double), polled every 6 % of the prior.
func bootWait(s []time.Duration, prior, gapFloor, maxGap time.Duration) WaitPolicy {
	if len(s) == 0 {
		if prior <= 0 {
			return AdaptiveWait(0, gapFloor, maxGap)
		}
		p := float64(prior)
		return windowWait(prior, time.Duration(0.4*p), time.Duration(1.4*p), time.Duration(0.06*p), gapFloor, maxGap)
	}
	median := s[len(s)/2]
	lo, hi := s[0], s[len(s)-1]
	switch {
	case len(s) == 1:
		lo, hi = time.Duration(0.8*float64(median)), time.Duration(1.2*float64(median))
	case len(s) >= 20:
		lo, hi = s[len(s)*5/100], s[len(s)*95/100]
	}
	lo = time.Duration(0.95 * float64(lo))
	hi = time.Duration(1.05 * float64(hi))
	return windowWait(median, lo, hi, time.Duration(0.09*float64(median)), gapFloor, maxGap)
}

// windowWait is AdaptiveWait's schedule with its window given: the first
// poll at first, polls gap apart (within [minGap, maxGap]) until end, then
// growing gaps.
func windowWait(expected, first, end, gap, minGap, maxGap time.Duration) WaitPolicy {
	if minGap <= 0 {
		minGap = 50 * time.Millisecond
	}
	maxGap = max(maxGap, minGap)
	return func() Backoff {
		return &adaptive{expected: expected, minGap: minGap, maxGap: maxGap,
			first: first, end: max(end, first), gap: min(max(gap, minGap), maxGap)}
	}
}
