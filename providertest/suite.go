package providertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// Durations the suite runs with: a simulated boot of 100 ms and waits that
// poll every few milliseconds, so the whole suite takes seconds.
const (
	suiteBoot     = 100 * time.Millisecond
	suiteSnapshot = 100 * time.Millisecond
	faultDelay    = 20 * time.Millisecond
)

// Run runs the conformance suite against the driver h describes. Every check
// is a parallel subtest with its own simulated cloud; checks that need a
// capability the provider reports as missing are skipped.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Start == nil || h.Config == nil || h.Request == nil {
		t.Fatal("providertest: Harness needs Start, Config and Request")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Registered", testRegistered},
		{"Lifecycle", testLifecycle},
		{"InvalidRequestMakesNoCall", testInvalidRequests},
		{"MalformedIDsMakeNoCall", testMalformedIDs},
		{"UserDataAtLimit", testUserDataLimit},
		{"DestroyIsIdempotent", testDestroyIdempotent},
		{"GetMissingIsNotFound", testGetMissing},
		{"ListAllPagesOnlyManaged", testListPages},
		{"OwnerIsolation", testOwnerIsolation},
		{"ImageSpecs", testImageSpecs},
		{"UnknownImageVersion", testUnknownImage},
		{"WaitReadyTimeout", testWaitTimeout},
		{"WaitReadyCancel", testWaitCancel},
		{"WaitReadyRidesOverFaults", testWaitFaults},
		{"Snapshots", testSnapshots},
		{"SnapshotNotSupported", testSnapshotNotSupported},
		{"SSHKeys", testSSHKeys},
		{"ErrorAuthentication", testErrAuth},
		{"ErrorRateLimit", testErrRateLimit},
		{"ErrorQuota", testErrQuota},
		{"ErrorCloudRejectsRequest", testErrCloudInvalid},
		{"LostCreateResponseLeavesOneMachine", testLostCreate},
		{"DroppedCreateLeavesOneMachine", testDroppedCreate},
		{"ConcurrentFleet", testFleet},
		{"LifecyclesUnderRandomFaults", testRandomFaults},
		{"ConcurrentIdenticalCreatesMakeOne", testConcurrentIdentical},
		{"CreateDestroyCyclesOfOneRequest", testCycles},
		{"SameNameOtherSettingsIsConflict", testConflicts},
		{"LostCreateWithListingLagPastLookup", testLagPastLookup},
		{"RepublishedImage", testRepublished},
		{"DestroyedDuringWait", testDestroyedDuringWait},
		{"CancelIsPrompt", testCancelPrompt},
		{"SnapshotTimeoutAndCancelLeaveItFindable", testSnapshotTimeout},
		{"WaitReadyPollsBeforeDeadline", testWaitPollsBeforeDeadline},
		{"OpenWithoutCredentials", testOpenWithoutCredentials},
		{"TTLBounds", testTTLBounds},
		{"Reap", testReap},
		{"SSHReachableWithInstalledKey", testSSHReachable},
		{"SSHKeyNotInstalledIsRefused", testSSHKeyNotInstalled},
		{"SSHWrongHostKeyIsRefused", testSSHWrongHostKey},
		{"SSHCloudInitFailureReported", testSSHCloudInitFailure},
		{"SSHStageTimeoutsNameTheStage", testSSHStageTimeouts},
		{"SSHCancelIsPrompt", testSSHCancel},
		{"SSHHostKeyFromConsole", testSSHConsoleHostKeys},
		{"CapacityIsTyped", testCapacityTyped},
		{"FailoverAcrossRegionsMakesOne", testFailover},
		{"CatalogMatchesCloud", testCatalog},
		{"PickNeverReturnsWhatDoesNotFit", testPickFits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := h.Skip[tc.name]; ok {
				t.Skip(why)
			}
			t.Parallel()
			tc.fn(t, h)
		})
	}
}

// env is one subtest's simulated cloud and provider.
type env struct {
	t     *testing.T
	h     Harness
	srv   *simcloud.Server
	cloud *simcloud.Cloud
	cfg   provider.Config
	p     provider.Provider
	ctx   context.Context
}

var nameSeq atomic.Int64

// name returns a fresh valid instance name.
func (e *env) name(tag string) string {
	return fmt.Sprintf("ct-%s-%d", tag, nameSeq.Add(1))
}

// Scale is the time scale the suite's simulated clouds run at: a second
// of the cloud's time is 10 ms of the test's. The clouds run in the
// realistic world (simcloud.Realistic), every documented delay scaled.
const Scale = 0.01

// cloudTime converts a wall-clock duration of the test into the cloud's
// time, in which Options and faults are given.
func cloudTime(d time.Duration) time.Duration { return time.Duration(float64(d) / Scale) }

// suiteOptions are the cloud options of most subtests.
func suiteOptions() simcloud.Options {
	o := Options()
	o.BootDelay, o.SnapshotDelay = cloudTime(suiteBoot), cloudTime(suiteSnapshot)
	return o
}

// Options returns the realistic world at the suite's time scale, for a
// driver's own tests: machines boot, get their addresses, snapshot and go
// away in their cloud's documented times, scaled by Scale; throttles,
// locks, listing lag and destroy windows are on. Snapshots do not fail at
// random (a test that wants failures asks for them).
func Options() simcloud.Options {
	o := simcloud.Realistic(Scale)
	o.Seed = 1
	o.SnapshotFailRate = -1
	return o
}

