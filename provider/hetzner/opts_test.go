package hetzner_test

import "github.com/spuffgo/spuff/providertest/simcloud"

// maxInstances sets the account's machine quota.
func maxInstances(o simcloud.Options, n int) simcloud.Options {
	o.MaxInstances = n
	return o
}
