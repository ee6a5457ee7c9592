package simcloud

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for deterministic model tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}
func (f *fakeClock) set(t time.Time) {
	f.mu.Lock()
	f.t = t
	f.mu.Unlock()
}

func newTestCloud(t *testing.T, opts Options) (*Cloud, *fakeClock, int64) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	opts.Now = clk.now
	c := New(opts)
	img := c.AddImage(Image{Name: "ubuntu-24.04", Distribution: "Ubuntu", Version: "24.04", Arch: "x86_64"})
	return c, clk, img
}

func TestInstanceBootsAndGetsIP(t *testing.T) {
	t.Parallel()
	// The simple world: a boot of exactly BootDelay, no late IPs.
	c, clk, img := newTestCloud(t, Options{World: WorldSimple, BootDelay: 10 * time.Second, IPFraction: 0.5})
	in, created, err := c.CreateInstance(InstanceSpec{Name: "a", Region: "r", Size: "s", ImageID: img, Labels: map[string]string{"managed-by": "spuff"}})
	if err != nil || !created {
		t.Fatalf("CreateInstance = %v, %v", created, err)
	}
	now := clk.now()
	if in.State(now) != "new" || in.PublicIPv4(now).IsValid() {
		t.Fatalf("fresh instance: state %s ip %v, want new without IP", in.State(now), in.PublicIPv4(now))
	}
	clk.advance(6 * time.Second)
	got, _ := c.GetInstance(in.ID)
	if got.State(clk.now()) != "new" || !got.PublicIPv4(clk.now()).IsValid() {
		t.Fatalf("at 60%% of boot: state %s ip %v, want new with IP", got.State(clk.now()), got.PublicIPv4(clk.now()))
	}
	clk.advance(5 * time.Second)
	if got.State(clk.now()) != "active" {
		t.Fatalf("after boot: state %s, want active", got.State(clk.now()))
	}
	if !got.PublicIPv4(clk.now()).Is4() || !got.PublicIPv6(clk.now()).Is6() {
		t.Fatalf("addresses %v %v", got.IPv4, got.IPv6)
	}
	acts := c.ActionsFor("instance", in.ID)
	if len(acts) != 1 || !acts[0].Done(clk.now()) {
		t.Fatalf("create action %+v, want one done", acts)
	}
}

func TestCreateRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		prep func(c *Cloud, img int64)
		spec func(img int64) InstanceSpec
		code Code
	}{
		{"unknown region", Options{Regions: []string{"fsn1"}}, nil,
			func(img int64) InstanceSpec { return InstanceSpec{Name: "a", Region: "nowhere", ImageID: img} }, CodeInvalid},
		{"unknown size", Options{Sizes: map[string]Size{"cx22": {Arch: "x86_64"}}}, nil,
			func(img int64) InstanceSpec { return InstanceSpec{Name: "a", Size: "huge", ImageID: img} }, CodeInvalid},
		{"arch mismatch", Options{Sizes: map[string]Size{"cax11": {Arch: "arm64"}}}, nil,
			func(img int64) InstanceSpec { return InstanceSpec{Name: "a", Size: "cax11", ImageID: img} }, CodeInvalid},
		{"unknown image", Options{}, nil,
			func(img int64) InstanceSpec { return InstanceSpec{Name: "a", ImageID: img + 1000} }, CodeInvalid},
		{"unknown key", Options{}, nil,
			func(img int64) InstanceSpec { return InstanceSpec{Name: "a", ImageID: img, SSHKeyIDs: []int64{1}} }, CodeInvalid},
		{"quota", Options{MaxInstances: 1}, func(c *Cloud, img int64) {
			_, _, _ = c.CreateInstance(InstanceSpec{Name: "first", ImageID: img})
		}, func(img int64) InstanceSpec { return InstanceSpec{Name: "second", ImageID: img} }, CodeQuota},
		{"unique names", Options{UniqueNames: true}, func(c *Cloud, img int64) {
			_, _, _ = c.CreateInstance(InstanceSpec{Name: "same", ImageID: img})
		}, func(img int64) InstanceSpec { return InstanceSpec{Name: "same", ImageID: img} }, CodeConflict},
		{"client token reused differently", Options{}, func(c *Cloud, img int64) {
			_, _, _ = c.CreateInstance(InstanceSpec{Name: "x", ImageID: img, ClientToken: "tok"})
		}, func(img int64) InstanceSpec { return InstanceSpec{Name: "y", ImageID: img, ClientToken: "tok"} }, CodeIdempotency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _, img := newTestCloud(t, tc.opts)
			if tc.prep != nil {
				tc.prep(c, img)
			}
			_, _, err := c.CreateInstance(tc.spec(img))
			var me *Error
			if !errors.As(err, &me) || me.Code != tc.code {
				t.Fatalf("CreateInstance error = %v, want code %s", err, tc.code)
			}
		})
	}
}

