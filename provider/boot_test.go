package provider

import (
	"encoding/json"
	"testing"
	"time"
)

// firstAndGap returns a schedule's first delay (from a change just begun)
// and the gap after it.
func firstAndGap(wp WaitPolicy) (time.Duration, time.Duration) {
	a := wp().(*adaptive)
	first := a.Resume(time.Nanosecond)
	return first, a.NextBackOff()
}

func TestBootWaitLearns(t *testing.T) {
	t.Parallel()
	const prior, floor, maxGap = 40 * time.Second, 2 * time.Second, 5 * time.Second
	tests := []struct {
		name             string
		samples          []time.Duration
		firstLo, firstHi time.Duration
		gapLo, gapHi     time.Duration
	}{
		// No evidence: from 0.4 of the prior, which may be off by half.
		{"none", nil, 15 * time.Second, 17 * time.Second, 2 * time.Second, 2.8 * 1e9},
		// One boot of 20 s: ±20 % around it.
		{"one", []time.Duration{20 * time.Second}, 15 * time.Second, 16 * time.Second, 1.8 * 1e9, 2.3 * 1e9},
		// Many boots of 80 to 88 s: from just before the shortest, every
		// 9 % of the median (capped by the largest gap).
		{"many slow", spread(80*time.Second, 88*time.Second, 25), 75 * time.Second, 79 * time.Second, 4.5 * 1e9, 5.6 * 1e9},
		// Many fast boots: the gap floor holds.
		{"many fast", spread(6*time.Second, 10*time.Second, 25), 5 * time.Second, 6.2 * 1e9, 1.8 * 1e9, 2.3 * 1e9},
	}
	for _, tt := range tests {
		first, gap := firstAndGap(bootWait(sorted(tt.samples), prior, floor, maxGap))
		if first < tt.firstLo || first > tt.firstHi {
			t.Errorf("%s: first poll at %v, want within [%v, %v]", tt.name, first, tt.firstLo, tt.firstHi)
		}
		if gap < tt.gapLo || gap > tt.gapHi {
			t.Errorf("%s: gap %v, want within [%v, %v]", tt.name, gap, tt.gapLo, tt.gapHi)
		}
	}
}

func spread(lo, hi time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range n {
		out[i] = lo + (hi-lo)*time.Duration(i)/time.Duration(n-1)
	}
	return out
}

func sorted(s []time.Duration) []time.Duration {
	var b BootTimes
	for _, d := range s {
		b.observe("k", d)
	}
	return b.samples("k")
}

func TestBootTimesBoundedAndPersisted(t *testing.T) {
	t.Parallel()
	var b BootTimes
	for i := range 100 {
		b.observe("do|nyc3|s-1|ubuntu:24.04", time.Duration(i+1)*time.Second)
	}
	b.observe("x", -time.Second) // ignored
	s := b.samples("do|nyc3|s-1|ubuntu:24.04")
	if len(s) != maxBootSamples || s[0] != 69*time.Second {
		t.Fatalf("kept %d samples from %v, want the newest %d", len(s), s[0], maxBootSamples)
	}
	data, err := json.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	var c BootTimes
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if got := c.samples("do|nyc3|s-1|ubuntu:24.04"); len(got) != len(s) || got[0] != s[0] {
		t.Errorf("round trip kept %d samples from %v", len(got), got)
	}
	if len(c.samples("x")) != 0 {
		t.Error("a negative boot time was kept")
	}
}

func TestBootSample(t *testing.T) {
	t.Parallel()
	born := time.Now()
	if got := bootSample(born, born.Add(8*time.Second), born.Add(10*time.Second)); got != 9*time.Second {
		t.Errorf("between polls at 8 s and 10 s: %v, want 9s", got)
	}
	if got := bootSample(born, time.Time{}, born.Add(10*time.Second)); got != 8500*time.Millisecond {
		t.Errorf("ready at the first poll, 10 s: %v, want 8.5s (a little earlier next time)", got)
	}
}
