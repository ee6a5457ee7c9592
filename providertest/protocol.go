package providertest

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The checks of the exactly-once protocol and of cancellation, run on
// every driver (see package provider's create protocol).

// cancelBound is how soon after its context is cancelled a method must
// return. The design target is 100 ms; the check allows for a loaded
// machine under the race detector.
const cancelBound = 300 * time.Millisecond

// testConcurrentIdentical: five identical creates at once through one
// Provider make one machine, which all five get.
func testConcurrentIdentical(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	req := h.Request(e.name("same"))
	const n = 5
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			inst, err := e.p.CreateInstance(e.ctx, req)
			errs[i] = err
			if inst != nil {
				ids[i] = inst.ID
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create %d of %d identical: %v", i+1, n, err)
		}
		if ids[i] != ids[0] {
			t.Errorf("identical creates returned %v, want one ID", ids)
			break
		}
	}
	if live := e.liveNamed(req.Name); len(live) != 1 {
		t.Fatalf("%d machines named %s after %d identical creates at once, want 1", len(live), req.Name, n)
	}
	if c := e.cloud.Calls(simcloud.OpCreateInstance); c != 1 {
		t.Errorf("%d create calls for %d identical creates at once, want 1", c, n)
	}
	e.destroy(ids[0])
	e.noLeaks()
}

// testCycles: twenty create/destroy cycles of one request each make one
// new machine with one create call, whatever the history.
func testCycles(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	req := h.Request(e.name("cycle"))
	seen := map[string]bool{}
	for cycle := 1; cycle <= 20; cycle++ {
		before := e.cloud.Calls(simcloud.OpCreateInstance)
		inst, err := e.p.CreateInstance(e.ctx, req)
		if err != nil {
			t.Fatalf("cycle %d: CreateInstance: %v", cycle, err)
		}
		if seen[inst.ID] {
			t.Fatalf("cycle %d: CreateInstance returned %s, a machine destroyed in an earlier cycle", cycle, inst.ID)
		}
		seen[inst.ID] = true
		if c := e.cloud.Calls(simcloud.OpCreateInstance) - before; c != 1 {
			t.Errorf("cycle %d cost %d create calls, want 1", cycle, c)
		}
		if live := e.liveNamed(req.Name); len(live) != 1 {
			t.Fatalf("cycle %d: %d machines named %s, want 1", cycle, len(live), req.Name)
		}
		e.destroy(inst.ID)
	}
	e.noLeaks()
}

// testConflicts: a create with the name of a machine made for other
// settings, or of a machine spuff does not manage, never adopts it and
// never touches it; the error names it in Existing, never in Leftover.
func testConflicts(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	caps := e.p.Capabilities()
	base := h.Request(e.name("mine"))
	base.Labels = map[string]string{"role": "db"}
	if caps.UserData {
		base.UserData = "#cloud-config\n# first\n"
	}
	orig := e.create(base)
	before := e.modelInstance(orig.ID)
	variants := map[string]func(*provider.InstanceRequest){
		"other labels": func(r *provider.InstanceRequest) { r.Labels = map[string]string{"role": "web"} },
		"no labels":    func(r *provider.InstanceRequest) { r.Labels = nil },
	}
	if caps.UserData {
		variants["other user data"] = func(r *provider.InstanceRequest) { r.UserData = "#cloud-config\n# second\n" }
	}
	if caps.SSHKeys && len(e.cloud.SSHKeys()) > 0 {
		key := e.cloud.SSHKeys()[0]
		variants["an SSH key"] = func(r *provider.InstanceRequest) { r.SSHKeys = []string{key.Name} }
	}
	for what, edit := range variants {
		req := base
		req.Labels = maps.Clone(base.Labels)
		edit(&req)
		calls := e.cloud.Calls(simcloud.OpCreateInstance)
		_, err := e.p.CreateInstance(e.ctx, req)
		perr := wantKind(t, err, provider.ErrConflict, "CreateInstance with the name of a machine made with "+what)
		if perr.Existing != orig.ID || perr.Leftover != "" {
			t.Errorf("%s: conflict names Existing %q and Leftover %q, want Existing %s and no Leftover", what, perr.Existing, perr.Leftover, orig.ID)
		}
		if c := e.cloud.Calls(simcloud.OpCreateInstance) - calls; c != 0 && !e.cloud.Options().UniqueNames {
			t.Errorf("%s: %d create calls, want none (the look-up found the conflict)", what, c)
		}
		if live := e.liveNamed(base.Name); len(live) != 1 {
			t.Fatalf("%s: %d machines named %s, want the original alone", what, len(live), base.Name)
		}
	}
	after := e.modelInstance(orig.ID)
	if !maps.Equal(after.Labels, before.Labels) || after.UserData != before.UserData {
		t.Errorf("the original machine was changed: labels %v -> %v", before.Labels, after.Labels)
	}

	// A machine spuff does not manage, of the same name.
	foreign := h.Request(e.name("prod-db"))
	ids := e.cloud.AddInstances(1, func(int) simcloud.InstanceSpec {
		return simcloud.InstanceSpec{Name: foreign.Name, Region: foreign.Region, Size: foreign.Size, Labels: map[string]string{"owner": "dba"}}
	})
	inst, err := e.p.CreateInstance(e.ctx, foreign)
	switch {
	case err == nil:
		// Names are not unique on this cloud: a machine of our own
		// beside it.
		if e.modelID(inst.ID) == ids[0] {
			t.Fatalf("CreateInstance adopted the machine spuff does not manage (%d)", ids[0])
		}
		e.destroy(inst.ID)
	default:
		perr := wantKind(t, err, provider.ErrConflict, "CreateInstance with the name of a machine spuff does not manage")
		if perr.Leftover != "" || perr.Existing == "" || e.modelID(perr.Existing) != ids[0] {
			t.Errorf("conflict with the foreign machine: Existing %q, Leftover %q; want Existing naming %d, no Leftover", perr.Existing, perr.Leftover, ids[0])
		}
	}
	if _, err := e.cloud.GetInstance(ids[0]); err != nil {
		t.Errorf("the machine spuff does not manage is gone: %v", err)
	}
	e.destroy(orig.ID)
	if _, err := e.cloud.DeleteInstance(ids[0]); err != nil {
		t.Fatal(err)
	}
	e.noLeaks()
}

