package soak_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The soak's world is the realistic one (see world_test.go) at a time
// scale of its own: machines boot, get their addresses, are snapshotted
// and go away in their cloud's documented times; the clouds' rate limits
// (throttling without Retry-After on EC2 and Hetzner, DigitalOcean's hourly
// window without one), locks, destroy windows, late IPs and failing
// snapshots are on; on top of that, every new machine is missing from
// listings for longer than the look-up window of a create whose outcome is
// unknown, placements have a bounded capacity, and a share of the calls
// misbehave. Durations are cloud time.
const (
	// defaultScale is the soak's time scale: a second of cloud time is
	// 10 ms of the test's, as in the conformance suite.
	defaultScale = 0.01
	// defaultFaultRate is the share of API calls that misbehave.
	defaultFaultRate = 0.12
	// defaultLag is how long a new machine is missing from listings: twice
	// the look-up window (ProviderTimeouts.Lookup, 10 s), so that a create
	// whose answer is lost on DigitalOcean cannot find its machine in time
	// and must say its outcome is unknown rather than create a second.
	defaultLag = 20 * time.Second
	// defaultBudget is the share of lifecycles that may fail with an
	// explained error (see explain).
	defaultBudget = 0.05
	// faultDelay is the delay of a slow answer and the Retry-After of a
	// 429 fault.
	faultDelay = 2 * time.Second
	// consistencyDelay is how long one create in consistencyEvery makes a
	// machine that reads do not show (on top of EC2's own 2 s).
	consistencyDelay = 10 * time.Second
	consistencyEvery = 5
	// capacityRoom is how many machines beyond the workers the soak's
	// placement holds, live or being destroyed: EC2's 30 s shutting-down
	// window fills it at times, and the cloud refuses with its capacity
	// error.
	capacityRoom = 2
	// capacityPause is how long a caller refused for capacity waits before
	// trying again, and capacityAttempts how many times it tries.
	capacityPause    = 30 * time.Second
	capacityAttempts = 3
	// shortLifecycles is the number of lifecycles per provider of the soak
	// go test runs by default.
	shortLifecycles = 60
	// workers is the number of lifecycles in flight per provider.
	workers = 12
	// snapshotEvery: one lifecycle in snapshotEvery takes a snapshot.
	snapshotEvery = 3
	// soakAttempts is the retry policy's MaxAttempts in the soak.
	soakAttempts = 4
	// callerAttempts bounds a caller's repeats of one call.
	callerAttempts = 12
)

// transientFaults are the faults the soak injects, drawn uniformly: rate
// limits (without Retry-After on EC2 and Hetzner, as they answer), 5xx
// answers, dropped connections, slow answers, answers lost after the
// change was made (on every operation: create, destroy, snapshot...),
// machines not visible right after their creation, capacity refusals
// (creates only) and snapshots that fail (snapshots only).
var transientFaults = []simcloud.FaultKind{
	simcloud.FaultRateLimit, simcloud.FaultRateLimit, simcloud.FaultRateLimitBare,
	simcloud.FaultInternal, simcloud.FaultInternal, simcloud.FaultBadGateway, simcloud.FaultBadGateway,
	simcloud.FaultUnavailable, simcloud.FaultUnavailable, simcloud.FaultDrop, simcloud.FaultDrop,
	simcloud.FaultSlow, simcloud.FaultSlow, simcloud.FaultLoseResponse, simcloud.FaultLoseResponse,
	simcloud.FaultConsistency, simcloud.FaultConsistency, simcloud.FaultCapacity, simcloud.FaultSnapshotFailed,
}

// knobs are the soak's settings, read from the environment.
type knobs struct {
	perProvider int
	seed        uint64
	scale       float64
	faults      float64
	lag         time.Duration
	budget      float64
}

