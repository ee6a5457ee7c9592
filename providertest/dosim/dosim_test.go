package dosim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/internal/apispec"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// clock is a manual clock for the simulated cloud.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is a simulated DigitalOcean whose every exchange is validated against
// the OpenAPI description, and a godo client for it.
type env struct {
	t      *testing.T
	srv    *simcloud.Server
	cloud  *simcloud.Cloud
	client *godo.Client
	clock  *clock
	ctx    context.Context

	mu         sync.Mutex
	violations []string
	seen       map[string]int // "operationId status"
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func start(t *testing.T, opts simcloud.Options) *env {
	t.Helper()
	spec := apispec.DigitalOcean(t)
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	cloud := dosim.NewCloud(opts)
	h := dosim.NewHandler(cloud)
	e := &env{t: t, cloud: cloud, clock: clk, ctx: context.Background(), seen: map[string]int{}}
	h.Trace = func(x dosim.Exchange) {
		op, err := spec.Check(apispec.Exchange{Request: x.Request, RequestBody: x.RequestBody, Status: x.Status, Header: x.Header, Body: x.Body})
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			e.violations = append(e.violations, err.Error())
		}
		if x.Status != 0 {
			e.seen[fmt.Sprintf("%s %d", op, x.Status)]++
		}
	}
	e.srv = simcloud.NewServer(cloud, h)
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.report)
	var err error
	e.client, err = godo.New(&http.Client{Transport: bearer{cloud.Token(), http.DefaultTransport}}, godo.SetBaseURL(e.srv.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// report fails the test with every exchange that broke the description.
func (e *env) report() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, v := range e.violations {
		if i == 20 {
			e.t.Errorf("… and %d more", len(e.violations)-20)
			break
		}
		e.t.Errorf("OpenAPI violation: %s", v)
	}
}

func (e *env) covered() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.seen))
	for k, v := range e.seen {
		out[k] = v
	}
	return out
}