// testLagPastLookup: a create whose answer is lost while the cloud does
// not show the new machine for four times the look-up window makes one
// machine: the caller's retries say the outcome is unknown until the
// cloud shows it, and then adopt it.
func testLagPastLookup(t *testing.T, h Harness) {
	opts := suiteOptions()
	lookup := FastConfig(provider.Config{}).Timeouts.Lookup
	opts.ConsistencyDelay = cloudTime(4 * lookup)
	e := setup(t, h, opts, nil)
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	req := h.Request(e.name("lag"))
	inst, attempts, err := createRetrying(e.ctx, e.p, req, 60)
	if err != nil {
		t.Fatalf("CreateInstance after a lost answer with a listing lag of %v, %d attempts: %v", 4*lookup, attempts, err)
	}
	live := e.liveNamed(req.Name)
	if len(live) != 1 {
		t.Fatalf("%d machines named %s after a lost answer and a lag of 4 look-up windows, want 1", len(live), req.Name)
	}
	if e.modelID(inst.ID) != live[0].ID {
		t.Errorf("CreateInstance returned %s, the machine is %d", inst.ID, live[0].ID)
	}
	t.Logf("lag of %v past a look-up window of %v: %d caller attempts, 1 machine", 4*lookup, lookup, attempts)
	e.waitReady(inst.ID)
	e.destroy(inst.ID)
	e.noLeaks()
}

// testRepublished: the image a request names is republished (a newer
// Ubuntu AMI) between a lost create answer and its retry, and again
// between two creates of the same request: no create fails, and one
// machine lives at a time.
func testRepublished(t *testing.T, h Harness) {
	if h.Republish == nil {
		t.Skip("the harness cannot republish an image")
	}
	e := setup(t, h, suiteOptions(), nil)
	req := h.Request(e.name("repub"))
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	go func() {
		// The newer image appears while the create's answer is lost.
		time.Sleep(5 * time.Millisecond)
		h.Republish(e.srv, req)
	}()
	inst, attempts, err := createRetrying(e.ctx, e.p, req, 40)
	if err != nil {
		t.Fatalf("CreateInstance after a lost answer and a republished image, %d attempts: %v", attempts, err)
	}
	if live := e.liveNamed(req.Name); len(live) != 1 {
		t.Fatalf("%d machines named %s, want 1", len(live), req.Name)
	}
	e.destroy(inst.ID)
	newest := h.Republish(e.srv, req)
	again, err := e.p.CreateInstance(e.ctx, req)
	if err != nil {
		t.Fatalf("CreateInstance of the same request after a destroy and a republished image: %v", err)
	}
	if m := e.modelInstance(again.ID); m.ImageID != newest {
		t.Errorf("the new machine boots image %d, want the newest %d", m.ImageID, newest)
	}
	e.destroy(again.ID)
	e.noLeaks()
}