// plan reads the knobs: SPUFF_SOAK (lifecycles across the providers),
// SPUFF_SOAK_SEED, SPUFF_SOAK_FAULTS (the share of calls that misbehave,
// 0 to 1), SPUFF_SOAK_LAG (the listing lag of new machines, cloud time),
// SPUFF_SOAK_SCALE (the time scale) and SPUFF_SOAK_BUDGET (the share of
// lifecycles that may fail with an explained error).
func plan(t *testing.T, providers int) knobs {
	k := knobs{perProvider: shortLifecycles, seed: 1, scale: defaultScale, faults: defaultFaultRate, lag: defaultLag, budget: defaultBudget}
	if v := os.Getenv("SPUFF_SOAK"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < providers {
			t.Fatalf("SPUFF_SOAK=%q: want a number of lifecycles, at least %d", v, providers)
		}
		k.perProvider = (n + providers - 1) / providers
	}
	if v := os.Getenv("SPUFF_SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SPUFF_SOAK_SEED=%q: %v", v, err)
		}
		k.seed = n
	}
	fraction := func(name string, p *float64, least float64) {
		if v := os.Getenv(name); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < least || f > 1 {
				t.Fatalf("%s=%q: want a number from %g to 1", name, v, least)
			}
			*p = f
		}
	}
	fraction("SPUFF_SOAK_FAULTS", &k.faults, 0)
	fraction("SPUFF_SOAK_BUDGET", &k.budget, 0)
	fraction("SPUFF_SOAK_SCALE", &k.scale, 1e-4)
	if v := os.Getenv("SPUFF_SOAK_LAG"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			t.Fatalf("SPUFF_SOAK_LAG=%q: want a duration of cloud time (\"30s\"), 0 for the clouds' own", v)
		}
		k.lag = d
	}
	return k
}

// TestSoak runs lifecycles of every provider concurrently in the
// realistic world under random faults, as a careful caller does
// (repeating a retryable error with the same request, an unknown outcome
// among them; waiting when refused for capacity; deleting whatever an
// error names), and then checks the simulated clouds' ledgers and one
// Reap sweep: no machine or snapshot left but the one kept on purpose, no
// duplicate, failed lifecycles within the budget and each of an explained
// kind, every error typed, no panic, no goroutine left.
func TestSoak(t *testing.T) {
	ts := targets()
	k := plan(t, len(ts))
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		// Every subtest's server and connections are closed by now.
		if err := goleak.Find(before); err != nil {
			t.Errorf("goroutines left after the soak: %v", err)
		} else {
			t.Logf("goroutines left after the soak: 0")
		}
	})
	t.Logf("soak: %d lifecycles per provider, seed %d, time scale %g, fault rate %g, listing lag %v, failure budget %g",
		k.perProvider, k.seed, k.scale, k.faults, k.lag, k.budget)
	for i, tg := range ts {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			runSoak(t, tg, k, k.seed+uint64(i))
		})
	}
}

// soak is one provider's soak and its counts.
type soak struct {
	t     *testing.T
	tg    target
	k     knobs
	p     provider.Provider
	cfg   provider.Config
	cloud *simcloud.Cloud
	ctx   context.Context

	callerRetries atomic.Int64
	panics        atomic.Int64
	created       atomic.Int64 // machines the caller was told of (made, adopted, or left over)
	snapshots     atomic.Int64
	settled       atomic.Int64 // failed calls resolved by repeating them

	mu       sync.Mutex
	errs     map[string]map[provider.Kind]int // op -> kind -> count
	failed   map[string]int                   // explanation -> lifecycles
	bad      []string                         // errors of no explained kind
	problems []string                         // duplicates and other broken promises
	kept     []string                         // snapshot IDs kept on purpose
}

