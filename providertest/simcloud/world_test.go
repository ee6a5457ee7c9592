package simcloud

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

func wantCode(t *testing.T, err error, code Code) {
	t.Helper()
	var me *Error
	if !errors.As(err, &me) || me.Code != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
}

func TestWorldsAndTimeScale(t *testing.T) {
	t.Parallel()
	if got := (Options{}).IsRealistic(); got != (DefaultWorld == WorldRealistic) {
		t.Errorf("zero Options realistic = %v with DefaultWorld %s", got, DefaultWorld)
	}
	tests := []struct {
		name      string
		opts      Options
		boot      time.Duration // wall-clock from create to running
		destroy   time.Duration // cloud time of the destroy window
		strict    bool
		realistic bool
	}{
		{"simple", Options{World: WorldSimple}, 100 * time.Millisecond, 0, false, false},
		{"simple scaled", Options{World: WorldSimple, TimeScale: 0.5, BootDelay: 10 * time.Second}, 5 * time.Second, 0, false, false},
		{"realistic", Realistic(1), 30 * time.Second, 10 * time.Second, true, true},
		{"realistic at 1/100", Realistic(0.01), 300 * time.Millisecond, 10 * time.Second, true, true},
		{"realistic, single behaviours off", func() Options {
			o := Realistic(1)
			o.DestroyDelay, o.StrictClientTokens, o.BootDelay = -1, Off, time.Second
			return o
		}(), time.Second, 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _, img := newTestCloud(t, tc.opts)
			o := c.Options()
			if o.IsRealistic() != tc.realistic || o.DestroyDelay != tc.destroy || c.strictTokens != tc.strict {
				t.Errorf("resolved options: realistic %v, destroy %v, strict tokens %v", o.IsRealistic(), o.DestroyDelay, c.strictTokens)
			}
			in, _, err := c.CreateInstance(InstanceSpec{Name: "a", ImageID: img})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.realistic || o.BootJitter == 0 {
				if got := in.ReadyAt.Sub(in.CreatedAt); got != tc.boot {
					t.Errorf("boot took %v wall-clock, want %v", got, tc.boot)
				}
			}
			if got, want := c.Scale(time.Minute), time.Duration(float64(time.Minute)*o.TimeScale); got != want {
				t.Errorf("Scale(1m) = %v, want %v", got, want)
			}
		})
	}
}

func TestRateLimitWindows(t *testing.T) {
	t.Parallel()
	type step struct {
		at      time.Duration // since the start
		op      Op
		ok      bool
		wait    time.Duration // wanted RetryAfter when refused
		sendRA  bool
		remains int // remaining of window 0 after the call (-1: not checked)
	}
	tests := []struct {
		name   string
		limits []RateLimit
		steps  []step
	}{
		{"sliding window: each request on its own timer",
			[]RateLimit{{Requests: 3, Per: time.Minute, Sliding: true}},
			[]step{
				{0, OpGetInstance, true, 0, false, 2},
				{10 * time.Second, OpGetInstance, true, 0, false, 1},
				{20 * time.Second, OpGetInstance, true, 0, false, 0},
				{30 * time.Second, OpGetInstance, false, 30 * time.Second, true, 0},
				{60 * time.Second, OpGetInstance, true, 0, false, 0}, // the first expired, this one takes its place
				{65 * time.Second, OpGetInstance, false, 5 * time.Second, true, 0},
			}},
		{"a window without Retry-After",
			[]RateLimit{{Requests: 1, Per: time.Hour, Sliding: true, NoRetryAfter: true}},
			[]step{
				{0, OpGetInstance, true, 0, false, 0},
				{time.Minute, OpGetInstance, false, 59 * time.Minute, false, 0},
			}},
		{"the longer refusal without Retry-After wins",
			[]RateLimit{{Requests: 5, Per: time.Hour, Sliding: true, NoRetryAfter: true}, {Requests: 1, Per: time.Minute, Sliding: true}},
			[]step{
				{0, OpGetInstance, true, 0, false, 4},
				{time.Second, OpGetInstance, false, 59 * time.Second, true, 4},
			}},
		{"a window for some operations only",
			[]RateLimit{{Requests: 1, Per: time.Minute, Sliding: true, Ops: []Op{OpListSSHKeys}}},
			[]step{
				{0, OpListSSHKeys, true, 0, false, 0},
				{0, OpGetInstance, true, 0, false, -1},
				{time.Second, OpListSSHKeys, false, 59 * time.Second, true, 0},
			}},
		{"token bucket refills continuously",
			[]RateLimit{{Requests: 2, Per: 2 * time.Second}},
			[]step{
				{0, OpGetInstance, true, 0, false, 1},
				{0, OpGetInstance, true, 0, false, 0},
				{0, OpGetInstance, false, time.Second, true, 0},
				{time.Second, OpGetInstance, true, 0, false, 0},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, clk, _ := newTestCloud(t, Options{Tokens: []string{"t"}, RateLimits: tc.limits, RetryAfter: RetryAfterWholeSeconds})
			start := clk.now()
			for i, s := range tc.steps {
				clk.set(start.Add(s.at))
				d, err := c.Admit(s.op, "t")
				if err != nil {
					t.Fatal(err)
				}
				if ok := d.Fault == FaultNone; ok != s.ok || d.Throttled == s.ok {
					t.Fatalf("step %d: admitted %v (%+v), want %v", i, ok, d, s.ok)
				}
				if !s.ok && (d.RetryAfter != s.wait || d.SendRetryAfter != s.sendRA) {
					t.Errorf("step %d: retry after %v (sent %v), want %v (sent %v)", i, d.RetryAfter, d.SendRetryAfter, s.wait, s.sendRA)
				}
				if s.remains >= 0 && (len(d.Windows) == 0 || d.Windows[0].Remaining != s.remains) {
					t.Errorf("step %d: windows %+v, want %d remaining", i, d.Windows, s.remains)
				}
			}
		})
	}
}

