package provider

import "time"

// ProviderTimeouts bounds the waits and requests a Provider makes. The field
// names and defaults are the original spuff's. A zero field means "use the
// default" (see DefaultTimeouts); there is no way to ask for "no limit" other
// than a large value, because a machine that is waited on forever is a
// machine that may be forgotten.
type ProviderTimeouts struct {
	// InstanceReady bounds WaitReady. Default 5 minutes.
	InstanceReady time.Duration
	// ActionComplete bounds waits for cloud actions such as a snapshot.
	// Default 10 minutes.
	ActionComplete time.Duration
	// PollInterval is the longest pause between two polls once the awaited
	// change is due. Waits poll adaptively (see DefaultWait and
	// AdaptiveWait): the first poll comes at 4/5 of the cloud's typical
	// completion time (which may be longer than PollInterval), then polls
	// come at short gaps while the change is due, at most PollInterval
	// apart. Default 5 seconds.
	PollInterval time.Duration
	// HTTPRequest bounds each single API request (each attempt, when a call
	// is retried). Default 30 seconds.
	HTTPRequest time.Duration
	// SSHConnect bounds waiting for SSH to accept connections, for callers
	// that do so. Default 5 minutes.
	SSHConnect time.Duration
	// CloudInit bounds waiting for cloud-init to finish, for callers that do
	// so. Default 10 minutes.
	CloudInit time.Duration
	// Lookup bounds how long a create whose outcome is unknown (its answer
	// was lost) looks for the machine it may have made before it gives up
	// with ErrOutcomeUnknown, on clouds without native idempotency; the
	// Provider then remembers the request for 6 times as long (a minute by default), and makes
	// no second machine for it meanwhile. Default 10 seconds.
	Lookup time.Duration
}

// DefaultTimeouts returns the defaults: instance ready 5 min, action complete
// 10 min, poll interval 5 s, HTTP request 30 s, SSH connect 5 min, cloud-init
// 10 min, lookup 10 s.
func DefaultTimeouts() ProviderTimeouts {
	return ProviderTimeouts{
		InstanceReady:  5 * time.Minute,
		ActionComplete: 10 * time.Minute,
		PollInterval:   5 * time.Second,
		HTTPRequest:    30 * time.Second,
		SSHConnect:     5 * time.Minute,
		CloudInit:      10 * time.Minute,
		Lookup:         10 * time.Second,
	}
}

// WithDefaults returns t with every zero or negative field replaced by its
// default.
func (t ProviderTimeouts) WithDefaults() ProviderTimeouts {
	d := DefaultTimeouts()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&t.InstanceReady, d.InstanceReady)
	set(&t.ActionComplete, d.ActionComplete)
	set(&t.PollInterval, d.PollInterval)
	set(&t.HTTPRequest, d.HTTPRequest)
	set(&t.SSHConnect, d.SSHConnect)
	set(&t.CloudInit, d.CloudInit)
	set(&t.Lookup, d.Lookup)
	return t
}