// must returns v, and panics on an error (it takes a godo call's three
// results, which cannot be passed along with a *testing.T).
func must[T any](v T, _ *godo.Response, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func status(err error) int {
	var er *godo.ErrorResponse
	if errors.As(err, &er) {
		return er.Response.StatusCode
	}
	return 0
}

// TestOpenAPI drives every endpoint the dialect serves with godo, the
// official client, including error answers, and checks each request and
// response against DigitalOcean's OpenAPI description. It runs in the
// simple world, whose exact boot and snapshot times and instant destroy let
// it walk every state on the fake clock; the realistic world's answers (a
// droplet in its destroy window, the limits' 429s, capacity 422s) are
// validated by the TestRealistic* tests and TestCapacityErrors.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	e := start(t, simcloud.Options{World: simcloud.WorldSimple, Seed: 7, BootDelay: 40 * time.Second, SnapshotDelay: time.Minute})
	ctx, c := e.ctx, e.client

	keys := must(c.Keys.List(ctx, &godo.ListOptions{PerPage: 200}))
	if len(keys) != 2 {
		t.Fatalf("keys = %v", keys)
	}
	ud := "#cloud-config\nruncmd:\n  - echo héllo\n"
	d, resp, err := c.Droplets.Create(ctx, &godo.DropletCreateRequest{
		Name: "web-1.example", Region: "nyc3", Size: "s-1vcpu-1gb",
		Image:    godo.DropletCreateImage{Slug: "ubuntu-24-04-x64"},
		SSHKeys:  []godo.DropletCreateSSHKey{{ID: keys[0].ID}, {Fingerprint: keys[1].Fingerprint}},
		IPv6:     true,
		UserData: ud,
		Tags:     []string{"managed-by:spuff", "env:test", "flag"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "new" || resp.Links == nil || len(resp.Links.Actions) != 1 || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: status %q, links %+v, HTTP %d", d.Status, resp.Links, resp.StatusCode)
	}
	m, _ := e.cloud.GetInstance(int64(d.ID))
	if m.UserData != ud || len(m.SSHKeyIDs) != 2 || m.Labels["env"] != "test" || m.Labels["managed-by"] != "spuff" {
		t.Errorf("model instance = %+v", m)
	}
	act := must(c.Actions.Get(ctx, resp.Links.Actions[0].ID))
	if act.Status != "in-progress" || act.Type != "create" || act.ResourceID != d.ID {
		t.Errorf("create action = %+v", act)
	}
	e.clock.Advance(30 * time.Second) // IP assigned, still booting
	d = must(c.Droplets.Get(ctx, d.ID))
	if ip, _ := d.PublicIPv4(); d.Status != "new" || ip == "" {
		t.Errorf("at 30s: status %q, IPv4 %q; want new with an IP", d.Status, ip)
	}
	e.clock.Advance(15 * time.Second)
	d = must(c.Droplets.Get(ctx, d.ID))
	ip6, _ := d.PublicIPv6()
	if d.Status != "active" || ip6 == "" || !slices.Equal(d.Tags, []string{"env:test", "flag", "managed-by:spuff"}) {
		t.Errorf("at 45s: %+v", d)
	}
	if act = must(c.Actions.Get(ctx, act.ID)); act.Status != "completed" || act.CompletedAt == nil {
		t.Errorf("create action after boot = %+v", act)
	}

	// Lists: by tag (all pages), by name, per-droplet actions.
	e.cloud.AddInstances(5, func(i int) simcloud.InstanceSpec {
		return simcloud.InstanceSpec{Name: fmt.Sprintf("other-%d", i), Region: "fra1", Size: "s-2vcpu-4gb", Labels: map[string]string{"managed-by": "spuff"}}
	})
	var all []godo.Droplet
	for page := 1; ; page++ {
		list, resp, err := c.Droplets.ListByTag(ctx, "managed-by:spuff", &godo.ListOptions{Page: page, PerPage: 4})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, list...)
		if cur, err := resp.Links.CurrentPage(); err != nil || cur != page {
			t.Errorf("page %d: godo reads current page %d (%v)", page, cur, err)
		}
		if resp.Links.IsLastPage() {
			break
		}
	}
	if len(all) != 6 {
		t.Errorf("listed %d managed droplets, want 6", len(all))
	}
	byName := must(c.Droplets.ListByName(ctx, "WEB-1.example", nil))
	if len(byName) != 1 || byName[0].ID != d.ID {
		t.Errorf("ListByName = %v", byName)
	}
	if acts := must(c.Droplets.Actions(ctx, d.ID, nil)); len(acts) != 1 {
		t.Errorf("droplet actions = %v", acts)
	}

	// Snapshot: the action, the pending lock, the image once done.
	snapAct := must(c.DropletActions.Snapshot(ctx, d.ID, "web-1-snap"))
	if snapAct.Type != "snapshot" || snapAct.ResourceID != d.ID || snapAct.ResourceType != "droplet" || snapAct.Status != "in-progress" {
		t.Errorf("snapshot action = %+v", snapAct)
	}
	if _, _, err := c.DropletActions.Snapshot(ctx, d.ID, "again"); status(err) != http.StatusUnprocessableEntity {
		t.Errorf("second snapshot while one is pending: %v, want 422", err)
	}
	if d = must(c.Droplets.Get(ctx, d.ID)); !d.Locked {
		t.Errorf("droplet not locked during its snapshot")
	}
	if snaps := must(c.Droplets.Snapshots(ctx, d.ID, nil)); len(snaps) != 0 {
		t.Errorf("snapshot listed before it is done: %v", snaps)
	}
	e.clock.Advance(time.Minute)
	if a := must(c.DropletActions.Get(ctx, d.ID, snapAct.ID)); a.Status != "completed" {
		t.Errorf("snapshot action after a minute = %+v", a)
	}
	snaps := must(c.Droplets.Snapshots(ctx, d.ID, &godo.ListOptions{PerPage: 200}))
	if len(snaps) != 1 || snaps[0].Name != "web-1-snap" || snaps[0].Type != "snapshot" {
		t.Fatalf("droplet snapshots = %+v", snaps)
	}
	img := snaps[0]
	if _, _, err := c.Tags.Get(ctx, "managed-by:spuff"); err != nil {
		t.Errorf("tag made by the create: %v", err)
	}
	if _, err := c.Tags.TagResources(ctx, "never-made", &godo.TagResourcesRequest{Resources: []godo.Resource{{ID: strconv.Itoa(img.ID), Type: godo.ImageResourceType}}}); status(err) != http.StatusNotFound {
		t.Errorf("tagging with a tag never made: %v, want 404", err)
	}
	must(c.Tags.Create(ctx, &godo.TagCreateRequest{Name: "managed-by:spuff"}))
	if _, err := c.Tags.TagResources(ctx, "managed-by:spuff", &godo.TagResourcesRequest{Resources: []godo.Resource{{ID: strconv.Itoa(img.ID), Type: godo.ImageResourceType}}}); err != nil {
		t.Fatal(err)
	}
	tag := must(c.Tags.Get(ctx, "managed-by:spuff"))
	if tag.Resources == nil || tag.Resources.Count != 7 || tag.Resources.Droplets.Count != 6 {
		t.Errorf("tag = %+v", tag.Resources)
	}
	if tagged := must(c.Images.ListByTag(ctx, "managed-by:spuff", nil)); len(tagged) != 1 || tagged[0].ID != img.ID || tagged[0].Type != "snapshot" {
		t.Errorf("images by tag = %+v", tagged)
	}
	if user := must(c.Images.ListUser(ctx, nil)); len(user) != 1 {
		t.Errorf("private images = %+v", user)
	}
	if dist := must(c.Images.ListDistribution(ctx, &godo.ListOptions{PerPage: 3})); len(dist) != 3 {
		t.Errorf("distribution images page = %d", len(dist))
	}
	if got := must(c.Images.GetBySlug(ctx, "debian-12-x64")); got.Distribution != "Debian" || !got.Public {
		t.Errorf("debian image = %+v", got)
	}
	if got := must(c.Images.GetByID(ctx, img.ID)); got.Name != "web-1-snap" || got.Slug != "" {
		t.Errorf("snapshot image = %+v", got)
	}
	if s := must(c.Snapshots.Get(ctx, strconv.Itoa(img.ID))); s.ResourceID != strconv.Itoa(d.ID) || !slices.Contains(s.Tags, "managed-by:spuff") {
		t.Errorf("snapshot = %+v", s)
	}
	if list := must(c.Snapshots.ListDroplet(ctx, nil)); len(list) != 1 {
		t.Errorf("droplet snapshots = %+v", list)
	}
	if list := must(c.Snapshots.ListVolume(ctx, nil)); len(list) != 0 {
		t.Errorf("volume snapshots = %+v", list)
	}
	if _, err := c.Tags.UntagResources(ctx, "managed-by:spuff", &godo.UntagResourcesRequest{Resources: []godo.Resource{{ID: strconv.Itoa(img.ID), Type: godo.ImageResourceType}}}); err != nil {
		t.Fatal(err)
	}
	if tagged := must(c.Images.ListByTag(ctx, "managed-by:spuff", nil)); len(tagged) != 0 {
		t.Errorf("images by tag after untagging = %+v", tagged)
	}
	debian := must(c.Images.GetBySlug(ctx, "debian-12-x64"))
	if _, err := c.Images.Delete(ctx, debian.ID); status(err) != http.StatusUnprocessableEntity {
		t.Errorf("deleting a public image: %v, want 422", err)
	}
	if _, _, err := c.Snapshots.Get(ctx, strconv.Itoa(debian.ID)); status(err) != http.StatusBadRequest {
		t.Errorf("a public image through /v2/snapshots: %v, want 400", err)
	}
	if _, err := c.Snapshots.Delete(ctx, strconv.Itoa(img.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Snapshots.Delete(ctx, strconv.Itoa(img.ID)); status(err) != http.StatusNotFound {
		t.Errorf("deleting a deleted snapshot: %v, want 404", err)
	}
	must(c.Regions.List(ctx, nil))
	must(c.Sizes.List(ctx, nil))

	// Errors the cloud answers.
	if _, _, err := c.Droplets.Create(ctx, &godo.DropletCreateRequest{Name: "x", Region: "zz9", Size: "s-1vcpu-1gb", Image: godo.DropletCreateImage{Slug: "ubuntu-24-04-x64"}, SSHKeys: []godo.DropletCreateSSHKey{}}); status(err) != http.StatusUnprocessableEntity {
		t.Errorf("create in an unknown region: %v, want 422", err)
	}
	if _, _, err := c.Droplets.Create(ctx, &godo.DropletCreateRequest{Name: "x", Region: "nyc3", Size: "s-1vcpu-1gb", Image: godo.DropletCreateImage{Slug: "ubuntu-4-10-x64"}, SSHKeys: []godo.DropletCreateSSHKey{}}); status(err) != http.StatusUnprocessableEntity {
		t.Errorf("create with an unknown image: %v, want 422", err)
	}
	for _, f := range []simcloud.FaultKind{simcloud.FaultRateLimit, simcloud.FaultRateLimitBare, simcloud.FaultInternal, simcloud.FaultBadGateway, simcloud.FaultUnavailable} {
		e.cloud.Inject(simcloud.Fault{Op: simcloud.OpGetInstance, Kind: f})
		_, resp, err := c.Droplets.Get(ctx, d.ID)
		want := map[simcloud.FaultKind]int{simcloud.FaultRateLimit: 429, simcloud.FaultRateLimitBare: 429, simcloud.FaultInternal: 500, simcloud.FaultBadGateway: 502, simcloud.FaultUnavailable: 503}[f]
		if status(err) != want {
			t.Errorf("fault %s: %v, want HTTP %d", f, err, want)
		}
		if ra := resp.Header.Get("Retry-After"); (f == simcloud.FaultRateLimit) != (ra != "") {
			t.Errorf("fault %s: Retry-After %q", f, ra)
		}
	}
	if _, err := c.Droplets.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Droplets.Get(ctx, d.ID); status(err) != http.StatusNotFound {
		t.Errorf("get after delete: %v, want 404", err)
	}
	if _, err := c.Droplets.Delete(ctx, d.ID); status(err) != http.StatusNotFound {
		t.Errorf("delete after delete: %v, want 404", err)
	}
	bad, _ := godo.New(&http.Client{Transport: bearer{"wrong", http.DefaultTransport}}, godo.SetBaseURL(e.srv.URL+"/"))
	if _, _, err := bad.Droplets.List(ctx, nil); status(err) != http.StatusUnauthorized {
		t.Errorf("wrong token: %v, want 401", err)
	}

	// Every operation the driver uses was seen, with its error answers.
	want := []string{
		"sshKeys_list 200", "droplets_create 202", "droplets_create 422", "droplets_get 200", "droplets_get 404",
		"droplets_get 429", "droplets_get 500", "droplets_get 502", "droplets_get 503", "droplets_list 200", "droplets_list 401",
		"droplets_destroy 204", "droplets_destroy 404", "droplets_list_snapshots 200", "dropletActions_list 200",
		"dropletActions_post 201", "dropletActions_post 422", "dropletActions_get 200", "actions_get 200",
		"images_list 200", "images_get 200", "images_delete 422", "snapshots_list 200", "snapshots_get 200",
		"snapshots_get 400", "snapshots_delete 204", "snapshots_delete 404", "tags_create 201", "tags_get 200",
		"tags_assign_resources 204", "tags_assign_resources 404", "tags_unassign_resources 204",
		"regions_list 200", "sizes_list 200",
	}
	got := e.covered()
	for _, w := range want {
		if got[w] == 0 {
			t.Errorf("no %q exchange was validated", w)
		}
	}
	keysSeen := make([]string, 0, len(got))
	for k, n := range got {
		keysSeen = append(keysSeen, fmt.Sprintf("%s ×%d", k, n))
	}
	slices.Sort(keysSeen)
	t.Logf("validated against the OpenAPI description: %s", strings.Join(keysSeen, ", "))
}

// TestOpenAPICanFail proves that the validation checks something: wrong
// answers and requests, each close to a right one, are flagged.
func TestOpenAPICanFail(t *testing.T) {
	t.Parallel()
	spec := apispec.DigitalOcean(t)
	get := func(path string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer x")
		return r
	}
	post := func(path string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.Header.Set("Authorization", "Bearer x")
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	// A droplet that validates, to derive the wrong ones from.
	e := start(t, simcloud.Options{})
	good := must(e.client.Droplets.Create(e.ctx, &godo.DropletCreateRequest{Name: "ok", Region: "nyc3", Size: "s-1vcpu-1gb", Image: godo.DropletCreateImage{Slug: "debian-12-x64"}, SSHKeys: []godo.DropletCreateSSHKey{}}))
	raw := func() string {
		rec := httptest.NewRecorder()
		req := get(fmt.Sprintf("/v2/droplets/%d", good.ID))
		req.Header.Set("Authorization", "Bearer "+e.cloud.Token())
		dosim.NewHandler(e.cloud).ServeHTTP(rec, req)
		return rec.Body.String()
	}()
	if _, err := spec.Check(apispec.Exchange{Request: get("/v2/droplets/1"), Status: 200, Header: jsonHdr, Body: []byte(raw)}); err != nil {
		t.Fatalf("the dialect's own droplet does not validate: %v", err)
	}
	replace := func(old, new string) []byte {
		if !strings.Contains(raw, old) {
			t.Fatalf("droplet body lacks %q: %s", old, raw)
		}
		return []byte(strings.Replace(raw, old, new, 1))
	}
	id := fmt.Sprintf(`"id":%d`, good.ID)
	cases := []struct {
		name string
		x    apispec.Exchange
	}{
		{"droplet id is a string", apispec.Exchange{Request: get("/v2/droplets/1"), Status: 200, Header: jsonHdr, Body: replace(id, fmt.Sprintf(`"id":"%d"`, good.ID))}},
		{"droplet without networks", apispec.Exchange{Request: get("/v2/droplets/1"), Status: 200, Header: jsonHdr, Body: replace(`"networks":`, `"networks_":`)}},
		{"unknown droplet status", apispec.Exchange{Request: get("/v2/droplets/1"), Status: 200, Header: jsonHdr, Body: replace(`"status":"new"`, `"status":"booting"`)}},
		{"created_at not RFC 3339", apispec.Exchange{Request: get("/v2/droplets/1"), Status: 200, Header: jsonHdr, Body: replace(`"created_at":"2026-`, `"created_at":"01/03/2026 `)}},
		{"memory not a multiple of 8", apispec.Exchange{Request: get("/v2/droplets/1"), Status: 200, Header: jsonHdr, Body: replace(`"memory":1024`, `"memory":1001`)}},
		{"error body without id", apispec.Exchange{Request: get("/v2/droplets/1"), Status: 404, Header: jsonHdr, Body: []byte(`{"message":"gone"}`)}},
		{"429 body without message", apispec.Exchange{Request: get("/v2/droplets"), Status: 429, Header: jsonHdr, Body: []byte(`{"id":"too_many_requests"}`)}},
		{"list without meta", apispec.Exchange{Request: get("/v2/droplets"), Status: 200, Header: jsonHdr, Body: []byte(`{"droplets":[],"links":{}}`)}},
		{"per_page over 200", apispec.Exchange{Request: get("/v2/droplets?per_page=500"), Status: 200, Header: jsonHdr, Body: []byte(`{"droplets":[],"links":{},"meta":{"total":0}}`)}},
		{"create without size", apispec.Exchange{Request: post("/v2/droplets"), RequestBody: []byte(`{"name":"x","region":"nyc3","image":"debian-12-x64"}`)}},
		{"create with an image object", apispec.Exchange{Request: post("/v2/droplets"), RequestBody: []byte(`{"name":"x","region":"nyc3","size":"s-1vcpu-1gb","image":{"slug":"debian-12-x64"},"ssh_keys":[]}`)}},
		{"create with an underscore in the name", apispec.Exchange{Request: post("/v2/droplets"), RequestBody: []byte(`{"name":"bad_name","region":"nyc3","size":"s-1vcpu-1gb","image":"debian-12-x64","ssh_keys":[]}`)}},
		{"snapshot action answered 200", apispec.Exchange{Request: post("/v2/droplets/1/actions"), RequestBody: []byte(`{"type":"snapshot","name":"s"}`), Status: 299, Header: jsonHdr, Body: []byte(`{}`)}},
		{"no such route", apispec.Exchange{Request: get("/v2/no_such_thing"), Status: 200, Header: jsonHdr, Body: []byte(`{}`)}},
		{"rate limit header not a number", apispec.Exchange{Request: get("/v2/droplets/1"), Status: 404, Header: http.Header{"Content-Type": {"application/json"}, "Ratelimit-Limit": {"lots"}}, Body: []byte(`{"id":"not_found","message":"x"}`)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := spec.Check(tc.x); err == nil {
				t.Fatal("validation passed; want it flagged")
			} else {
				t.Logf("flagged as expected: %.300s", err)
			}
		})
	}
}

// TestPagination checks DigitalOcean's paging: absolute first/prev/next/last
// links that keep the query, pages of at most 200, and links present (if
// empty) on a single page, so godo never sees nil Links.
func TestPagination(t *testing.T) {
	t.Parallel()
	e := start(t, simcloud.Options{RateLimits: []simcloud.RateLimit{}})
	e.cloud.AddInstances(450, func(i int) simcloud.InstanceSpec {
		labels := map[string]string{"managed-by": "spuff"}
		if i%10 == 0 {
			labels = map[string]string{"managed-by": "someone-else"}
		}
		return simcloud.InstanceSpec{Name: fmt.Sprintf("n%d", i), Region: "nyc3", Size: "s-1vcpu-1gb", Labels: labels}
	})
	seen := map[int]bool{}
	pages := 0
	for page := 1; ; page++ {
		list, resp, err := e.client.Droplets.ListByTag(e.ctx, "managed-by:spuff", &godo.ListOptions{Page: page, PerPage: dosim.MaxPerPage})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(list) > dosim.MaxPerPage {
			t.Fatalf("page of %d droplets, more than %d", len(list), dosim.MaxPerPage)
		}
		for _, d := range list {
			if seen[d.ID] {
				t.Errorf("droplet %d listed twice", d.ID)
			}
			seen[d.ID] = true
		}
		if resp.Meta == nil || resp.Meta.Total != 405 {
			t.Errorf("meta = %+v, want total 405", resp.Meta)
		}
		p := resp.Links.Pages
		for _, l := range []string{p.First, p.Prev, p.Next, p.Last} {
			if l != "" && (!strings.HasPrefix(l, e.srv.URL+"/v2/droplets?") || !strings.Contains(l, "tag_name=managed-by%3Aspuff") || !strings.Contains(l, "per_page=200")) {
				t.Errorf("page %d: link %q is not absolute with the query kept", page, l)
			}
		}
		if cur, _ := resp.Links.CurrentPage(); cur != page {
			t.Errorf("godo reads page %d as %d", page, cur)
		}
		if resp.Links.IsLastPage() {
			break
		}
	}
	if pages != 3 || len(seen) != 405 {
		t.Errorf("%d pages, %d droplets; want 3 pages of the 405 managed", pages, len(seen))
	}
	_, resp, err := e.client.Droplets.ListByTag(e.ctx, "nobody", nil)
	if err != nil || resp.Links == nil || !resp.Links.IsLastPage() {
		t.Errorf("an empty list: links %+v, err %v", resp.Links, err)
	}
}

// TestRateLimit checks the simple world's token buckets (dosim.RateLimits)
// and DigitalOcean's headers: RateLimit-Limit and RateLimit-Remaining are
// the hourly window's, and a request over the per-minute window gets a 429
// with a too_many_requests body. The realistic world's per-request timers
// are TestRealisticBurstLimit's and TestRealisticHourlyLimit's.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := start(t, simcloud.Options{World: simcloud.WorldSimple})
	var last int
	for i := range 250 {
		_, resp, err := e.client.Droplets.List(e.ctx, nil)
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if resp.Rate.Limit != 5000 || resp.Rate.Reset.IsZero() {
			t.Fatalf("call %d: rate %+v", i+1, resp.Rate)
		}
		last = resp.Rate.Remaining
	}
	if last != 4750 {
		t.Errorf("after 250 calls, RateLimit-Remaining = %d, want 4750 (the hourly window's)", last)
	}
	_, resp, err := e.client.Droplets.List(e.ctx, nil)
	var er *godo.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != http.StatusTooManyRequests || !strings.Contains(strings.ToLower(er.Message), "rate limit") {
		t.Fatalf("call 251: %v, want 429", err)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	if st := e.cloud.Stats(); st.RateLimited != 1 {
		t.Errorf("cloud counted %d throttled calls, want 1", st.RateLimited)
	}
	e.clock.Advance(time.Minute)
	if _, _, err := e.client.Droplets.List(e.ctx, nil); err != nil {
		t.Errorf("a minute later: %v", err)
	}
}

// TestLabelsTags checks the label ↔ tag mapping both ways.
func TestLabelsTags(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"managed-by": "spuff", "env": "prod", "flag": ""}
	tags := dosim.Tags(labels)
	if !slices.Equal(tags, []string{"env:prod", "flag", "managed-by:spuff"}) {
		t.Errorf("Tags = %v", tags)
	}
	back := dosim.Labels(tags)
	if len(back) != 3 || back["flag"] != "" || back["env"] != "prod" {
		t.Errorf("Labels = %v", back)
	}
}