// FastConfig tunes cfg for a simulated cloud's scaled-down time, as the
// suite runs: waits that expect a 100 ms boot and poll every few
// milliseconds, retries 5 ms apart, and timeouts of seconds. Driver tests
// outside the suite use it too.
func FastConfig(cfg provider.Config) provider.Config {
	cfg.Timeouts = provider.ProviderTimeouts{
		InstanceReady:  20 * time.Second,
		ActionComplete: 20 * time.Second,
		PollInterval:   50 * time.Millisecond,
		HTTPRequest:    5 * time.Second,
		Lookup:         100 * time.Millisecond,
		SSHConnect:     10 * time.Second,
		CloudInit:      10 * time.Second,
	}
	cfg.WaitPolicy = provider.AdaptiveWait(suiteBoot, 5*time.Millisecond, 50*time.Millisecond)
	cfg.Retry = provider.RetryPolicy{MaxAttempts: 6, InitialDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}
	return cfg
}

func setup(t *testing.T, h Harness, opts simcloud.Options, tweak func(*provider.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	srv := h.Start(t, opts)
	cfg := FastConfig(h.Config(srv))
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := open(ctx, h, cfg)
	if err != nil {
		t.Fatalf("opening %s: %v", h.Name, err)
	}
	return &env{t: t, h: h, srv: srv, cloud: srv.Cloud, cfg: cfg, p: p, ctx: ctx}
}

func open(ctx context.Context, h Harness, cfg provider.Config) (provider.Provider, error) {
	if h.Open != nil {
		return h.Open(ctx, cfg)
	}
	return provider.Open(ctx, h.Name, cfg)
}

func (e *env) modelID(id string) int64 {
	e.t.Helper()
	if e.h.ModelID != nil {
		n, err := e.h.ModelID(id)
		if err != nil {
			e.t.Fatalf("ModelID(%q): %v", id, err)
		}
		return n
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		e.t.Fatalf("ModelID(%q): %v", id, err)
	}
	return n
}

// modelInstance returns the cloud's record of a live instance, visible to
// the API yet or not (eventual consistency).
func (e *env) modelInstance(id string) simcloud.Instance {
	e.t.Helper()
	mid := e.modelID(id)
	for _, in := range e.cloud.LiveInstances() {
		if in.ID == mid {
			return in
		}
	}
	e.t.Fatalf("the simulated cloud has no live instance %s", id)
	return simcloud.Instance{}
}

// liveNamed returns the live instances named name, the cloud's ground truth.
func (e *env) liveNamed(name string) []simcloud.Instance {
	var out []simcloud.Instance
	for _, in := range e.cloud.LiveInstances() {
		if in.Name == name {
			out = append(out, in)
		}
	}
	return out
}

func (e *env) create(req provider.InstanceRequest) *provider.Instance {
	e.t.Helper()
	inst, err := e.p.CreateInstance(e.ctx, req)
	if err != nil {
		e.t.Fatalf("CreateInstance(%s): %v", req.Name, err)
	}
	if inst == nil || inst.ID == "" {
		e.t.Fatalf("CreateInstance(%s) returned no ID: %+v", req.Name, inst)
	}
	return inst
}

func (e *env) waitReady(id string) *provider.Instance {
	e.t.Helper()
	inst, err := e.p.WaitReady(e.ctx, id)
	if err != nil {
		e.t.Fatalf("WaitReady(%s): %v", id, err)
	}
	if !inst.Ready() {
		e.t.Fatalf("WaitReady(%s) returned an instance that is not ready: status %s, IPv4 %v, IPv6 %v", id, inst.Status, inst.PublicIPv4, inst.PublicIPv6)
	}
	return inst
}

func (e *env) destroy(id string) {
	e.t.Helper()
	if err := e.p.DestroyInstance(e.ctx, id); err != nil {
		e.t.Fatalf("DestroyInstance(%s): %v", id, err)
	}
}

// noLeaks checks that the cloud holds no live instance, snapshot or volume
// snapshot.
func (e *env) noLeaks() {
	e.t.Helper()
	st := e.cloud.Stats()
	if st.LiveInstances != 0 || st.LiveSnapshots != 0 || st.LiveVolumeSnapshots != 0 {
		e.t.Errorf("leaked: %d instances, %d snapshots, %d volume snapshots live at the end", st.LiveInstances, st.LiveSnapshots, st.LiveVolumeSnapshots)
	}
	if st.Duplicates != 0 {
		e.t.Errorf("%d duplicate machines were created", st.Duplicates)
	}
}

func wantKind(t *testing.T, err error, sentinel error, what string) *provider.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want %v", what, sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: got %v (kind %q), want %v", what, err, provider.KindOf(err), sentinel)
	}
	var perr *provider.Error
	if !errors.As(err, &perr) {
		t.Fatalf("%s: %v is not a *provider.Error", what, err)
	}
	return perr
}

func testRegistered(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	if got := e.p.Name(); got != h.Name {
		t.Errorf("Name() = %q, want %q", got, h.Name)
	}
	if h.Open == nil && !slices.Contains(provider.Names(), h.Name) {
		t.Errorf("provider.Names() = %v lacks %q", provider.Names(), h.Name)
	}
}

