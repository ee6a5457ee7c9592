package aws_test

import (
	"time"

	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// unlimited removes the account's rate limits from o.
func unlimited(o simcloud.Options) simcloud.Options {
	o.RateLimits = []simcloud.RateLimit{}
	o.Buckets = map[string]simcloud.RateLimit{}
	return o
}

// fastUnlimited is the realistic world booting in 20 ms, without limits.
func fastUnlimited() simcloud.Options {
	o := unlimited(providertest.Options())
	o.BootDelay = 2 * time.Second // cloud time: 20 ms at the suite's scale
	return o
}