func runSoak(t *testing.T, tg target, k knobs, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	opts := realisticOptions(tg, k.scale, seed)
	if k.lag > 0 {
		opts.ListingDelay = k.lag
	}
	req := tg.request("placement")
	opts.Capacity = []simcloud.Capacity{{Region: req.Region, Size: req.Size, Max: workers + capacityRoom}}
	srv := tg.server(t, opts, nil)
	cfg := realisticConfig(tg, tg.config(srv), k.scale, soakAttempts)
	p, err := tg.open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", tg.name, err)
	}
	s := &soak{t: t, tg: tg, k: k, p: p, cfg: cfg, cloud: srv.Cloud, ctx: ctx,
		errs: map[string]map[provider.Kind]int{}, failed: map[string]int{}}

	lifecycles := k.perProvider
	srv.Cloud.SetRandomFaults(simcloud.RandomFaults{Rate: k.faults, Kinds: transientFaults, Delay: faultDelay})
	// A random consistency fault applies to creates only, which are few
	// among the calls: queue more, for one create in consistencyEvery.
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultConsistency,
		Count: max(1, lifecycles/consistencyEvery), Delay: consistencyDelay})
	start := time.Now()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(workers, lifecycles) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= lifecycles || ctx.Err() != nil {
					return
				}
				if err := s.safeLifecycle(i); err != nil {
					why := explain(err)
					s.mu.Lock()
					s.failed[why]++
					s.mu.Unlock()
					t.Logf("lifecycle %d failed (%s): %v", i, why, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	srv.Cloud.ClearFaults()

	s.checkLedger(ctx, lifecycles)
	s.report(lifecycles, elapsed)
}

// explain names the kind of a lifecycle's failure, or "unexplained":
//   - outcome-unknown: a create or snapshot whose outcome stayed unknown
//     through the caller's repeats (lost answers, listings that lag);
//   - capacity: the placement had no room, at every try;
//   - timeout: a wait outlived its ProviderTimeouts bound, under faults;
//   - snapshot-failed: the cloud failed the snapshot (spuff deleted it);
//   - transient: the faults outlasted the caller's patience (a retryable
//     rate limit, network error or 5xx at every repeat).
func explain(err error) string {
	switch {
	case errors.Is(err, provider.ErrOutcomeUnknown):
		return "outcome-unknown"
	case errors.Is(err, provider.ErrCapacity):
		return "capacity"
	case errors.Is(err, provider.ErrTimeout):
		return "timeout"
	case snapshotFailed(err):
		return "snapshot-failed"
	case provider.IsRetryable(err):
		return "transient"
	}
	return "unexplained"
}

// snapshotFailed reports an error of CreateSnapshot for a snapshot the
// cloud failed (and spuff deleted).
func snapshotFailed(err error) bool {
	var perr *provider.Error
	return errors.As(err, &perr) && perr.Kind == provider.KindAPI && perr.Op == "CreateSnapshot" &&
		perr.Resource == "snapshot" && perr.Status == 0 && strings.HasPrefix(perr.Message, "the snapshot failed")
}

// safeLifecycle runs one lifecycle and turns a panic into a failure.
func (s *soak) safeLifecycle(i int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			s.problem("lifecycle %d panicked: %v", i, r)
		}
	}()
	return s.lifecycle(i)
}

