package simcloud

import (
	"fmt"
	"slices"
	"time"
)

// FaultKind is a misbehaviour the cloud can be told to show.
type FaultKind int

// The faults a Cloud can inject.
const (
	FaultNone FaultKind = iota
	// FaultRateLimit answers 429 (EC2: 503 RequestLimitExceeded) with a
	// Retry-After header of Fault.Delay, unless the cloud's
	// Options.RetryAfter is RetryAfterNever (EC2 and Hetzner send none).
	FaultRateLimit
	// FaultRateLimitBare answers 429 without Retry-After.
	FaultRateLimitBare
	// FaultInternal answers 500.
	FaultInternal
	// FaultBadGateway answers 502.
	FaultBadGateway
	// FaultUnavailable answers 503.
	FaultUnavailable
	// FaultDrop closes the connection before the operation runs.
	FaultDrop
	// FaultSlow answers after Fault.Delay.
	FaultSlow
	// FaultLoseResponse runs the operation, then closes the connection
	// without answering: the change is made but the caller never hears of it.
	FaultLoseResponse
	// FaultConsistency applies to creates: the new instance stays invisible
	// to reads for Fault.Delay (eventual consistency).
	FaultConsistency
	// FaultMalformed answers 200 with a body that does not parse.
	FaultMalformed
	// FaultTruncated answers 200 with a body cut short.
	FaultTruncated
	// FaultHuge answers 200 with a body of 64 MiB that never ends its first
	// value.
	FaultHuge
	// FaultCapacity answers a create with the cloud's capacity error (EC2
	// InsufficientInstanceCapacity, HTTP 500; Hetzner resource_unavailable
	// "error during placement", 412; DigitalOcean 422 "Size is not available
	// in this region."), CodeCapacity. Distinct from a quota.
	FaultCapacity
	// FaultRegionDisabled answers a create as a cloud whose region takes no
	// new machines (Hetzner resource_unavailable "server location
	// disabled", 412; DigitalOcean 422 "Region is not available"),
	// CodeRegionDisabled.
	FaultRegionDisabled
	// FaultLocked answers as a resource with an action running (Hetzner
	// 423 locked), CodeLocked.
	FaultLocked
	// FaultConflict answers as a resource that changed during the request
	// (Hetzner 409 conflict, "please retry"), CodeChanged.
	FaultConflict
	// FaultSnapshotFailed applies to snapshots: the image is made, stays
	// pending for its delay, then fails (EC2: an AMI "pending" then
	// "failed"; the snapshot action errors).
	FaultSnapshotFailed
	faultKinds
)

var faultNames = [...]string{"none", "429", "429-bare", "500", "502", "503", "drop", "slow",
	"lost-response", "consistency", "malformed", "truncated", "huge",
	"capacity", "region-disabled", "locked", "conflict", "snapshot-failed"}

// String names the fault ("429", "lost-response").
func (k FaultKind) String() string {
	if k < 0 || k >= faultKinds {
		return fmt.Sprintf("FaultKind(%d)", int(k))
	}
	return faultNames[k]
}

// modelFault reports whether a fault is shown by the model operation (a
// create, a snapshot) rather than by the answer.
func (k FaultKind) modelFault() bool { return k == FaultConsistency || k == FaultSnapshotFailed }

// Fault is an injected misbehaviour: the next Count calls of Op show Kind.
type Fault struct {
	Op    Op
	Kind  FaultKind
	Count int
	// Delay is the slowness of FaultSlow, the Retry-After of FaultRateLimit
	// (default 1 s) and the invisibility window of FaultConsistency
	// (default 1 s), in cloud time (scaled by Options.TimeScale).
	Delay time.Duration
}

// Inject queues a fault: the next f.Count calls (default 1) of f.Op show
// f.Kind. Faults queued for the same Op apply in order. A model fault
// (FaultConsistency, FaultSnapshotFailed) applies to the next creates or
// snapshots, whatever f.Op says.
func (c *Cloud) Inject(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	if f.Kind.modelFault() {
		f.Op = modelFaultOp(f.Kind)
	}
	if f.Delay <= 0 && (f.Kind == FaultRateLimit || f.Kind == FaultConsistency) {
		f.Delay = time.Second
	}
	c.mu.Lock()
	c.faults[f.Op] = append(c.faults[f.Op], &f)
	c.mu.Unlock()
}

// ClearFaults drops every queued and random fault.
func (c *Cloud) ClearFaults() {
	c.mu.Lock()
	c.faults = make(map[Op][]*Fault)
	c.random = randomFaults{}
	c.randomPending = make(map[FaultKind]bool)
	c.mu.Unlock()
}

// RandomFaults makes a share of calls misbehave, drawn from the cloud's
// seeded generator.
type RandomFaults struct {
	// Rate is the probability that a call shows a fault, 0 to 1.
	Rate float64
	// Kinds are drawn uniformly; FaultConsistency, FaultCapacity and
	// FaultRegionDisabled apply to creates only, FaultSnapshotFailed to
	// snapshots only.
	Kinds []FaultKind
	// Ops limits the faults to these operations; nil means all.
	Ops []Op
	// Delay is as in Fault.
	Delay time.Duration
}

