package dosim_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// realistic starts a validated realistic DigitalOcean at real time on the
// env's fake clock, with edits to its options.
func realistic(t *testing.T, edit func(*simcloud.Options)) *env {
	t.Helper()
	opts := simcloud.Realistic(1)
	if edit != nil {
		edit(&opts)
	}
	return start(t, opts)
}

func droplet(e *env, name string, tags ...string) *godo.Droplet {
	e.t.Helper()
	d, _, err := e.client.Droplets.Create(e.ctx, &godo.DropletCreateRequest{Name: name, Region: "nyc3", Size: "s-1vcpu-1gb",
		Image: godo.DropletCreateImage{Slug: "debian-12-x64"}, SSHKeys: []godo.DropletCreateSSHKey{}, Tags: tags})
	if err != nil {
		e.t.Fatalf("creating %s: %v", name, err)
	}
	return d
}

func errResponse(err error) *godo.ErrorResponse {
	var er *godo.ErrorResponse
	if errors.As(err, &er) {
		return er
	}
	return nil
}

func TestRealisticBurstLimit(t *testing.T) {
	t.Parallel()
	e := realistic(t, nil)
	for i := range 250 {
		if _, _, err := e.client.Droplets.List(e.ctx, nil); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if i == 0 {
			e.clock.Advance(10 * time.Second)
		}
	}
	_, resp, err := e.client.Droplets.List(e.ctx, nil)
	if status(err) != http.StatusTooManyRequests {
		t.Fatalf("call 251 within a minute: %v, want 429", err)
	}
	// The burst limit's 429 says when to retry, in whole seconds: when the
	// first of the last minute's requests expires (50 s from now).
	if ra := resp.Header.Get("Retry-After"); ra != "50" {
		t.Errorf("Retry-After %q, want \"50\"", ra)
	}
	if resp.Rate.Remaining != 0 || resp.Rate.Limit != 5000 {
		t.Errorf("burst 429 rate %+v, want limit 5000 and 0 remaining", resp.Rate)
	}
	e.clock.Advance(50 * time.Second)
	if _, _, err := e.client.Droplets.List(e.ctx, nil); err != nil {
		t.Errorf("once the oldest request expired: %v", err)
	}
	if _, _, err := e.client.Droplets.List(e.ctx, nil); status(err) != http.StatusTooManyRequests {
		t.Errorf("a second request on one expired: %v, want 429", err)
	}
	if got := e.covered()["droplets_list 429"]; got == 0 {
		t.Error("no validated 429")
	}
}