// testDestroyedDuringWait: a machine destroyed by someone else while
// WaitReady waits for it ends the wait at once with not found, not with a
// timeout minutes later.
func testDestroyedDuringWait(t *testing.T, h Harness) {
	opts := suiteOptions()
	opts.BootDelay = cloudTime(time.Hour)
	opts.LockActions = simcloud.Off // someone else's destroy goes through at once
	e := setup(t, h, opts, nil)
	inst := e.create(h.Request(e.name("gone")))
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = e.cloud.DeleteInstance(e.modelID(inst.ID))
	}()
	start := time.Now()
	_, err := e.p.WaitReady(e.ctx, inst.ID)
	wantKind(t, err, provider.ErrNotFound, "WaitReady of a machine destroyed during the wait")
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("WaitReady took %v to notice the machine was destroyed", el)
	}
	e.noLeaks()
}

// testCancelPrompt: every method returns soon after its context is
// cancelled, while the cloud is slow to answer, with an error matching
// context.Canceled.
func testCancelPrompt(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	src := e.create(h.Request(e.name("cancel-src")))
	e.waitReady(src.ID)
	calls := []struct {
		name string
		ops  []simcloud.Op
		call func(ctx context.Context) error
	}{
		{"CreateInstance", []simcloud.Op{simcloud.OpListInstances, simcloud.OpCreateInstance}, func(ctx context.Context) error {
			_, err := e.p.CreateInstance(ctx, h.Request(e.name("cancel-new")))
			return err
		}},
		{"GetInstance", []simcloud.Op{simcloud.OpGetInstance}, func(ctx context.Context) error {
			_, err := e.p.GetInstance(ctx, src.ID)
			return err
		}},
		{"ListInstances", []simcloud.Op{simcloud.OpListInstances}, func(ctx context.Context) error {
			_, err := e.p.ListInstances(ctx)
			return err
		}},
		{"WaitReady", []simcloud.Op{simcloud.OpGetInstance}, func(ctx context.Context) error {
			_, err := e.p.WaitReady(ctx, src.ID)
			return err
		}},
		{"ListSSHKeys", []simcloud.Op{simcloud.OpListSSHKeys}, func(ctx context.Context) error {
			_, err := e.p.ListSSHKeys(ctx)
			return err
		}},
	}
	if e.p.Capabilities().Snapshots {
		calls = append(calls,
			struct {
				name string
				ops  []simcloud.Op
				call func(ctx context.Context) error
			}{"ListSnapshots", []simcloud.Op{simcloud.OpListImages}, func(ctx context.Context) error {
				_, err := e.p.ListSnapshots(ctx)
				return err
			}})
	}
	for _, c := range calls {
		for _, op := range c.ops {
			e.cloud.Inject(simcloud.Fault{Op: op, Kind: simcloud.FaultSlow, Delay: cloudTime(5 * time.Second), Count: 20})
		}
		ctx, cancel := context.WithCancel(e.ctx)
		var at time.Time
		time.AfterFunc(100*time.Millisecond, func() { at = time.Now(); cancel() })
		err := c.call(ctx)
		late := time.Since(at)
		cancel()
		e.cloud.ClearFaults()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s cancelled while the cloud is slow: %v, want an error matching context.Canceled", c.name, err)
		}
		t.Logf("%s returned %v after its context was cancelled", c.name, late)
		if late > cancelBound {
			t.Errorf("%s returned %v after its context was cancelled, want within %v", c.name, late, cancelBound)
		}
	}
	// The create that was cancelled may have made a machine: the same
	// request adopts it, or a listing shows it.
	e.destroy(src.ID)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		list, err := e.p.ListInstances(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range list {
			e.destroy(in.ID)
		}
		if len(e.cloud.LiveInstances()) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.noLeaks()
}