func TestClientTokenIdempotent(t *testing.T) {
	t.Parallel()
	c, _, img := newTestCloud(t, Options{})
	spec := InstanceSpec{Name: "x", ImageID: img, ClientToken: "tok-1"}
	a, created1, err1 := c.CreateInstance(spec)
	b, created2, err2 := c.CreateInstance(spec)
	if err1 != nil || err2 != nil || !created1 || created2 || a.ID != b.ID {
		t.Fatalf("same client token: (%d,%v,%v) then (%d,%v,%v), want one instance", a.ID, created1, err1, b.ID, created2, err2)
	}
	if n := len(c.LiveInstances()); n != 1 {
		t.Fatalf("%d live instances, want 1", n)
	}
}

func TestDuplicatesCounted(t *testing.T) {
	t.Parallel()
	c, _, img := newTestCloud(t, Options{})
	for range 3 {
		if _, _, err := c.CreateInstance(InstanceSpec{Name: "dup", ImageID: img}); err != nil {
			t.Fatal(err)
		}
	}
	if d := c.Stats().Duplicates; d != 2 {
		t.Fatalf("Duplicates = %d, want 2", d)
	}
}

func TestListPagingAndRetention(t *testing.T) {
	t.Parallel()
	// The simple world: a delete is gone at once (TestDestroyWindow has
	// the realistic window).
	c, clk, _ := newTestCloud(t, Options{World: WorldSimple, Retention: time.Minute})
	ids := c.AddInstances(25, func(i int) InstanceSpec {
		l := map[string]string{}
		if i%2 == 0 {
			l["managed-by"] = "spuff"
		}
		return InstanceSpec{Name: fmt.Sprint("n", i), Labels: l}
	})
	managed := func(in *Instance) bool { return in.Labels["managed-by"] == "spuff" }
	var got []int64
	for off := 0; ; off += 5 {
		page, total := c.ListInstances(managed, off, 5, false)
		if total != 13 {
			t.Fatalf("total = %d, want 13", total)
		}
		for _, in := range page {
			got = append(got, in.ID)
		}
		if off+5 >= total {
			break
		}
	}
	if len(got) != 13 || got[0] != ids[0] || got[12] != ids[24] {
		t.Fatalf("paged IDs %v", got)
	}
	if _, err := c.DeleteInstance(ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteInstance(ids[0]); err == nil {
		t.Fatal("second delete succeeded, want not found")
	}
	if _, err := c.GetInstance(ids[0]); err == nil {
		t.Fatal("GetInstance of deleted instance succeeded")
	}
	if in, err := c.LookupInstance(ids[0]); err != nil || in.State(clk.now()) != "deleted" {
		t.Fatalf("LookupInstance within retention = %v, %v", in.State(clk.now()), err)
	}
	if _, total := c.ListInstances(managed, 0, 0, true); total != 13 {
		t.Fatalf("retained listing total %d, want 13", total)
	}
	clk.advance(2 * time.Minute)
	if _, err := c.LookupInstance(ids[0]); err == nil {
		t.Fatal("LookupInstance after retention succeeded")
	}
}

func TestSnapshotsAndVolumes(t *testing.T) {
	t.Parallel()
	// The simple world: a snapshot takes exactly SnapshotDelay
	// (TestSnapshotsSlowAndFailing has the realistic spread and failures).
	c, clk, img := newTestCloud(t, Options{World: WorldSimple, SnapshotDelay: time.Second})
	in, _, _ := c.CreateInstance(InstanceSpec{Name: "a", ImageID: img})
	snap, act, err := c.CreateSnapshot(SnapshotSpec{InstanceID: in.ID, Name: "s", VolumeSnapshots: true, Labels: map[string]string{"managed-by": "spuff"}})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Available(clk.now()) || act.Done(clk.now()) {
		t.Fatal("snapshot available at once")
	}
	clk.advance(time.Second)
	if got, _ := c.GetImage(snap.ID); !got.Available(clk.now()) {
		t.Fatal("snapshot not available after the delay")
	}
	if len(snap.VolumeSnaps) != 1 {
		t.Fatalf("volume snapshots %v", snap.VolumeSnaps)
	}
	var me *Error
	if err := c.DeleteVolumeSnapshot(snap.VolumeSnaps[0]); !errors.As(err, &me) || me.Code != CodeDependency {
		t.Fatalf("deleting a volume snapshot in use: %v, want dependency violation", err)
	}
	if err := c.DeleteImage(snap.ID, false); err != nil {
		t.Fatal(err)
	}
	if n := len(c.LiveVolumeSnapshots()); n != 1 {
		t.Fatalf("deregistering without volumes left %d volume snapshots, want 1 (still billed)", n)
	}
	if err := c.DeleteVolumeSnapshot(snap.VolumeSnaps[0]); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.LiveSnapshots != 0 || st.LiveVolumeSnapshots != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := c.DeleteImage(img, true); err == nil {
		t.Fatal("deleting a public image succeeded")
	}
}

func TestAdmitAuthAndRateLimit(t *testing.T) {
	t.Parallel()
	c, clk, _ := newTestCloud(t, Options{Tokens: []string{"good"}, RateLimits: []RateLimit{{Requests: 3, Per: 3 * time.Second}}})
	if _, err := c.Admit(OpGetInstance, "bad"); err == nil || err.Code != CodeUnauthorized {
		t.Fatalf("bad token: %v", err)
	}
	for i := range 3 {
		d, err := c.Admit(OpGetInstance, "good")
		if err != nil || d.Fault != FaultNone {
			t.Fatalf("call %d: %+v %v", i, d, err)
		}
		if d.Windows[0].Remaining != 2-i {
			t.Fatalf("call %d: remaining %d, want %d", i, d.Windows[0].Remaining, 2-i)
		}
	}
	d, _ := c.Admit(OpGetInstance, "good")
	if d.Fault != FaultRateLimit || !d.Throttled || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
		t.Fatalf("4th call: %+v, want throttled with retry-after <= 1s", d)
	}
	clk.advance(time.Second)
	if d, _ := c.Admit(OpGetInstance, "good"); d.Fault != FaultNone {
		t.Fatalf("after refill: %+v", d)
	}
	st := c.Stats()
	if st.Calls[OpGetInstance] != 6 || st.RateLimited != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInjectedFaultsInOrder(t *testing.T) {
	t.Parallel()
	c, _, _ := newTestCloud(t, Options{Tokens: []string{"t"}})
	c.Inject(Fault{Op: OpGetInstance, Kind: FaultUnavailable, Count: 2})
	c.Inject(Fault{Op: OpGetInstance, Kind: FaultRateLimit})
	var got []FaultKind
	for range 4 {
		d, _ := c.Admit(OpGetInstance, "t")
		got = append(got, d.Fault)
	}
	want := []FaultKind{FaultUnavailable, FaultUnavailable, FaultRateLimit, FaultNone}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("faults %v, want %v", got, want)
	}
	if d, _ := c.Admit(OpListInstances, "t"); d.Fault != FaultNone {
		t.Fatalf("fault leaked to another op: %v", d.Fault)
	}
}