func TestSlidingReset(t *testing.T) {
	t.Parallel()
	c, clk, _ := newTestCloud(t, Options{Tokens: []string{"t"}, RateLimits: []RateLimit{{Requests: 10, Per: time.Hour, Sliding: true}}})
	t0 := clk.now()
	_, _ = c.Admit(OpGetInstance, "t")
	clk.advance(20 * time.Minute)
	d, _ := c.Admit(OpGetInstance, "t")
	// The reset is when the oldest request expires, not a full hour ahead.
	if w := d.Windows[0]; !w.Reset.Equal(t0.Add(time.Hour)) || w.Remaining != 8 {
		t.Errorf("window %+v, want 8 remaining and reset at %v", w, t0.Add(time.Hour))
	}
}

func TestBucketCharges(t *testing.T) {
	t.Parallel()
	c, clk, _ := newTestCloud(t, Options{Tokens: []string{"t"}, Buckets: map[string]RateLimit{
		"request":  {Requests: 2, Per: time.Second},
		"resource": {Requests: 10, Per: 5 * time.Second, NoRetryAfter: true},
	}})
	admit := func(scope string, charges ...Charge) Decision {
		d, err := c.AdmitCall(Call{Op: OpCreateInstance, Credential: "t", Scope: scope, Charges: charges})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	run := func(n int) []Charge {
		return []Charge{{Bucket: "request", Key: "Run"}, {Bucket: "resource", Key: "Run", Tokens: n}}
	}
	if d := admit("r1", run(8)...); d.Throttled {
		t.Fatalf("first launch of 8 throttled: %+v", d)
	}
	d := admit("r1", run(3)...)
	if !d.Throttled || d.SendRetryAfter || d.RetryAfter != time.Second/2 {
		t.Errorf("3 more with 2 resource tokens left: %+v, want throttled for 0.5 s without Retry-After", d)
	}
	if d := admit("r1", run(2)...); d.Throttled {
		t.Errorf("2 more: throttled %+v (a refused call must take nothing)", d)
	}
	if d := admit("r1", Charge{Bucket: "request", Key: "Run"}); !d.Throttled || !d.SendRetryAfter {
		t.Errorf("third request in a second: %+v, want throttled with Retry-After", d)
	}
	if d := admit("r1", Charge{Bucket: "request", Key: "Describe"}); d.Throttled {
		t.Errorf("another action's bucket is its own: %+v", d)
	}
	if d := admit("r2", run(10)...); d.Throttled {
		t.Errorf("another region's buckets are its own: %+v", d)
	}
	if d := admit("r1", Charge{Bucket: "undefined"}); d.Throttled {
		t.Errorf("a bucket the options lack charges nothing: %+v", d)
	}
	clk.advance(time.Second)
	if d := admit("r1", run(2)...); d.Throttled {
		t.Errorf("after a second: %+v", d)
	}
}

func TestLateIPAndDeterminism(t *testing.T) {
	t.Parallel()
	draw := func(seed uint64) (late int, spans []time.Duration) {
		c, _, img := newTestCloud(t, Options{Seed: seed, BootDelay: 10 * time.Second, BootJitter: 0.3, LateIPFraction: 0.3, LateIPDelay: 20 * time.Second})
		for i := range 100 {
			in, _, err := c.CreateInstance(InstanceSpec{Name: fmt.Sprint("m", i), ImageID: img})
			if err != nil {
				t.Fatal(err)
			}
			if in.IPAt.After(in.ReadyAt) {
				late++
				if got := in.IPAt.Sub(in.ReadyAt); got != 20*time.Second {
					t.Errorf("a late IP came %v after running, want 20s", got)
				}
				if st := in.State(in.ReadyAt); st != StateActive || in.PublicIPv4(in.ReadyAt).IsValid() {
					t.Errorf("at running: state %s, IP %v; want active without an IP", st, in.PublicIPv4(in.ReadyAt))
				}
			}
			spans = append(spans, in.ReadyAt.Sub(in.CreatedAt))
		}
		return late, spans
	}
	l1, s1 := draw(7)
	l2, s2 := draw(7)
	if l1 != l2 || fmt.Sprint(s1) != fmt.Sprint(s2) {
		t.Fatal("the same seed drew different boots")
	}
	if l1 < 15 || l1 > 45 {
		t.Errorf("%d of 100 machines had a late IP at a fraction of 0.3", l1)
	}
}

func TestSnapshotsSlowAndFailing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   Options
		inject bool
		fails  bool
	}{
		{"fail rate 1", Options{SnapshotFailRate: 1}, false, true},
		{"injected", Options{}, true, true},
		{"fine", Options{}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The realistic world: snapshots of 5 minutes ±50 %.
			opts := Realistic(1)
			opts.SnapshotDelay, opts.SnapshotFailRate = 5*time.Minute, tc.opts.SnapshotFailRate
			c, clk, img := newTestCloud(t, opts)
			in, _, _ := c.CreateInstance(InstanceSpec{Name: "a", ImageID: img})
			if tc.inject {
				c.Inject(Fault{Op: OpGetImage, Kind: FaultSnapshotFailed}) // the op is ignored: it applies to snapshots
			}
			snap, act, err := c.CreateSnapshot(SnapshotSpec{InstanceID: in.ID, Name: "s", VolumeSnapshots: true})
			if err != nil {
				t.Fatal(err)
			}
			if st := snap.State(clk.now()); st != ImagePending {
				t.Fatalf("new snapshot state %s, want pending", st)
			}
			if d := snap.ReadyAt.Sub(clk.now()); d < 150*time.Second || d > 450*time.Second {
				t.Fatalf("snapshot takes %v, want 5 minutes ±50 %%", d)
			}
			clk.set(snap.ReadyAt.Add(-time.Second))
			if got, _ := c.GetImage(snap.ID); got.State(clk.now()) != ImagePending {
				t.Fatalf("a second before its end: state %s, want pending", got.State(clk.now()))
			}
			clk.set(snap.ReadyAt)
			got, _ := c.GetImage(snap.ID)
			a, _ := c.GetAction(act.ID)
			want := ImageAvailable
			if tc.fails {
				want = ImageFailed
			}
			if got.State(clk.now()) != want || a.Failed != tc.fails || got.Available(clk.now()) == tc.fails {
				t.Errorf("after the delay: state %s, action failed %v; want %s", got.State(clk.now()), a.Failed, want)
			}
			if tc.inject && c.Stats().FaultsInjected[FaultSnapshotFailed] != 1 {
				t.Error("the injected failure was not counted")
			}
			if n, want := c.Stats().FailedSnapshots, map[bool]int{true: 1}[tc.fails]; n != want {
				t.Errorf("FailedSnapshots = %d, want %d", n, want)
			}
			if _, _, err := c.CreateInstance(InstanceSpec{Name: "b", ImageID: snap.ID}); tc.fails && err == nil {
				t.Error("a machine booted from a failed snapshot")
			}
		})
	}
}

