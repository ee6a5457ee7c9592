package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Stage names one step of WaitSSH. The stages come in the order of the
// constants below; each one starts where the one before it ended.
// StagePort, StageHandshake and StageAuth share one bound,
// ProviderTimeouts.SSHConnect, counted from the end of StageAPI.
type Stage string

// The stages of WaitSSH.
const (
	// StageAPI ends when the cloud says the machine runs and has a
	// public IP (WaitReady), bounded by ProviderTimeouts.InstanceReady.
	StageAPI Stage = "api"
	// StagePort ends at the first TCP connection the SSH port accepts.
	StagePort Stage = "port"
	// StageHandshake ends when an SSH handshake got to the machine's host
	// key and the host key policy accepted it.
	StageHandshake Stage = "handshake"
	// StageAuth ends when the machine accepted one of the caller's keys.
	StageAuth Stage = "auth"
	// StageCloudInit ends when cloud-init has finished, with its result
	// (only with SSHOptions.CloudInit), bounded by
	// ProviderTimeouts.CloudInit.
	StageCloudInit Stage = "cloud-init"
)

// StageTiming is how long one stage of WaitSSH took.
type StageTiming struct {
	// Stage is the stage.
	Stage Stage
	// Duration runs from the end of the stage before (the start of
	// WaitSSH for StageAPI) to the moment the stage's condition first
	// held: for StageHandshake, from the port's first accepted
	// connection to the first host key accepted.
	Duration time.Duration
	// Attempts is the number of polls (StageAPI), connection attempts
	// (StagePort to StageAuth; an attempt that got through several
	// stages counts in each) or commands (StageCloudInit) the stage took.
	Attempts int
}

// StageEvent reports the end of a stage of WaitSSH to a WaitTrace.
type StageEvent struct {
	// Provider and ID name the machine.
	Provider, ID string
	// StageTiming is the stage and how long it took.
	StageTiming
	// Err is why the stage failed, nil when it ended well.
	Err error
}

// StageError says which stage of WaitSSH failed. WaitSSH's errors are
// *Error values wrapping one; get it with errors.As.
type StageError struct {
	// Stage is the stage that failed.
	Stage Stage
	// Err is why.
	Err error
}

// Error returns "stage <stage>: <cause>".
func (e *StageError) Error() string { return "stage " + string(e.Stage) + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *StageError) Unwrap() error { return e.Err }

// ErrCloudInit matches (errors.Is) the error of a WaitSSH whose machine's
// cloud-init finished with an error: SSHReport.CloudInit says what it
// reported.
var ErrCloudInit = errors.New("cloud-init failed")

// SSHOptions configure WaitSSH.
type SSHOptions struct {
	// User is the login user; empty means "root" (DigitalOcean's and
	// Hetzner's images; see LoginUser for the users of AWS images).
	User string
	// Signers are the caller's private keys, tried in order. One of them
	// must be installed on the machine (InstanceRequest.SSHKeys).
	// Required.
	Signers []ssh.Signer
	// HostKeys decides whether the host key the machine shows is its own:
	// KnownHosts, ConsoleHostKeys, HostKeys (pinned keys) or, as an
	// explicit choice, TrustOnFirstUse. Required: WaitSSH never accepts
	// a host key blindly.
	HostKeys HostKeyPolicy
	// Port is the SSH port; 0 means 22.
	Port int
	// CloudInit, when set, waits for cloud-init to finish and checks its
	// result: "cloud-init status --wait", or, on images whose cloud-init
	// has no status command, the marker
	// /var/lib/cloud/instance/boot-finished and the errors listed in
	// /var/lib/cloud/data/result.json.
	CloudInit bool
	// Dial opens the TCP connections. Nil means the Provider's
	// Config.DialContext, else a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// AttemptTimeout bounds each connection attempt (connect, handshake
	// and authentication), so that a server that accepts the connection
	// and says nothing is given up on and tried again. 0 means 10 s.
	AttemptTimeout time.Duration
	// RefusedFor is how long a machine that refuses every key of Signers
	// is tried again before WaitSSH gives up with ErrAuthentication:
	// sshd may start before cloud-init has installed the keys. 0 means
	// 30 s. Refusals until ProviderTimeouts.SSHConnect runs out first are
	// a timeout of StageAuth.
	RefusedFor time.Duration
	// Retry schedules the connection attempts and the cloud-init checks.
	// Nil means ExponentialWait from a twentieth of
	// ProviderTimeouts.PollInterval (at least 10 ms) to PollInterval,
	// growing by half with ±20 % jitter.
	Retry WaitPolicy
	// KeepClient, when set, leaves the SSH connection open in
	// SSHReport.Client for the caller to use and close.
	KeepClient bool
}