// testSnapshotTimeout: a snapshot still being made when the wait ends (its
// timeout, or a cancel) is left findable: labelled as managed, named in
// Leftover when its ID is known; a repeated CreateSnapshot resumes it, and
// no second snapshot is made.
func testSnapshotTimeout(t *testing.T, h Harness) {
	for _, how := range []string{"timeout", "cancel"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			opts := suiteOptions()
			opts.SnapshotDelay = cloudTime(1500 * time.Millisecond)
			e := setup(t, h, opts, nil)
			if !e.p.Capabilities().Snapshots {
				t.Skip("provider does not support snapshots")
			}
			inst := e.create(h.Request(e.name("snapto")))
			e.waitReady(inst.ID)
			name := e.name("snap-" + how)
			short := e.p
			ctx := e.ctx
			var cancelled time.Time
			switch how {
			case "timeout":
				cfg := e.cfg
				cfg.Timeouts.ActionComplete = 200 * time.Millisecond
				p, err := open(e.ctx, h, cfg)
				if err != nil {
					t.Fatal(err)
				}
				short = p
			case "cancel":
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(e.ctx)
				time.AfterFunc(200*time.Millisecond, func() { cancelled = time.Now(); cancel() })
			}
			_, err := short.CreateSnapshot(ctx, inst.ID, name)
			if err == nil {
				t.Fatalf("CreateSnapshot of a snapshot that takes 1.5 s returned within its %s", how)
			}
			if how == "timeout" {
				wantKind(t, err, provider.ErrTimeout, "CreateSnapshot past ActionComplete")
			} else {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled CreateSnapshot: %v, want context.Canceled", err)
				}
				if late := time.Since(cancelled); late > cancelBound {
					t.Errorf("CreateSnapshot returned %v after the cancel, want within %v", late, cancelBound)
				}
			}
			var perr *provider.Error
			errors.As(err, &perr)
			snap, err := e.p.CreateSnapshot(e.ctx, inst.ID, name)
			if err != nil {
				t.Fatalf("CreateSnapshot repeated after the %s: %v", how, err)
			}
			if perr != nil && perr.Leftover != "" && perr.Leftover != snap.ID {
				t.Errorf("the %s named %s in Leftover, the repeated call returned %s", how, perr.Leftover, snap.ID)
			}
			if live := e.cloud.LiveSnapshots(); len(live) != 1 {
				t.Errorf("%d snapshots after a %s and a repeat, want 1", len(live), how)
			}
			list, err := e.p.ListSnapshots(e.ctx)
			if err != nil || len(list) != 1 || list[0].ID != snap.ID {
				t.Errorf("ListSnapshots = %v, %v; want just %s", list, err, snap.ID)
			}
			if err := e.p.DeleteSnapshot(e.ctx, snap.ID); err != nil {
				t.Fatal(err)
			}
			e.destroy(inst.ID)
			e.noLeaks()
		})
	}
}

// testWaitPollsBeforeDeadline: a wait whose schedule would first poll
// after its deadline (a prior far from the truth, a short timeout) still
// polls once just before the deadline, and sees the machine ready.
func testWaitPollsBeforeDeadline(t *testing.T, h Harness) {
	opts := suiteOptions()
	opts.BootDelay = cloudTime(200 * time.Millisecond)
	e := setup(t, h, opts, func(c *provider.Config) {
		// 5 s: the final poll starts a tenth of it (500 ms) before the
		// deadline, which a loaded machine's -race run still answers in.
		c.Timeouts.InstanceReady = 5 * time.Second
		c.WaitPolicy = provider.AdaptiveWait(time.Hour, time.Minute, time.Hour) // first poll at 48 minutes
	})
	inst := e.create(h.Request(e.name("deadline")))
	got, err := e.p.WaitReady(e.ctx, inst.ID)
	if err != nil {
		t.Fatalf("WaitReady whose schedule polls after its deadline: %v, want the final poll to see the machine ready", err)
	}
	if !got.Ready() {
		t.Errorf("WaitReady returned a machine that is not ready: %+v", got)
	}
	e.destroy(inst.ID)
	e.noLeaks()
}

// envVar matches the name of an environment variable in an error's text.
var envVar = regexp.MustCompile(`\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b`)

// testOpenWithoutCredentials: opening with no credentials anywhere is an
// authentication error on every driver, naming the environment variable
// to set, before any call.
func testOpenWithoutCredentials(t *testing.T, h Harness) {
	srv := h.Start(t, suiteOptions())
	cfg := FastConfig(h.Config(srv))
	cfg.Token, cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken = "", "", "", ""
	cfg.Getenv = func(string) string { return "" }
	before := srv.Cloud.TotalCalls()
	p, err := open(context.Background(), h, cfg)
	if err == nil {
		// The AWS default chain also reads files this test cannot
		// empty (~/.aws): nothing to check where it found some.
		if _, lerr := p.ListInstances(context.Background()); lerr == nil {
			t.Skip("credentials were found outside Config and the environment (a profile file)")
		}
		err = errors.New("opened without credentials")
	}
	wantKind(t, err, provider.ErrAuthentication, "opening without credentials")
	if !envVar.MatchString(err.Error()) {
		t.Errorf("the error does not name the environment variable to set: %v", err)
	}
	if n := srv.Cloud.TotalCalls() - before; n != 0 {
		t.Errorf("opening without credentials made %d calls", n)
	}
}
