package soak_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// auditAttempts is the retry policy's MaxAttempts in the audits: the
// number of attempts that must reach the cloud for a safe call that keeps
// failing with a retryable error, whatever retries the SDK could make.
const auditAttempts = 4

// The audits' cloud time: machines boot and snapshots complete in 2 s
// (20 ms at auditScale), a fault's delay (a slow answer, a Retry-After) is
// 0.2 s.
const (
	auditBoot        = 2 * time.Second
	auditFaultDelay  = 200 * time.Millisecond
	auditFixtureTime = 2 * time.Minute // wall-clock bound of a fixture
)

// fixture is one provider on its own simulated cloud.
type fixture struct {
	t     *testing.T
	tg    target
	srv   *simcloud.Server
	cloud *simcloud.Cloud
	cfg   provider.Config
	p     provider.Provider
	ctx   context.Context
}

// auditOptions is the audits' world: realistic at auditScale (throttles
// without Retry-After, destroy windows, listing lag, eventual consistency,
// locks, late IPs, the clouds' rate limits), boots and snapshots of
// auditBoot, and no snapshot failing at random (an audit that wants one
// injects it).
func auditOptions(tg target, seed uint64) simcloud.Options {
	o := realisticOptions(tg, auditScale, seed)
	o.BootDelay, o.SnapshotDelay = auditBoot, auditBoot
	o.SnapshotFailRate = -1
	return o
}

// auditConfig tunes cfg for the audits: the realistic world's timeouts at
// auditScale, auditAttempts attempts, a pacer of its own.
func auditConfig(tg target, cfg provider.Config) provider.Config {
	return realisticConfig(tg, cfg, auditScale, auditAttempts)
}

func startFixture(t *testing.T, tg target, opts simcloud.Options, wrap func(http.Handler) http.Handler, tweak func(*provider.Config)) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), auditFixtureTime)
	t.Cleanup(cancel)
	srv := tg.server(t, opts, wrap)
	cfg := auditConfig(tg, tg.config(srv))
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := tg.open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", tg.name, err)
	}
	return &fixture{t: t, tg: tg, srv: srv, cloud: srv.Cloud, cfg: cfg, p: p, ctx: ctx}
}

func (f *fixture) modelID(id string) int64 {
	f.t.Helper()
	n, err := f.tg.modelID(id)
	if err != nil {
		f.t.Fatalf("model ID of %q: %v", id, err)
	}
	return n
}

// ready creates a machine with no fault and waits for it.
func (f *fixture) ready(name string) *provider.Instance {
	f.t.Helper()
	inst, err := f.p.CreateInstance(f.ctx, f.tg.request(name))
	if err != nil {
		f.t.Fatalf("CreateInstance(%s): %v", name, err)
	}
	if inst, err = f.p.WaitReady(f.ctx, inst.ID); err != nil {
		f.t.Fatalf("WaitReady: %v", err)
	}
	return inst
}

// liveNamed returns the model IDs of the live machines named name.
func (f *fixture) liveNamed(name string) []int64 {
	var out []int64
	for _, in := range f.cloud.LiveInstances() {
		if in.Name == name {
			out = append(out, in.ID)
		}
	}
	return out
}

// snapshotsOf returns the model IDs of the live snapshots of machine mid.
func (f *fixture) snapshotsOf(mid int64) []int64 {
	var out []int64
	for _, m := range f.cloud.LiveSnapshots() {
		if m.Source == mid {
			out = append(out, m.ID)
		}
	}
	return out
}

// volumesOf counts the live volume snapshots behind the image mid.
func (f *fixture) volumesOf(mid int64) int {
	return len(f.cloud.ListVolumeSnapshots(func(v *simcloud.VolumeSnapshot) bool { return v.ImageID == mid }))
}

// pause waits for a look-up window (ProviderTimeouts.Lookup), as a caller
// told that an outcome is unknown waits before repeating its request.
func (f *fixture) pause() {
	select {
	case <-f.ctx.Done():
	case <-time.After(f.cfg.Timeouts.Lookup):
	}
}