func TestRealisticHourlyLimit(t *testing.T) {
	t.Parallel()
	// 5,000 requests: served without the description check, which would
	// take most of the test's time.
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	opts := simcloud.Realistic(1)
	opts.Now = clk.Now
	srv := dosim.Start(t, opts)
	client, err := godo.New(&http.Client{Transport: bearer{srv.Cloud.Token(), http.DefaultTransport}}, godo.SetBaseURL(srv.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := clk.Now()
	for i := range 5000 {
		if i > 0 && i%250 == 0 {
			clk.Advance(time.Minute) // stay under the burst limit
		}
		if _, _, err := client.Droplets.List(ctx, nil); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	clk.Advance(time.Minute)
	_, resp, err := client.Droplets.List(ctx, nil)
	if status(err) != http.StatusTooManyRequests {
		t.Fatalf("call 5001 within the hour: %v, want 429", err)
	}
	if ra, ok := resp.Header["Retry-After"]; ok {
		t.Errorf("the hourly limit's 429 carries Retry-After %v; DigitalOcean sends it for the burst limit only", ra)
	}
	// Each request counts on its own one-hour timer: the reset is when the
	// oldest expires, not an hour from now.
	if want := t0.Add(time.Hour); !resp.Rate.Reset.Time.Equal(want) || resp.Rate.Remaining != 0 {
		t.Errorf("rate %+v, want 0 remaining and reset at %v", resp.Rate, want)
	}
	clk.Advance(t0.Add(time.Hour).Sub(clk.Now()))
	for i := range 250 {
		if _, _, err := client.Droplets.List(ctx, nil); err != nil {
			t.Fatalf("after the first minute's requests expired, call %d: %v", i+1, err)
		}
	}
	if _, _, err := client.Droplets.List(ctx, nil); status(err) != http.StatusTooManyRequests {
		t.Errorf("only the first minute's 250 requests expired; call 251: %v, want 429", err)
	}
}

func TestRealisticKeysLimit(t *testing.T) {
	t.Parallel()
	e := realistic(t, nil)
	for i := range 10 {
		if _, _, err := e.client.Keys.List(e.ctx, nil); err != nil {
			t.Fatalf("keys call %d: %v", i+1, err)
		}
	}
	_, resp, err := e.client.Keys.List(e.ctx, nil)
	if status(err) != http.StatusTooManyRequests {
		t.Fatalf("11th GET /v2/account/keys in 60 s: %v, want 429", err)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		t.Errorf("keys 429 with Retry-After %q", ra)
	}
	if _, _, err := e.client.Droplets.List(e.ctx, nil); err != nil {
		t.Errorf("the keys limit throttled another endpoint: %v", err)
	}
	e.clock.Advance(time.Minute)
	if _, _, err := e.client.Keys.List(e.ctx, nil); err != nil {
		t.Errorf("a minute later: %v", err)
	}
	if e.covered()["sshKeys_list 429"] == 0 {
		t.Error("no validated keys 429")
	}
}

func TestRealisticDestroyWindow(t *testing.T) {
	t.Parallel()
	e := realistic(t, func(o *simcloud.Options) { o.ListingDelay = -1 })
	d := droplet(e, "gone-soon", "managed-by:spuff")
	e.clock.Advance(time.Minute)
	if _, err := e.client.Droplets.Delete(e.ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	got, _, err := e.client.Droplets.Get(e.ctx, d.ID)
	if err != nil || got.Status != "active" || !got.Locked {
		t.Fatalf("GET right after DELETE: %+v, %v; want the droplet, active and locked", got, err)
	}
	if list := must(e.client.Droplets.ListByTag(e.ctx, "managed-by:spuff", nil)); len(list) != 1 {
		t.Errorf("listed %d droplets right after the DELETE, want 1", len(list))
	}
	if _, err := e.client.Droplets.Delete(e.ctx, d.ID); err != nil {
		t.Errorf("a second DELETE in the window: %v", err)
	}
	e.clock.Advance(5 * time.Second)
	if _, _, err := e.client.Droplets.Get(e.ctx, d.ID); status(err) != http.StatusNotFound {
		t.Errorf("GET once destroyed: %v, want 404", err)
	}
	if list := must(e.client.Droplets.ListByTag(e.ctx, "managed-by:spuff", nil)); len(list) != 0 {
		t.Errorf("listed %d droplets once destroyed", len(list))
	}
}

func TestRealisticListingLag(t *testing.T) {
	t.Parallel()
	e := realistic(t, nil)
	d := droplet(e, "new-one", "managed-by:spuff")
	if _, _, err := e.client.Droplets.Get(e.ctx, d.ID); err != nil {
		t.Errorf("GET of a new droplet: %v", err)
	}
	if list := must(e.client.Droplets.ListByTag(e.ctx, "managed-by:spuff", nil)); len(list) != 0 {
		t.Errorf("a new droplet is listed at once")
	}
	e.clock.Advance(3 * time.Second)
	if list := must(e.client.Droplets.ListByName(e.ctx, "new-one", nil)); len(list) != 1 {
		t.Errorf("not listed after the listing lag")
	}
}

func TestRealisticLateIP(t *testing.T) {
	t.Parallel()
	e := realistic(t, func(o *simcloud.Options) { o.LateIPFraction, o.BootJitter = 1, -1 })
	d := droplet(e, "late")
	e.clock.Advance(50 * time.Second)
	got := must(e.client.Droplets.Get(e.ctx, d.ID))
	if ip, _ := got.PublicIPv4(); got.Status != "active" || ip != "" {
		t.Errorf("after boot: status %s, public IPv4 %q; want active without one", got.Status, ip)
	}
	e.clock.Advance(10 * time.Second)
	if ip, _ := must(e.client.Droplets.Get(e.ctx, d.ID)).PublicIPv4(); ip == "" {
		t.Error("no public IPv4 10 s after boot")
	}
}

func TestCapacityErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts simcloud.Options
		prep func(c *simcloud.Cloud)
		want string
	}{
		{"injected", simcloud.Realistic(1), func(c *simcloud.Cloud) {
			c.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultCapacity})
		}, "Size is not available in this region."},
		{"exhausted", simcloud.Realistic(1), func(c *simcloud.Cloud) { c.SetCapacity("nyc3", "s-1vcpu-1gb", 0) }, "Size is not available in this region."},
		{"region disabled", simcloud.Realistic(1), func(c *simcloud.Cloud) { c.DisableRegion("nyc3", true) }, "Region is not available"},
		{"injected region", simcloud.Realistic(1), func(c *simcloud.Cloud) {
			c.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultRegionDisabled})
		}, "Region is not available"},
		{"quota, not capacity", func() simcloud.Options { o := simcloud.Realistic(1); o.MaxInstances = 1; return o }(), func(c *simcloud.Cloud) {
			c.AddInstances(1, func(int) simcloud.InstanceSpec {
				return simcloud.InstanceSpec{Name: "first", Region: "nyc3", Size: "s-1vcpu-1gb"}
			})
		}, "will exceed your droplet limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, tc.opts)
			tc.prep(e.cloud)
			_, _, err := e.client.Droplets.Create(e.ctx, &godo.DropletCreateRequest{Name: "x", Region: "nyc3", Size: "s-1vcpu-1gb",
				Image: godo.DropletCreateImage{Slug: "debian-12-x64"}, SSHKeys: []godo.DropletCreateSSHKey{}})
			er := errResponse(err)
			if er == nil || er.Response.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(er.Message, tc.want) {
				t.Errorf("create: %v, want 422 %q", err, tc.want)
			}
			if e.covered()["droplets_create 422"] == 0 {
				t.Error("the 422 was not validated")
			}
			regions := must(e.client.Regions.List(e.ctx, nil))
			for _, r := range regions {
				if r.Slug == "nyc3" && r.Available == e.cloud.RegionDisabled("nyc3") {
					t.Errorf("region nyc3 available %v, disabled %v", r.Available, e.cloud.RegionDisabled("nyc3"))
				}
			}
		})
	}
}

