package hetzner_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/hetzner"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// harness runs the conformance suite against the simulated Hetzner Cloud.
var harness = providertest.Harness{
	Name:  hetzner.Name,
	Start: func(t testing.TB, opts simcloud.Options) *simcloud.Server { return hcloudsim.Start(t, opts) },
	Config: func(srv *simcloud.Server) provider.Config {
		return provider.Config{Endpoint: srv.URL, Token: provider.Secret(srv.Cloud.Token())}
	},
	Request: func(name string) provider.InstanceRequest {
		return provider.InstanceRequest{Name: name, Region: "fsn1", Size: "cx22", Image: provider.Ubuntu("24.04")}
	},
	CustomImage: func(srv *simcloud.Server) (string, int64) {
		id := systemImage(srv.Cloud, "ubuntu-22.04", "x86_64")
		return strconv.FormatInt(id, 10), id
	},
	MissingID:            "999999999",
	ListPageSize:         hetzner.PageSize,
	BadRequests:          badRequests(),
	MalformedIDs:         []string{"", "0", "-1", "abc", "1.5", "99999999999999999999"},
	MalformedSnapshotIDs: []string{"", "0", "-1", "abc", "1.5", "99999999999999999999"},
	Catalog:              expectedCatalog,
}

// systemImage returns the model ID of the system image name for arch.
func systemImage(c *simcloud.Cloud, name, arch string) int64 {
	imgs, _ := c.ListImages(func(m *simcloud.Image) bool {
		return m.Kind == simcloud.ImageDistribution && m.Name == name && m.Arch == arch
	}, 0, 1)
	if len(imgs) == 0 {
		return 0
	}
	return imgs[0].ID
}

func TestConformance(t *testing.T) {
	providertest.Run(t, harness)
}

// fastConfig reaches srv with the suite's scaled-down timeouts and waits.
func fastConfig(srv *simcloud.Server) provider.Config {
	return providertest.FastConfig(harness.Config(srv))
}

func start(t *testing.T, opts simcloud.Options) (*simcloud.Server, provider.Provider) {
	t.Helper()
	srv := hcloudsim.Start(t, opts)
	p, err := hetzner.Open(context.Background(), fastConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	return srv, p
}

func fastOpts() simcloud.Options {
	o := providertest.Options()
	o.BootDelay, o.SnapshotDelay = 5*time.Second, 5*time.Second // 50 ms at the suite's scale
	return o
}

// TestLostCreateResponse: the create's answer is lost after the server was
// made. The retry gets uniqueness_error, and the server holding the name
// carries the request's key: it is adopted. One CreateInstance call,
// exactly one server, no error.
func TestLostCreateResponse(t *testing.T) {
	srv, p := start(t, fastOpts())
	ctx := context.Background()
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	req := harness.Request("lost-1")
	inst, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatalf("CreateInstance after a lost answer: %v", err)
	}
	st := srv.Cloud.Stats()
	if st.FaultsInjected[simcloud.FaultLoseResponse] != 1 {
		t.Fatal("the lost-response fault was not served")
	}
	live := srv.Cloud.LiveInstances()
	if len(live) != 1 || strconv.FormatInt(live[0].ID, 10) != inst.ID {
		t.Fatalf("live servers %v after a lost create, want exactly the one returned (%s)", live, inst.ID)
	}
	if st.Calls[simcloud.OpCreateInstance] != 2 || st.Created != 1 || st.Duplicates != 0 {
		t.Errorf("create calls %d, servers made %d, duplicates %d; want 2 calls (one lost, one answered uniqueness_error) and 1 server",
			st.Calls[simcloud.OpCreateInstance], st.Created, st.Duplicates)
	}
	t.Logf("lost create answer: %d create calls, %d server, adopted %s", st.Calls[simcloud.OpCreateInstance], len(live), inst.ID)

	// The caller repeating the same request gets the same server.
	again, err := p.CreateInstance(ctx, req)
	if err != nil || again.ID != inst.ID {
		t.Fatalf("repeated CreateInstance = %v, %v; want server %s", again, err, inst.ID)
	}
	if n := len(srv.Cloud.LiveInstances()); n != 1 {
		t.Fatalf("%d servers after the repeated create, want 1", n)
	}
}