// repeatCreate repeats a create as a careful caller does: again while it
// fails with a retryable error (an unknown outcome among them), a look-up
// window apart, at most attempts times.
func (f *fixture) repeatCreate(req provider.InstanceRequest, attempts int) (*provider.Instance, int, error) {
	var err error
	for i := range attempts {
		if i > 0 {
			f.pause()
		}
		var inst *provider.Instance
		if inst, err = f.p.CreateInstance(f.ctx, req); err == nil || !provider.IsRetryable(err) {
			return inst, i + 1, err
		}
	}
	return nil, attempts, err
}

// repeatSnapshot is repeatCreate for CreateSnapshot.
func (f *fixture) repeatSnapshot(instanceID, name string, attempts int) (*provider.Snapshot, int, error) {
	var err error
	for i := range attempts {
		if i > 0 {
			f.pause()
		}
		var s *provider.Snapshot
		if s, err = f.p.CreateSnapshot(f.ctx, instanceID, name); err == nil || !provider.IsRetryable(err) {
			return s, i + 1, err
		}
	}
	return nil, attempts, err
}

// tokenRecorder records the idempotency token of every create request a
// cloud with native idempotency receives (EC2's ClientToken).
type tokenRecorder struct {
	tg     target
	mu     sync.Mutex
	tokens []string
}

func (rec *tokenRecorder) wrap(next http.Handler) http.Handler {
	if rec.tg.createToken == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Body != nil {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, err := url.ParseQuery(string(body)); err == nil {
				if tok, ok := rec.tg.createToken(form); ok {
					rec.mu.Lock()
					rec.tokens = append(rec.tokens, tok)
					rec.mu.Unlock()
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (rec *tokenRecorder) take() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.tokens
	rec.tokens = nil
	return out
}

// TestRetryAudit proves, per driver, that one retry policy is in charge
// and that no call that may have changed something is repeated blindly
// (see provider's exactly-once create protocol):
//
//   - a safe call (reads, destroy, snapshot deletion) failing with 503, or
//     with 429, every time reaches the cloud exactly RetryPolicy.MaxAttempts
//     times — the SDKs' own retries (godo's retryablehttp, hcloud-go's retry
//     and backoff, aws-sdk-go-v2's standard retryer) add none; so does a
//     create or snapshot refused with 429 (the cloud made nothing);
//   - a create failing with 503, an unknown outcome, is repeated only
//     where repeating is safe: on EC2 MaxAttempts times with one
//     ClientToken, on Hetzner MaxAttempts times (a repeat of a create that
//     did make its machine is refused by the unique name); on DigitalOcean
//     it is attempted once, then looked for, then fails with
//     ErrOutcomeUnknown; a snapshot failing with 503 likewise, on every
//     cloud;
//   - an answer lost after the change was made (on create, snapshot,
//     destroy and snapshot deletion, once or on every attempt, while the
//     new machine is not yet visible, and while the listing lags longer
//     than the look-up window) leaves exactly one machine or snapshot, or
//     none after a delete: the call returns it, or fails with a retryable
//     error (ErrOutcomeUnknown on DigitalOcean) and the same request
//     repeated returns it, and nothing is made a second time.
func TestRetryAudit(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			t.Run("Attempts", func(t *testing.T) { t.Parallel(); auditAttemptsOf(t, tg) })
			t.Run("LostAnswers", func(t *testing.T) { t.Parallel(); auditLostAnswers(t, tg) })
			t.Run("SnapshotReadsFailing", func(t *testing.T) { t.Parallel(); auditSnapshotReadsFailing(t, tg) })
			t.Run("LagPastLookup", func(t *testing.T) { t.Parallel(); auditLagPastLookup(t, tg) })
		})
	}
}

// attemptRule is what a call under a persistent fault must do.
type attemptRule int