func TestConflictAndLockedFaults(t *testing.T) {
	t.Parallel()
	e := realistic(t, nil)
	d := droplet(e, "x")
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateSnapshot, Kind: simcloud.FaultLocked})
	_, _, err := e.client.DropletActions.Snapshot(e.ctx, d.ID, "s")
	if er := errResponse(err); er == nil || er.Response.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(er.Message, "pending event") {
		t.Errorf("locked fault: %v, want 422 pending event", err)
	}
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpDeleteInstance, Kind: simcloud.FaultConflict})
	if _, err := e.client.Droplets.Delete(e.ctx, d.ID); status(err) != http.StatusConflict {
		t.Errorf("conflict fault: %v, want 409", err)
	}
}

// TestFailedSnapshotLeavesNothing: a droplet snapshot that fails is an
// errored action and no image, as on DigitalOcean: nothing to list, read,
// delete or bill.
func TestFailedSnapshotLeavesNothing(t *testing.T) {
	t.Parallel()
	e := realistic(t, nil)
	d := droplet(e, "snap-fails", "managed-by:spuff")
	e.clock.Advance(time.Minute)
	e.cloud.Inject(simcloud.Fault{Kind: simcloud.FaultSnapshotFailed})
	act := must(e.client.DropletActions.Snapshot(e.ctx, d.ID, "will-fail"))
	e.clock.Advance(10 * time.Minute)
	if a := must(e.client.Actions.Get(e.ctx, act.ID)); a.Status != "errored" {
		t.Errorf("snapshot action %+v, want errored", a)
	}
	if snaps := must(e.client.Droplets.Snapshots(e.ctx, d.ID, nil)); len(snaps) != 0 {
		t.Errorf("a failed snapshot is listed: %+v", snaps)
	}
	if st := e.cloud.Stats(); st.LiveSnapshots != 0 || st.FailedSnapshots != 1 {
		t.Errorf("after a failed snapshot: %d live snapshots (billed), %d failed; want 0 and 1", st.LiveSnapshots, st.FailedSnapshots)
	}
}
