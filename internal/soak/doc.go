// Package soak holds spuff's fault soak: many concurrent create → wait →
// snapshot → destroy lifecycles per provider against the simulated clouds
// with randomized, seeded faults, checked against each cloud's own ledger
// (no leaked machine or snapshot, no duplicate, every error of a retryable
// kind, no goroutine left). Beside it, for every driver: the retry audit
// (one retry policy in charge; no call that changes something repeated
// blindly), bad responses (malformed, truncated, huge, unexpected status)
// and secret hygiene (no token, secret key or user data in errors, logs or
// printed values).
//
// The package has tests only. A short soak runs with go test; a long one
// runs on demand:
//
//	SPUFF_SOAK=10000 go test -run TestSoak -v -timeout 60m ./internal/soak
//
// SPUFF_SOAK is the number of lifecycles across the three providers;
// SPUFF_SOAK_SEED changes the fault draws (default 1).
package soak