func TestDestroyWindow(t *testing.T) {
	t.Parallel()
	opts := Realistic(1)
	opts.DestroyDelay, opts.Retention = 30*time.Second, time.Hour
	c, clk, img := newTestCloud(t, opts)
	in, _, _ := c.CreateInstance(InstanceSpec{Name: "a", ImageID: img})
	clk.set(in.ReadyAt.Add(time.Second)) // booted: it has its IP (a late one comes later)
	if in.IPAt.After(in.ReadyAt) {
		clk.set(in.IPAt.Add(time.Second))
	}
	act, err := c.DeleteInstance(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetInstance(in.ID)
	if err != nil || got.State(clk.now()) != StateDeleting || !got.PublicIPv4(clk.now()).IsValid() {
		t.Fatalf("right after delete: %v, state %s; want readable, deleting, with its IP", err, got.State(clk.now()))
	}
	if _, total := c.ListInstances(nil, 0, 0, false); total != 1 {
		t.Errorf("a machine being deleted is not listed")
	}
	if st := c.Stats(); st.LiveInstances != 0 || st.DeletingInstances != 1 || len(c.LiveInstances()) != 0 || len(c.DeletingInstances()) != 1 {
		t.Errorf("stats %+v: a machine being deleted is not live", st)
	}
	again, err := c.DeleteInstance(in.ID)
	if err != nil || again.ID != act.ID {
		t.Errorf("second delete: %+v, %v; want the first delete's action", again, err)
	}
	if _, _, err := c.CreateSnapshot(SnapshotSpec{InstanceID: in.ID, Name: "s"}); err == nil {
		t.Error("snapshot of a machine being deleted")
	} else {
		wantCode(t, err, CodeIncorrect)
	}
	clk.advance(30 * time.Second)
	if _, err := c.GetInstance(in.ID); err == nil {
		t.Error("readable after the destroy window")
	}
	if a, _ := c.GetAction(act.ID); !a.Done(clk.now()) {
		t.Error("delete action not done once the machine is gone")
	}
	if _, err := c.DeleteInstance(in.ID); err == nil {
		t.Error("deleting a gone machine succeeded")
	}
	if got, err := c.LookupInstance(in.ID); err != nil || got.State(clk.now()) != StateDeleted {
		t.Errorf("retained after it is gone: %v", err)
	}
	clk.advance(time.Hour)
	if _, err := c.LookupInstance(in.ID); err == nil {
		t.Error("retained past Retention after the machine was gone")
	}
}

func TestListingLag(t *testing.T) {
	t.Parallel()
	c, clk, img := newTestCloud(t, Options{ConsistencyDelay: time.Second, ListingDelay: 5 * time.Second})
	in, _, _ := c.CreateInstance(InstanceSpec{Name: "a", ImageID: img})
	steps := []struct {
		after       time.Duration
		get, listed bool
	}{{0, false, false}, {time.Second, true, false}, {4 * time.Second, true, true}}
	for _, s := range steps {
		clk.advance(s.after)
		_, err := c.GetInstance(in.ID)
		_, total := c.ListInstances(nil, 0, 0, false)
		if (err == nil) != s.get || (total == 1) != s.listed {
			t.Errorf("at +%v: readable %v, listed %v; want %v, %v", s.after, err == nil, total == 1, s.get, s.listed)
		}
	}
}

func TestCapacityAndQuota(t *testing.T) {
	t.Parallel()
	c, clk, img := newTestCloud(t, Options{DestroyDelay: 10 * time.Second, MaxInstances: 5,
		Capacity: []Capacity{{Region: "r1", Size: "s", Max: 2}}})
	mk := func(name, region, size string) error {
		_, _, err := c.CreateInstance(InstanceSpec{Name: name, Region: region, Size: size, ImageID: img})
		return err
	}
	for i := range 2 {
		if err := mk(fmt.Sprint("a", i), "r1", "s"); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, mk("a2", "r1", "s"), CodeCapacity)
	if n := c.Stats().CapacityRefused; n != 1 {
		t.Errorf("CapacityRefused = %d, want 1", n)
	}
	if err := mk("b", "r1", "other"); err != nil {
		t.Errorf("another size of the region: %v", err)
	}
	if err := mk("c", "r2", "s"); err != nil {
		t.Errorf("the size in another region: %v", err)
	}
	first := c.LiveInstances()[0]
	if _, err := c.DeleteInstance(first.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, mk("a2", "r1", "s"), CodeCapacity) // the machine still exists while it is destroyed
	clk.advance(10 * time.Second)
	if err := mk("a2", "r1", "s"); err != nil {
		t.Errorf("after the destroy: %v", err)
	}
	c.SetCapacity("r1", "s", -1)
	c.DisableRegion("r3", true)
	wantCode(t, mk("d", "r3", "s"), CodeRegionDisabled)
	c.DisableRegion("r3", false)
	if err := mk("d", "r3", "s"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, mk("e", "r1", "s"), CodeQuota) // 5 live: the quota, not capacity
	c.SetCapacity("", "", 0)
	c.Inject(Fault{Op: OpCreateInstance, Kind: FaultCapacity})
	if d, _ := c.Admit(OpCreateInstance, c.Token()); d.Fault != FaultCapacity {
		t.Errorf("injected capacity fault: %v", d.Fault)
	}
}

func TestCreateInstancesReservation(t *testing.T) {
	t.Parallel()
	c, _, img := newTestCloud(t, Options{StrictClientTokens: On, Capacity: []Capacity{{Size: "s", Max: 3}}})
	spec := InstanceSpec{Name: "fleet", Size: "s", ImageID: img, ClientToken: "tok", Params: "p1"}
	if _, _, err := c.CreateInstances(spec, 4, 5); err == nil {
		t.Fatal("launched fewer than MinCount")
	} else {
		wantCode(t, err, CodeCapacity)
	}
	ins, created, err := c.CreateInstances(spec, 2, 5)
	if err != nil || !created || len(ins) != 3 {
		t.Fatalf("CreateInstances(2..5) with room for 3: %d, %v, %v", len(ins), created, err)
	}
	for i, in := range ins {
		if in.Reservation != ins[0].ID || in.LaunchIndex != i {
			t.Errorf("instance %d: reservation %d index %d", i, in.Reservation, in.LaunchIndex)
		}
	}
	if st := c.Stats(); st.Duplicates != 0 {
		t.Errorf("one reservation counted %d duplicates", st.Duplicates)
	}
	again, created, err := c.CreateInstances(spec, 2, 5)
	if err != nil || created || len(again) != 3 || again[2].ID != ins[2].ID {
		t.Errorf("same token: %d instances, created %v, %v; want the 3 again", len(again), created, err)
	}
	other := spec
	other.Params = "p2"
	_, _, err = c.CreateInstances(other, 2, 5)
	wantCode(t, err, CodeIdempotency)
}

func TestClientTokenParams(t *testing.T) {
	t.Parallel()
	for _, strict := range []Switch{Off, On} {
		t.Run(fmt.Sprint("strict ", strict == On), func(t *testing.T) {
			t.Parallel()
			c, _, img := newTestCloud(t, Options{StrictClientTokens: strict})
			spec := InstanceSpec{Name: "x", ImageID: img, ClientToken: "tok", Params: "user-data=1"}
			if _, _, err := c.CreateInstance(spec); err != nil {
				t.Fatal(err)
			}
			spec.Params = "user-data=2"
			_, _, err := c.CreateInstance(spec)
			if strict == On {
				wantCode(t, err, CodeIdempotency)
			} else if err != nil {
				t.Errorf("non-strict token with other user data: %v", err)
			}
		})
	}
}

func TestLockActions(t *testing.T) {
	t.Parallel()
	// The realistic world (jittered boots and snapshots) with locks on, as
	// hcloudsim turns them on for Hetzner.
	opts := Realistic(1)
	opts.LockActions, opts.SnapshotDelay, opts.DestroyDelay = On, time.Minute, 5*time.Second
	c, clk, img := newTestCloud(t, opts)
	in, _, _ := c.CreateInstance(InstanceSpec{Name: "a", ImageID: img})
	_, err := c.DeleteInstance(in.ID)
	wantCode(t, err, CodeLocked) // still booting
	_, _, err = c.CreateSnapshot(SnapshotSpec{InstanceID: in.ID})
	wantCode(t, err, CodeLocked)
	clk.set(in.ReadyAt.Add(-time.Second))
	_, err = c.DeleteInstance(in.ID)
	wantCode(t, err, CodeLocked) // a second before its boot ends
	clk.set(in.ReadyAt)
	snap, _, err := c.CreateSnapshot(SnapshotSpec{InstanceID: in.ID})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteInstance(in.ID)
	wantCode(t, err, CodeLocked) // snapshotting
	clk.set(snap.ReadyAt)
	act, err := c.DeleteInstance(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteInstance(in.ID)
	wantCode(t, err, CodeLocked) // being deleted
	clk.set(act.DoneAt)
	_, err = c.DeleteInstance(in.ID)
	wantCode(t, err, CodeNotFound)
}

func TestRepublishImage(t *testing.T) {
	t.Parallel()
	c, clk, img := newTestCloud(t, Options{})
	clk.advance(24 * time.Hour)
	next, err := c.RepublishImage(img, "ubuntu-24.04-next")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := c.GetImage(img)
	m, _ := c.GetImage(next)
	if next == img || m.Name != "ubuntu-24.04-next" || !m.CreatedAt.After(old.CreatedAt) || m.Distribution != old.Distribution || !m.Available(clk.now()) {
		t.Errorf("republished %+v from %+v", m, old)
	}
	if _, err := c.RepublishImage(1, "x"); err == nil {
		t.Error("republished a missing image")
	}
}

func TestServeStyles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  Options
		fault FaultKind
		delay time.Duration
		want  string // Retry-After, "" for none
	}{
		{"fractional, the simple world's", Options{World: WorldSimple}, FaultRateLimit, 50 * time.Millisecond, "0.050"},
		{"whole seconds", Options{RetryAfter: RetryAfterWholeSeconds}, FaultRateLimit, 50 * time.Millisecond, "1"},
		{"whole seconds rounded up", Options{RetryAfter: RetryAfterWholeSeconds}, FaultRateLimit, 2100 * time.Millisecond, "3"},
		{"scaled", Options{RetryAfter: RetryAfterWholeSeconds, TimeScale: 0.01}, FaultRateLimit, 250 * time.Second, "3"},
		{"never", Options{RetryAfter: RetryAfterNever}, FaultRateLimit, time.Second, ""},
		{"realistic world sends whole seconds", Realistic(1), FaultRateLimit, 1500 * time.Millisecond, "2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.Tokens = []string{"tok"}
			c := New(tc.opts)
			c.Inject(Fault{Op: OpGetInstance, Kind: tc.fault, Delay: tc.delay})
			srv := NewServer(c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.Serve(w, r, plainDialect{}, OpGetInstance, "tok", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "{}") })
			}))
			t.Cleanup(srv.Close)
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Retry-After"); got != tc.want || resp.StatusCode != 429 {
				t.Errorf("HTTP %d, Retry-After %q, want 429 and %q", resp.StatusCode, got, tc.want)
			}
		})
	}
}

