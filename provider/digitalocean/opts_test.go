package digitalocean_test

import "github.com/spuffgo/spuff/providertest/simcloud"

// noLimits removes the account's rate limits from o.
func noLimits(o simcloud.Options) simcloud.Options {
	o.RateLimits = []simcloud.RateLimit{}
	return o
}

// maxInstances sets the account's machine quota.
func maxInstances(o simcloud.Options, n int) simcloud.Options {
	o.MaxInstances = n
	return o
}
