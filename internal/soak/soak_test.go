package soak_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// The soak's simulated time: machines boot in about 30 ms, snapshots take
// 30 ms, and a fault's delay (the Retry-After of a 429, a slow answer, the
// window in which a new machine is not visible) is 20 ms.
const (
	bootDelay     = 30 * time.Millisecond
	snapshotDelay = 30 * time.Millisecond
	faultDelay    = 20 * time.Millisecond
	// faultRate is the share of API calls that misbehave.
	faultRate = 0.12
	// shortLifecycles is the number of lifecycles per provider of the soak
	// go test runs by default.
	shortLifecycles = 60
	// workers is the number of lifecycles in flight per provider.
	workers = 12
	// snapshotEvery: one lifecycle in snapshotEvery takes a snapshot.
	snapshotEvery = 3
	// consistencyEvery: one create in about consistencyEvery makes a
	// machine that reads do not show for consistencyDelay, longer than a
	// boot.
	consistencyEvery = 5
	consistencyDelay = 4 * bootDelay
	// pollInterval is Config.Timeouts.PollInterval: the time scale of
	// waits, and of how long the DigitalOcean driver looks for a droplet
	// whose create had an unknown outcome (twice this) before creating
	// again. It is to the soak's consistency window what the default (5 s)
	// is to a real cloud's.
	pollInterval = 100 * time.Millisecond
)

// transientFaults are the faults the soak injects, drawn uniformly:
// rate limits with and without Retry-After, 5xx answers, dropped
// connections, slow answers, answers lost after the change was made (on
// every operation: create, destroy, snapshot...), and machines that are not
// visible right after their creation. A 429 without Retry-After pauses
// the account's pacer for a whole second, so it is drawn half as often as
// the others.
var transientFaults = []simcloud.FaultKind{
	simcloud.FaultRateLimit, simcloud.FaultRateLimit, simcloud.FaultRateLimitBare,
	simcloud.FaultInternal, simcloud.FaultInternal, simcloud.FaultBadGateway, simcloud.FaultBadGateway,
	simcloud.FaultUnavailable, simcloud.FaultUnavailable, simcloud.FaultDrop, simcloud.FaultDrop,
	simcloud.FaultSlow, simcloud.FaultSlow, simcloud.FaultLoseResponse, simcloud.FaultLoseResponse,
	simcloud.FaultConsistency, simcloud.FaultConsistency,
}

// plan reads SPUFF_SOAK (lifecycles across the providers) and
// SPUFF_SOAK_SEED.
func plan(t *testing.T, providers int) (perProvider int, seed uint64) {
	perProvider, seed = shortLifecycles, 1
	if v := os.Getenv("SPUFF_SOAK"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < providers {
			t.Fatalf("SPUFF_SOAK=%q: want a number of lifecycles, at least %d", v, providers)
		}
		perProvider = (n + providers - 1) / providers
	}
	if v := os.Getenv("SPUFF_SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SPUFF_SOAK_SEED=%q: %v", v, err)
		}
		seed = n
	}
	return perProvider, seed
}

// TestSoak runs lifecycles of every provider concurrently under random
// transient faults, as a careful caller does (retrying retryable errors
// with the same request, deleting whatever an error names), and then
// checks the simulated clouds' ledgers: no machine or snapshot left but
// the one kept on purpose, no duplicate, every error retryable, no panic,
// no goroutine left.
func TestSoak(t *testing.T) {
	ts := targets()
	n, seed := plan(t, len(ts))
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		// Every subtest's server and connections are closed by now.
		if err := goleak.Find(before); err != nil {
			t.Errorf("goroutines left after the soak: %v", err)
		} else {
			t.Logf("goroutines left after the soak: 0")
		}
	})
	for i, tg := range ts {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			runSoak(t, tg, n, seed+uint64(i))
		})
	}
}

// soak is one provider's soak and its counts.
type soak struct {
	t     *testing.T
	tg    target
	p     provider.Provider
	cloud *simcloud.Cloud
	ctx   context.Context

	callerRetries atomic.Int64
	panics        atomic.Int64
	failed        atomic.Int64
	created       atomic.Int64 // machines the caller was told of (made, or named by an error)
	snapshots     atomic.Int64

	mu       sync.Mutex
	errs     map[string]map[provider.Kind]int // op -> kind -> count
	bad      []string                         // errors of a kind transient faults must not cause
	problems []string                         // duplicates and other broken promises
	kept     []string                         // snapshot IDs kept on purpose
}

func runSoak(t *testing.T, tg target, lifecycles int, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	srv := tg.server(t, simcloud.Options{
		Seed: seed, BootDelay: bootDelay, BootJitter: 0.5, SnapshotDelay: snapshotDelay,
		RateLimits: unlimited,
	}, nil)
	cfg := tg.config(srv)
	cfg.Timeouts = provider.ProviderTimeouts{
		InstanceReady: time.Minute, ActionComplete: time.Minute,
		PollInterval: pollInterval, HTTPRequest: 5 * time.Second,
	}
	cfg.WaitPolicy = provider.AdaptiveWait(bootDelay, 2*time.Millisecond, 20*time.Millisecond)
	cfg.Retry = provider.RetryPolicy{MaxAttempts: 3, InitialDelay: 2 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	cfg.Pacer = provider.NewPacer() // no budget of its own: honours Retry-After only
	p, err := tg.open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", tg.name, err)
	}
	s := &soak{t: t, tg: tg, p: p, cloud: srv.Cloud, ctx: ctx, errs: map[string]map[provider.Kind]int{}}

	srv.Cloud.SetRandomFaults(simcloud.RandomFaults{Rate: faultRate, Kinds: transientFaults, Delay: faultDelay})
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
					s.failed.Add(1)
					t.Logf("lifecycle %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	srv.Cloud.ClearFaults()

	s.checkLedger(ctx)
	s.report(lifecycles, elapsed)
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

// record counts an error the caller got, and notes it when transient
// faults should not have caused it: every error must be a *provider.Error
// of a retryable kind.
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
	case !provider.IsRetryable(err):
		s.bad = append(s.bad, fmt.Sprintf("%s: %s error under transient faults: %v", op, kind, err))
	}
}