// SSHReport is what WaitSSH saw. WaitSSH returns it also with its error,
// holding the stages that ended before the failure.
type SSHReport struct {
	// Instance is the machine as WaitReady returned it.
	Instance *Instance
	// Addr is the address connected to ("198.51.100.7:22").
	Addr string
	// Alias is the machine's name in known_hosts files apart from its
	// address (HostKeyAlias).
	Alias string
	// User is the login user.
	User string
	// HostKey is the host key the machine showed and the policy
	// accepted; HostKeyTrust is the policy's account of why ("known_hosts
	// /home/me/.ssh/known_hosts", "console output", "trusted on first
	// use, recorded in ...").
	HostKey      ssh.PublicKey
	HostKeyTrust string
	// Stages are the stages that ended, in order.
	Stages []StageTiming
	// CloudInit is cloud-init's result, nil unless SSHOptions.CloudInit
	// and the stage got an answer.
	CloudInit *CloudInitResult
	// Client is the open connection, with SSHOptions.KeepClient; the
	// caller closes it.
	Client *ssh.Client
}

// Stage returns the timing of stage s, and whether it ended.
func (r *SSHReport) Stage(s Stage) (StageTiming, bool) {
	if r == nil {
		return StageTiming{}, false
	}
	for _, st := range r.Stages {
		if st.Stage == s {
			return st, true
		}
	}
	return StageTiming{}, false
}

// Total is the sum of the stages' durations.
func (r *SSHReport) Total() time.Duration {
	var d time.Duration
	if r != nil {
		for _, st := range r.Stages {
			d += st.Duration
		}
	}
	return d
}

// HostKeyFingerprint is the SHA256 fingerprint of HostKey
// ("SHA256:..."), "" when none was accepted.
func (r *SSHReport) HostKeyFingerprint() string {
	if r == nil || r.HostKey == nil {
		return ""
	}
	return ssh.FingerprintSHA256(r.HostKey)
}

// CloudInitResult is what cloud-init reported at the end of its run.
type CloudInitResult struct {
	// Status is cloud-init's word for how it ended: "done", "error",
	// "disabled".
	Status string
	// Degraded reports that cloud-init finished with recoverable errors
	// (exit status 2 of cloud-init 23.4 and later): not a failure.
	Degraded bool
	// Errors are the errors /var/lib/cloud/data/result.json lists, when
	// the result was read from there.
	Errors []string
	// Method is how the result was read: "status" (cloud-init status
	// --wait) or "boot-finished" (the marker file and result.json).
	Method string
}

// LoginUser returns the login user of a machine of the provider named
// providerName booting img: "ubuntu" for Ubuntu and "admin" for Debian on
// AWS, "root" elsewhere (DigitalOcean, Hetzner). Custom images and
// snapshots keep their image's user, which only the caller knows: "root"
// is a guess.
func LoginUser(providerName string, img ImageSpec) string {
	if providerName == "aws" {
		switch img.Kind {
		case ImageUbuntu:
			return "ubuntu"
		case ImageDebian:
			return "admin"
		}
	}
	return "root"
}

