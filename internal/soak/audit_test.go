package soak_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// auditAttempts is the retry policy's MaxAttempts in the audits: the
// number of attempts that must reach the cloud for a call that keeps
// failing with a retryable error, whatever retries the SDK could make.
const auditAttempts = 4

// The audits' simulated time.
const (
	auditBoot   = 20 * time.Millisecond
	auditPoll   = 50 * time.Millisecond
	auditRetry  = 2 * time.Millisecond
	auditFaultD = 2 * time.Millisecond
)

// fixture is one provider on its own simulated cloud.
type fixture struct {
	t     *testing.T
	tg    target
	srv   *simcloud.Server
	cloud *simcloud.Cloud
	p     provider.Provider
	ctx   context.Context
}

// auditConfig tunes cfg for the audits: fast waits, auditAttempts
// attempts, a pacer of its own.
func auditConfig(cfg provider.Config) provider.Config {
	cfg.Timeouts = provider.ProviderTimeouts{InstanceReady: 20 * time.Second, ActionComplete: 20 * time.Second,
		PollInterval: auditPoll, HTTPRequest: 5 * time.Second}
	cfg.WaitPolicy = provider.AdaptiveWait(auditBoot, 2*time.Millisecond, 20*time.Millisecond)
	cfg.Retry = provider.RetryPolicy{MaxAttempts: auditAttempts, InitialDelay: auditRetry, MaxDelay: auditRetry}
	cfg.Pacer = provider.NewPacer()
	return cfg
}

func startFixture(t *testing.T, tg target, wrap func(http.Handler) http.Handler, tweak func(*provider.Config)) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	srv := tg.server(t, simcloud.Options{Seed: 3, BootDelay: auditBoot, SnapshotDelay: auditBoot, RateLimits: unlimited}, wrap)
	cfg := auditConfig(tg.config(srv))
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := tg.open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", tg.name, err)
	}
	return &fixture{t: t, tg: tg, srv: srv, cloud: srv.Cloud, p: p, ctx: ctx}
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

// TestRetryAudit proves, per driver, that one retry policy is in charge
// and that no call that changes something is repeated blindly:
//
//   - a call failing with 503, or with 429, every time reaches the cloud
//     exactly RetryPolicy.MaxAttempts times — the SDKs' own retries
//     (godo's retryablehttp, hcloud-go's retry and backoff, aws-sdk-go-v2's
//     standard retryer) add none;
//   - an answer lost after the change was made (on create, snapshot,
//     destroy and snapshot deletion, once or on every attempt, and while
//     the new machine is not yet visible) leaves exactly one machine or
//     snapshot, or none after a delete.
func TestRetryAudit(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			t.Run("Attempts", func(t *testing.T) { auditAttemptsOf(t, tg) })
			t.Run("LostAnswers", func(t *testing.T) { auditLostAnswers(t, tg) })
		})
	}
}