// TestLostCreateResponseNotListedYet: the server made by a create whose
// answer was lost is not listed for a while (eventual consistency): the
// adoption looks again until it is, and still makes no second server.
func TestLostCreateResponseNotListedYet(t *testing.T) {
	srv, p := start(t, fastOpts())
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultConsistency, Delay: 150 * time.Millisecond})
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	inst, err := p.CreateInstance(context.Background(), harness.Request("late-1"))
	if err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	live := srv.Cloud.LiveInstances()
	if len(live) != 1 || strconv.FormatInt(live[0].ID, 10) != inst.ID {
		t.Fatalf("live servers %v, want exactly %s", live, inst.ID)
	}
	st := srv.Cloud.Stats()
	t.Logf("create calls %d, list-by-name calls %d, servers %d", st.Calls[simcloud.OpCreateInstance], st.Calls[simcloud.OpListInstances], len(live))
}

// TestCreateDoesNotAdoptForeignServer: a name held by a server that is not
// ours, or ours for a request with other settings, is an ErrConflict naming
// that server in Existing (not in Leftover: the call made nothing), never an
// adoption.
func TestCreateDoesNotAdoptForeignServer(t *testing.T) {
	srv, p := start(t, fastOpts())
	ctx := context.Background()
	img := systemImage(srv.Cloud, "ubuntu-24.04", "x86_64")
	ids := srv.Cloud.AddInstances(1, func(int) simcloud.InstanceSpec {
		return simcloud.InstanceSpec{Name: "taken", Region: "fsn1", Size: "cx22", ImageID: img, Labels: map[string]string{"env": "prod"}}
	})
	_, err := p.CreateInstance(ctx, harness.Request("taken"))
	var perr *provider.Error
	if !errors.Is(err, provider.ErrConflict) || !errors.As(err, &perr) || perr.Existing != strconv.FormatInt(ids[0], 10) || perr.Leftover != "" {
		t.Fatalf("create with a name held by a foreign server: %v; want ErrConflict with Existing %d and no Leftover", err, ids[0])
	}
	t.Logf("foreign server: %v", err)

	mine, err := p.CreateInstance(ctx, harness.Request("mine"))
	if err != nil {
		t.Fatal(err)
	}
	for _, edit := range []func(*provider.InstanceRequest){
		func(r *provider.InstanceRequest) { r.Size = "cpx11" },
		func(r *provider.InstanceRequest) { r.UserData = "#cloud-config\n" },
		func(r *provider.InstanceRequest) { r.Labels = map[string]string{"env": "dev"} },
	} {
		other := harness.Request("mine")
		edit(&other)
		_, err := p.CreateInstance(ctx, other)
		if !errors.Is(err, provider.ErrConflict) || !errors.As(err, &perr) || perr.Existing != mine.ID || perr.Leftover != "" {
			t.Fatalf("create with our server's name but other settings: %v, want ErrConflict with Existing %s and no Leftover", err, mine.ID)
		}
	}
	if n := len(srv.Cloud.LiveInstances()); n != 2 {
		t.Errorf("%d servers, want 2", n)
	}
	if n := srv.Cloud.Calls(simcloud.OpCreateInstance); n != 1 {
		t.Errorf("%d create calls, want 1 (a conflict is found by name before creating)", n)
	}
	_ = p.DestroyInstance(ctx, mine.ID)
}