func testLifecycle(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	caps := e.p.Capabilities()
	req := h.Request(e.name("life"))
	req.Labels = map[string]string{"env": "test", "team": "core-infra", "flag": ""}
	if caps.UserData {
		req.UserData = "#cloud-config\nruncmd:\n  - echo 'héllo, wörld' > /tmp/spuff\n"
	}
	inst := e.create(req)
	if inst.Name != req.Name {
		t.Errorf("created instance name = %q, want %q", inst.Name, req.Name)
	}
	m := e.modelInstance(inst.ID)
	if m.UserData != req.UserData {
		t.Errorf("user data reached the cloud as %q, want %q", m.UserData, req.UserData)
	}
	if got := m.Labels[provider.OwnerLabel]; got != provider.DefaultOwner {
		t.Errorf("cloud-side label %s = %q, want %q (labels %v)", provider.OwnerLabel, got, provider.DefaultOwner, m.Labels)
	}
	for k, v := range req.Labels {
		if got, ok := m.Labels[k]; !ok || got != v {
			t.Errorf("cloud-side label %s = %q (present %v), want %q", k, got, ok, v)
		}
	}

	ready := e.waitReady(inst.ID)
	if ready.ID != inst.ID {
		t.Errorf("WaitReady returned ID %q, want %q", ready.ID, inst.ID)
	}
	if ready.Status != provider.StatusActive || ready.RawStatus == "" {
		t.Errorf("WaitReady status = %v (raw %q), want active with the raw state", ready.Status, ready.RawStatus)
	}

	got, err := e.p.GetInstance(e.ctx, inst.ID)
	if err != nil {
		t.Fatalf("GetInstance: %v", err)
	}
	if got.ID != inst.ID || got.Name != req.Name || !got.Ready() {
		t.Errorf("GetInstance = %+v, want the ready instance %s named %s", got, inst.ID, req.Name)
	}
	if !maps.Equal(got.Labels, req.Labels) {
		t.Errorf("labels did not round-trip: got %v, want %v (the ownership label is not the caller's)", got.Labels, req.Labels)
	}
	if got.CreatedAt.IsZero() {
		t.Errorf("GetInstance: CreatedAt is zero")
	}
	if got.Region == "" || got.Size == "" {
		t.Errorf("GetInstance: region %q / size %q missing", got.Region, got.Size)
	}

	list, err := e.p.ListInstances(e.ctx)
	if err != nil {
		t.Fatalf("ListInstances: %v", err)
	}
	if len(list) != 1 || list[0].ID != inst.ID {
		t.Errorf("ListInstances = %v, want just %s", ids(list), inst.ID)
	}

	e.destroy(inst.ID)
	if got, err := e.p.GetInstance(e.ctx, inst.ID); !errors.Is(err, provider.ErrNotFound) && (err != nil || got.Status != provider.StatusDestroying) {
		t.Errorf("GetInstance after destroy: %v, %v; want ErrNotFound or StatusDestroying", got, err)
	}
	list, err = e.p.ListInstances(e.ctx)
	if err != nil {
		t.Fatalf("ListInstances after destroy: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("ListInstances after destroy = %v, want none", ids(list))
	}
	e.noLeaks()
}

func ids(list []*provider.Instance) []string {
	out := make([]string, len(list))
	for i, in := range list {
		out[i] = in.ID
	}
	return out
}

func testInvalidRequests(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	valid := h.Request("ct-valid")
	caps := e.p.Capabilities()
	cases := append(CommonBadRequests(), h.BadRequests...)
	if caps.MaxUserDataBytes > 0 {
		cases = append(cases, BadRequest{"user data over the limit", func(r *provider.InstanceRequest) {
			r.UserData = "#secret-user-data " + strings.Repeat("x", caps.MaxUserDataBytes)
		}, "UserData"})
	}
	before := e.cloud.TotalCalls()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			req := valid
			req.Labels = maps.Clone(valid.Labels)
			c.Edit(&req)
			inst, err := e.p.CreateInstance(e.ctx, req)
			if inst != nil {
				t.Errorf("CreateInstance returned an instance: %+v", inst)
			}
			perr := wantKind(t, err, provider.ErrInvalidConfig, "CreateInstance")
			if perr.Field != c.Field || perr.Provider != h.Name || perr.Op != "CreateInstance" {
				t.Errorf("Field, Provider, Op = %q, %q, %q; want %q, %q, CreateInstance (error: %v)", perr.Field, perr.Provider, perr.Op, c.Field, h.Name, err)
			}
			if strings.Contains(err.Error(), "#secret-user-data") {
				t.Errorf("the error text contains the user data: %v", err)
			}
		})
	}
	if after := e.cloud.TotalCalls(); after != before {
		t.Errorf("invalid requests made %d API calls, want 0 (calls by op: %v)", after-before, e.cloud.Stats().Calls)
	}
	if n := len(e.cloud.LiveInstances()); n != 0 {
		t.Errorf("%d instances exist after invalid requests", n)
	}
}