const (
	// everyAttempt: exactly MaxAttempts attempts, and the fault's error.
	everyAttempt attemptRule = iota
	// oneThenLookups: one attempt, look-ups, then ErrOutcomeUnknown.
	oneThenLookups
)

func auditAttemptsOf(t *testing.T, tg target) {
	rec := &tokenRecorder{tg: tg}
	f := startFixture(t, tg, auditOptions(tg, 3), rec.wrap, nil)
	inst := f.ready("audit-src")
	snap, err := f.p.CreateSnapshot(f.ctx, inst.ID, "audit-snap-src")
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	createUnder503 := oneThenLookups
	if tg.nativeIdempotency || tg.uniqueNames {
		createUnder503 = everyAttempt
	}
	n := 0
	calls := []struct {
		name  string
		op    simcloud.Op
		call  func() error
		on503 attemptRule
	}{
		{"GetInstance", simcloud.OpGetInstance, func() error { _, err := f.p.GetInstance(f.ctx, inst.ID); return err }, everyAttempt},
		{"ListInstances", simcloud.OpListInstances, func() error { _, err := f.p.ListInstances(f.ctx); return err }, everyAttempt},
		{"CreateInstance", simcloud.OpCreateInstance, func() error {
			n++
			_, err := f.p.CreateInstance(f.ctx, f.tg.request(fmt.Sprintf("audit-new-%d", n)))
			return err
		}, createUnder503},
		{"CreateSnapshot", simcloud.OpCreateSnapshot, func() error {
			n++
			_, err := f.p.CreateSnapshot(f.ctx, inst.ID, fmt.Sprintf("audit-snap-%d", n))
			return err
		}, oneThenLookups},
		{"ListSnapshots", simcloud.OpListImages, func() error { _, err := f.p.ListSnapshots(f.ctx); return err }, everyAttempt},
		{"DeleteSnapshot", simcloud.OpDeleteImage, func() error { return f.p.DeleteSnapshot(f.ctx, snap.ID) }, everyAttempt},
		{"DestroyInstance", simcloud.OpDeleteInstance, func() error { return f.p.DestroyInstance(f.ctx, inst.ID) }, everyAttempt},
	}
	faults := []struct {
		kind simcloud.FaultKind
		want error
	}{
		{simcloud.FaultUnavailable, provider.ErrAPI},
		{simcloud.FaultRateLimit, provider.ErrRateLimit},
	}
	before := f.cloud.Stats()
	for _, c := range calls {
		for _, fl := range faults {
			rule := everyAttempt
			if fl.kind == simcloud.FaultUnavailable {
				rule = c.on503
			}
			f.cloud.ClearFaults()
			f.cloud.ResetCalls()
			rec.take()
			f.cloud.Inject(simcloud.Fault{Op: c.op, Kind: fl.kind, Count: 1000, Delay: auditFaultDelay})
			err := c.call()
			st := f.cloud.Stats()
			got := st.Calls[c.op]
			f.cloud.ClearFaults()
			switch {
			case err == nil:
				t.Errorf("%s under %s on every call: no error", c.name, fl.kind)
			case !provider.IsRetryable(err):
				t.Errorf("%s under %s: %v (kind %s), want a retryable error", c.name, fl.kind, err, provider.KindOf(err))
			case rule == everyAttempt && !errors.Is(err, fl.want):
				t.Errorf("%s under %s: %v (kind %s), want %v", c.name, fl.kind, err, provider.KindOf(err), fl.want)
			case rule == oneThenLookups && !errors.Is(err, provider.ErrOutcomeUnknown):
				t.Errorf("%s under %s: %v (kind %s), want ErrOutcomeUnknown: the attempt may have made it", c.name, fl.kind, err, provider.KindOf(err))
			}
			// The 503 is the error's, or its cause's under an unknown outcome.
			if s := statusOf(err); fl.kind == simcloud.FaultUnavailable && s != http.StatusServiceUnavailable {
				t.Errorf("%s under 503: error status %d (%v), want 503", c.name, s, err)
			}
			want := auditAttempts
			if rule == oneThenLookups {
				want = 1
				// One look-up before the attempt, at least one after.
				if reads := st.TotalCalls - got; reads < 2 {
					t.Errorf("%s under %s: %d other calls, want a look-up before the attempt and look-ups after it", c.name, fl.kind, reads)
				}
			}
			if got != want {
				t.Errorf("%s under %s: %d attempts reached the cloud, want %d", c.name, fl.kind, got, want)
			}
			if c.op == simcloud.OpCreateInstance && tg.createToken != nil {
				tokens := rec.take()
				if len(tokens) != got || len(slices.Compact(slices.Clone(tokens))) != 1 || tokens[0] == "" {
					t.Errorf("%s under %s: client tokens %q of %d attempts, want one token for all", c.name, fl.kind, tokens, got)
				}
			}
			t.Logf("%s %s under %s: %d attempts (MaxAttempts %d), %d other calls: %s", tg.name, c.name, fl.kind, got, auditAttempts, st.TotalCalls-got, provider.KindOf(err))
		}
	}
	// Nothing was made by the refused creates and snapshots.
	after := f.cloud.Stats()
	if after.Created != before.Created || after.LiveSnapshots != before.LiveSnapshots {
		t.Errorf("refused calls made machines (%d → %d) or snapshots (%d → %d)", before.Created, after.Created, before.LiveSnapshots, after.LiveSnapshots)
	}
}