// TestFailedSnapshotDiscarded: where the cloud keeps no image of a failed
// snapshot (DigitalOcean), the failure leaves no resource: the action
// fails, and the image is neither read, listed nor billed; elsewhere the
// failed image stays until deleted.
func TestFailedSnapshotDiscarded(t *testing.T) {
	t.Parallel()
	for _, discard := range []bool{true, false} {
		t.Run(fmt.Sprint("discard ", discard), func(t *testing.T) {
			t.Parallel()
			opts := Realistic(1)
			opts.SnapshotDelay = time.Minute
			c, clk, img := newTestCloud(t, opts)
			in, _, _ := c.CreateInstance(InstanceSpec{Name: "a", ImageID: img})
			clk.set(in.ReadyAt)
			c.Inject(Fault{Kind: FaultSnapshotFailed})
			snap, act, err := c.CreateSnapshot(SnapshotSpec{InstanceID: in.ID, Name: "s", DiscardFailed: discard, VolumeSnapshots: true})
			if err != nil {
				t.Fatal(err)
			}
			clk.set(snap.ReadyAt)
			a, _ := c.GetAction(act.ID)
			_, gerr := c.GetImage(snap.ID)
			st := c.Stats()
			if !a.Failed || st.FailedSnapshots != 1 {
				t.Errorf("action %+v, %d failed snapshots; want the action failed and counted", a, st.FailedSnapshots)
			}
			if left := st.LiveSnapshots + st.LiveVolumeSnapshots; (left == 0) != discard || (gerr != nil) != discard {
				t.Errorf("after the failure: %d snapshots and volume snapshots live, GetImage %v; want none and not found when discarded, the failed image otherwise", left, gerr)
			}
		})
	}
}
