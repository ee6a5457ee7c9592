package main

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/spuffgo/spuff/provider"
)

// strategy is a wait policy measured by the report: spuff's default and
// the baselines people run today, each given to the driver as
// Config.WaitPolicy so that everything else is equal.
type strategy struct {
	// key names it in flags and benchmarks; name in the report.
	key, name string
	// policy builds it for cloud c at time scale s; nil is spuff's
	// default (Config.WaitPolicy nil).
	policy func(c *cloud, s scaling) provider.WaitPolicy
}

var (
	// spuffWait is the drivers' default: no Config.WaitPolicy, so that
	// WaitReady schedules its polls from the boot times it has seen
	// (provider.BootTimes), starting from the driver's ExpectedBoot.
	spuffWait = strategy{"spuff", "spuff (learning)", func(*cloud, scaling) provider.WaitPolicy { return nil }}
	// fixed5s is the original spuff: poll every 5 s.
	fixed5s = strategy{"fixed5s", "fixed 5 s (original spuff)", func(_ *cloud, s scaling) provider.WaitPolicy {
		return provider.FixedWait(s.d(5 * time.Second))
	}}
	// awsWaiter is aws-sdk-go-v2's InstanceRunning waiter: 15 s minimum,
	// 120 s maximum delay, exponential with jitter.
	awsWaiter = strategy{"awswaiter", "AWS SDK waiter (15-120 s)", func(_ *cloud, s scaling) provider.WaitPolicy {
		return sdkWaiter(s.d(15*time.Second), s.d(120*time.Second))
	}}
	// hcloud500ms is hcloud-go's action polling: every 500 ms.
	hcloud500ms = strategy{"hcloud500ms", "hcloud-go 500 ms", func(_ *cloud, s scaling) provider.WaitPolicy {
		return provider.FixedWait(s.d(500 * time.Millisecond))
	}}
	strategies = []strategy{spuffWait, fixed5s, awsWaiter, hcloud500ms}
)

// sdkWaiter is the delay schedule of smithy-go's waiter.ComputeDelay, which
// every aws-sdk-go-v2 waiter uses: attempt n waits minDelay·2^(n-1) capped
// at maxDelay, drawn uniformly between minDelay and that (the first delay
// is exactly minDelay). The waiter's first attempt is immediate, as the
// the provider's waits.
func sdkWaiter(minDelay, maxDelay time.Duration) provider.WaitPolicy {
	return func() provider.Backoff { return &sdkSchedule{min: minDelay, max: maxDelay} }
}

type sdkSchedule struct {
	min, max time.Duration
	attempt  int
}

func (s *sdkSchedule) NextBackOff() time.Duration {
	s.attempt++
	ceiling := int(math.Log2(float64(s.max/s.min))) + 1
	delay := s.max
	if s.attempt <= ceiling {
		delay = s.min << (s.attempt - 1)
	}
	if delay != s.min {
		delay = s.min + time.Duration(rand.Int64N(int64(delay-s.min)))
	}
	return delay
}