func TestRandomFaultsDeterministic(t *testing.T) {
	t.Parallel()
	draw := func() []FaultKind {
		c, _, _ := newTestCloud(t, Options{Seed: 42, Tokens: []string{"t"}})
		c.SetRandomFaults(RandomFaults{Rate: 0.3, Kinds: []FaultKind{FaultInternal, FaultDrop, FaultSlow}})
		var out []FaultKind
		for range 200 {
			d, _ := c.Admit(OpGetInstance, "t")
			out = append(out, d.Fault)
		}
		return out
	}
	a, b := draw(), draw()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed drew different faults")
	}
	n := 0
	for _, k := range a {
		if k != FaultNone {
			n++
		}
	}
	if n < 30 || n > 90 {
		t.Fatalf("%d of 200 calls faulted at rate 0.3", n)
	}
}

func TestConsistencyFault(t *testing.T) {
	t.Parallel()
	c, clk, img := newTestCloud(t, Options{})
	c.Inject(Fault{Op: OpCreateInstance, Kind: FaultConsistency, Delay: 2 * time.Second})
	in, _, _ := c.CreateInstance(InstanceSpec{Name: "a", ImageID: img})
	if _, err := c.GetInstance(in.ID); err == nil {
		t.Fatal("instance visible inside the consistency window")
	}
	if _, total := c.ListInstances(nil, 0, 0, false); total != 0 {
		t.Fatal("instance listed inside the consistency window")
	}
	clk.advance(2 * time.Second)
	if _, err := c.GetInstance(in.ID); err != nil {
		t.Fatalf("instance invisible after the window: %v", err)
	}
	if c.Stats().FaultsInjected[FaultConsistency] != 1 {
		t.Fatal("consistency fault not counted")
	}
	in2, _, _ := c.CreateInstance(InstanceSpec{Name: "b", ImageID: img})
	if _, err := c.GetInstance(in2.ID); err != nil {
		t.Fatal("the consistency fault applied to a second create")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	t.Parallel()
	c, _, img := newTestCloud(t, Options{})
	in, _, _ := c.CreateInstance(InstanceSpec{Name: "keep", ImageID: img, UserData: "#!/bin/sh", Labels: map[string]string{"a": "b"}})
	gone, _, _ := c.CreateInstance(InstanceSpec{Name: "gone", ImageID: img})
	_, _ = c.DeleteInstance(gone.ID)
	var buf bytes.Buffer
	if err := c.Save(&buf); err != nil {
		t.Fatal(err)
	}
	d, err := Load(&buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.GetInstance(in.ID)
	if err != nil || got.UserData != "#!/bin/sh" || got.Labels["a"] != "b" || got.IPv4 != in.IPv4 {
		t.Fatalf("reloaded instance %+v, %v", got, err)
	}
	if len(d.LiveInstances()) != 1 || len(d.SSHKeys()) != len(c.SSHKeys()) {
		t.Fatalf("reloaded %d instances, %d keys", len(d.LiveInstances()), len(d.SSHKeys()))
	}
	if !d.Authorized(c.Token()) {
		t.Fatal("the saved token is not accepted after Load")
	}
	n, _, _ := d.CreateInstance(InstanceSpec{Name: "new", ImageID: img})
	if n.ID <= in.ID || n.IPv4 == in.IPv4 {
		t.Fatalf("IDs or IPs reused after Load: %d/%v vs %d/%v", n.ID, n.IPv4, in.ID, in.IPv4)
	}
	if _, err := Load(strings.NewReader(`{"version":9}`), Options{}); err == nil {
		t.Fatal("Load accepted an unknown version")
	}
}

// plainDialect renders errors as JSON for the Serve tests.
type plainDialect struct{}

func (plainDialect) WriteError(w http.ResponseWriter, _ *http.Request, err *Error) {
	status := map[Code]int{CodeUnauthorized: 401, CodeRateLimited: 429, CodeInternal: 500, CodeBadGateway: 502, CodeUnavailable: 503, CodeNotFound: 404,
		CodeCapacity: 412, CodeRegionDisabled: 412, CodeLocked: 423, CodeChanged: 409}[err.Code]
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": string(err.Code)})
}

func (plainDialect) RateHeaders(h http.Header, ws []WindowState) {
	if len(ws) > 0 {
		h.Set("RateLimit-Remaining", fmt.Sprint(ws[0].Remaining))
	}
}

func TestServeFaults(t *testing.T) {
	t.Parallel()
	// The simple world: Retry-After is fractional (TestServeStyles has the
	// realistic styles).
	c := New(Options{World: WorldSimple, Tokens: []string{"tok"}, RateLimits: []RateLimit{{Requests: 1000, Per: time.Hour}}})
	var ran sync.Map
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Serve(w, r, plainDialect{}, Op(r.URL.Path[1:]), r.Header.Get("X-Token"), func(w http.ResponseWriter) {
			ran.Store(r.URL.Path, true)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true,"padding":"0123456789"}`)
		})
	})
	srv := NewServer(c, h)
	t.Cleanup(srv.Close)
	get := func(op Op, token string) (int, string, http.Header, error) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/"+string(op), nil) // POST: the client never replays it
		req.Header.Set("X-Token", token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header, err
	}
	tests := []struct {
		kind    FaultKind
		status  int
		ran     bool
		wantErr bool
		check   func(body string, h http.Header) string
	}{
		{FaultNone, 200, true, false, nil},
		{FaultRateLimit, 429, false, false, func(_ string, h http.Header) string {
			if h.Get("Retry-After") != "0.050" {
				return "Retry-After = " + h.Get("Retry-After")
			}
			return ""
		}},
		{FaultRateLimitBare, 429, false, false, func(_ string, h http.Header) string {
			if h.Get("Retry-After") != "" {
				return "bare 429 has Retry-After"
			}
			return ""
		}},
		{FaultInternal, 500, false, false, nil},
		{FaultBadGateway, 502, false, false, nil},
		{FaultUnavailable, 503, false, false, nil},
		{FaultDrop, 0, false, true, nil},
		{FaultLoseResponse, 0, true, true, nil},
		{FaultMalformed, 200, true, false, func(body string, _ http.Header) string {
			if json.Valid([]byte(body)) {
				return "malformed body parses"
			}
			return ""
		}},
		{FaultTruncated, 200, true, true, nil},
		{FaultSlow, 200, true, false, nil},
		{FaultCapacity, 412, false, false, nil},
		{FaultRegionDisabled, 412, false, false, nil},
		{FaultLocked, 423, false, false, nil},
		{FaultConflict, 409, false, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			t.Parallel()
			op := Op("op-" + tc.kind.String())
			if tc.kind != FaultNone {
				c.Inject(Fault{Op: op, Kind: tc.kind, Delay: 50 * time.Millisecond})
			}
			status, body, hdr, err := get(op, "tok")
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if _, ok := ran.Load("/" + string(op)); ok != tc.ran {
				t.Fatalf("operation ran = %v, want %v", ok, tc.ran)
			}
			if !tc.wantErr && hdr.Get("RateLimit-Remaining") == "" {
				t.Errorf("no rate headers")
			}
			if tc.check != nil {
				if msg := tc.check(body, hdr); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
	t.Run("unauthorized", func(t *testing.T) {
		t.Parallel()
		status, _, _, err := get("op-auth", "nope")
		if err != nil || status != 401 {
			t.Fatalf("status %d err %v, want 401", status, err)
		}
	})
}

func TestFormatSeconds(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{0: "0", 20 * time.Millisecond: "0.020", time.Second: "1", 1500 * time.Millisecond: "2", time.Minute: "60"} {
		if got := FormatSeconds(d); got != want {
			t.Errorf("FormatSeconds(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestHugeAnswerStaysOpen: a huge answer never ends its first value, so a
// decoder reads until its bound, whatever the body it is made from (a cut
// just after an array element or a number would be a syntax error at
// once, and prove nothing about the bound).
func TestHugeAnswerStaysOpen(t *testing.T) {
	t.Parallel()
	bodies := []string{
		`{"droplets":[{"id":1,"name":"a","tags":["managed-by:spuff","soak:yes"]}],"links":{},"meta":{"total":1}}`,
		`{"servers":[],"meta":{"pagination":{"page":1,"per_page":50,"next_page":null}}}`,
		`{"id":"not_found","message":"The resource you were accessing could not be found."}`,
		`[{"a":1},{"b":2},{"c":3},{"d":4},{"e":5},{"f":6},{"g":7},{"h":8}]`,
	}
	for _, body := range bodies {
		w := &headWriter{keep: 1 << 20}
		writeHuge(w, []byte(body))
		if w.n < 64<<20 {
			t.Fatalf("huge answer of %d bytes", w.n)
		}
		var v any
		err := json.NewDecoder(&w.head).Decode(&v)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("huge answer made of %s: decoding to the bound gives %v, want unexpected EOF (the value still open)", body, err)
		}
	}
}

// headWriter keeps the first keep bytes written to it and counts them all.
type headWriter struct {
	head bytes.Buffer
	keep int
	n    int
}

func (w *headWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if room := w.keep - w.head.Len(); room > 0 {
		w.head.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
