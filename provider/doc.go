// Package provider is spuff's portable API for short-lived cloud machines:
// the Provider interface every cloud driver implements, the request and
// result types (InstanceRequest, ImageSpec, Instance, Snapshot, SSHKey), the
// errors callers classify, the registry drivers register with, and the
// policies — validation, retry, pacing and waiting — that every driver
// shares. It imports no cloud SDK.
//
// # Opening a provider
//
// Drivers live in sub-packages and register themselves when imported, as
// database/sql drivers do:
//
//	import (
//		"github.com/spuffgo/spuff/provider"
//		_ "github.com/spuffgo/spuff/provider/hetzner"
//	)
//
//	p, err := provider.Open(ctx, "hetzner", provider.Config{}) // token from HCLOUD_TOKEN
//
// Each driver also has a constructor taking an SDK client the caller built,
// for full control of the transport.
//
// # Lifecycle
//
// CreateInstance validates the request before any network call, labels the
// machine as managed (OwnerLabel=Config.Owner, "managed-by=spuff" by
// default) and never leaves two machines when retried. WaitReady polls
// adaptively until the machine runs and has a public IP. DestroyInstance and
// DeleteSnapshot are idempotent. ListInstances and ListSnapshots return
// every managed resource and only those.
//
// # Logging in
//
// WaitSSH waits past WaitReady until the machine can be logged in to over
// SSH (golang.org/x/crypto/ssh), stage by stage — port open, handshake
// with the host key verified, the caller's key accepted, cloud-init done
// — each bounded by its ProviderTimeouts field and reported to the
// context's WaitTrace. Host keys are checked by the caller's
// HostKeyPolicy (KnownHosts, ConsoleHostKeys, HostKeys, or, explicitly,
// TrustOnFirstUse), never accepted blindly.
//
// # Errors
//
// Every error a Provider returns is, or wraps, an *Error whose Kind says
// what went wrong. Test the kind with errors.Is against the sentinels:
//
//	switch {
//	case errors.Is(err, provider.ErrNotFound):
//	case errors.Is(err, provider.ErrRateLimit):
//		d, _ := provider.RetryAfter(err)
//	case errors.Is(err, provider.ErrInvalidConfig):
//	}
//
// Use errors.As to read the details (Field, Status, Elapsed, LastState), and
// errors.As again on the same error to reach the SDK's own error type, which
// *Error wraps. IsRetryable reports whether a failed call may succeed when
// repeated. Errors never contain credentials or user data.
//
// # Capacity, failover and the catalogue
//
// A cloud that has no room for a size in a region now refuses with an
// error matching ErrCapacity (EC2's InsufficientInstanceCapacity, Hetzner's
// resource_unavailable, DigitalOcean's "not available in this region"):
// not the account's quota (ErrQuotaExceeded), not a size that never exists
// (ErrInvalidConfig), never retried in place. CreateWithFailover tries a
// list of Placements (regions and sizes, even providers) in order and
// moves on only after such a refusal; at most one machine results, lost
// answers included, and its error lists every placement tried.
//
// FetchCatalog returns a provider's regions, sizes (vCPUs, memory, disk,
// architecture, the regions each is offered in) and the hourly prices the
// cloud publishes, cached for the age the caller gives; a price the cloud
// does not publish is unknown, never guessed. Pick chooses the placements
// of one or more providers that meet Requirements, cheapest first, ready
// for CreateWithFailover:
//
//	offers, err := provider.Pick(ctx, provider.Requirements{MinVCPUs: 2, MinMemoryMiB: 4096, MaxAge: time.Hour}, hz, do)
//	inst, err := provider.CreateWithFailover(ctx, req, provider.Placements(offers))
//
// # Policies
//
// Drivers route their API calls through a Policy (NewPolicy): safe calls are
// retried with jittered backoff honouring Retry-After; all calls of one
// account share a Pacer that keeps them under the cloud's rate limit, fed by
// its RateLimit-* headers; waits use a Waiter whose WaitPolicy polls often
// near the expected completion and rarely before it.
package provider