func auditAttemptsOf(t *testing.T, tg target) {
	f := startFixture(t, tg, nil, nil)
	inst := f.ready("audit-src")
	snap, err := f.p.CreateSnapshot(f.ctx, inst.ID, "audit-snap-src")
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	n := 0
	calls := []struct {
		name string
		op   simcloud.Op
		call func() error
	}{
		{"GetInstance", simcloud.OpGetInstance, func() error { _, err := f.p.GetInstance(f.ctx, inst.ID); return err }},
		{"ListInstances", simcloud.OpListInstances, func() error { _, err := f.p.ListInstances(f.ctx); return err }},
		{"CreateInstance", simcloud.OpCreateInstance, func() error {
			n++
			_, err := f.p.CreateInstance(f.ctx, f.tg.request(fmt.Sprintf("audit-new-%d", n)))
			return err
		}},
		{"CreateSnapshot", simcloud.OpCreateSnapshot, func() error {
			n++
			_, err := f.p.CreateSnapshot(f.ctx, inst.ID, fmt.Sprintf("audit-snap-%d", n))
			return err
		}},
		{"ListSnapshots", simcloud.OpListImages, func() error { _, err := f.p.ListSnapshots(f.ctx); return err }},
		{"DeleteSnapshot", simcloud.OpDeleteImage, func() error { return f.p.DeleteSnapshot(f.ctx, snap.ID) }},
		{"DestroyInstance", simcloud.OpDeleteInstance, func() error { return f.p.DestroyInstance(f.ctx, inst.ID) }},
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
			f.cloud.ClearFaults()
			f.cloud.ResetCalls()
			f.cloud.Inject(simcloud.Fault{Op: c.op, Kind: fl.kind, Count: 1000, Delay: auditFaultD})
			err := c.call()
			got := f.cloud.Calls(c.op)
			f.cloud.ClearFaults()
			switch {
			case err == nil:
				t.Errorf("%s under %s on every call: no error", c.name, fl.kind)
			case !errors.Is(err, fl.want) || !provider.IsRetryable(err):
				t.Errorf("%s under %s: %v (kind %s), want a retryable %v", c.name, fl.kind, err, provider.KindOf(err), fl.want)
			}
			var perr *provider.Error
			if fl.kind == simcloud.FaultUnavailable && errors.As(err, &perr) && perr.Status != http.StatusServiceUnavailable {
				t.Errorf("%s under 503: error status %d, want 503", c.name, perr.Status)
			}
			if got != auditAttempts {
				t.Errorf("%s under %s: %d attempts reached the cloud, want RetryPolicy.MaxAttempts = %d", c.name, fl.kind, got, auditAttempts)
			}
			t.Logf("%s %s under %s: %d attempts (MaxAttempts %d)", tg.name, c.name, fl.kind, got, auditAttempts)
		}
	}
	// Nothing was made by the refused creates and snapshots.
	after := f.cloud.Stats()
	if after.Created != before.Created || after.LiveSnapshots != before.LiveSnapshots {
		t.Errorf("refused calls made machines (%d → %d) or snapshots (%d → %d)", before.Created, after.Created, before.LiveSnapshots, after.LiveSnapshots)
	}
}