// lostCreate checks a create whose answer was lost: exactly one machine
// named name, returned by the call, or by the same request repeated after
// a retryable error (ErrOutcomeUnknown where the cloud has no native
// idempotency nor unique names), and no second machine made. It returns
// the machine's ID.
func (f *fixture) lostCreate(what, name string, inst *provider.Instance, err error, createdBefore int) string {
	f.t.Helper()
	t := f.t
	live := f.liveNamed(name)
	if len(live) != 1 {
		t.Fatalf("%s: %d machines named %s, want exactly 1 (err %v)", what, len(live), name, err)
	}
	var perr *provider.Error
	if errors.As(err, &perr) && perr.Leftover != "" && f.modelID(perr.Leftover) != live[0] {
		t.Errorf("%s: the error's Leftover %s is not the machine %d", what, perr.Leftover, live[0])
	}
	lookups := !f.tg.nativeIdempotency && !f.tg.uniqueNames
	switch {
	case err == nil:
	case !provider.IsRetryable(err):
		t.Fatalf("%s: %v (kind %s), want the machine or a retryable error", what, err, provider.KindOf(err))
	case lookups && !errors.Is(err, provider.ErrOutcomeUnknown):
		t.Errorf("%s: %v (kind %s), want ErrOutcomeUnknown", what, err, provider.KindOf(err))
	}
	if err != nil {
		// The caller repeats the same request, as the error says.
		again, n, rerr := f.repeatCreate(f.tg.request(name), 40)
		if rerr != nil {
			t.Fatalf("%s: %v; the same request repeated %d times: %v", what, err, n, rerr)
		}
		t.Logf("%s %s: %s; the same request repeated %d time(s) returned the machine", f.tg.name, what, provider.KindOf(err), n)
		inst = again
	}
	if f.modelID(inst.ID) != live[0] {
		t.Errorf("%s: returned %s, but the machine is %d", what, inst.ID, live[0])
	}
	if l := f.liveNamed(name); len(l) != 1 {
		t.Errorf("%s: %d machines named %s after the caller's repeats, want 1", what, len(l), name)
	}
	if st := f.cloud.Stats(); st.Created != createdBefore+1 || st.Duplicates != 0 {
		t.Errorf("%s: the cloud made %d machines (%d duplicates), want 1", what, st.Created-createdBefore, st.Duplicates)
	}
	return inst.ID
}