// WaitSSH waits until the machine id can be logged in to over SSH, stage
// by stage (see Stage): the cloud says it runs with a public IP
// (WaitReady), its SSH port accepts connections, the SSH handshake shows
// a host key opts.HostKeys accepts, one of opts.Signers is accepted, and,
// with opts.CloudInit, cloud-init has finished well.
//
// Each stage is bounded by ctx and its ProviderTimeouts field (the
// Provider's, DefaultTimeouts for a Provider not opened by this package).
// Connection attempts are spaced by opts.Retry, and make no API call: the
// stages after StageAPI cost the cloud's API nothing (a ConsoleHostKeys
// policy reads the console until it shows the host keys). Each poll and
// attempt is reported to the context's WaitTrace with its Stage, and the
// end of each stage to WaitTrace.StageDone.
//
// Its errors are *Error values with Op "WaitSSH" wrapping a *StageError
// that names the stage:
//   - a stage that did not end in time matches ErrTimeout, with
//     LastState "<stage>: <what the last attempt saw>";
//   - keys the machine refused for opts.RefusedFor match
//     ErrAuthentication;
//   - a host key the policy refused wraps a *HostKeyError matching
//     ErrHostKeyMismatch or ErrHostKeyUnknown, at once: it is never
//     tried again;
//   - a cloud-init that failed matches ErrCloudInit;
//   - a cancelled ctx matches context.Canceled, and WaitSSH returns
//     promptly (an attempt in progress is cut short).
//
// The report is returned also with an error, with the stages that ended.
// WaitSSH takes the instance's ID, as WaitReady does, rather than an
// Instance: the address comes from the cloud once it says the machine
// runs, never from a stale copy.
func WaitSSH(ctx context.Context, p Provider, id string, opts SSHOptions) (*SSHReport, error) {
	r, err := newSSHRun(p, id, opts)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}

// sshRun is one WaitSSH.
type sshRun struct {
	p      Provider
	name   string // provider's
	id     string
	opts   SSHOptions // with defaults
	t      ProviderTimeouts
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	log    *slog.Logger
	trace  *WaitTrace
	rep    *SSHReport
	target HostKeyTarget
	client *ssh.Client

	// The connection stages: next is the one to end next (an index into
	// connectStages), from when, and how many attempts it has had.
	next         int
	since        time.Time
	attempts     int
	refusedSince time.Time // the first refusal of the keys
}

// connectStages are the stages ProviderTimeouts.SSHConnect bounds.
var connectStages = [...]Stage{StagePort, StageHandshake, StageAuth}

