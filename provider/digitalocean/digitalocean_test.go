package digitalocean_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/digitalocean/godo"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spuffgo/spuff/internal/apispec"
	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/digitalocean"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// startValidated serves a simulated DigitalOcean whose every exchange is
// checked against DigitalOcean's OpenAPI description; the test fails at its
// end with any request the driver sent, or answer the dialect gave, that
// does not conform.
func startValidated(t testing.TB, opts simcloud.Options) *simcloud.Server {
	t.Helper()
	spec := apispec.DigitalOcean(t)
	cloud := dosim.NewCloud(opts)
	h := dosim.NewHandler(cloud)
	var (
		mu         sync.Mutex
		violations []string
	)
	h.Trace = func(x dosim.Exchange) {
		_, err := spec.Check(apispec.Exchange{Request: x.Request, RequestBody: x.RequestBody, Status: x.Status, Header: x.Header, Body: x.Body})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			violations = append(violations, err.Error())
		}
	}
	srv := simcloud.NewServer(cloud, h)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for i, v := range violations {
			if i == 10 {
				t.Errorf("… and %d more OpenAPI violations", len(violations)-10)
				break
			}
			t.Errorf("OpenAPI violation: %s", v)
		}
	})
	t.Cleanup(srv.Close)
	return srv
}

func config(srv *simcloud.Server) provider.Config {
	return provider.Config{Endpoint: srv.URL, Token: provider.Secret(srv.Cloud.Token())}
}

func request(name string) provider.InstanceRequest {
	return provider.InstanceRequest{Name: name, Region: "nyc3", Size: "s-1vcpu-1gb", Image: provider.Ubuntu("24.04")}
}

var harness = providertest.Harness{
	Name:    digitalocean.Name,
	Start:   startValidated,
	Config:  config,
	Request: request,
	CustomImage: func(srv *simcloud.Server) (string, int64) {
		id := dosim.ImageID(srv.Cloud, "fedora-40-x64")
		return fmt.Sprint(id), id
	},
	MissingID:            "999999999",
	ListPageSize:         digitalocean.PageSize,
	BadRequests:          badRequests(),
	MalformedIDs:         []string{"", "0", "-1", "abc", "1.5", "12345678901234567890"},
	MalformedSnapshotIDs: []string{"", "0", "-1", "abc", "1.5", "12345678901234567890"},
	Catalog:              expectedCatalog,
}

// TestConformance runs spuff's conformance suite against the driver and the
// simulated DigitalOcean API, every exchange validated against the OpenAPI
// description.
func TestConformance(t *testing.T) {
	providertest.Run(t, harness)
}

type env struct {
	t     *testing.T
	ctx   context.Context
	srv   *simcloud.Server
	cloud *simcloud.Cloud
	p     provider.Provider
}

func setup(t *testing.T, opts simcloud.Options, tweaks ...func(*provider.Config)) *env {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	srv := startValidated(t, opts)
	cfg := providertest.FastConfig(config(srv))
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	p, err := digitalocean.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, srv: srv, cloud: srv.Cloud, p: p}
}

func (e *env) live(name string) int {
	n := 0
	for _, in := range e.cloud.LiveInstances() {
		if in.Name == name {
			n++
		}
	}
	return n
}

