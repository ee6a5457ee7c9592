// Package soak holds spuff's fault soak: many concurrent create → wait →
// snapshot → destroy lifecycles per provider against the simulated clouds
// in their realistic world (the clouds' documented delays, rate limits,
// throttling without Retry-After, locks, destroy windows, late IPs,
// failing snapshots, bounded capacity, and listings that lag longer than
// the look-up window of a create whose outcome is unknown), scaled down in
// time, with randomized, seeded faults, checked against each cloud's own
// ledger and one Reap sweep (no leaked machine or snapshot, no duplicate,
// failed lifecycles within a budget and each of an explained kind, every
// error typed, no goroutine left). Beside it, for every driver: the retry
// audit (one retry policy in charge; no call that may have changed
// something repeated where repeating is not safe, per the exactly-once
// create protocol), bad responses (malformed, truncated, huge, unexpected
// status) and secret hygiene (no token, secret key or user data in errors,
// logs or printed values).
//
// The package has tests only. A short soak runs with go test; a long one
// runs on demand:
//
//	SPUFF_SOAK=10000 go test -run TestSoak -v -timeout 90m ./internal/soak
//
// Its knobs, read from the environment:
//
//   - SPUFF_SOAK: the number of lifecycles across the three providers
//     (default 180);
//   - SPUFF_SOAK_SEED: the fault draws (default 1);
//   - SPUFF_SOAK_FAULTS: the share of API calls that misbehave, 0 to 1
//     (default 0.12);
//   - SPUFF_SOAK_LAG: how long a new machine is missing from listings, in
//     cloud time (default 20s, twice the 10 s look-up window; 0 keeps each
//     cloud's own);
//   - SPUFF_SOAK_SCALE: the time scale, wall-clock time per cloud time
//     (default 0.01);
//   - SPUFF_SOAK_BUDGET: the share of lifecycles that may fail with an
//     explained error (default 0.05).
package soak