func newSSHRun(p Provider, id string, opts SSHOptions) (*sshRun, error) {
	const op = "WaitSSH"
	r := &sshRun{p: p, name: p.Name(), id: id, t: DefaultTimeouts(), log: slog.New(slog.DiscardHandler)}
	var m *machines
	if p.As(&m) {
		r.t, r.dial, r.log = m.pol.t, m.dial, m.pol.log
	}
	bad := func(field, msg string) error {
		return &Error{Kind: KindInvalidConfig, Provider: r.name, Op: op, Resource: "instance", ID: id, Field: field, Message: msg}
	}
	if len(opts.Signers) == 0 {
		return nil, bad("SSHOptions.Signers", "at least one private key is needed to log in")
	}
	for i, s := range opts.Signers {
		if s == nil {
			return nil, bad(fmt.Sprintf("SSHOptions.Signers[%d]", i), "a signer is nil")
		}
	}
	if opts.HostKeys == nil {
		return nil, bad("SSHOptions.HostKeys", "a host key policy is needed (KnownHosts, ConsoleHostKeys, HostKeys or, explicitly, TrustOnFirstUse)")
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, bad("SSHOptions.Port", "the port must be 1 to 65535, or 0 for 22")
	}
	if opts.User == "" {
		opts.User = "root"
	}
	if opts.Port == 0 {
		opts.Port = 22
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	if opts.RefusedFor <= 0 {
		opts.RefusedFor = 30 * time.Second
	}
	if opts.Retry == nil {
		pi := r.t.PollInterval
		opts.Retry = ExponentialWait(min(max(pi/20, 10*time.Millisecond), pi), pi, 1.5, 0.2)
	}
	if opts.Dial != nil {
		r.dial = opts.Dial
	}
	if r.dial == nil {
		var d net.Dialer
		r.dial = d.DialContext
	}
	r.opts = opts
	return r, nil
}

// errStop ends a wait whose poll kept the reason aside.
var errStop = errors.New("stop")

func (r *sshRun) run(ctx context.Context) (*SSHReport, error) {
	r.trace = ContextWaitTrace(ctx)
	r.rep = &SSHReport{User: r.opts.User}
	rep := r.rep

	// StageAPI: WaitReady, its polls reported as the stage's.
	start := time.Now()
	polls := 0
	inner := &WaitTrace{Polled: func(ev WaitEvent) {
		polls++
		if ev.Stage == "" {
			ev.Stage = StageAPI
		}
		if r.trace != nil && r.trace.Polled != nil {
			r.trace.Polled(ev)
		}
	}}
	if r.trace != nil {
		inner.StageDone = r.trace.StageDone
	}
	inst, err := r.p.WaitReady(WithWaitTrace(ctx, inner), r.id)
	if err == nil && !inst.IP().IsValid() {
		err = &Error{Kind: KindUnknown, Provider: r.name, Op: "WaitReady", Resource: "instance", ID: r.id, Message: "the instance is ready without a public IP"}
	}
	if err != nil {
		var perr *Error
		last := ""
		if errors.As(err, &perr) {
			last = perr.LastState
		}
		return rep, r.fail(StageAPI, KindOf(err), time.Since(start), last, "", err, polls)
	}
	r.stageDone(StageTiming{Stage: StageAPI, Duration: time.Since(start), Attempts: polls})
	rep.Instance = inst
	rep.Addr = net.JoinHostPort(inst.IP().String(), strconv.Itoa(r.opts.Port))
	rep.Alias = HostKeyAlias(r.name, r.id)
	r.target = HostKeyTarget{Provider: r.p, Instance: inst, Addr: rep.Addr, Alias: rep.Alias}

	if err := r.connect(ctx); err != nil {
		return rep, err
	}
	if r.opts.CloudInit {
		if err := r.cloudInit(ctx); err != nil {
			r.closeClient()
			return rep, err
		}
	}
	if r.opts.KeepClient {
		rep.Client = r.client
	} else {
		r.closeClient()
	}
	return rep, nil
}

func (r *sshRun) closeClient() {
	if r.client != nil {
		_ = r.client.Close()
		r.client = nil
	}
}

// stageDone records the end of a stage.
func (r *sshRun) stageDone(st StageTiming) {
	r.rep.Stages = append(r.rep.Stages, st)
	r.log.Debug("spuff: ssh stage done", "provider", r.name, "id", r.id, "stage", string(st.Stage), "elapsed", st.Duration, "attempts", st.Attempts)
	if r.trace != nil && r.trace.StageDone != nil {
		r.trace.StageDone(StageEvent{Provider: r.name, ID: r.id, StageTiming: st})
	}
}

// fail builds WaitSSH's error for stage: an *Error of kind with the
// stage in LastState, wrapping a *StageError of cause, reported to the
// trace.
func (r *sshRun) fail(stage Stage, kind Kind, elapsed time.Duration, state, msg string, cause error, attempts int) error {
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	se := &StageError{Stage: stage, Err: cause}
	e := &Error{Kind: kind, Provider: r.name, Op: "WaitSSH", Resource: "instance", ID: r.id, Message: msg, Err: se}
	if kind == KindTimeout || kind == KindAuthentication {
		e.Elapsed = elapsed
		e.LastState = string(stage)
		if state != "" {
			e.LastState += ": " + state
		}
	}
	if kind == KindUnknown && errors.Is(cause, context.Canceled) && msg == "" {
		e.Message = "canceled"
	}
	r.log.Debug("spuff: ssh stage failed", "provider", r.name, "id", r.id, "stage", string(stage), "kind", kind.String(), "elapsed", elapsed)
	if r.trace != nil && r.trace.StageDone != nil {
		r.trace.StageDone(StageEvent{Provider: r.name, ID: r.id, StageTiming: StageTiming{Stage: stage, Duration: elapsed, Attempts: attempts}, Err: e})
	}
	return e
}

// reached records that an attempt got past stage at at, which ends the
// stage if it is the next to end.
func (r *sshRun) reached(s Stage, at time.Time) {
	if r.next >= len(connectStages) || connectStages[r.next] != s {
		return
	}
	r.stageDone(StageTiming{Stage: s, Duration: at.Sub(r.since), Attempts: r.attempts})
	r.next++
	r.since = at
	r.attempts = 1 // the attempt goes on in the next stage
}

// stageIndex orders the connection stages.
func stageIndex(s Stage) int {
	for i, c := range connectStages {
		if c == s {
			return i
		}
	}
	return -1
}

// current is the stage the connection attempts are in.
func (r *sshRun) current() Stage {
	if r.next < len(connectStages) {
		return connectStages[r.next]
	}
	return StageAuth
}

// failure is why one connection attempt failed.
type failure struct {
	stage   Stage  // the stage it got to
	state   string // what it saw, for LastState
	err     error
	fatal   bool // no use trying again (a host key refused)
	refused bool // the machine refused the keys
}

// connect makes connection attempts until one is authenticated, bounded
// by SSHConnect: StagePort, StageHandshake and StageAuth.
func (r *sshRun) connect(ctx context.Context) error {
	start := time.Now()
	r.since = start
	var last *failure
	polled := StagePort // the stage the last attempt got to, for the trace
	w := waiter{Provider: r.name, Op: "WaitSSH", Resource: "instance", ID: r.id, Timeout: r.t.SSHConnect,
		Policy: r.opts.Retry, Logger: r.log, stage: func() Stage { return polled }}
	werr := w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		r.attempts++
		c, f := r.attempt(ctx)
		polled = StageAuth
		if f != nil {
			polled = f.stage
		}
		if f == nil {
			r.client = c
			r.reached(StageAuth, time.Now())
			return true, "authenticated", nil
		}
		if ctx.Err() != nil || deadlinePassed(ctx) {
			// Cut short by the end of the wait: the attempt before it
			// says more, unless this one got further.
			if last == nil || stageIndex(f.stage) > stageIndex(last.stage) {
				cut := *f
				cut.state = "in progress"
				last = &cut
			}
			if ctx.Err() == nil {
				return false, last.state, context.DeadlineExceeded
			}
			return false, last.state, ctx.Err()
		}
		last = f
		if f.refused {
			now := time.Now()
			if r.refusedSince.IsZero() {
				r.refusedSince = now
			}
			if now.Sub(r.refusedSince) >= r.opts.RefusedFor {
				return false, f.state, errStop
			}
		}
		if f.fatal {
			return false, f.state, errStop
		}
		return false, f.state, nil
	})
	if werr == nil {
		return nil
	}
	stage, state, cause := r.current(), "not attempted yet", error(nil)
	if last != nil {
		stage, state, cause = last.stage, last.state, last.err
	}
	elapsed := time.Since(start)
	switch {
	case errors.Is(werr, context.Canceled):
		return r.fail(stage, KindUnknown, elapsed, state, "", context.Canceled, r.attempts)
	case errors.Is(werr, errStop) && last != nil && last.refused:
		return r.fail(stage, KindAuthentication, elapsed, state,
			"the machine refused every key offered for "+time.Since(r.refusedSince).Round(time.Millisecond).String()+
				" (is one of them in InstanceRequest.SSHKeys, and the user right?)", cause, r.attempts)
	case errors.Is(werr, errStop):
		msg := ""
		switch {
		case errors.Is(cause, ErrHostKeyMismatch):
			msg = "not the machine's own host key: not connecting (a man in the middle, or a stale record)"
		case errors.Is(cause, ErrHostKeyUnknown):
			msg = "no record of the machine's host key to check it against"
		}
		return r.fail(stage, KindOf(cause), elapsed, state, msg, cause, r.attempts)
	case KindOf(werr) == KindTimeout:
		return r.fail(stage, KindTimeout, elapsed, state, "", cause, r.attempts)
	}
	return r.fail(stage, KindOf(werr), elapsed, state, "", werr, r.attempts)
}

