package hetzner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/hetzner"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// front sits in front of a simulated Hetzner Cloud: it answers the next
// requests of a route with canned Hetzner error answers the simulated
// cloud cannot give (409 conflict, 423 locked, capacity, rate-limit
// headers), and can rewrite the status of a server in the answers (the
// simulated cloud shows no server in status deleting).
type front struct {
	next http.Handler

	mu       sync.Mutex
	canned   []*canned
	served   map[string]int // route -> canned answers served
	deleting map[int64]bool // servers shown in status deleting
}

type canned struct {
	route         string // "METHOD /path", with * for one path segment
	status        int
	code, message string
	header        http.Header
	count         int
}

func startFront(t *testing.T, opts simcloud.Options) (*simcloud.Server, *front) {
	t.Helper()
	cloud := hcloudsim.NewCloud(opts)
	f := &front{next: hcloudsim.Handler(cloud), served: map[string]int{}, deleting: map[int64]bool{}}
	srv := simcloud.NewServer(cloud, f)
	t.Cleanup(srv.Close)
	return srv, f
}

// answer queues count canned answers for route.
func (f *front) answer(route string, status int, code, message string, count int, header http.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.canned = append(f.canned, &canned{route: route, status: status, code: code, message: message, header: header, count: count})
}

// servedFor returns how many canned answers route got.
func (f *front) servedFor(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served[route]
}

// showDeleting makes the answers show the server id in status deleting.
func (f *front) showDeleting(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleting[id] = true
}