// TestLostSnapshotResponse: the create_image answer is lost after the
// snapshot was made. The snapshot carries the request's key label from its
// creation, so the look-up finds it instead of making another: exactly one
// snapshot, returned, labelled as managed.
func TestLostSnapshotResponse(t *testing.T) {
	srv, p := start(t, fastOpts())
	ctx := context.Background()
	inst, err := p.CreateInstance(ctx, harness.Request("snap-src"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitReady(ctx, inst.ID); err != nil { // a booting server is locked
		t.Fatal(err)
	}
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateSnapshot, Kind: simcloud.FaultLoseResponse})
	snap, err := p.CreateSnapshot(ctx, inst.ID, "nightly")
	if err != nil {
		t.Fatalf("CreateSnapshot after a lost answer: %v", err)
	}
	snaps := srv.Cloud.LiveSnapshots()
	if len(snaps) != 1 || strconv.FormatInt(snaps[0].ID, 10) != snap.ID {
		t.Fatalf("live snapshots %v, want exactly %s", snaps, snap.ID)
	}
	if snap.Name != "nightly" || snaps[0].Description != "nightly" {
		t.Errorf("snapshot name %q, description %q; want nightly", snap.Name, snaps[0].Description)
	}
	if l := snaps[0].Labels; len(l) != 2 || l[provider.OwnerLabel] != provider.DefaultOwner || l["spuff-key"] == "" {
		t.Errorf("snapshot labels %v, want only %s=%s and its spuff-key", l, provider.OwnerLabel, provider.DefaultOwner)
	}
	if calls := srv.Cloud.Calls(simcloud.OpCreateSnapshot); calls != 1 {
		t.Errorf("create_image called %d times, want 1 (the look-up found the snapshot instead)", calls)
	}
	list, err := p.ListSnapshots(ctx)
	if err != nil || len(list) != 1 || list[0].ID != snap.ID || list[0].Name != "nightly" || len(list[0].Labels) != 0 {
		t.Fatalf("ListSnapshots = %v, %v; want %s named nightly, without spuff's labels", list, err, snap.ID)
	}
	if err := p.DeleteSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	_ = p.DestroyInstance(ctx, inst.ID)
}

// TestImageArchitecture: Ubuntu and Debian specs resolve to the system
// image of the server type's architecture.
func TestImageArchitecture(t *testing.T) {
	srv, p := start(t, fastOpts())
	ctx := context.Background()
	for _, tc := range []struct {
		size, name, arch string
		spec             provider.ImageSpec
	}{
		{"cx22", "ubuntu-24.04", "x86_64", provider.Ubuntu("24.04")},
		{"cax11", "ubuntu-24.04", "arm64", provider.Ubuntu("24.04")},
		{"cpx11", "debian-12", "x86_64", provider.Debian("12")},
		{"cax21", "debian-12", "arm64", provider.Debian("12")},
		{"cax11", "debian-13", "arm64", provider.CustomImage("debian-13")},
	} {
		req := harness.Request("arch-" + tc.size + "-" + strings.ReplaceAll(tc.name, ".", "-"))
		req.Size, req.Image = tc.size, tc.spec
		inst, err := p.CreateInstance(ctx, req)
		if err != nil {
			t.Errorf("%s on %s: %v", tc.spec, tc.size, err)
			continue
		}
		id, _ := strconv.ParseInt(inst.ID, 10, 64)
		m, _ := srv.Cloud.GetInstance(id)
		if want := systemImage(srv.Cloud, tc.name, tc.arch); m.ImageID != want || m.Arch != tc.arch {
			t.Errorf("%s on %s boots image %d (%s), want %s for %s (%d)", tc.spec, tc.size, m.ImageID, m.Arch, tc.name, tc.arch, want)
		}
		_ = p.DestroyInstance(ctx, inst.ID)
	}
}

