package providertest

import (
	"sync"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// testTTLBounds: a TTL that is negative, too short or absurdly long is
// refused before any call, naming its field.
func testTTLBounds(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	before := e.cloud.TotalCalls()
	for _, ttl := range []time.Duration{-time.Minute, time.Second, 59 * time.Second, 367 * 24 * time.Hour} {
		req := h.Request(e.name("ttl"))
		req.TTL = ttl
		_, err := e.p.CreateInstance(e.ctx, req)
		if perr := wantKind(t, err, provider.ErrInvalidConfig, "CreateInstance with TTL "+ttl.String()); perr.Field != "TTL" {
			t.Errorf("TTL %s: field %q, want TTL", ttl, perr.Field)
		}
	}
	if e.p.Capabilities().Snapshots {
		_, err := e.p.CreateSnapshot(e.ctx, h.MissingIDOr("1"), "x", provider.SnapshotTTL(-time.Hour))
		wantKind(t, err, provider.ErrInvalidConfig, "CreateSnapshot with a negative TTL")
	}
	if n := e.cloud.TotalCalls() - before; n != 0 {
		t.Errorf("bad TTLs made %d API calls, want 0", n)
	}
}

// testReap: Reap destroys what is past its expiry and nothing else — not
// what has time left, not what has none (unless asked to by age), never
// what spuff does not manage; a dry run changes nothing; two reapers at
// once both succeed.
func testReap(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	snaps := e.p.Capabilities().Snapshots
	mk := func(tag string, ttl time.Duration) *provider.Instance {
		req := h.Request(e.name(tag))
		req.TTL = ttl
		inst := e.create(req)
		if ttl > 0 {
			got, err := e.p.GetInstance(e.ctx, inst.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ExpiresAt.IsZero() || got.ExpiresAt.Sub(time.Now().Add(ttl)).Abs() > time.Minute {
				t.Errorf("%s: ExpiresAt %v, want about now + %s", tag, got.ExpiresAt, ttl)
			}
		}
		return inst
	}
	soon := mk("reap-soon", time.Minute)
	later := mk("reap-later", 2*time.Hour)
	forever := mk("reap-forever", 0)
	foreign := e.cloud.AddInstances(1, func(int) simcloud.InstanceSpec {
		r := h.Request(e.name("reap-foreign"))
		return simcloud.InstanceSpec{Name: r.Name, Region: r.Region, Size: r.Size, Labels: map[string]string{"owner": "dba"}}
	})[0]
	var soonSnap, keptSnap *provider.Snapshot
	if snaps {
		e.waitReady(soon.ID)
		var err error
		if soonSnap, err = e.p.CreateSnapshot(e.ctx, soon.ID, e.name("reap-s1"), provider.SnapshotTTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if keptSnap, err = e.p.CreateSnapshot(e.ctx, soon.ID, e.name("reap-s2")); err != nil {
			t.Fatal(err)
		}
		if soonSnap.ExpiresAt.IsZero() || !keptSnap.ExpiresAt.IsZero() {
			t.Errorf("snapshot expiries %v and %v, want one in a minute and none", soonSnap.ExpiresAt, keptSnap.ExpiresAt)
		}
	}
	later5 := time.Now().Add(5 * time.Minute)
	st := e.cloud.Stats()

	dry, err := provider.Reap(e.ctx, e.p, provider.ReapOptions{DryRun: true, Now: later5})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	want := map[string]bool{soon.ID: true}
	if snaps {
		want[soonSnap.ID] = true
	}
	if !sameIDs(dry.Destroyed, want) {
		t.Errorf("dry run would reap %v, want %v", dry.Destroyed, want)
	}
	if after := e.cloud.Stats(); after.LiveInstances != st.LiveInstances || after.LiveSnapshots != st.LiveSnapshots {
		t.Errorf("the dry run changed the cloud: %d→%d instances, %d→%d snapshots", st.LiveInstances, after.LiveInstances, st.LiveSnapshots, after.LiveSnapshots)
	}

	// Two reapers at once, as from two processes.
	var wg sync.WaitGroup
	reps := make([]*provider.ReapReport, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { reps[i], errs[i] = provider.Reap(e.ctx, e.p, provider.ReapOptions{Now: later5}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("reaper %d of 2 at once: %v", i+1, err)
		}
	}
	for _, id := range []string{later.ID, forever.ID} {
		if got, err := e.p.GetInstance(e.ctx, id); err != nil || got.Status == provider.StatusDestroying {
			t.Errorf("instance %s without a past expiry was reaped: %v, %v", id, got, err)
		}
	}
	if _, err := e.p.GetInstance(e.ctx, soon.ID); err == nil {
		if got, _ := e.p.GetInstance(e.ctx, soon.ID); got != nil && got.Status != provider.StatusDestroying {
			t.Errorf("the expired instance %s is still live", soon.ID)
		}
	}
	if _, err := e.cloud.GetInstance(foreign); err != nil {
		t.Errorf("the machine spuff does not manage was touched: %v", err)
	}
	if snaps {
		list, err := e.p.ListSnapshots(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != keptSnap.ID {
			t.Errorf("snapshots after reaping: %v, want just the one without expiry %s", list, keptSnap.ID)
		}
	}

	// By age: a managed machine without expiry older than the bound.
	rep, err := provider.Reap(e.ctx, e.p, provider.ReapOptions{OlderThan: time.Minute, Now: later5})
	if err != nil {
		t.Fatal(err)
	}
	if !sameIDs(rep.Destroyed, map[string]bool{forever.ID: true}) {
		t.Errorf("reaping by age destroyed %v, want just %s (later has an expiry to come)", rep.Destroyed, forever.ID)
	}

	e.destroy(later.ID)
	if snaps {
		if err := e.p.DeleteSnapshot(e.ctx, keptSnap.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.cloud.DeleteInstance(foreign); err != nil {
		t.Fatal(err)
	}
	e.noLeaks()
}

func sameIDs(got []provider.Reaped, want map[string]bool) bool {
	if len(got) != len(want) {
		return false
	}
	for _, r := range got {
		if !want[r.ID] {
			return false
		}
	}
	return true
}