// retry calls fn as a careful caller does: again while it fails with a
// retryable error, at most attempts times. Every error is recorded.
func (s *soak) retry(op string, attempts int, fn func() error) error {
	var err error
	for i := range attempts {
		if i > 0 {
			s.callerRetries.Add(1)
		}
		if err = fn(); err == nil {
			return nil
		}
		s.record(op, err)
		if !provider.IsRetryable(err) {
			return err
		}
	}
	return err
}

// lifecycle creates a machine, waits for it, snapshots one in
// snapshotEvery (keeping lifecycle 0's snapshot on purpose, deleting the
// others) and destroys it. It cleans up whatever it learns of, and only
// that: a machine or snapshot the driver made without telling is a leak.
func (s *soak) lifecycle(i int) (err error) {
	req := s.tg.request(fmt.Sprintf("soak-%d", i))
	var inst *provider.Instance
	if err := s.retry("CreateInstance", 8, func() (err error) {
		inst, err = s.p.CreateInstance(s.ctx, req)
		return err
	}); err != nil {
		var perr *provider.Error
		if errors.As(err, &perr) && perr.ID != "" {
			// The driver made the machine and says so: destroy it.
			s.created.Add(1)
			err = errors.Join(err, s.destroy(perr.ID))
		}
		return fmt.Errorf("create %s: %w", req.Name, err)
	}
	s.created.Add(1)
	defer func() { err = errors.Join(err, s.destroy(inst.ID)) }()

	mid, err := s.tg.modelID(inst.ID)
	if err != nil {
		return fmt.Errorf("create %s returned ID %q: %w", req.Name, inst.ID, err)
	}
	if live := s.liveNamed(req.Name); len(live) != 1 || live[0] != mid {
		s.problem("create %s returned %s, but the cloud's live machines of that name are %v", req.Name, inst.ID, live)
	}

	if err := s.retry("WaitReady", 5, func() error {
		got, err := s.p.WaitReady(s.ctx, inst.ID)
		if err == nil && !got.Ready() {
			s.problem("WaitReady(%s) returned a machine that is not ready: %s", inst.ID, got.RawStatus)
		}
		return err
	}); err != nil {
		return fmt.Errorf("wait %s: %w", inst.ID, err)
	}

	if i%snapshotEvery != 0 {
		return nil
	}
	// CreateSnapshot is not repeated by the caller: the driver retries
	// what is safe, and a failed call names the snapshot it made.
	snap, err := s.p.CreateSnapshot(s.ctx, inst.ID, fmt.Sprintf("soak-snap-%d", i))
	if err != nil {
		s.record("CreateSnapshot", err)
		var perr *provider.Error
		if errors.As(err, &perr) && perr.Resource == "snapshot" && perr.ID != "" {
			err = errors.Join(err, s.deleteSnapshot(perr.ID))
		}
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
	return s.deleteSnapshot(snap.ID)
}

func (s *soak) destroy(id string) error {
	if err := s.retry("DestroyInstance", 10, func() error { return s.p.DestroyInstance(s.ctx, id) }); err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	return nil
}

func (s *soak) deleteSnapshot(id string) error {
	if err := s.retry("DeleteSnapshot", 10, func() error { return s.p.DeleteSnapshot(s.ctx, id) }); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	return nil
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
// no live machine, only the kept snapshots (and their volume snapshots),
// no duplicate; then deletes the kept snapshots and checks the cloud is
// empty.
func (s *soak) checkLedger(ctx context.Context) {
	t := s.t
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
	// The API agrees with the ledger.
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
			t.Errorf("%s: … and %d more errors of the wrong kind", s.tg.name, len(s.bad)-20)
			break
		}
		t.Errorf("%s: %s", s.tg.name, b)
	}
	for _, p := range s.problems {
		t.Errorf("%s: %s", s.tg.name, p)
	}
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
	s.t.Logf("%s soak: %d lifecycles (%d failed, %d snapshots) in %s; %d API calls; faults injected %d: %s",
		s.tg.name, lifecycles, s.failed.Load(), s.snapshots.Load(), elapsed.Round(time.Millisecond), st.TotalCalls, total, strings.Join(faults, " "))
	s.t.Logf("%s soak: retries by the driver's policy %d, by the caller %d; errors seen by the caller: %s",
		s.tg.name, ps.Retries, s.callerRetries.Load(), strings.Join(errs, " "))
	s.t.Logf("%s soak: machines made %d, duplicates %d, leaked machines %d, leaked snapshots %d, panics %d, wrong-kind errors %d",
		s.tg.name, st.Created, st.Duplicates, st.LiveInstances, st.LiveSnapshots+st.LiveVolumeSnapshots, s.panics.Load(), len(s.bad))
}