// TestListsEveryPage lists 450 managed droplets among others in the fewest
// pages of 200.
func TestListsEveryPage(t *testing.T) {
	e := setup(t, noLimits(providertest.Options()))
	e.cloud.AddInstances(500, func(i int) simcloud.InstanceSpec {
		labels := map[string]string{"managed-by": "spuff", "i": fmt.Sprint(i)}
		if i%10 == 9 {
			labels = map[string]string{"managed-by": "other"}
		}
		return simcloud.InstanceSpec{Name: fmt.Sprintf("m%d", i), Region: "nyc3", Size: "s-1vcpu-1gb", Labels: labels}
	})
	list, err := e.p.ListInstances(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 450 {
		t.Errorf("listed %d, want the 450 managed", len(list))
	}
	if n := e.cloud.Calls(simcloud.OpListInstances); n != 3 {
		t.Errorf("%d list calls, want 3 pages of 200", n)
	}
	for _, in := range list {
		if _, ok := in.Labels["managed-by"]; ok || in.Labels["i"] == "" {
			t.Fatalf("labels %v: the ownership tag leaked or a label was lost", in.Labels)
		}
	}
}

// TestLostCreateAnswer: the create's answer is lost after the droplet was
// made; the driver finds it by name and tag instead of making a second, and
// a caller retrying with the same request gets the same droplet.
func TestLostCreateAnswer(t *testing.T) {
	e := setup(t, providertest.Options())
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	inst, err := e.p.CreateInstance(e.ctx, request("lost-1"))
	if err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	if n := e.live("lost-1"); n != 1 {
		t.Fatalf("%d droplets named lost-1, want 1", n)
	}
	if got := e.cloud.Calls(simcloud.OpCreateInstance); got != 1 {
		t.Errorf("%d create calls, want 1 (the lost one; then a lookup found it)", got)
	}
	again, err := e.p.CreateInstance(e.ctx, request("lost-1"))
	if err != nil || again.ID != inst.ID {
		t.Fatalf("CreateInstance again: %v, %v; want the same droplet %s", again, err, inst.ID)
	}
	if n := e.live("lost-1"); n != 1 {
		t.Errorf("%d droplets named lost-1 after the caller's retry, want 1", n)
	}
	other := request("lost-1")
	other.Size = "s-2vcpu-4gb"
	_, err = e.p.CreateInstance(e.ctx, other)
	var perr *provider.Error
	if !errors.Is(err, provider.ErrConflict) || !errors.As(err, &perr) || perr.Existing != inst.ID || perr.Leftover != "" {
		t.Errorf("CreateInstance with the name of a droplet of another size: %v, want ErrConflict with Existing %s and no Leftover", err, inst.ID)
	}
}

// TestCreateOutcomeUnknown: every attempt's answer is lost; the error says
// the droplet exists and carries its ID.
func TestCreateOutcomeUnknown(t *testing.T) {
	e := setup(t, providertest.Options())
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultNone}) // the lookup before creating
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultUnavailable, Count: 100})
	_, err := e.p.CreateInstance(e.ctx, request("unknown-1"))
	if err == nil {
		t.Fatal("CreateInstance succeeded though no lookup could confirm the droplet")
	}
	e.cloud.ClearFaults()
	if n := e.live("unknown-1"); n != 1 {
		t.Fatalf("%d droplets named unknown-1, want 1", n)
	}
	if !provider.IsRetryable(err) {
		t.Errorf("error %v is not retryable; the caller should retry (and adopt)", err)
	}
	inst, err := e.p.CreateInstance(e.ctx, request("unknown-1"))
	if err != nil || e.live("unknown-1") != 1 {
		t.Fatalf("retry: %v; %d droplets", err, e.live("unknown-1"))
	}
	if id := e.cloud.LiveInstances()[0].ID; inst.ID != fmt.Sprint(id) {
		t.Errorf("retry returned %s, want %d", inst.ID, id)
	}
}

