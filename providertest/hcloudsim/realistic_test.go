package hcloudsim_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/internal/apispec"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// clock is a settable clock for the simulated cloud.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// sdkEnv is a validated simulated Hetzner Cloud on a fake clock and an
// hcloud-go client for it, with hcloud-go's retries off so that every
// answer is seen.
type sdkEnv struct {
	cloud  *simcloud.Cloud
	client *hcloud.Client
	clock  *clock
	ctx    context.Context
}

func startSDK(t *testing.T, opts simcloud.Options) *sdkEnv {
	t.Helper()
	clk := &clock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	opts.Now = clk.Now
	cloud := hcloudsim.NewCloud(opts)
	v := apispec.Hetzner(t).Wrap(hcloudsim.Handler(cloud))
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { v.Report(t) })
	client := hcloud.NewClient(hcloud.WithToken(cloud.Token()), hcloud.WithEndpoint(srv.URL+"/v1"),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	return &sdkEnv{cloud: cloud, client: client, clock: clk, ctx: context.Background()}
}

func (e *sdkEnv) create(t *testing.T, name string) *hcloud.Server {
	t.Helper()
	res, _, err := e.client.Server.Create(e.ctx, hcloud.ServerCreateOpts{Name: name, ServerType: &hcloud.ServerType{Name: "cx22"},
		Image: &hcloud.Image{Name: "ubuntu-24.04"}, Location: &hcloud.Location{Name: "fsn1"}, Labels: map[string]string{"managed-by": "spuff"}})
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	return res.Server
}

// wantError checks err is an hcloud-go error of code with HTTP status.
func wantError(t *testing.T, err error, resp *hcloud.Response, code hcloud.ErrorCode, status int) {
	t.Helper()
	var he hcloud.Error
	if !errors.As(err, &he) || he.Code != code || resp == nil || resp.StatusCode != status {
		got := 0
		if resp != nil {
			got = resp.StatusCode
		}
		t.Errorf("error %v (HTTP %d), want %s with HTTP %d", err, got, code, status)
	}
}

// exact is the realistic world without jitter, so that a test can step
// its clock to the end of a boot or a snapshot.
func exact() simcloud.Options {
	o := simcloud.Realistic(1)
	o.BootJitter, o.SnapshotJitter = -1, -1
	return o
}

func TestRealisticLocks(t *testing.T) {
	t.Parallel()
	e := startSDK(t, exact())
	s := e.create(t, "locked-1")
	_, resp, err := e.client.Server.DeleteWithResult(e.ctx, s)
	wantError(t, err, resp, hcloud.ErrorCodeLocked, http.StatusLocked) // still booting
	_, resp, err = e.client.Server.CreateImage(e.ctx, s, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot, Description: hcloud.Ptr("snap")})
	wantError(t, err, resp, hcloud.ErrorCodeLocked, http.StatusLocked)
	if got, _, _ := e.client.Server.GetByID(e.ctx, s.ID); got == nil || !got.Locked {
		t.Errorf("a booting server is not shown locked: %+v", got)
	}
	e.clock.Advance(15 * time.Second)
	img, _, err := e.client.Server.CreateImage(e.ctx, s, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot, Description: hcloud.Ptr("snap")})
	if err != nil {
		t.Fatalf("create_image once running: %v", err)
	}
	_, resp, err = e.client.Server.DeleteWithResult(e.ctx, s)
	wantError(t, err, resp, hcloud.ErrorCodeLocked, http.StatusLocked) // create_image running
	e.clock.Advance(time.Minute)
	if a, _, _ := e.client.Action.GetByID(e.ctx, img.Action.ID); a == nil || a.Status != hcloud.ActionStatusSuccess {
		t.Fatalf("create_image after a minute: %+v", a)
	}
	del, _, err := e.client.Server.DeleteWithResult(e.ctx, s)
	if err != nil {
		t.Fatalf("delete once idle: %v", err)
	}
	if del.Action.Status != hcloud.ActionStatusRunning {
		t.Errorf("delete_server action %s, want running", del.Action.Status)
	}
	// Being deleted: still read and listed, status deleting, and locked.
	got, _, err := e.client.Server.GetByID(e.ctx, s.ID)
	if err != nil || got == nil || got.Status != hcloud.ServerStatusDeleting {
		t.Fatalf("GET while deleting: %+v, %v; want status deleting", got, err)
	}
	if all, err := e.client.Server.AllWithOpts(e.ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "managed-by=spuff"}}); err != nil || len(all) != 1 {
		t.Errorf("listing while deleting: %d servers, %v; want 1", len(all), err)
	}
	_, resp, err = e.client.Server.DeleteWithResult(e.ctx, s)
	wantError(t, err, resp, hcloud.ErrorCodeLocked, http.StatusLocked)
	e.clock.Advance(10 * time.Second)
	if got, _, err := e.client.Server.GetByID(e.ctx, s.ID); err != nil || got != nil {
		t.Errorf("GET once deleted: %+v, %v; want not found", got, err)
	}
	if a, _, _ := e.client.Action.GetByID(e.ctx, del.Action.ID); a == nil || a.Status != hcloud.ActionStatusSuccess {
		t.Errorf("delete_server once gone: %+v", a)
	}
}

func TestSimpleWorldDoesNotLock(t *testing.T) {
	t.Parallel()
	e := startSDK(t, simcloud.Options{World: simcloud.WorldSimple})
	s := e.create(t, "free")
	if _, _, err := e.client.Server.DeleteWithResult(e.ctx, s); err != nil {
		t.Errorf("delete while booting in the simple world: %v", err)
	}
}

