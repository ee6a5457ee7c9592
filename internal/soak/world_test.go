package soak_test

import (
	"math"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The soak and the audits run in the realistic world (simcloud.Realistic):
// every documented delay, window and rate of the clouds, scaled down by a
// time scale, as the conformance suite runs them. Durations below are
// cloud time (a real cloud's) unless they say otherwise; scaled converts
// them into the tests' wall-clock time.

// auditScale is the time scale of the audits, the bad responses and the
// secrets test: the conformance suite's (a second of cloud time is 10 ms).
const auditScale = 0.01

// scaled converts a duration of cloud time into wall-clock time at scale.
func scaled(d time.Duration, scale float64) time.Duration {
	return time.Duration(math.Round(float64(d) * scale))
}

// realisticOptions returns the realistic world at scale for tg's cloud,
// with the soak's changes: Retry-After in cloud time where the cloud
// sends one (DigitalOcean's whole seconds would be a hundred times too
// long at 1/100: a client waits a wall-clock second for a refill of a
// hundredth of one), and the seed.
func realisticOptions(tg target, scale float64, seed uint64) simcloud.Options {
	o := simcloud.Realistic(scale)
	o.Seed = seed
	if tg.retryAfter {
		o.RetryAfter = simcloud.RetryAfterFractional
	}
	return o
}

// scaledLimits returns the driver's published rate limits at scale: the
// same number of requests in a period scale times as long.
func scaledLimits(limits []provider.RateLimit, scale float64) []provider.RateLimit {
	out := make([]provider.RateLimit, len(limits))
	for i, l := range limits {
		l.Per = max(scaled(l.Per, scale), time.Microsecond)
		out[i] = l
	}
	return out
}

// realisticConfig tunes cfg (a dialect's Config, with its wait policy paced
// to the simulated boot) for the realistic world at scale: the default
// ProviderTimeouts in cloud time, the driver's own rate limits on a pacer
// of the Provider's own, and retries 0.2 s to 2 s apart in cloud time.
// HTTPRequest stays in wall-clock time: what a simulated call takes is
// the machine's, not the cloud's.
func realisticConfig(tg target, cfg provider.Config, scale float64, attempts int) provider.Config {
	d := provider.DefaultTimeouts()
	cfg.Timeouts = provider.ProviderTimeouts{
		InstanceReady:  scaled(d.InstanceReady, scale),
		ActionComplete: scaled(d.ActionComplete, scale),
		PollInterval:   scaled(d.PollInterval, scale),
		HTTPRequest:    5 * time.Second,
		Lookup:         scaled(d.Lookup, scale),
	}
	cfg.Retry = provider.RetryPolicy{MaxAttempts: attempts,
		InitialDelay: scaled(200*time.Millisecond, scale), MaxDelay: scaled(2*time.Second, scale)}
	cfg.Pacer = provider.NewPacer(scaledLimits(tg.limits, scale)...)
	return cfg
}