func testMalformedIDs(t *testing.T, h Harness) {
	if len(h.MalformedIDs)+len(h.MalformedSnapshotIDs) == 0 {
		t.Skip("the harness names no malformed IDs")
	}
	e := setup(t, h, suiteOptions(), nil)
	for _, id := range h.MalformedIDs {
		_, err := e.p.GetInstance(e.ctx, id)
		wantKind(t, err, provider.ErrNotFound, fmt.Sprintf("GetInstance(%q)", id))
		_, err = e.p.WaitReady(e.ctx, id)
		wantKind(t, err, provider.ErrNotFound, fmt.Sprintf("WaitReady(%q)", id))
		err = e.p.DestroyInstance(e.ctx, id)
		wantKind(t, err, provider.ErrInvalidConfig, fmt.Sprintf("DestroyInstance(%q)", id))
		if e.p.Capabilities().Snapshots {
			_, err = e.p.CreateSnapshot(e.ctx, id, "snap-1")
			wantKind(t, err, provider.ErrInvalidConfig, fmt.Sprintf("CreateSnapshot(%q)", id))
		}
	}
	if e.p.Capabilities().Snapshots {
		for _, id := range h.MalformedSnapshotIDs {
			err := e.p.DeleteSnapshot(e.ctx, id)
			wantKind(t, err, provider.ErrInvalidConfig, fmt.Sprintf("DeleteSnapshot(%q)", id))
		}
	}
	if n := e.cloud.TotalCalls(); n != 0 {
		t.Errorf("malformed IDs made %d API calls, want 0: %v", n, e.cloud.Stats().Calls)
	}
}

func testUserDataLimit(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	caps := e.p.Capabilities()
	if !caps.UserData || caps.MaxUserDataBytes <= 0 {
		t.Skip("provider reports no user data limit")
	}
	req := h.Request(e.name("udmax"))
	req.UserData = "#!/bin/sh\n" + strings.Repeat("#", caps.MaxUserDataBytes-len("#!/bin/sh\n"))
	inst := e.create(req)
	if m := e.modelInstance(inst.ID); m.UserData != req.UserData {
		t.Errorf("user data of exactly %d bytes arrived as %d bytes", len(req.UserData), len(m.UserData))
	}
	e.destroy(inst.ID)
	e.noLeaks()
}

func testDestroyIdempotent(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	inst := e.create(h.Request(e.name("destroy")))
	e.destroy(inst.ID)
	e.destroy(inst.ID)
	if h.MissingID != "" {
		e.destroy(h.MissingID)
	}
	e.noLeaks()
}