// TestSDKRetriesOff: hcloud-go's own retries are off, so that spuff's
// policy is the only one: a 502 (which hcloud-go retries by default) is
// tried exactly as often as the policy says, and an unsafe POST never more.
func TestSDKRetriesOff(t *testing.T) {
	for _, tc := range []struct {
		kind     simcloud.FaultKind
		attempts int
	}{{simcloud.FaultBadGateway, 1}, {simcloud.FaultUnavailable, 1}, {simcloud.FaultRateLimitBare, 1}, {simcloud.FaultBadGateway, 3}} {
		srv := hcloudsim.Start(t, providertest.Options())
		cfg := fastConfig(srv)
		cfg.Retry.MaxAttempts = tc.attempts
		p, err := hetzner.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: tc.kind, Count: 100})
		_, err = p.ListInstances(context.Background())
		if err == nil || !provider.IsRetryable(err) {
			t.Errorf("%v: %v, want a retryable error", tc.kind, err)
		}
		if n := srv.Cloud.Calls(simcloud.OpListInstances); n != tc.attempts {
			t.Errorf("%v with MaxAttempts %d: the cloud saw %d calls", tc.kind, tc.attempts, n)
		}
	}
}

// TestErrors maps Hetzner's error codes to the portable kinds.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("read-only token is forbidden", func(t *testing.T) {
		srv := hcloudsim.Start(t, fastOpts(), hcloudsim.WithReadOnlyToken("ro-token"))
		cfg := fastConfig(srv)
		cfg.Token = "ro-token"
		p, _ := hetzner.Open(ctx, cfg)
		if _, err := p.ListInstances(ctx); err != nil {
			t.Fatalf("reading with a read-only token: %v", err)
		}
		_, err := p.CreateInstance(ctx, harness.Request("ro"))
		var perr *provider.Error
		if !errors.Is(err, provider.ErrAuthentication) || !errors.As(err, &perr) || perr.Status != 403 || perr.Code != "forbidden" {
			t.Fatalf("create with a read-only token: %v, want authentication (403 forbidden)", err)
		}
		var hcErr hcloud.Error
		if !errors.As(err, &hcErr) || hcErr.Code != hcloud.ErrorCodeForbidden {
			t.Errorf("the hcloud.Error is not reachable with errors.As: %v", err)
		}
		if strings.Contains(err.Error(), "ro-token") {
			t.Errorf("the error names the token: %v", err)
		}
	})
	t.Run("server error is retryable API error", func(t *testing.T) {
		srv, p := start(t, fastOpts())
		srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpGetInstance, Kind: simcloud.FaultInternal, Count: 100})
		_, err := p.GetInstance(ctx, "12345")
		var perr *provider.Error
		if !errors.Is(err, provider.ErrAPI) || !errors.As(err, &perr) || perr.Status != 500 || perr.Code != "server_error" || !provider.IsRetryable(err) {
			t.Fatalf("%v, want a retryable API error 500 server_error", err)
		}
	})
	t.Run("invalid input names the field", func(t *testing.T) {
		_, p := start(t, fastOpts())
		req := harness.Request("badloc")
		req.Region = "mars1"
		_, err := p.CreateInstance(ctx, req)
		var perr *provider.Error
		if !errors.As(err, &perr) || perr.Kind != provider.KindInvalidConfig || perr.Field != "Region" || perr.Status != 400 {
			t.Fatalf("%v, want invalid config naming Region (HTTP 400)", err)
		}
		req = harness.Request("badsize")
		req.Size = "cx999"
		if _, err := p.CreateInstance(ctx, req); !errors.As(err, &perr) || perr.Field != "Size" {
			t.Fatalf("%v, want invalid config naming Size", err)
		}
		if err := p.DestroyInstance(ctx, "i-123"); !errors.As(err, &perr) || perr.Kind != provider.KindInvalidConfig || perr.Field != "id" {
			t.Fatalf("DestroyInstance(i-123): %v, want invalid config naming the id", err)
		}
		if _, err := p.GetInstance(ctx, "i-123"); !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("GetInstance(i-123): %v, want not found (no server has that ID)", err)
		}
	})
	t.Run("malformed, truncated and huge bodies", func(t *testing.T) {
		for _, k := range []simcloud.FaultKind{simcloud.FaultMalformed, simcloud.FaultTruncated, simcloud.FaultHuge} {
			srv := hcloudsim.Start(t, fastOpts())
			cfg := fastConfig(srv)
			cfg.Retry.MaxAttempts = 1              // one answer to classify (each huge one is read up to the bound)
			cfg.Timeouts.HTTPRequest = time.Minute // reading to the bound takes seconds under -race on a busy machine
			p, err := hetzner.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: k})
			_, err = p.ListInstances(ctx)
			var perr *provider.Error
			if !errors.As(err, &perr) || perr.Kind != provider.KindNetwork || !provider.IsRetryable(err) {
				t.Errorf("%v: %v, want a retryable *provider.Error of KindNetwork (the answer is as good as lost)", k, err)
				continue
			}
			t.Logf("%v: %v", k, err)
		}
	})
}