func (s *soak) problem(format string, args ...any) {
	s.mu.Lock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// record counts an error the caller got, and notes it when nothing
// explains it: every error must be a *provider.Error, of a retryable kind
// (an unknown outcome among them), a capacity refusal, or a snapshot the
// cloud failed.
func (s *soak) record(op string, err error) {
	kind := provider.KindOf(err)
	var perr *provider.Error
	typed := errors.As(err, &perr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errs[op] == nil {
		s.errs[op] = map[provider.Kind]int{}
	}
	s.errs[op][kind]++
	switch {
	case !typed:
		s.bad = append(s.bad, fmt.Sprintf("%s: untyped error %T: %v", op, err, err))
	case provider.IsRetryable(err), kind == provider.KindCapacity, snapshotFailed(err):
	default:
		s.bad = append(s.bad, fmt.Sprintf("%s: %s error: %v", op, kind, err))
	}
}

// pause waits d of cloud time, or until the soak ends.
func (s *soak) pause(d time.Duration) {
	t := time.NewTimer(scaled(d, s.k.scale))
	defer t.Stop()
	select {
	case <-s.ctx.Done():
	case <-t.C:
	}
}

// retry calls fn as a careful caller does: again while it fails with a
// retryable error, at most attempts times, after a look-up window when
// the outcome is unknown (the cloud may list the machine by then) and a
// second otherwise; and, refused for capacity, again after capacityPause,
// capacityAttempts times. Every error is recorded.
func (s *soak) retry(op string, attempts int, fn func() error) error {
	var err error
	refused := 0
	for i := 0; i < attempts; i++ {
		if i > 0 {
			s.callerRetries.Add(1)
		}
		if err = fn(); err == nil {
			return nil
		}
		s.record(op, err)
		switch {
		case errors.Is(err, provider.ErrCapacity):
			if refused++; refused >= capacityAttempts {
				return err
			}
			s.pause(capacityPause)
		case !provider.IsRetryable(err):
			return err
		case errors.Is(err, provider.ErrOutcomeUnknown):
			s.pause(10 * time.Second)
		default:
			s.pause(time.Second)
		}
	}
	return err
}

// settle resolves a call that failed with a retryable error, which may
// have made what it was asked for (an unknown outcome, a timeout): the
// caller repeats it, as the error says, until it succeeds (adopting what
// the first call made, or making it now), for up to a cloud hour. The
// soak counts the first failure; settle only keeps it from leaking.
func (s *soak) settle(op string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(s.ctx, scaled(time.Hour, s.k.scale))
	defer cancel()
	for {
		err := fn(ctx)
		if err == nil {
			s.settled.Add(1)
			return nil
		}
		s.record("settle "+op, err)
		if !provider.IsRetryable(err) || ctx.Err() != nil {
			return err
		}
		s.pause(10 * time.Second)
	}
}

// lifecycle creates a machine, waits for it, snapshots one in
// snapshotEvery (keeping lifecycle 0's snapshot on purpose, deleting the
// others) and destroys it. It cleans up whatever it learns of, and only
// that: a machine or snapshot the driver made without telling is a leak.
// Its error is the failure that ended it; a failed cleanup is a problem.
func (s *soak) lifecycle(i int) error {
	req := s.tg.request(fmt.Sprintf("soak-%d", i))
	var inst *provider.Instance
	if err := s.retry("CreateInstance", callerAttempts, func() (err error) {
		inst, err = s.p.CreateInstance(s.ctx, req)
		return err
	}); err != nil {
		s.cleanupCreate(req, err)
		return fmt.Errorf("create %s: %w", req.Name, err)
	}
	s.created.Add(1)
	defer s.destroy(inst.ID)

	mid, err := s.tg.modelID(inst.ID)
	if err != nil {
		s.problem("create %s returned ID %q: %v", req.Name, inst.ID, err)
		return err
	}
	if live := s.liveNamed(req.Name); len(live) != 1 || live[0] != mid {
		s.problem("create %s returned %s, but the cloud's live machines of that name are %v", req.Name, inst.ID, live)
	}

	if err := s.retry("WaitReady", 3, func() error {
		got, err := s.p.WaitReady(s.ctx, inst.ID)
		if err == nil && (!got.Ready() || !got.PublicIPv4.IsValid()) {
			s.problem("WaitReady(%s) returned a machine that is not ready: %s, IP %v", inst.ID, got.RawStatus, got.PublicIPv4)
		}
		return err
	}); err != nil {
		return fmt.Errorf("wait %s: %w", inst.ID, err)
	}

	if i%snapshotEvery != 0 {
		return nil
	}
	name := fmt.Sprintf("soak-snap-%d", i)
	var snap *provider.Snapshot
	if err := s.retry("CreateSnapshot", callerAttempts, func() (err error) {
		snap, err = s.p.CreateSnapshot(s.ctx, inst.ID, name)
		return err
	}); err != nil {
		s.cleanupSnapshot(inst.ID, name, err)
		return fmt.Errorf("snapshot %s: %w", inst.ID, err)
	}
	s.snapshots.Add(1)
	if n := s.liveSnapshotsOf(mid); n != 1 {
		s.problem("CreateSnapshot(%s) returned %s, but the machine has %d live snapshots", inst.ID, snap.ID, n)
	}
	if i == 0 {
		s.mu.Lock()
		s.kept = append(s.kept, snap.ID)
		s.mu.Unlock()
		return nil
	}
	s.deleteSnapshot(snap.ID)
	return nil
}

// cleanupCreate cleans up after a create the caller gave up on: the
// machine its error names, else, for a retryable error (the machine may
// exist), the machine the same request returns when repeated.
func (s *soak) cleanupCreate(req provider.InstanceRequest, err error) {
	var perr *provider.Error
	if errors.As(err, &perr) && perr.Leftover != "" {
		s.created.Add(1)
		s.destroy(perr.Leftover)
		return
	}
	if !provider.IsRetryable(err) {
		return // refused: nothing was made
	}
	var inst *provider.Instance
	if serr := s.settle("CreateInstance", func(ctx context.Context) (err error) {
		inst, err = s.p.CreateInstance(ctx, req)
		return err
	}); serr != nil {
		if !errors.Is(serr, provider.ErrCapacity) {
			s.problem("create %s failed (%v), and repeating it to find what it made failed: %v", req.Name, err, serr)
		}
		return
	}
	s.created.Add(1)
	s.destroy(inst.ID)
}

// cleanupSnapshot is cleanupCreate for a snapshot.
func (s *soak) cleanupSnapshot(instanceID, name string, err error) {
	var perr *provider.Error
	if errors.As(err, &perr) && perr.Leftover != "" {
		s.deleteSnapshot(perr.Leftover)
		return
	}
	if !provider.IsRetryable(err) {
		return // refused, or failed and deleted by spuff
	}
	var snap *provider.Snapshot
	if serr := s.settle("CreateSnapshot", func(ctx context.Context) (err error) {
		snap, err = s.p.CreateSnapshot(ctx, instanceID, name)
		return err
	}); serr != nil {
		if !snapshotFailed(serr) {
			s.problem("snapshot %s of %s failed (%v), and repeating it to find what it made failed: %v", name, instanceID, err, serr)
		}
		return
	}
	s.deleteSnapshot(snap.ID)
}

func (s *soak) destroy(id string) {
	if err := s.retry("DestroyInstance", callerAttempts, func() error { return s.p.DestroyInstance(s.ctx, id) }); err != nil {
		s.problem("destroy %s: %v", id, err)
	}
}

func (s *soak) deleteSnapshot(id string) {
	if err := s.retry("DeleteSnapshot", callerAttempts, func() error { return s.p.DeleteSnapshot(s.ctx, id) }); err != nil {
		s.problem("delete snapshot %s: %v", id, err)
	}
}

// liveNamed returns the model IDs of the live machines named name, seen or
// not yet visible through the API: the cloud's ground truth.
func (s *soak) liveNamed(name string) []int64 {
	var out []int64
	for _, in := range s.cloud.LiveInstances() {
		if in.Name == name {
			out = append(out, in.ID)
		}
	}
	return out
}

// liveSnapshotsOf counts the live snapshots made from the machine mid.
func (s *soak) liveSnapshotsOf(mid int64) int {
	n := 0
	for _, m := range s.cloud.LiveSnapshots() {
		if m.Source == mid {
			n++
		}
	}
	return n
}

// checkLedger compares the cloud's ground truth with what the soak kept:
// one Reap sweep (a dry run) finds no managed machine left nor storage
// behind a deleted image, the ledger has no live machine (machines in
// their destroy window are not live), only the kept snapshots (and their
// volume snapshots), no duplicate, and every machine the cloud made was
// one the caller was told of; the failures are within the budget and
// explained; then it deletes the kept snapshots and checks the cloud is
// empty.
func (s *soak) checkLedger(ctx context.Context, lifecycles int) {
	t := s.t
	// A leaked machine may not be listed yet: wait out its listing lag so
	// that the sweep can see it.
	var listed time.Time
	for _, in := range s.cloud.LiveInstances() {
		listed = maxTime(listed, in.ListedAt, in.VisibleAt)
	}
	if d := time.Until(listed); d > 0 {
		time.Sleep(d)
	}
	rep, err := provider.Reap(ctx, s.p, provider.ReapOptions{OlderThan: time.Nanosecond, DryRun: true})
	if err != nil {
		t.Errorf("%s: the Reap sweep after the soak: %v", s.tg.name, err)
	}
	if rep != nil && len(rep.Destroyed) > 0 {
		var found []string
		for _, r := range rep.Destroyed {
			found = append(found, fmt.Sprintf("%s %s (%s)", r.Resource, r.ID, r.Name))
		}
		t.Errorf("%s: the Reap sweep after the soak finds %d managed resources left: %v", s.tg.name, len(found), found)
	}
	st := s.cloud.Stats()
	if st.LiveInstances != 0 {
		var ids []string
		for _, in := range s.cloud.LiveInstances() {
			ids = append(ids, fmt.Sprintf("%d (%s)", in.ID, in.Name))
		}
		t.Errorf("%s: %d machines leaked: %v", s.tg.name, st.LiveInstances, ids)
	}
	kept := map[int64]bool{}
	for _, id := range s.kept {
		mid, err := s.tg.modelID(id)
		if err != nil {
			t.Fatalf("kept snapshot ID %q: %v", id, err)
		}
		kept[mid] = true
	}
	var leaked []string
	for _, m := range s.cloud.LiveSnapshots() {
		if !kept[m.ID] {
			leaked = append(leaked, fmt.Sprintf("%d (%s%s, of machine %d)", m.ID, m.Name, m.Description, m.Source))
		}
	}
	if len(leaked) > 0 || st.LiveSnapshots != len(kept) {
		t.Errorf("%s: %d snapshots live, %d kept on purpose; leaked: %v", s.tg.name, st.LiveSnapshots, len(kept), leaked)
	}
	if s.tg.volumes && st.LiveVolumeSnapshots != len(kept) {
		t.Errorf("%s: %d volume snapshots live, want %d (behind the kept snapshots)", s.tg.name, st.LiveVolumeSnapshots, len(kept))
	}
	if st.Duplicates != 0 {
		t.Errorf("%s: %d duplicate machines", s.tg.name, st.Duplicates)
	}
	if int64(st.Created) != s.created.Load() {
		t.Errorf("%s: the cloud made %d machines; the caller was told of %d", s.tg.name, st.Created, s.created.Load())
	}
	list, err := s.p.ListInstances(ctx)
	if err != nil || len(list) != 0 {
		t.Errorf("%s: ListInstances after the soak: %d machines, %v", s.tg.name, len(list), err)
	}
	snaps, err := s.p.ListSnapshots(ctx)
	if err != nil || len(snaps) != len(s.kept) {
		t.Errorf("%s: ListSnapshots after the soak: %d snapshots, want %d kept; %v", s.tg.name, len(snaps), len(s.kept), err)
	}
	for _, id := range s.kept {
		if err := s.p.DeleteSnapshot(ctx, id); err != nil {
			t.Errorf("%s: deleting the kept snapshot %s: %v", s.tg.name, id, err)
		}
	}
	if st := s.cloud.Stats(); st.LiveInstances+st.LiveSnapshots+st.LiveVolumeSnapshots != 0 {
		t.Errorf("%s: after deleting the kept snapshots: %d machines, %d snapshots, %d volume snapshots live",
			s.tg.name, st.LiveInstances, st.LiveSnapshots, st.LiveVolumeSnapshots)
	}
	for i, b := range s.bad {
		if i == 20 {
			t.Errorf("%s: … and %d more errors of no explained kind", s.tg.name, len(s.bad)-20)
			break
		}
		t.Errorf("%s: %s", s.tg.name, b)
	}
	for _, p := range s.problems {
		t.Errorf("%s: %s", s.tg.name, p)
	}
	// The failure budget.
	failed := 0
	for why, n := range s.failed {
		if why == "unexplained" {
			t.Errorf("%s: %d lifecycles failed with an error nothing explains (see the log)", s.tg.name, n)
		}
		failed += n
	}
	if budget := s.budget(lifecycles); failed > budget {
		t.Errorf("%s: %d of %d lifecycles failed (%v), over the budget of %d (%g)", s.tg.name, failed, lifecycles, s.failed, budget, s.k.budget)
	}
	if n := s.failed["snapshot-failed"]; n > st.FailedSnapshots {
		t.Errorf("%s: %d lifecycles failed for a failed snapshot, but the cloud failed %d", s.tg.name, n, st.FailedSnapshots)
	}
}

// budget is the number of lifecycles that may fail with an explained
// error: the budget's share of them, rounded up.
func (s *soak) budget(lifecycles int) int {
	return int(math.Ceil(s.k.budget * float64(lifecycles)))
}

func maxTime(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// report prints the soak's counts.
func (s *soak) report(lifecycles int, elapsed time.Duration) {
	st := s.cloud.Stats()
	var ps provider.Stats
	s.p.As(&ps)
	var faults []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(st.FaultsInjected)) {
		faults = append(faults, fmt.Sprintf("%s=%d", k, st.FaultsInjected[k]))
		total += st.FaultsInjected[k]
	}
	var errs []string
	for _, op := range slices.Sorted(maps.Keys(s.errs)) {
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(s.errs[op])) {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, s.errs[op][k]))
		}
		errs = append(errs, op+"{"+strings.Join(kinds, " ")+"}")
	}
	failed, n := "", 0
	for _, why := range slices.Sorted(maps.Keys(s.failed)) {
		failed += fmt.Sprintf(" %s=%d", why, s.failed[why])
		n += s.failed[why]
	}
	s.t.Logf("%s soak: calls by operation %v", s.tg.name, st.Calls)
	s.t.Logf("%s soak: %d lifecycles (%d snapshots) in %s; %d API calls, %d throttled by the rate limits; faults injected %d: %s",
		s.tg.name, lifecycles, s.snapshots.Load(), elapsed.Round(time.Millisecond), st.TotalCalls, st.RateLimited, total, strings.Join(faults, " "))
	s.t.Logf("%s soak: the cloud refused %d creates for capacity and failed %d snapshots; pacer: %d delayed, %d throttle signals",
		s.tg.name, st.CapacityRefused, st.FailedSnapshots, ps.Pacer.Delayed, ps.Pacer.Throttled)
	s.t.Logf("%s soak: retries by the driver's policy %d, by the caller %d; failed calls settled by repeating them %d; errors seen by the caller: %s",
		s.tg.name, ps.Retries, s.callerRetries.Load(), s.settled.Load(), strings.Join(errs, " "))
	s.t.Logf("%s soak: lifecycles failed %d:%s (budget %d); machines made %d, duplicates %d, leaked machines %d, leaked snapshots %d, panics %d, errors of no explained kind %d",
		s.tg.name, n, failed, s.budget(lifecycles), st.Created, st.Duplicates, st.LiveInstances, st.LiveSnapshots+st.LiveVolumeSnapshots, s.panics.Load(), len(s.bad))
}