func auditLostAnswers(t *testing.T, tg target) {
	f := startFixture(t, tg, nil, nil)
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

	// Creates: the answer lost once, twice, on every attempt, and once
	// while the machine is not yet visible.
	for _, c := range []struct {
		name        string
		lost        int
		consistency time.Duration
	}{
		{"once", 1, 0},
		{"twice", 2, 0},
		{"every attempt", auditAttempts, 0},
		{"while not visible", 1, 2 * auditPoll / 3},
	} {
		name := "audit-lost-" + fmt.Sprint(c.lost) + map[bool]string{true: "-hidden"}[c.consistency > 0]
		before := lost(simcloud.OpCreateInstance, c.lost)
		if c.consistency > 0 {
			f.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultConsistency, Delay: c.consistency})
		}
		inst, err := f.p.CreateInstance(f.ctx, f.tg.request(name))
		// A driver that finds the machine after the first lost answer
		// does not create again, and meets no further fault.
		served("create lost "+c.name, before, 1)
		live := f.liveNamed(name)
		if len(live) != 1 {
			t.Fatalf("create, answer lost %s: %d machines named %s, want exactly 1 (err %v)", c.name, len(live), name, err)
		}
		var perr *provider.Error
		switch {
		case err == nil && f.modelID(inst.ID) != live[0]:
			t.Errorf("create, answer lost %s: returned %s, but the machine is %d", c.name, inst.ID, live[0])
		case err != nil && (!errors.As(err, &perr) || perr.ID == "" || f.modelID(perr.ID) != live[0]):
			t.Errorf("create, answer lost %s: %v; the error does not name the machine %d that exists", c.name, err, live[0])
		}
		t.Logf("%s create, answer lost %s: %d create calls, 1 machine, err %v", tg.name, c.name, f.cloud.Calls(simcloud.OpCreateInstance), err)
		id := fmt.Sprint(live[0])
		if err == nil {
			id = inst.ID
		} else if perr != nil {
			id = perr.ID
		}
		if _, err := f.p.WaitReady(f.ctx, id); err != nil {
			t.Fatalf("WaitReady(%s): %v", id, err)
		}
		// Destroy with its answer lost: success, and the machine is gone.
		before = lost(simcloud.OpDeleteInstance, 1)
		if err := f.p.DestroyInstance(f.ctx, id); err != nil {
			t.Errorf("destroy, answer lost: %v", err)
		}
		served("destroy lost", before, 1)
		if live := f.liveNamed(name); len(live) != 0 {
			t.Errorf("destroy, answer lost: %v still live", live)
		}
	}

	// A create whose answer is lost and whose every lookup fails ends in
	// an error; the caller repeats it while the machine is not visible
	// yet: still one machine.
	{
		name := "audit-lost-unlisted"
		before := lost(simcloud.OpCreateInstance, 1)
		f.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultConsistency, Delay: 2 * auditPoll * 9 / 10})
		f.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultNone}) // a lookup before creating
		f.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultUnavailable, Count: 1000})
		f.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultUnavailable, Count: 1000})
		_, err := f.p.CreateInstance(f.ctx, f.tg.request(name))
		served("create lost, lookups failing", before, 1)
		f.cloud.ClearFaults()
		if err == nil || !provider.IsRetryable(err) {
			t.Fatalf("create lost, every lookup failing: %v, want a retryable error", err)
		}
		inst, err := f.p.CreateInstance(f.ctx, f.tg.request(name))
		if err != nil {
			t.Fatalf("create repeated by the caller: %v", err)
		}
		if live := f.liveNamed(name); len(live) != 1 || f.modelID(inst.ID) != live[0] {
			t.Errorf("create lost, lookups failing, repeated by the caller: machines %v, returned %s; want exactly the one", live, inst.ID)
		}
		if err := f.p.DestroyInstance(f.ctx, inst.ID); err != nil {
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
		snaps := f.snapshotsOf(mid)
		if len(snaps) != 1 {
			t.Fatalf("snapshot, answer lost %d times: %d snapshots of the machine, want exactly 1 (err %v)", count, len(snaps), err)
		}
		var perr *provider.Error
		id := ""
		switch {
		case err == nil:
			id = snap.ID
		case errors.As(err, &perr) && perr.Resource == "snapshot" && perr.ID != "":
			id = perr.ID
		default:
			t.Fatalf("snapshot, answer lost %d times: %v; the error does not name the snapshot %d that exists", count, err, snaps[0])
		}
		if f.modelID(id) != snaps[0] {
			t.Errorf("snapshot, answer lost %d times: got %s, but the snapshot is %d", count, id, snaps[0])
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
	// The snapshot is made, then the reads and tagging that follow fail
	// more often than one call's retries allow: the snapshot is still
	// returned, or named by the error, never left behind unnamed.
	{
		f.cloud.ClearFaults()
		for _, op := range []simcloud.Op{simcloud.OpListImages, simcloud.OpGetImage, simcloud.OpTag, simcloud.OpGetAction} {
			f.cloud.Inject(simcloud.Fault{Op: op, Kind: simcloud.FaultUnavailable, Count: auditAttempts + 1})
		}
		snap, err := f.p.CreateSnapshot(f.ctx, inst.ID, "audit-snap-reads-failing")
		f.cloud.ClearFaults()
		snaps := f.snapshotsOf(mid)
		var perr *provider.Error
		switch {
		case len(snaps) != 1:
			t.Fatalf("snapshot with failing reads: %d snapshots of the machine, want 1 (err %v)", len(snaps), err)
		case err == nil && f.modelID(snap.ID) != snaps[0]:
			t.Errorf("snapshot with failing reads: returned %s, but the snapshot is %d", snap.ID, snaps[0])
		case err != nil && (!errors.As(err, &perr) || perr.Resource != "snapshot" || perr.ID != f.tg.imageID(snaps[0])):
			t.Errorf("snapshot with failing reads: %v; the error does not name the snapshot %d", err, snaps[0])
		}
		if err := f.p.DeleteSnapshot(f.ctx, f.tg.imageID(snaps[0])); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.p.DestroyInstance(f.ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if st := f.cloud.Stats(); st.LiveInstances+st.LiveSnapshots+st.LiveVolumeSnapshots != 0 || st.Duplicates != 0 {
		t.Errorf("left: %d machines, %d snapshots, %d volume snapshots; %d duplicates", st.LiveInstances, st.LiveSnapshots, st.LiveVolumeSnapshots, st.Duplicates)
	}
}