func testGetMissing(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	if h.MissingID != "" {
		_, err := e.p.GetInstance(e.ctx, h.MissingID)
		wantKind(t, err, provider.ErrNotFound, "GetInstance(missing)")
	}
	inst := e.create(h.Request(e.name("gone")))
	e.destroy(inst.ID)
	// Being destroyed, then gone: the cloud shows it for a while.
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for {
		var got *provider.Instance
		got, err = e.p.GetInstance(e.ctx, inst.ID)
		if err != nil || time.Now().After(deadline) {
			break
		}
		if got.Status != provider.StatusDestroying {
			t.Fatalf("GetInstance of a destroyed machine: status %v, want StatusDestroying until it is gone", got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantKind(t, err, provider.ErrNotFound, "GetInstance(destroyed)")
}

// MissingIDOr returns h.MissingID, or def when it is empty.
func (h Harness) MissingIDOr(def string) string {
	if h.MissingID != "" {
		return h.MissingID
	}
	return def
}

func testListPages(t *testing.T, h Harness) {
	opts := suiteOptions()
	opts.RateLimits = []simcloud.RateLimit{} // seeding thousands of rows is not what is paced here
	opts.Buckets = map[string]simcloud.RateLimit{}
	// A page of 1,000 EC2 instances takes seconds to encode and decode
	// under the race detector: give each request the time.
	e := setup(t, h, opts, func(c *provider.Config) { c.Timeouts.HTTPRequest = 2 * time.Minute })
	ps := h.ListPageSize
	if ps <= 0 {
		ps = 50
	}
	managed := 2*ps + 7
	tmpl := h.Request("x")
	spec := func(name string, labels map[string]string) simcloud.InstanceSpec {
		return simcloud.InstanceSpec{Name: name, Region: tmpl.Region, Size: tmpl.Size, Labels: labels}
	}
	want := e.cloud.AddInstances(managed, func(i int) simcloud.InstanceSpec {
		return spec(fmt.Sprintf("managed-%d", i), map[string]string{provider.OwnerLabel: provider.DefaultOwner, "i": strconv.Itoa(i)})
	})
	e.cloud.AddInstances(managed/2, func(i int) simcloud.InstanceSpec {
		return spec(fmt.Sprintf("unmanaged-%d", i), map[string]string{"env": "prod"})
	})
	e.cloud.AddInstances(5, func(i int) simcloud.InstanceSpec {
		return spec(fmt.Sprintf("other-owner-%d", i), map[string]string{provider.OwnerLabel: "someone-else"})
	})
	before := e.cloud.Calls(simcloud.OpListInstances)
	list, err := e.p.ListInstances(e.ctx)
	if err != nil {
		t.Fatalf("ListInstances: %v", err)
	}
	pages := e.cloud.Calls(simcloud.OpListInstances) - before
	if len(list) != managed {
		t.Errorf("ListInstances returned %d instances, want the %d managed ones", len(list), managed)
	}
	seen := make(map[int64]bool, len(list))
	for _, in := range list {
		id := e.modelID(in.ID)
		if seen[id] {
			t.Errorf("instance %s listed twice", in.ID)
		}
		seen[id] = true
		if strings.HasPrefix(in.Name, "unmanaged") || strings.HasPrefix(in.Name, "other-owner") {
			t.Errorf("ListInstances returned %s (%s), which spuff does not manage", in.ID, in.Name)
		}
		if _, ok := in.Labels[provider.OwnerLabel]; ok {
			t.Errorf("instance %s: the ownership label leaked into Labels %v", in.ID, in.Labels)
		}
	}
	for _, id := range want {
		if !seen[id] {
			t.Errorf("managed instance %d missing from ListInstances", id)
			break
		}
	}
	if minPages := (managed + ps - 1) / ps; pages != minPages {
		t.Errorf("ListInstances fetched %d pages, want the minimum %d (%d instances, %d per page)", pages, minPages, managed, ps)
	}
	t.Logf("%d managed among %d instances listed in %d pages", managed, managed+managed/2+5, pages)
}

func testOwnerIsolation(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	cfgB := e.cfg
	cfgB.Owner = "team-b"
	pb, err := open(e.ctx, h, cfgB)
	if err != nil {
		t.Fatalf("opening a second provider with another owner: %v", err)
	}
	a := e.create(h.Request(e.name("own-a")))
	b, err := pb.CreateInstance(e.ctx, h.Request(e.name("own-b")))
	if err != nil {
		t.Fatalf("CreateInstance as team-b: %v", err)
	}
	if got := e.modelInstance(b.ID).Labels[provider.OwnerLabel]; got != "team-b" {
		t.Errorf("owner label = %q, want team-b", got)
	}
	// Wait for both, so that listing sees them on clouds that are only
	// eventually consistent.
	e.waitReady(a.ID)
	if _, err := pb.WaitReady(e.ctx, b.ID); err != nil {
		t.Fatalf("WaitReady as team-b: %v", err)
	}
	la, err := e.p.ListInstances(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := pb.ListInstances(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(la) != 1 || la[0].ID != a.ID || len(lb) != 1 || lb[0].ID != b.ID {
		t.Errorf("each owner must see only its own machines: spuff sees %v, team-b sees %v", ids(la), ids(lb))
	}
	e.destroy(a.ID)
	if err := pb.DestroyInstance(e.ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	e.noLeaks()
}

func testImageSpecs(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	type imgCase struct {
		spec  provider.ImageSpec
		check func(img simcloud.Image) string
	}
	distro := func(d, v string) func(img simcloud.Image) string {
		return func(img simcloud.Image) string {
			if img.Distribution != d || img.Version != v {
				return fmt.Sprintf("booted %s %s (image %d %q), want %s %s", img.Distribution, img.Version, img.ID, img.Name, d, v)
			}
			return ""
		}
	}
	cases := []imgCase{
		{provider.Ubuntu("24.04"), distro("Ubuntu", "24.04")},
		{provider.Ubuntu("22.04"), distro("Ubuntu", "22.04")},
		{provider.Debian("12"), distro("Debian", "12")},
	}
	if h.CustomImage != nil {
		ref, id := h.CustomImage(e.srv)
		cases = append(cases, imgCase{provider.CustomImage(ref), func(img simcloud.Image) string {
			if img.ID != id {
				return fmt.Sprintf("booted image %d, want the custom image %d", img.ID, id)
			}
			return ""
		}})
	}
	for _, c := range cases {
		req := h.Request(e.name("img"))
		req.Image = c.spec
		inst, err := e.p.CreateInstance(e.ctx, req)
		if err != nil {
			t.Errorf("CreateInstance with %s: %v", c.spec, err)
			continue
		}
		m := e.modelInstance(inst.ID)
		img, err := e.cloud.GetImage(m.ImageID)
		if err != nil {
			t.Errorf("%s: instance boots image %d, which the cloud does not have: %v", c.spec, m.ImageID, err)
		} else if msg := c.check(img); msg != "" {
			t.Errorf("%s: %s", c.spec, msg)
		}
		e.destroy(inst.ID)
	}
	e.noLeaks()
}

func testUnknownImage(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	req := h.Request(e.name("noimg"))
	req.Image = provider.Ubuntu("4.10")
	_, err := e.p.CreateInstance(e.ctx, req)
	if err == nil || !(errors.Is(err, provider.ErrInvalidConfig) || errors.Is(err, provider.ErrNotFound)) {
		t.Errorf("CreateInstance with ubuntu:4.10: %v, want ErrInvalidConfig or ErrNotFound", err)
	}
	e.noLeaks()
}

func testWaitTimeout(t *testing.T, h Harness) {
	opts := suiteOptions()
	opts.BootDelay = cloudTime(3 * time.Second) // past the 300ms wait; short enough for a cloud that refuses to destroy a booting machine (Hetzner) to let it go
	e := setup(t, h, opts, func(c *provider.Config) { c.Timeouts.InstanceReady = 300 * time.Millisecond })
	inst := e.create(h.Request(e.name("slow")))
	_, err := e.p.WaitReady(e.ctx, inst.ID)
	perr := wantKind(t, err, provider.ErrTimeout, "WaitReady of a machine that boots in an hour")
	if perr.LastState == "" {
		t.Errorf("timeout error does not say which state it last saw: %v", err)
	}
	if perr.Elapsed < 300*time.Millisecond {
		t.Errorf("timeout error Elapsed = %v, want at least the 300ms timeout", perr.Elapsed)
	}
	if !strings.Contains(err.Error(), perr.LastState) {
		t.Errorf("timeout error text %q does not name the last state %q", err, perr.LastState)
	}
	e.destroy(inst.ID)
	e.noLeaks()
}

func testWaitCancel(t *testing.T, h Harness) {
	opts := suiteOptions()
	opts.BootDelay = cloudTime(3 * time.Second)
	e := setup(t, h, opts, nil)
	inst := e.create(h.Request(e.name("cancel")))
	ctx, cancel := context.WithCancel(e.ctx)
	time.AfterFunc(150*time.Millisecond, cancel)
	_, err := e.p.WaitReady(ctx, inst.ID)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("WaitReady after cancel: %v, want an error matching context.Canceled", err)
	}
	if errors.Is(err, provider.ErrTimeout) {
		t.Errorf("a cancelled wait reported a timeout: %v", err)
	}
	e.destroy(inst.ID)
	e.noLeaks()
}

func testWaitFaults(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	inst := e.create(h.Request(e.name("waitf")))
	for _, op := range []simcloud.Op{simcloud.OpGetInstance, simcloud.OpGetAction} {
		for _, k := range []simcloud.FaultKind{simcloud.FaultRateLimit, simcloud.FaultUnavailable, simcloud.FaultInternal, simcloud.FaultRateLimitBare, simcloud.FaultBadGateway, simcloud.FaultDrop} {
			e.cloud.Inject(simcloud.Fault{Op: op, Kind: k, Delay: cloudTime(faultDelay)})
		}
	}
	e.waitReady(inst.ID)
	st := e.cloud.Stats()
	if n := st.FaultsInjected[simcloud.FaultRateLimit] + st.FaultsInjected[simcloud.FaultUnavailable]; n == 0 {
		t.Errorf("no fault was served while waiting; the test proves nothing (calls %v)", st.Calls)
	}
	e.cloud.ClearFaults()
	e.destroy(inst.ID)
	e.noLeaks()
}

func testSnapshots(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	if !e.p.Capabilities().Snapshots {
		t.Skip("provider does not support snapshots")
	}
	inst := e.create(h.Request(e.name("snapsrc")))
	e.waitReady(inst.ID)
	// A snapshot spuff does not manage, which listing must not return.
	e.cloud.AddImage(simcloud.Image{Kind: simcloud.ImageSnapshot, Name: "hand-made", Description: "hand-made", Labels: map[string]string{"env": "prod"}})

	snapName := e.name("snap")
	snap, err := e.p.CreateSnapshot(e.ctx, inst.ID, snapName)
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if snap.ID == "" || snap.Name != snapName {
		t.Errorf("CreateSnapshot = %+v, want an ID and the name %q", snap, snapName)
	}
	img, err := e.cloud.GetImage(e.modelID(snap.ID))
	if err != nil {
		t.Fatalf("snapshot %s is not in the cloud: %v", snap.ID, err)
	}
	if !img.Available(e.cloud.Now()) {
		t.Errorf("CreateSnapshot returned before the snapshot was usable")
	}
	if img.Labels[provider.OwnerLabel] != provider.DefaultOwner && !strings.Contains(img.Name, provider.OwnerLabel+":"+provider.DefaultOwner) {
		t.Errorf("snapshot labels %v lack %s=%s", img.Labels, provider.OwnerLabel, provider.DefaultOwner)
	}
	// The same request again is the same snapshot, not a second one.
	again, err := e.p.CreateSnapshot(e.ctx, inst.ID, snapName)
	if err != nil || again.ID != snap.ID {
		t.Errorf("CreateSnapshot repeated: %v, %v; want the same snapshot %s", again, err, snap.ID)
	}
	if n := len(e.cloud.LiveSnapshots()); n != 2 { // this one and the hand-made one
		t.Errorf("%d snapshots after a repeated CreateSnapshot, want the one it made and the hand-made one", n)
	}

	list, err := e.p.ListSnapshots(e.ctx)
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	if len(list) != 1 || list[0].ID != snap.ID {
		var got []string
		for _, s := range list {
			got = append(got, s.ID+" "+s.Name)
		}
		t.Errorf("ListSnapshots = %v, want just %s", got, snap.ID)
	}

	req := h.Request(e.name("restored"))
	req.Image = provider.SnapshotImage(snap.ID)
	restored := e.create(req)
	if m := e.modelInstance(restored.ID); m.ImageID != img.ID {
		t.Errorf("restored instance boots image %d, want the snapshot %d", m.ImageID, img.ID)
	}
	e.waitReady(restored.ID)
	e.destroy(restored.ID)
	e.destroy(inst.ID)

	if err := e.p.DeleteSnapshot(e.ctx, snap.ID); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	if err := e.p.DeleteSnapshot(e.ctx, snap.ID); err != nil {
		t.Errorf("DeleteSnapshot of a deleted snapshot: %v, want success", err)
	}
	list, err = e.p.ListSnapshots(e.ctx)
	if err != nil {
		t.Fatalf("ListSnapshots after delete: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("ListSnapshots after delete returned %d snapshots", len(list))
	}
	for _, s := range e.cloud.LiveSnapshots() {
		if s.Name != "hand-made" {
			t.Errorf("snapshot %d (%s) is still live after DeleteSnapshot", s.ID, s.Name)
		}
	}
	if vs := e.cloud.LiveVolumeSnapshots(); len(vs) != 0 {
		t.Errorf("%d volume snapshots are still billed after DeleteSnapshot", len(vs))
	}
	if st := e.cloud.Stats(); st.LiveInstances != 0 {
		t.Errorf("%d instances leaked", st.LiveInstances)
	}
}

func testSnapshotNotSupported(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	if e.p.Capabilities().Snapshots {
		t.Skip("provider supports snapshots")
	}
	_, err := e.p.CreateSnapshot(e.ctx, h.MissingIDOr("1"), "x")
	wantKind(t, err, provider.ErrNotSupported, "CreateSnapshot")
}

func testSSHKeys(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	if !e.p.Capabilities().SSHKeys {
		t.Skip("provider does not support SSH keys")
	}
	keys, err := e.p.ListSSHKeys(e.ctx)
	if err != nil {
		t.Fatalf("ListSSHKeys: %v", err)
	}
	model := e.cloud.SSHKeys()
	if len(keys) != len(model) {
		t.Fatalf("ListSSHKeys returned %d keys, the account has %d", len(keys), len(model))
	}
	byName := make(map[string]simcloud.SSHKey)
	for _, k := range model {
		byName[k.Name] = k
	}
	for _, k := range keys {
		if _, ok := byName[k.Name]; !ok || k.ID == "" {
			t.Errorf("ListSSHKeys returned %+v, which the account does not have", k)
		}
	}
	req := h.Request(e.name("keys"))
	req.SSHKeys = []string{keys[0].ID}
	inst := e.create(req)
	if m := e.modelInstance(inst.ID); !slices.Contains(m.SSHKeyIDs, byName[keys[0].Name].ID) {
		t.Errorf("instance has keys %v, want key %d (%s) installed", m.SSHKeyIDs, byName[keys[0].Name].ID, keys[0].Name)
	}
	e.destroy(inst.ID)

	req = h.Request(e.name("nokey"))
	req.SSHKeys = []string{"no-such-key-anywhere"}
	if _, err := e.p.CreateInstance(e.ctx, req); !errors.Is(err, provider.ErrInvalidConfig) && !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("CreateInstance naming a missing SSH key: %v, want ErrInvalidConfig or ErrNotFound", err)
	}
	e.noLeaks()
}

func testErrAuth(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), func(c *provider.Config) {
		if c.Token != "" {
			c.Token = "wrong-token-0123456789"
		}
		if c.AccessKeyID != "" {
			c.AccessKeyID = "AKIAWRONGWRONGWRONG0"
		}
	})
	_, err := e.p.ListInstances(e.ctx)
	wantKind(t, err, provider.ErrAuthentication, "ListInstances with a wrong credential")
	if strings.Contains(err.Error(), "wrong-token-0123456789") {
		t.Errorf("the error text contains the token: %v", err)
	}
	if provider.IsRetryable(err) {
		t.Errorf("an authentication error is reported retryable")
	}
}

func testErrRateLimit(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultRateLimit, Count: 1000, Delay: cloudTime(faultDelay)})
	_, err := e.p.ListInstances(e.ctx)
	wantKind(t, err, provider.ErrRateLimit, "ListInstances under a persistent 429")
	if d, ok := provider.RetryAfter(err); ok && d <= 0 {
		t.Errorf("rate-limit error carries a Retry-After of %v: %v", d, err)
	}
	if !provider.IsRetryable(err) {
		t.Errorf("a rate-limit error is not reported retryable")
	}
	if n := e.cloud.Calls(simcloud.OpListInstances); n < 2 {
		t.Errorf("ListInstances was tried %d times under 429; a safe call should be retried", n)
	}
}

func testErrQuota(t *testing.T, h Harness) {
	opts := suiteOptions()
	opts.MaxInstances = 1
	e := setup(t, h, opts, nil)
	first := e.create(h.Request(e.name("quota")))
	_, err := e.p.CreateInstance(e.ctx, h.Request(e.name("quota")))
	wantKind(t, err, provider.ErrQuotaExceeded, "CreateInstance past the instance limit")
	if n := len(e.cloud.LiveInstances()); n != 1 {
		t.Errorf("%d instances live, want 1", n)
	}
	e.destroy(first.ID)
	e.noLeaks()
}

func testErrCloudInvalid(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	req := h.Request(e.name("region"))
	req.Region = "zz-nowhere-9"
	_, err := e.p.CreateInstance(e.ctx, req)
	wantKind(t, err, provider.ErrInvalidConfig, "CreateInstance in a region the cloud lacks")
	e.noLeaks()
}

// createRetrying creates like a careful caller: it repeats the same request
// while the error is retryable, pausing a little between attempts (an
// unknown outcome settles once the cloud has had time to show what it
// made).
func createRetrying(ctx context.Context, p provider.Provider, req provider.InstanceRequest, attempts int) (*provider.Instance, int, error) {
	var err error
	for i := 1; i <= attempts; i++ {
		var inst *provider.Instance
		inst, err = p.CreateInstance(ctx, req)
		if err == nil {
			return inst, i, nil
		}
		if !provider.IsRetryable(err) {
			return nil, i, err
		}
		pause := 50 * time.Millisecond
		if d, ok := provider.RetryAfter(err); ok {
			pause = max(pause, d)
		}
		select {
		case <-ctx.Done():
			return nil, i, err
		case <-time.After(pause):
		}
	}
	return nil, attempts, err
}

func testLostCreate(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	req := h.Request(e.name("lost"))
	inst, attempts, err := createRetrying(e.ctx, e.p, req, 40)
	if err != nil {
		t.Fatalf("CreateInstance after a lost answer, %d attempts: %v", attempts, err)
	}
	if e.cloud.Stats().FaultsInjected[simcloud.FaultLoseResponse] != 1 {
		t.Fatalf("the lost-response fault was not served; the test proves nothing")
	}
	live := e.liveNamed(req.Name)
	if len(live) != 1 {
		t.Fatalf("%d machines named %s exist after a lost create answer and %d attempts, want exactly 1", len(live), req.Name, attempts)
	}
	if e.modelID(inst.ID) != live[0].ID {
		t.Errorf("CreateInstance returned %s, but the machine is %d", inst.ID, live[0].ID)
	}
	t.Logf("lost create answer: %d caller attempt(s), 1 machine", attempts)
	e.waitReady(inst.ID)
	e.destroy(inst.ID)
	e.noLeaks()
}

func testDroppedCreate(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultDrop})
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultUnavailable})
	req := h.Request(e.name("dropped"))
	inst, attempts, err := createRetrying(e.ctx, e.p, req, 40)
	if err != nil {
		t.Fatalf("CreateInstance after a dropped connection and a 503, %d attempts: %v", attempts, err)
	}
	if live := e.liveNamed(req.Name); len(live) != 1 {
		t.Fatalf("%d machines named %s exist, want exactly 1", len(live), req.Name)
	}
	e.destroy(inst.ID)
	e.noLeaks()
}