// deleteMeter counts the deletes the cloud serves for a machine that is
// gone: a destroy told "not found" once the machine it saw is gone is done,
// and asks no more.
type deleteMeter struct {
	mu    sync.Mutex
	cloud *simcloud.Cloud
	mid   int64 // the machine watched
	after int   // deletes served while it was gone
}

func (d *deleteMeter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		c, mid := d.cloud, d.mid
		d.mu.Unlock()
		if c == nil || mid == 0 {
			next.ServeHTTP(w, r)
			return
		}
		before := c.Calls(simcloud.OpDeleteInstance)
		gone := !slices.ContainsFunc(append(c.LiveInstances(), c.DeletingInstances()...), func(in simcloud.Instance) bool { return in.ID == mid })
		defer func() {
			if c.Calls(simcloud.OpDeleteInstance) > before && gone {
				d.mu.Lock()
				d.after++
				d.mu.Unlock()
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (d *deleteMeter) watch(c *simcloud.Cloud, mid int64) {
	d.mu.Lock()
	d.cloud, d.mid, d.after = c, mid, 0
	d.mu.Unlock()
}

func (d *deleteMeter) served() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.after
}

func auditLostAnswers(t *testing.T, tg target) {
	meter := &deleteMeter{}
	f := startFixture(t, tg, auditOptions(tg, 4), meter.wrap, nil)
	lost := func(op simcloud.Op, count int) int {
		f.cloud.ClearFaults()
		f.cloud.ResetCalls()
		f.cloud.Inject(simcloud.Fault{Op: op, Kind: simcloud.FaultLoseResponse, Count: count})
		return f.cloud.Stats().FaultsInjected[simcloud.FaultLoseResponse]
	}
	served := func(what string, before, least int) {
		t.Helper()
		if got := f.cloud.Stats().FaultsInjected[simcloud.FaultLoseResponse] - before; got < least {
			t.Fatalf("%s: %d lost answers were served, want at least %d; the test proves nothing", what, got, least)
		}
	}
	lookups := !tg.nativeIdempotency && !tg.uniqueNames
	lookup := f.cfg.Timeouts.Lookup

	// Creates: the answer lost once, twice, on every attempt, and once
	// while the machine is not yet visible.
	for _, c := range []struct {
		name        string
		lost        int
		consistency time.Duration // cloud time
	}{
		{"once", 1, 0},
		{"twice", 2, 0},
		{"every attempt", auditAttempts, 0},
		{"while not visible", 1, time.Duration(float64(lookup) * 2 / 3 / auditScale)},
	} {
		name := "audit-lost-" + fmt.Sprint(c.lost) + map[bool]string{true: "-hidden"}[c.consistency > 0]
		created := f.cloud.Stats().Created
		before := lost(simcloud.OpCreateInstance, c.lost)
		if c.consistency > 0 {
			f.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultConsistency, Delay: c.consistency})
		}
		inst, err := f.p.CreateInstance(f.ctx, f.tg.request(name))
		// A driver that finds the machine after the first lost answer
		// does not create again, and meets no further fault.
		served("create lost "+c.name, before, 1)
		calls := f.cloud.Calls(simcloud.OpCreateInstance)
		switch {
		case lookups && calls != 1:
			t.Errorf("create, answer lost %s: %d create calls; without native idempotency nor unique names, want 1 (then look-ups)", c.name, calls)
		case !lookups && calls < 2:
			t.Errorf("create, answer lost %s: %d create calls; want the attempt repeated (same token, or refused by the unique name)", c.name, calls)
		}
		t.Logf("%s create, answer lost %s: %d create calls, err %v", tg.name, c.name, calls, err)
		id := f.lostCreate("create, answer lost "+c.name, name, inst, err, created)
		if _, err := f.p.WaitReady(f.ctx, id); err != nil {
			t.Fatalf("WaitReady(%s): %v", id, err)
		}
		// Destroy with its answer lost: success, and the machine is gone.
		// Where the cloud then answers that the machine is busy being
		// deleted (Hetzner's 423), the destroy follows it to its end: one
		// "not found" once it is gone is enough.
		before = lost(simcloud.OpDeleteInstance, 1)
		meter.watch(f.cloud, f.modelID(id))
		if err := f.p.DestroyInstance(f.ctx, id); err != nil {
			t.Errorf("destroy, answer lost: %v", err)
		}
		served("destroy lost", before, 1)
		if live := f.liveNamed(name); len(live) != 0 {
			t.Errorf("destroy, answer lost: %v still live", live)
		}
		if n := meter.served(); n > 1 {
			t.Errorf("destroy, answer lost: %d deletes after the machine was gone, want at most 1: a machine the cloud showed is not \"not visible yet\"", n)
		}
		t.Logf("%s destroy, answer lost: %d delete calls, %d after the machine was gone", tg.name, f.cloud.Calls(simcloud.OpDeleteInstance), meter.served())
		meter.watch(nil, 0)
	}

	// A destroy whose answer is lost and whose repeat reaches the cloud
	// after the destroy window, when the machine is gone: success at once,
	// the machine being one the cloud showed (it was awaited), not one that
	// is not visible yet.
	{
		inst := f.ready("audit-lost-late-destroy")
		before := lost(simcloud.OpDeleteInstance, 1)
		f.cloud.Inject(simcloud.Fault{Op: simcloud.OpDeleteInstance, Kind: simcloud.FaultSlow, Delay: 2*f.cloud.Options().DestroyDelay + auditBoot})
		meter.watch(f.cloud, f.modelID(inst.ID))
		if err := f.p.DestroyInstance(f.ctx, inst.ID); err != nil {
			t.Errorf("destroy, answer lost, repeated after the destroy window: %v", err)
		}
		served("destroy lost, repeated late", before, 1)
		if n := meter.served(); n > 1 {
			t.Errorf("destroy, answer lost, repeated after the destroy window: %d deletes after the machine was gone, want at most 1: a machine the cloud showed is not \"not visible yet\"", n)
		}
		t.Logf("%s destroy, answer lost, repeated after the destroy window: %d delete calls, %d after the machine was gone", tg.name, f.cloud.Calls(simcloud.OpDeleteInstance), meter.served())
		meter.watch(nil, 0)
	}

	// A create whose answer is lost and whose every look-up or repeat
	// fails ends in a retryable error; the caller repeats it while the
	// machine is not visible yet: still one machine.
	{
		name := "audit-lost-unlisted"
		created := f.cloud.Stats().Created
		before := lost(simcloud.OpCreateInstance, 1)
		f.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultConsistency, Delay: time.Duration(float64(lookup) * 0.9 / auditScale)})
		f.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultNone}) // a look-up before creating
		f.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultUnavailable, Count: 1000})
		f.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultUnavailable, Count: 1000})
		_, err := f.p.CreateInstance(f.ctx, f.tg.request(name))
		served("create lost, look-ups failing", before, 1)
		f.cloud.ClearFaults()
		if err == nil {
			t.Fatal("create lost, every look-up and repeat failing: no error")
		}
		id := f.lostCreate("create lost, look-ups failing", name, nil, err, created)
		if err := f.p.DestroyInstance(f.ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	// Snapshots: the answer lost once, twice, on every attempt.
	inst := f.ready("audit-snap-src")
	mid := f.modelID(inst.ID)
	for _, count := range []int{1, 2, auditAttempts} {
		name := fmt.Sprintf("audit-lost-snap-%d", count)
		before := lost(simcloud.OpCreateSnapshot, count)
		snap, err := f.p.CreateSnapshot(f.ctx, inst.ID, name)
		served("snapshot lost", before, 1)
		if calls := f.cloud.Calls(simcloud.OpCreateSnapshot); calls != 1 {
			t.Errorf("snapshot, answer lost %d times: %d snapshot calls, want 1 (then look-ups)", count, calls)
		}
		snaps := f.snapshotsOf(mid)
		if len(snaps) != 1 {
			t.Fatalf("snapshot, answer lost %d times: %d snapshots of the machine, want exactly 1 (err %v)", count, len(snaps), err)
		}
		var perr *provider.Error
		id := ""
		switch {
		case err == nil:
			id = snap.ID
		case errors.As(err, &perr) && perr.Leftover != "":
			id = perr.Leftover
		case provider.IsRetryable(err):
			again, n, rerr := f.repeatSnapshot(inst.ID, name, 40)
			if rerr != nil {
				t.Fatalf("snapshot, answer lost %d times: %v; repeated %d times: %v", count, err, n, rerr)
			}
			t.Logf("%s snapshot, answer lost %d time(s): %s; repeated %d time(s)", tg.name, count, provider.KindOf(err), n)
			id = again.ID
		default:
			t.Fatalf("snapshot, answer lost %d times: %v; neither names the snapshot %d that exists nor is retryable", count, err, snaps[0])
		}
		if f.modelID(id) != snaps[0] || len(f.snapshotsOf(mid)) != 1 {
			t.Errorf("snapshot, answer lost %d times: got %s, but the snapshots are %v", count, id, f.snapshotsOf(mid))
		}
		if f.tg.volumes && f.volumesOf(snaps[0]) != 1 {
			t.Errorf("snapshot, answer lost %d times: %d volume snapshots behind it, want 1", count, f.volumesOf(snaps[0]))
		}
		t.Logf("%s snapshot, answer lost %d time(s): %d snapshot calls, 1 snapshot, err %v", tg.name, count, f.cloud.Calls(simcloud.OpCreateSnapshot), err)
		// Delete with its answer lost: success, and nothing is left.
		before = lost(simcloud.OpDeleteImage, 1)
		if err := f.p.DeleteSnapshot(f.ctx, id); err != nil {
			t.Errorf("delete snapshot, answer lost: %v", err)
		}
		served("delete snapshot lost", before, 1)
		if left := f.snapshotsOf(mid); len(left) != 0 {
			t.Errorf("delete snapshot, answer lost: %v still live", left)
		}
		if f.tg.volumes && f.volumesOf(snaps[0]) != 0 {
			t.Errorf("delete snapshot, answer lost: %d volume snapshots left behind", f.volumesOf(snaps[0]))
		}
	}
	if err := f.p.DestroyInstance(f.ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if st := f.cloud.Stats(); st.LiveInstances+st.LiveSnapshots+st.LiveVolumeSnapshots != 0 || st.Duplicates != 0 {
		t.Errorf("left: %d machines, %d snapshots, %d volume snapshots; %d duplicates", st.LiveInstances, st.LiveSnapshots, st.LiveVolumeSnapshots, st.Duplicates)
	}
}

// auditSnapshotReadsFailing: the snapshot is made, then the reads and
// tagging that follow fail more often than one call's retries allow: the
// snapshot is still returned, or named by the error, never left behind
// unnamed. The faults are armed by the answer to the call that starts the
// snapshot, before the driver reads it.
func auditSnapshotReadsFailing(t *testing.T, tg target) {
	var armed sync.Once
	var f *fixture
	var mid int64
	arm := func() {
		if f == nil || mid == 0 || len(f.snapshotsOf(mid)) == 0 {
			return
		}
		armed.Do(func() {
			for _, op := range []simcloud.Op{simcloud.OpListImages, simcloud.OpGetImage, simcloud.OpTag, simcloud.OpGetAction} {
				f.cloud.Inject(simcloud.Fault{Op: op, Kind: simcloud.FaultUnavailable, Count: auditAttempts + 1})
			}
		})
	}
	var ready sync.Mutex // guards f and mid for the handler
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			ready.Lock()
			arm()
			ready.Unlock()
		})
	}
	fx := startFixture(t, tg, auditOptions(tg, 5), wrap, nil)
	inst := fx.ready("audit-snap-reads-src")
	ready.Lock()
	f, mid = fx, fx.modelID(inst.ID)
	ready.Unlock()
	snap, err := f.p.CreateSnapshot(f.ctx, inst.ID, "audit-snap-reads-failing")
	f.cloud.ClearFaults()
	snaps := f.snapshotsOf(mid)
	var perr *provider.Error
	switch {
	case len(snaps) != 1:
		t.Fatalf("snapshot with failing reads: %d snapshots of the machine, want 1 (err %v)", len(snaps), err)
	case f.cloud.Stats().FaultsInjected[simcloud.FaultUnavailable] == 0:
		t.Fatal("snapshot with failing reads: no read failed; the test proves nothing")
	case err == nil && f.modelID(snap.ID) != snaps[0]:
		t.Errorf("snapshot with failing reads: returned %s, but the snapshot is %d", snap.ID, snaps[0])
	case err != nil && (!errors.As(err, &perr) || perr.Leftover != f.tg.imageID(snaps[0])):
		t.Errorf("snapshot with failing reads: %v; the error does not name the snapshot %d in Leftover", err, snaps[0])
	}
	t.Logf("%s snapshot with failing reads: %d read faults served, err %v", tg.name, f.cloud.Stats().FaultsInjected[simcloud.FaultUnavailable], err)
	if err := f.p.DeleteSnapshot(f.ctx, f.tg.imageID(snaps[0])); err != nil {
		t.Fatal(err)
	}
	if err := f.p.DestroyInstance(f.ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
}