// TestCreateRetriesRefusals: 429s, which say the droplet was not made, are
// retried; exactly one droplet results. A 503, which may have made it, is
// not repeated blindly: without a droplet to find, the create says the
// outcome is unknown, makes nothing while one may still appear, and makes
// it once the cloud has had time to show it.
func TestCreateRetriesRefusals(t *testing.T) {
	// A look-up of 500 ms: the horizon of an unknown outcome (six of
	// them, 3 s) outlasts a loaded machine's two creates "at once", and
	// still ends within the 10 s this test waits for it.
	e := setup(t, providertest.Options(), func(c *provider.Config) { c.Timeouts.Lookup = 500 * time.Millisecond })
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultRateLimit, Delay: 20 * time.Millisecond})
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultRateLimit})
	if _, err := e.p.CreateInstance(e.ctx, request("refused-1")); err != nil {
		t.Fatal(err)
	}
	if n := e.live("refused-1"); n != 1 {
		t.Errorf("%d droplets, want 1", n)
	}
	if n := e.cloud.Calls(simcloud.OpCreateInstance); n != 3 {
		t.Errorf("%d create calls, want 3", n)
	}

	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultUnavailable})
	_, err := e.p.CreateInstance(e.ctx, request("refused-2"))
	if !errors.Is(err, provider.ErrOutcomeUnknown) || !provider.IsRetryable(err) {
		t.Fatalf("after a 503: %v, want a retryable ErrOutcomeUnknown", err)
	}
	_, err = e.p.CreateInstance(e.ctx, request("refused-2"))
	if !errors.Is(err, provider.ErrOutcomeUnknown) || e.live("refused-2") != 0 {
		t.Fatalf("repeated at once: %v with %d droplets, want ErrOutcomeUnknown and none made", err, e.live("refused-2"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for errors.Is(err, provider.ErrOutcomeUnknown) && time.Now().Before(deadline) {
		_, err = e.p.CreateInstance(e.ctx, request("refused-2"))
	}
	if err != nil || e.live("refused-2") != 1 {
		t.Errorf("once the outcome was settled: %v with %d droplets, want 1", err, e.live("refused-2"))
	}
}

// TestLostSnapshotAction: the snapshot action's answer is lost; the driver
// finds the pending action instead of asking for a second snapshot.
func TestLostSnapshotAction(t *testing.T) {
	e := setup(t, providertest.Options())
	inst, err := e.p.CreateInstance(e.ctx, request("snap-src"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.WaitReady(e.ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateSnapshot, Kind: simcloud.FaultLoseResponse})
	snap, err := e.p.CreateSnapshot(e.ctx, inst.ID, "snap-1")
	if err != nil {
		t.Fatal(err)
	}
	if live := e.cloud.LiveSnapshots(); len(live) != 1 || fmt.Sprint(live[0].ID) != snap.ID || live[0].Labels["managed-by"] != "spuff" {
		t.Fatalf("snapshots %+v, want exactly %s tagged managed-by:spuff", live, snap.ID)
	}
	list, err := e.p.ListSnapshots(e.ctx)
	if err != nil || len(list) != 1 || list[0].ID != snap.ID || list[0].Name != "snap-1" {
		t.Fatalf("ListSnapshots = %v, %v", list, err)
	}
	if err := e.p.DeleteSnapshot(e.ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.p.DestroyInstance(e.ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
}

// TestErrors checks the classification by status.
func TestErrors(t *testing.T) {
	e := setup(t, maxInstances(providertest.Options(), 1))
	if _, err := e.p.CreateInstance(e.ctx, request("q-1")); err != nil {
		t.Fatal(err)
	}
	_, err := e.p.CreateInstance(e.ctx, request("q-2"))
	if !errors.Is(err, provider.ErrQuotaExceeded) {
		t.Errorf("over the droplet limit: %v, want ErrQuotaExceeded", err)
	}
	var perr *provider.Error
	if !errors.As(err, &perr) || perr.Status != http.StatusUnprocessableEntity {
		t.Errorf("quota error %+v, want HTTP 422", perr)
	}

	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpGetInstance, Kind: simcloud.FaultRateLimit, Count: 100, Delay: 30 * time.Millisecond})
	_, err = e.p.GetInstance(e.ctx, "100")
	// DigitalOcean says Retry-After in whole seconds.
	if d, ok := provider.RetryAfter(err); !errors.Is(err, provider.ErrRateLimit) || !ok || d != time.Second {
		t.Errorf("under 429: %v (retry after %v), want ErrRateLimit after 1s", err, d)
	}
	e.cloud.ClearFaults()

	bad, _ := digitalocean.Open(e.ctx, providertest.FastConfig(provider.Config{Endpoint: e.srv.URL, Token: "wrong-token-9f8e7d"}))
	_, err = bad.ListInstances(e.ctx)
	if !errors.Is(err, provider.ErrAuthentication) || strings.Contains(err.Error(), "wrong-token-9f8e7d") {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := e.p.GetInstance(e.ctx, "not-a-number"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("GetInstance(not-a-number): %v, want ErrNotFound", err)
	}
	if err := e.p.DestroyInstance(e.ctx, "x"); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Errorf("DestroyInstance(x): %v, want ErrInvalidConfig", err)
	}
}

// TestHugeAnswerIsBounded: an answer that never ends is cut at 16 MiB and
// retried, not read into memory whole.
func TestHugeAnswerIsBounded(t *testing.T) {
	e := setup(t, providertest.Options())
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultHuge})
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultMalformed})
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultTruncated})
	if _, err := e.p.ListInstances(e.ctx); err != nil {
		t.Fatalf("ListInstances after a huge, a malformed and a truncated answer: %v", err)
	}
	if n := e.cloud.Calls(simcloud.OpListInstances); n != 4 {
		t.Errorf("%d list calls, want 4", n)
	}
}

// TestOpen checks the token's sources and the factory's registration.
func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		cfg  provider.Config
		ok   bool
	}{
		{"config", provider.Config{Token: "a", Getenv: env(nil)}, true},
		{"DIGITALOCEAN_TOKEN", provider.Config{Getenv: env(map[string]string{"DIGITALOCEAN_TOKEN": "b"})}, true},
		{"DIGITALOCEAN_ACCESS_TOKEN", provider.Config{Getenv: env(map[string]string{"DIGITALOCEAN_ACCESS_TOKEN": "c"})}, true},
		{"none", provider.Config{Getenv: env(nil)}, false},
	} {
		p, err := provider.Open(ctx, "digitalocean", tc.cfg)
		if tc.ok != (err == nil) {
			t.Errorf("%s: Open = %v, %v", tc.name, p, err)
		}
		if !tc.ok && !errors.Is(err, provider.ErrAuthentication) {
			t.Errorf("%s: %v, want ErrAuthentication", tc.name, err)
		}
	}
	p, err := digitalocean.Open(ctx, provider.Config{Token: "t", Endpoint: "http://127.0.0.1:1/some/prefix"})
	if err != nil {
		t.Fatal(err)
	}
	var c *godo.Client
	if !p.As(&c) {
		t.Fatal("As(**godo.Client) = false")
	}
	if got := c.BaseURL.String(); got != "http://127.0.0.1:1/some/prefix/" {
		t.Errorf("base URL %q", got)
	}
	if c.RetryConfig.RetryMax != 0 {
		t.Errorf("godo retries are on (RetryMax %d)", c.RetryConfig.RetryMax)
	}
}