func testFleet(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	seen := sync.Map{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := h.Request(e.name(fmt.Sprintf("fleet%d", i)))
			inst, err := e.p.CreateInstance(e.ctx, req)
			if err != nil {
				errs <- fmt.Errorf("create %s: %w", req.Name, err)
				return
			}
			if _, dup := seen.LoadOrStore(inst.ID, true); dup {
				errs <- fmt.Errorf("ID %s returned twice", inst.ID)
			}
			if _, err := e.p.WaitReady(e.ctx, inst.ID); err != nil {
				errs <- fmt.Errorf("wait %s: %w", inst.ID, err)
			}
			if err := e.p.DestroyInstance(e.ctx, inst.ID); err != nil {
				errs <- fmt.Errorf("destroy %s: %w", inst.ID, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e.noLeaks()
}

func testRandomFaults(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	e.cloud.SetRandomFaults(simcloud.RandomFaults{
		Rate: 0.15,
		Kinds: []simcloud.FaultKind{
			simcloud.FaultRateLimit, simcloud.FaultRateLimitBare, simcloud.FaultInternal,
			simcloud.FaultBadGateway, simcloud.FaultUnavailable, simcloud.FaultDrop,
			simcloud.FaultSlow, simcloud.FaultLoseResponse,
		},
		Ops: []simcloud.Op{
			simcloud.OpCreateInstance, simcloud.OpGetInstance, simcloud.OpListInstances,
			simcloud.OpDeleteInstance, simcloud.OpGetAction, simcloud.OpListImages, simcloud.OpGetImage,
		},
		Delay: cloudTime(faultDelay),
	})
	const n = 8
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := lifecycle(e.ctx, e.p, h.Request(e.name(fmt.Sprintf("soak%d", i)))); err != nil {
				failures.Add(1)
				t.Errorf("lifecycle %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	e.cloud.ClearFaults()
	list, err := e.p.ListInstances(e.ctx)
	if err != nil {
		t.Fatalf("ListInstances after the soak: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("ListInstances after the soak = %v, want none", ids(list))
	}
	st := e.cloud.Stats()
	t.Logf("%d lifecycles, %d failed, %d API calls, faults injected %v", n, failures.Load(), st.TotalCalls, faultCounts(st.FaultsInjected))
	e.noLeaks()
}

func faultCounts(m map[simcloud.FaultKind]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// lifecycle creates, awaits and destroys one machine as a careful caller
// does under faults: retryable errors are retried with the same request,
// and the machine is destroyed whatever happens after it exists.
func lifecycle(ctx context.Context, p provider.Provider, req provider.InstanceRequest) error {
	inst, _, err := createRetrying(ctx, p, req, 10)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	var waitErr error
	for range 5 {
		if _, waitErr = p.WaitReady(ctx, inst.ID); waitErr == nil || !provider.IsRetryable(waitErr) {
			break
		}
	}
	var destroyErr error
	for range 10 {
		if destroyErr = p.DestroyInstance(ctx, inst.ID); destroyErr == nil || !provider.IsRetryable(destroyErr) {
			break
		}
	}
	return errors.Join(waitErr, destroyErr)
}