func TestRealisticRateLimitHeaders(t *testing.T) {
	t.Parallel()
	e := startSDK(t, simcloud.Realistic(1))
	_, resp, err := e.client.Server.List(e.ctx, hcloud.ServerListOpts{})
	if err != nil {
		t.Fatal(err)
	}
	rl := resp.Meta.Ratelimit
	if rl.Limit != 3600 || rl.Remaining != 3599 || !rl.Reset.Equal(e.clock.Now().Add(time.Second)) {
		t.Errorf("rate limit %+v, want 3600, 3599 left, full again in a second", rl)
	}
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultRateLimit})
	_, resp, err = e.client.Server.List(e.ctx, hcloud.ServerListOpts{})
	wantError(t, err, resp, hcloud.ErrorCodeRateLimitExceeded, http.StatusTooManyRequests)
	if resp != nil && resp.Header.Get("Retry-After") != "" {
		t.Errorf("Hetzner's 429 carries Retry-After %q", resp.Header.Get("Retry-After"))
	}

	// A real refusal, on a small budget of the same kind (+1 a second).
	opts := simcloud.Realistic(1)
	opts.RateLimits = []simcloud.RateLimit{{Requests: 3, Per: 3 * time.Second}}
	small := startSDK(t, opts)
	for range 3 {
		if _, _, err := small.client.Server.List(small.ctx, hcloud.ServerListOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	_, resp, err = small.client.Server.List(small.ctx, hcloud.ServerListOpts{})
	wantError(t, err, resp, hcloud.ErrorCodeRateLimitExceeded, http.StatusTooManyRequests)
	if resp != nil && (resp.Header.Get("Retry-After") != "" || resp.Meta.Ratelimit.Remaining != 0) {
		t.Errorf("throttled: Retry-After %q, remaining %d; want none and 0", resp.Header.Get("Retry-After"), resp.Meta.Ratelimit.Remaining)
	}
	small.clock.Advance(time.Second)
	if _, _, err := small.client.Server.List(small.ctx, hcloud.ServerListOpts{}); err != nil {
		t.Errorf("a second later: %v", err)
	}
}

func TestCapacityConflictAndQuota(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    simcloud.Options
		prep    func(c *simcloud.Cloud)
		code    hcloud.ErrorCode
		status  int
		message string
	}{
		{"injected capacity", simcloud.Realistic(1), func(c *simcloud.Cloud) {
			c.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultCapacity})
		}, hcloud.ErrorCodeResourceUnavailable, http.StatusPreconditionFailed, "error during placement"},
		{"exhausted type", simcloud.Realistic(1), func(c *simcloud.Cloud) { c.SetCapacity("fsn1", "cx22", 0) },
			hcloud.ErrorCodeResourceUnavailable, http.StatusPreconditionFailed, "error during placement"},
		{"location disabled", simcloud.Realistic(1), func(c *simcloud.Cloud) { c.DisableRegion("fsn1", true) },
			hcloud.ErrorCodeResourceUnavailable, http.StatusPreconditionFailed, "server location disabled"},
		{"injected location disabled", simcloud.Realistic(1), func(c *simcloud.Cloud) {
			c.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultRegionDisabled})
		}, hcloud.ErrorCodeResourceUnavailable, http.StatusPreconditionFailed, "server location disabled"},
		{"injected conflict", simcloud.Realistic(1), func(c *simcloud.Cloud) {
			c.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultConflict})
		}, hcloud.ErrorCodeConflict, http.StatusConflict, ""},
		{"injected locked", simcloud.Realistic(1), func(c *simcloud.Cloud) {
			c.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLocked})
		}, hcloud.ErrorCodeLocked, http.StatusLocked, ""},
		{"quota, not capacity", func() simcloud.Options { o := simcloud.Realistic(1); o.MaxInstances = 1; return o }(), func(c *simcloud.Cloud) {
			c.AddInstances(1, func(int) simcloud.InstanceSpec {
				return simcloud.InstanceSpec{Name: "first", Region: "fsn1", Size: "cx22"}
			})
		}, hcloud.ErrorCodeResourceLimitExceeded, http.StatusForbidden, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startSDK(t, tc.opts)
			tc.prep(e.cloud)
			_, resp, err := e.client.Server.Create(e.ctx, hcloud.ServerCreateOpts{Name: "x", ServerType: &hcloud.ServerType{Name: "cx22"},
				Image: &hcloud.Image{Name: "ubuntu-24.04"}, Location: &hcloud.Location{Name: "fsn1"}})
			wantError(t, err, resp, tc.code, tc.status)
			var he hcloud.Error
			if tc.message != "" && (!errors.As(err, &he) || he.Message != tc.message) {
				t.Errorf("message %q, want %q", he.Message, tc.message)
			}
		})
	}
}

func TestFailedSnapshot(t *testing.T) {
	t.Parallel()
	e := startSDK(t, exact())
	s := e.create(t, "snap-fails")
	e.clock.Advance(15 * time.Second)
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateSnapshot, Kind: simcloud.FaultSnapshotFailed})
	res, _, err := e.client.Server.CreateImage(e.ctx, s, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot, Description: hcloud.Ptr("snap")})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	a, _, err := e.client.Action.GetByID(e.ctx, res.Action.ID)
	if err != nil || a.Status != hcloud.ActionStatusError || a.ErrorCode == "" {
		t.Errorf("create_image action %+v, %v; want error", a, err)
	}
	img, _, err := e.client.Image.GetByID(e.ctx, res.Image.ID)
	if err != nil || img == nil || img.Status != "unavailable" {
		t.Errorf("failed snapshot %+v, %v; want status unavailable", img, err)
	}
}