type randomFaults struct {
	RandomFaults
	on bool
}

// SetRandomFaults turns random faults on (or off with a zero Rate).
func (c *Cloud) SetRandomFaults(r RandomFaults) {
	c.mu.Lock()
	c.random = randomFaults{RandomFaults: r, on: r.Rate > 0 && len(r.Kinds) > 0}
	c.mu.Unlock()
}

// modelFaultOp is the operation a model fault applies to.
func modelFaultOp(k FaultKind) Op {
	if k == FaultSnapshotFailed {
		return OpCreateSnapshot
	}
	return OpCreateInstance
}

// takeFaultLocked returns the fault the next call of op shows. Model faults
// are left queued for the model operation, or, drawn at random, marked
// pending for it.
func (c *Cloud) takeFaultLocked(op Op) (FaultKind, time.Duration) {
	q := c.faults[op]
	for i, f := range q {
		if f.Kind.modelFault() {
			continue // consumed by the model operation
		}
		f.Count--
		if f.Count <= 0 {
			c.faults[op] = slices.Delete(slices.Clone(q), i, i+1)
		}
		return f.Kind, f.Delay
	}
	if r := c.random; r.on && (r.Ops == nil || slices.Contains(r.Ops, op)) && c.rng.Float64() < r.Rate {
		k := r.Kinds[c.rng.IntN(len(r.Kinds))]
		switch {
		case k.modelFault():
			if op == modelFaultOp(k) {
				c.randomPending[k] = true
			}
			return FaultNone, 0
		case (k == FaultCapacity || k == FaultRegionDisabled) && op != OpCreateInstance:
			return FaultNone, 0
		}
		d := r.Delay
		if d <= 0 {
			d = time.Second
			if k == FaultSlow {
				d = 200 * time.Millisecond
			}
		}
		return k, d
	}
	return FaultNone, 0
}

// pendingModelFaultLocked consumes a queued or drawn model fault of kind
// for the operation it applies to, and returns its delay (cloud time).
func (c *Cloud) pendingModelFaultLocked(kind FaultKind) (time.Duration, bool) {
	if c.randomPending[kind] {
		delete(c.randomPending, kind)
		c.faultsInjected[kind]++
		d := c.random.Delay
		if d <= 0 {
			d = time.Second
		}
		return d, true
	}
	op := modelFaultOp(kind)
	q := c.faults[op]
	for i, f := range q {
		if f.Kind != kind {
			continue
		}
		f.Count--
		if f.Count <= 0 {
			c.faults[op] = slices.Delete(slices.Clone(q), i, i+1)
		}
		c.faultsInjected[kind]++
		d := f.Delay
		if d <= 0 {
			d = time.Second
		}
		return d, true
	}
	return 0, false
}

// Decision is what the cloud decided for one API call before running it.
type Decision struct {
	// Op is the operation.
	Op Op
	// Fault is the misbehaviour to show, or FaultNone. A call over the rate
	// limit gets FaultRateLimit with Throttled set.
	Fault FaultKind
	// Throttled reports a real rate-limit rejection (not an injected fault).
	Throttled bool
	// Delay is the fault's delay (see Fault.Delay), scaled to wall-clock.
	Delay time.Duration
	// RetryAfter is the wait to advertise with a 429 (wall-clock).
	RetryAfter time.Duration
	// SendRetryAfter reports whether the answer carries Retry-After: not
	// with Options.RetryAfter RetryAfterNever, nor for a refusal by a window
	// that sends none (RateLimit.NoRetryAfter).
	SendRetryAfter bool
	// Windows are the account's rate-limit windows that apply to the call,
	// after it.
	Windows []WindowState
}

// Admit counts one call of op by the account holding credential, checks
// the credential (CodeUnauthorized), applies the rate limit and picks the
// fault to show. Dialects call it through Serve.
func (c *Cloud) Admit(op Op, credential string) (Decision, *Error) {
	return c.AdmitCall(Call{Op: op, Credential: credential})
}

// AdmitCall is Admit for a call with a scope and bucket charges.
func (c *Cloud) AdmitCall(call Call) (Decision, *Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.calls[call.Op]++
	d := Decision{Op: call.Op}
	if call.Credential == "" || !c.tokens[call.Credential] {
		return d, errf(CodeUnauthorized, "unable to authenticate you")
	}
	ok, wait, sendRA, windows := c.throttleLocked(call, now)
	d.Windows = windows
	if !ok {
		c.rateLimited++
		d.Fault, d.Throttled, d.RetryAfter = FaultRateLimit, true, wait
		d.SendRetryAfter = sendRA && c.retryAfter != RetryAfterNever
		return d, nil
	}
	var delay time.Duration
	d.Fault, delay = c.takeFaultLocked(call.Op)
	d.Delay = c.Scale(delay)
	if d.Fault != FaultNone {
		c.faultsInjected[d.Fault]++
		if d.Fault == FaultRateLimit {
			d.RetryAfter = d.Delay
			d.SendRetryAfter = c.retryAfter != RetryAfterNever
		}
	}
	return d, nil
}