// statusOf returns the first HTTP status of a *provider.Error in err's
// tree (an unknown outcome carries the answer of its attempt as cause).
func statusOf(err error) int {
	var perr *provider.Error
	if errors.As(err, &perr) && perr.Status != 0 {
		return perr.Status
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if e := u.Unwrap(); e != nil {
			return statusOf(e)
		}
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if s := statusOf(e); s != 0 {
				return s
			}
		}
	}
	return 0
}

// auditLagPastLookup: a create whose answer is lost while the cloud's
// listing lags three look-up windows behind: one machine. Without native
// idempotency nor unique names (DigitalOcean) the call fails with
// ErrOutcomeUnknown after one attempt and its look-ups, the caller's
// repeats say so again until the listing shows the machine, then adopt
// it, and no second create reaches the cloud.
func auditLagPastLookup(t *testing.T, tg target) {
	opts := auditOptions(tg, 6)
	lookup := realisticConfig(tg, provider.Config{}, auditScale, auditAttempts).Timeouts.Lookup
	opts.ListingDelay = time.Duration(float64(3*lookup) / auditScale)
	f := startFixture(t, tg, opts, nil, nil)
	name := "audit-lag"
	f.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	inst, err := f.p.CreateInstance(f.ctx, f.tg.request(name))
	if f.cloud.Stats().FaultsInjected[simcloud.FaultLoseResponse] != 1 {
		t.Fatal("the lost answer was not served; the test proves nothing")
	}
	lookups := !tg.nativeIdempotency && !tg.uniqueNames
	if lookups && !errors.Is(err, provider.ErrOutcomeUnknown) {
		t.Errorf("create lost with a listing lag of 3 look-up windows: %v, want ErrOutcomeUnknown", err)
	}
	id := f.lostCreate("create lost, listing lag past the look-up window", name, inst, err, 0)
	if calls := f.cloud.Calls(simcloud.OpCreateInstance); lookups && calls != 1 {
		t.Errorf("%d create calls reached the cloud, want 1: a second create while the first may have made the machine", calls)
	}
	t.Logf("%s lag %v past a look-up window of %v: %d create calls, 1 machine, first err %v", tg.name, 3*lookup, lookup, f.cloud.Calls(simcloud.OpCreateInstance), err)
	if err := f.p.DestroyInstance(f.ctx, id); err != nil {
		t.Fatal(err)
	}
}