func (f *front) take(r *http.Request) *canned {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/v1")
	for i, c := range f.canned {
		method, pattern, _ := strings.Cut(c.route, " ")
		if ok, _ := path.Match(pattern, p); !ok || method != r.Method {
			continue
		}
		c.count--
		if c.count <= 0 {
			f.canned = slices.Delete(f.canned, i, i+1)
		}
		f.served[c.route]++
		return c
	}
	return nil
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c := f.take(r); c != nil {
		maps.Copy(w.Header(), c.header)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(c.status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": c.code, "message": c.message, "details": map[string]any{}}})
		return
	}
	f.mu.Lock()
	deleting := maps.Clone(f.deleting)
	f.mu.Unlock()
	if len(deleting) == 0 || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/servers") {
		f.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	f.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	var doc map[string]any
	if json.Unmarshal(body, &doc) == nil {
		mark := func(v any) {
			if s, ok := v.(map[string]any); ok {
				if id, ok := s["id"].(float64); ok && deleting[int64(id)] {
					s["status"] = "deleting"
				}
			}
		}
		mark(doc["server"])
		if list, ok := doc["servers"].([]any); ok {
			for _, s := range list {
				mark(s)
			}
		}
		body, _ = json.Marshal(doc)
	}
	maps.Copy(w.Header(), rec.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

func openFast(t *testing.T, srv *simcloud.Server, tweak func(*provider.Config)) provider.Provider {
	t.Helper()
	cfg := fastConfig(srv)
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := hetzner.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConflictAndLockedAreRetried: Hetzner's conflict (409, the resource
// changed during the request) and locked (423, another action runs on it)
// refuse a call without doing it, and hcloud-go documents them as "retry":
// creates, snapshots, destroys and reads ride over them, with no second
// resource made; when the attempts run out the error is a retryable
// ErrAPI carrying the status and code.
func TestConflictAndLockedAreRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, f := startFront(t, fastOpts())
	p := openFast(t, srv, nil)

	f.answer("POST /servers", http.StatusConflict, "conflict", "the resource has changed during the request, please retry", 1, nil)
	f.answer("POST /servers", http.StatusLocked, "locked", "server is locked", 1, nil)
	inst, err := p.CreateInstance(ctx, harness.Request("busy-1"))
	if err != nil {
		t.Fatalf("CreateInstance through 409 conflict and 423 locked: %v", err)
	}
	if got, made := f.servedFor("POST /servers"), srv.Cloud.Calls(simcloud.OpCreateInstance); got != 2 || made != 1 || len(srv.Cloud.LiveInstances()) != 1 {
		t.Errorf("%d refused creates, %d creates reached the cloud, %d servers; want 2, 1 and 1", got, made, len(srv.Cloud.LiveInstances()))
	}
	var st provider.Stats
	if !p.As(&st) || st.Retries < 2 {
		t.Errorf("Stats %+v, want at least 2 retries", st)
	}
	if _, err := p.WaitReady(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}

	f.answer("POST /servers/*/actions/create_image", http.StatusLocked, "locked", "server is locked", 2, nil)
	snap, err := p.CreateSnapshot(ctx, inst.ID, "busy-snap")
	if err != nil {
		t.Fatalf("CreateSnapshot through 423 locked: %v", err)
	}
	if n := srv.Cloud.Calls(simcloud.OpCreateSnapshot); n != 1 || len(srv.Cloud.LiveSnapshots()) != 1 {
		t.Errorf("%d create_image calls reached the cloud, %d snapshots; want 1 and 1", n, len(srv.Cloud.LiveSnapshots()))
	}
	f.answer("DELETE /images/*", http.StatusConflict, "conflict", "please retry", 1, nil)
	if err := p.DeleteSnapshot(ctx, snap.ID); err != nil || len(srv.Cloud.LiveSnapshots()) != 0 {
		t.Errorf("DeleteSnapshot through 409 conflict: %v, %d snapshots left", err, len(srv.Cloud.LiveSnapshots()))
	}

	f.answer("GET /servers/*", http.StatusConflict, "conflict", "please retry", 100, nil)
	p1 := openFast(t, srv, func(c *provider.Config) { c.Retry.MaxAttempts = 1 })
	_, err = p1.GetInstance(ctx, inst.ID)
	var perr *provider.Error
	if !errors.Is(err, provider.ErrAPI) || !provider.IsRetryable(err) || !errors.As(err, &perr) || perr.Status != http.StatusConflict || perr.Code != "conflict" {
		t.Errorf("GetInstance under 409 conflict, one attempt: %v; want a retryable ErrAPI with HTTP 409 conflict", err)
	}
	f.mu.Lock()
	f.canned = nil
	f.mu.Unlock()

	f.answer("DELETE /servers/*", http.StatusLocked, "locked", "server is locked", 1, nil)
	if err := p.DestroyInstance(ctx, inst.ID); err != nil {
		t.Fatalf("DestroyInstance through 423 locked: %v", err)
	}
	if n := len(srv.Cloud.LiveInstances()); n != 0 {
		t.Errorf("%d servers left", n)
	}
}

// TestDeletingIsDestroying: a server in Hetzner's status deleting is being
// destroyed: GetInstance reports StatusDestroying, ListInstances leaves it
// out, WaitReady does not wait for it.
func TestDeletingIsDestroying(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, f := startFront(t, fastOpts())
	p := openFast(t, srv, nil)
	gone, err := p.CreateInstance(ctx, harness.Request("deleting-1"))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := p.CreateInstance(ctx, harness.Request("deleting-2"))
	if err != nil {
		t.Fatal(err)
	}
	f.showDeleting(mustID(t, gone.ID))

	got, err := p.GetInstance(ctx, gone.ID)
	if err != nil || got.Status != provider.StatusDestroying || got.RawStatus != "deleting" {
		t.Fatalf("GetInstance of a deleting server = %+v, %v; want StatusDestroying (raw deleting)", got, err)
	}
	list, err := p.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != kept.ID {
		var ids []string
		for _, in := range list {
			ids = append(ids, in.ID+" "+in.RawStatus)
		}
		t.Errorf("ListInstances = %v, want just %s (the deleting server left out)", ids, kept.ID)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.WaitReady(wctx, gone.ID); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("WaitReady of a deleting server: %v, want ErrNotFound", err)
	}
	for _, id := range []string{gone.ID, kept.ID} {
		if err := p.DestroyInstance(ctx, id); err != nil {
			t.Error(err)
		}
	}
}

// TestCapacityErrors: Hetzner's resource_unavailable ("server location
// disabled", "error during placement") and placement_error say the
// location has no room for the server type now: ErrCapacity, not repeated
// (another placement may work; the same one now will not), and no server.
func TestCapacityErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, f := startFront(t, fastOpts())
	p := openFast(t, srv, nil)
	for i, tc := range []struct {
		status        int
		code, message string
	}{
		{http.StatusPreconditionFailed, "resource_unavailable", "server location disabled"},
		{http.StatusPreconditionFailed, "resource_unavailable", "error during placement"},
		{http.StatusPreconditionFailed, "placement_error", "An error during the placement occurred"},
	} {
		f.answer("POST /servers", tc.status, tc.code, tc.message, 1, nil)
		_, err := p.CreateInstance(ctx, harness.Request(fmt.Sprintf("full-%d", i)))
		var perr *provider.Error
		if !errors.Is(err, provider.ErrCapacity) || provider.IsRetryable(err) || !errors.As(err, &perr) || perr.Code != tc.code || perr.Status != tc.status {
			t.Errorf("%s %q: %v; want a final ErrCapacity with HTTP %d %s", tc.code, tc.message, err, tc.status, tc.code)
		}
		var hcErr hcloud.Error
		if !errors.As(err, &hcErr) || string(hcErr.Code) != tc.code {
			t.Errorf("%s: the hcloud.Error is not reachable: %v", tc.code, err)
		}
	}
	if n, live := f.servedFor("POST /servers"), len(srv.Cloud.LiveInstances()); n != 3 || live != 0 {
		t.Errorf("%d creates refused, %d servers; want 3 (none repeated) and 0", n, live)
	}
}

// TestRateLimitHeaders: Hetzner's 429 has no Retry-After. When
// RateLimit-Remaining is 0, the wait is the time its bucket takes to return
// one request, from RateLimit-Reset (when it is full) and RateLimit-Limit:
// a second at Hetzner's rate. With budget left, the 429 says no wait (the
// pacer pauses on it without draining the window).
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, f := startFront(t, fastOpts())
	reset := time.Now().Add(time.Hour).Unix()
	h := func(remaining int) http.Header {
		return http.Header{"Ratelimit-Limit": {"3600"}, "Ratelimit-Remaining": {strconv.Itoa(remaining)}, "Ratelimit-Reset": {strconv.FormatInt(reset, 10)}}
	}
	one := func(c *provider.Config) { c.Retry.MaxAttempts, c.Pacer = 1, provider.NewPacer() }

	f.answer("GET /servers", http.StatusTooManyRequests, "rate_limit_exceeded", "limit reached", 1, h(0))
	_, err := openFast(t, srv, one).ListInstances(ctx)
	if d, ok := provider.RetryAfter(err); !errors.Is(err, provider.ErrRateLimit) || !ok || d < 900*time.Millisecond || d > 1100*time.Millisecond {
		t.Errorf("429 with no request left: %v (retry after %v); want ErrRateLimit after about 1s", err, d)
	}
	f.answer("GET /servers", http.StatusTooManyRequests, "rate_limit_exceeded", "limit reached", 1, h(17))
	_, err = openFast(t, srv, one).ListInstances(ctx)
	if d, ok := provider.RetryAfter(err); !errors.Is(err, provider.ErrRateLimit) || ok {
		t.Errorf("429 with requests left: %v (retry after %v); want ErrRateLimit without a wait", err, d)
	}
}

// TestStringHidesToken: however a Provider is printed, the token is not.
func TestStringHidesToken(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-t0ken-f00"
	cfg := provider.Config{Token: token, Endpoint: "http://127.0.0.1:1"}
	p, err := hetzner.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := hetzner.ClientOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pn, err := hetzner.New(hcloud.NewClient(opts...), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []provider.Provider{p, pn} {
		if s := fmt.Sprintf("%v %+v %#v %s", p, p, p, p); strings.Contains(s, token) {
			t.Errorf("the Provider prints its token: %s", s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := p.ListInstances(ctx)
		cancel()
		if err == nil || strings.Contains(err.Error(), token) {
			t.Errorf("ListInstances on a closed port: %v, want an error without the token", err)
		}
	}
}

// TestCatalogueFetchedOnce: creates made at once resolve the server type
// and the image from one catalogue read each, not one per create.
func TestCatalogueFetchedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := hcloudsim.Start(t, fastOpts())
	p := openFast(t, srv, nil)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := p.CreateInstance(ctx, harness.Request(fmt.Sprintf("fleet-%d", i)))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if types, images := srv.Cloud.Calls(simcloud.OpCatalog), srv.Cloud.Calls(simcloud.OpListImages); types != 1 || images != 1 {
		t.Errorf("%d concurrent creates read the server types %d times and the images %d times, want 1 and 1", n, types, images)
	}
	if live := len(srv.Cloud.LiveInstances()); live != n {
		t.Errorf("%d servers, want %d", live, n)
	}
}