// attempt makes one connection attempt: connect, handshake with the host
// key checked, authentication.
func (r *sshRun) attempt(ctx context.Context) (*ssh.Client, *failure) {
	actx, cancel := context.WithTimeout(ctx, r.opts.AttemptTimeout)
	defer cancel()
	conn, err := r.dial(actx, "tcp", r.rep.Addr)
	if err != nil {
		return nil, &failure{stage: StagePort, state: netState(err), err: err}
	}
	r.reached(StagePort, time.Now())
	// A cancelled or expired attempt closes the connection, which cuts
	// the handshake short wherever it is.
	stop := context.AfterFunc(actx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := actx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	hs := &handshake{addr: r.rep.Addr, known: r.rep.HostKey}
	cfg := &ssh.ClientConfig{
		User: r.opts.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			hs.mu.Lock()
			hs.authStarted = true
			hs.mu.Unlock()
			return r.opts.Signers, nil
		})},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			return hs.check(actx, r.opts.HostKeys, &r.target, key)
		},
		HostKeyAlgorithms: hostKeyAlgorithms(actx, r.opts.HostKeys, &r.target),
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, r.rep.Addr, cfg)
	// The callbacks run in x/crypto/ssh's goroutines: what they saw is
	// read under hs.mu.
	hs.mu.Lock()
	hostErr, key, how, at, authStarted := hs.hostErr, hs.key, hs.how, hs.verifiedAt, hs.authStarted
	hs.mu.Unlock()
	if key != nil && r.rep.HostKey == nil {
		r.rep.HostKey, r.rep.HostKeyTrust = key, how
	}
	if !at.IsZero() {
		r.reached(StageHandshake, at)
	}
	if err != nil {
		_ = conn.Close()
		state := netState(err)
		if ctx.Err() == nil && !deadlinePassed(ctx) && errors.Is(actx.Err(), context.DeadlineExceeded) {
			state = "timed out" // the attempt's bound closed the connection
		}
		switch {
		case hostErr != nil && errors.Is(hostErr, ErrHostKeyPending):
			return nil, &failure{stage: StageHandshake, state: "host key not verifiable yet", err: hostErr}
		case hostErr != nil && actx.Err() != nil: // the policy was cut short, not refused
			return nil, &failure{stage: StageHandshake, state: "host key check cut short", err: hostErr}
		case hostErr != nil:
			return nil, &failure{stage: StageHandshake, state: "host key refused", err: hostErr, fatal: true}
		case authStarted && authRefused(err):
			return nil, &failure{stage: StageAuth, state: "keys refused", err: err, refused: true}
		case key != nil:
			return nil, &failure{stage: StageAuth, state: state, err: err}
		}
		return nil, &failure{stage: StageHandshake, state: state, err: err}
	}
	if !stop() { // the attempt ended as the handshake did: the connection is closed
		_ = cc.Close()
		return nil, &failure{stage: StageAuth, state: "cut short", err: actx.Err()}
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// handshake is what the callbacks of one connection attempt saw.
type handshake struct {
	addr  string
	known ssh.PublicKey // the key accepted by an earlier attempt, if any

	mu          sync.Mutex
	hostErr     error
	key         ssh.PublicKey // the key accepted
	how         string
	verifiedAt  time.Time
	authStarted bool
}

// check is the attempt's HostKeyCallback: the first key exchange's key
// goes to the policy (a machine that showed a key to an earlier attempt
// must show the same one); a re-exchange must show the key accepted.
func (hs *handshake) check(ctx context.Context, pol HostKeyPolicy, t *HostKeyTarget, key ssh.PublicKey) error {
	hs.mu.Lock()
	accepted, known := hs.key, hs.known
	hs.mu.Unlock()
	if accepted == nil {
		accepted = known
	}
	if accepted != nil {
		if !keyEqual(key, accepted) {
			err := &HostKeyError{Addr: hs.addr, Fingerprint: ssh.FingerprintSHA256(key), Want: []string{ssh.FingerprintSHA256(accepted)},
				Source: "the key accepted before", Err: ErrHostKeyMismatch}
			hs.mu.Lock()
			hs.hostErr = err
			hs.mu.Unlock()
			return err
		}
		hs.mu.Lock()
		if hs.key == nil {
			hs.key, hs.verifiedAt = key, time.Now()
		}
		hs.mu.Unlock()
		return nil
	}
	how, err := pol.VerifyHostKey(ctx, t, key)
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if err != nil {
		hs.hostErr = err
		return err
	}
	hs.key, hs.how, hs.verifiedAt = key, how, time.Now()
	return nil
}

// authRefused reports whether err is x/crypto/ssh's "no key accepted"
// (it has no error type for it: its text is matched).
func authRefused(err error) bool {
	return err != nil && containsFold(err.Error(), "unable to authenticate")
}

// netState describes a failed connection or handshake for LastState,
// without addresses.
func netState(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case containsFold(err.Error(), "connection refused"):
		return "connection refused"
	case containsFold(err.Error(), "connection reset"):
		return "connection reset"
	case containsFold(err.Error(), "no route to host"), containsFold(err.Error(), "network is unreachable"), containsFold(err.Error(), "host is unreachable"):
		return "unreachable"
	case containsFold(err.Error(), "EOF"), containsFold(err.Error(), "closed"):
		return "connection closed"
	}
	return "failed"
}

// addrPort parses "host:port" into an address for a HostKeyCallback's
// remote argument.
func addrPort(addr string) net.Addr {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(ap)
}

// containsFold reports whether s contains sub, ignoring case.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