// TestToken: Config.Token, else HCLOUD_TOKEN, else HETZNER_TOKEN.
func TestToken(t *testing.T) {
	srv := hcloudsim.Start(t, providertest.Options())
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  string
		env  map[string]string
		ok   bool
	}{
		{"config", srv.Cloud.Token(), map[string]string{"HCLOUD_TOKEN": "wrong", "HETZNER_TOKEN": "wrong"}, true},
		{"HCLOUD_TOKEN", "", map[string]string{"HCLOUD_TOKEN": srv.Cloud.Token(), "HETZNER_TOKEN": "wrong"}, true},
		{"HETZNER_TOKEN", "", map[string]string{"HETZNER_TOKEN": srv.Cloud.Token()}, true},
		{"HCLOUD_TOKEN first", "", map[string]string{"HCLOUD_TOKEN": "wrong", "HETZNER_TOKEN": srv.Cloud.Token()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := provider.Config{Endpoint: srv.URL, Token: provider.Secret(tc.cfg), Getenv: func(k string) string { return tc.env[k] }}
			p, err := provider.Open(ctx, hetzner.Name, cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.ListSSHKeys(ctx)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, provider.ErrAuthentication) {
				t.Errorf("ListSSHKeys: %v (want ok=%v)", err, tc.ok)
			}
		})
	}
	_, err := provider.Open(ctx, hetzner.Name, provider.Config{Endpoint: srv.URL, Getenv: func(string) string { return "" }})
	var perr *provider.Error
	if !errors.Is(err, provider.ErrAuthentication) || !errors.As(err, &perr) || perr.Field != "Config.Token" || !strings.Contains(err.Error(), "HCLOUD_TOKEN") {
		t.Errorf("Open without a token: %v, want an authentication error naming Config.Token and HCLOUD_TOKEN", err)
	}
	for _, cfg := range []provider.Config{
		{Endpoint: srv.URL, Token: "tok\nen"},
		{Endpoint: "not a URL", Token: "token"},
		{Endpoint: "ftp://example.com", Token: "token"},
	} {
		if _, err := hetzner.Open(ctx, cfg); err == nil || strings.Contains(err.Error(), "tok\nen") {
			t.Errorf("Open(%v): %v, want an error without the token", cfg, err)
		}
	}
}

// TestNewWithClient: the direct constructor on a caller's client.
func TestNewWithClient(t *testing.T) {
	srv := hcloudsim.Start(t, providertest.Options())
	cfg := provider.Config{Endpoint: srv.URL, Token: provider.Secret(srv.Cloud.Token())}
	opts, err := hetzner.ClientOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := hcloud.NewClient(append(opts, hcloud.WithApplication("my-tool", "1.0"))...)
	p, err := hetzner.New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := p.ListSSHKeys(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatalf("ListSSHKeys = %v, %v", keys, err)
	}
	var c *hcloud.Client
	if !p.As(&c) || c != client {
		t.Error("As(**hcloud.Client) does not reach the client given")
	}
	var st provider.Stats
	if !p.As(&st) || st.Calls == 0 || st.Pacer.Requests == 0 {
		t.Errorf("As(*provider.Stats) = %+v, want the calls made, paced", st)
	}
	if _, err := hetzner.New(nil, cfg); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Errorf("New(nil): %v, want invalid config", err)
	}
}
