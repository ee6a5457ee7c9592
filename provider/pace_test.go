package provider

import (
	"context"
	"errors"
	"fmt"
	"github.com/spuffgo/spuff/provider/driver"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blocked reports whether p.Wait blocks for at least d (it returns
// DeadlineExceeded from a ctx of that length). When it does not block,
// the slot it reserved is consumed.
func blocked(t *testing.T, p *Pacer, d time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := p.Wait(ctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v", err)
	}
	return err != nil
}

func TestPacerAdmitsConcurrentWaits(t *testing.T) {
	t.Parallel()
	// 5 per 100ms: 5 at once, then one every 20ms.
	start := time.Now()
	p := NewPacer(RateLimit{Requests: 5, Per: 100 * time.Millisecond})
	const n = 30
	var wg sync.WaitGroup
	var admitted atomic.Int32
	release := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := p.Wait(ctx); err != nil {
				t.Error(err)
				return
			}
			admitted.Add(1)
		}()
	}
	close(release)
	wg.Wait()
	elapsed := time.Since(start)
	if admitted.Load() != n {
		t.Fatalf("admitted %d of %d", admitted.Load(), n)
	}
	st := p.Stats()
	if st.Requests != n {
		t.Errorf("Stats.Requests = %d, want %d", st.Requests, n)
	}
	if st.Delayed == 0 || st.Delayed > n-5 {
		t.Errorf("Stats.Delayed = %d, want between 1 and %d", st.Delayed, n-5)
	}
	if st.Delayed > 0 && st.Waited <= 0 {
		t.Errorf("Stats.Waited = %v with %d delayed", st.Waited, st.Delayed)
	}
	// Lower bound only (a token bucket never admits early): 30 requests
	// at 5 + 50/s take at least (30-5)/50 s.
	if min := 490 * time.Millisecond; elapsed < min {
		t.Errorf("%d requests admitted in %v, want at least %v", n, elapsed, min)
	}
}

func TestPacerBlocksPastTheLimit(t *testing.T) {
	t.Parallel()
	// 3 per hour: the 4th request must wait ~20 minutes.
	p := NewPacer(RateLimit{Requests: 3, Per: time.Hour})
	for i := range 3 {
		if blocked(t, p, time.Minute) {
			t.Fatalf("request %d blocked within the budget", i+1)
		}
	}
	if !blocked(t, p, 20*time.Millisecond) {
		t.Fatal("4th request was admitted past the limit")
	}
	st := p.Stats()
	if st.Requests != 4 || st.Delayed != 1 {
		t.Errorf("Stats = %+v, want 4 requests, 1 delayed", st)
	}
}

func TestPacerSeveralWindows(t *testing.T) {
	t.Parallel()
	// The tighter window governs: 100/min would allow it, 2/hour does not.
	p := NewPacer(RateLimit{Requests: 100, Per: time.Minute}, RateLimit{Requests: 2, Per: time.Hour})
	blocked(t, p, time.Minute)
	blocked(t, p, time.Minute)
	if !blocked(t, p, 20*time.Millisecond) {
		t.Fatal("3rd request admitted past the hourly window")
	}
}

func TestPacerIgnoresEmptyWindows(t *testing.T) {
	t.Parallel()
	p := NewPacer(RateLimit{}, RateLimit{Requests: 5}, RateLimit{Per: time.Second})
	for range 100 {
		if blocked(t, p, time.Minute) {
			t.Fatal("a pacer without windows blocked")
		}
	}
}

func TestPacerObserve(t *testing.T) {
	t.Parallel()
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name          string
		limits        []RateLimit
		status        int
		header        http.Header
		wantBlocked   bool
		wantThrottled int64
	}{
		{"429 with Retry-After pauses", nil, 429, hdr("Retry-After", "3600"), true, 1},
		{"429 without Retry-After pauses a second", nil, 429, hdr(), true, 1},
		{"429 with HTTP date pauses", nil, 429, hdr("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), true, 1},
		{"RateLimit-Remaining 0 clamps", []RateLimit{{Requests: 100, Per: time.Hour}}, 200,
			hdr("RateLimit-Limit", "100", "RateLimit-Remaining", "0"), true, 0},
		{"RateLimit-Remaining 0 without limit header clamps the largest window", []RateLimit{{Requests: 100, Per: time.Hour}}, 200,
			hdr("RateLimit-Remaining", "0"), true, 0},
		{"RateLimit-Remaining plenty", []RateLimit{{Requests: 100, Per: time.Hour}}, 200,
			hdr("RateLimit-Limit", "100", "RateLimit-Remaining", "50"), false, 0},
		{"200 without headers", []RateLimit{{Requests: 100, Per: time.Hour}}, 200, hdr(), false, 0},
		{"503 is not a throttle", nil, 503, hdr("Retry-After", "3600"), false, 0},
		{"garbage remaining", []RateLimit{{Requests: 100, Per: time.Hour}}, 200, hdr("RateLimit-Remaining", "lots"), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := NewPacer(tt.limits...)
			observed := time.Now()
			p.Observe(tt.status, tt.header)
			// 20ms is well under every pause above (>= 1s), and blocking
			// is decided when Wait is called; a stall of the whole
			// second before Wait is tolerated.
			got := blocked(t, p, 20*time.Millisecond)
			if got != tt.wantBlocked && !(tt.wantBlocked && time.Since(observed) > 900*time.Millisecond) {
				t.Errorf("blocked = %v, want %v", got, tt.wantBlocked)
			}
			if got := p.Stats().Throttled; got != tt.wantThrottled {
				t.Errorf("Stats.Throttled = %d, want %d", got, tt.wantThrottled)
			}
		})
	}
}

// A pause applies to every waiter, and a cancelled Wait gives its slot back.
func TestPacerThrottledPausesEveryone(t *testing.T) {
	t.Parallel()
	p := NewPacer(RateLimit{Requests: 1000, Per: time.Second})
	p.Throttled(time.Hour)
	var wg sync.WaitGroup
	var blockedCount atomic.Int32
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if blocked(t, p, 20*time.Millisecond) {
				blockedCount.Add(1)
			}
		}()
	}
	wg.Wait()
	if blockedCount.Load() != 5 {
		t.Errorf("%d of 5 waiters paused", blockedCount.Load())
	}
	if st := p.Stats(); st.Throttled != 1 || st.Delayed != 5 {
		t.Errorf("Stats = %+v", st)
	}
	// Throttled(0) pauses a second.
	q := NewPacer()
	throttled := time.Now()
	q.Throttled(0)
	if !blocked(t, q, 20*time.Millisecond) && time.Since(throttled) < 900*time.Millisecond {
		t.Error("Throttled(0) did not pause")
	}
}

func TestPacerNil(t *testing.T) {
	t.Parallel()
	var p *Pacer
	if err := p.Wait(context.Background()); err != nil {
		t.Errorf("nil Wait = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("nil Wait with a cancelled ctx = %v", err)
	}
	p.Observe(429, http.Header{"Retry-After": []string{"10"}})
	p.Throttled(time.Hour)
	if st := p.Stats(); st != (PacerStats{}) {
		t.Errorf("nil Stats = %+v", st)
	}
	if rt := p.Transport(http.DefaultTransport); rt != http.DefaultTransport {
		t.Errorf("nil Transport wraps the base")
	}
	if rt := p.Transport(nil); rt != http.DefaultTransport {
		t.Errorf("nil Transport(nil) = %v", rt)
	}
	if c := p.Client(nil); c == nil {
		t.Error("nil Client(nil) = nil")
	}
}

func TestSharedPacer(t *testing.T) {
	t.Parallel()
	key := "spuff-test-shared|" + driver.AccountKey("http://127.0.0.1:1", "token-A")
	a := sharedPacer(key, RateLimit{Requests: 10, Per: time.Second})
	b := sharedPacer(key, RateLimit{Requests: 99, Per: time.Hour})
	if a != b {
		t.Error("sharedPacer returned two pacers for one account")
	}
	other := sharedPacer("spuff-test-shared|" + driver.AccountKey("http://127.0.0.1:1", "token-B"))
	if other == a {
		t.Error("two credentials share a pacer")
	}
	// Concurrent first use still yields one pacer.
	key2 := "spuff-test-shared-race|" + driver.AccountKey("", "t")
	got := make(chan *Pacer, 8)
	for range 8 {
		go func() { got <- sharedPacer(key2) }()
	}
	first := <-got
	for range 7 {
		if <-got != first {
			t.Fatal("concurrent sharedPacer calls made two pacers")
		}
	}
}

func TestAccountKeyHidesCredential(t *testing.T) {
	t.Parallel()
	const cred = "dop_v1_VERYSECRET"
	k := "digitalocean|" + driver.AccountKey("https://api.digitalocean.com", cred)
	if strings.Contains(k, cred) || strings.Contains(k, "VERYSECRET") {
		t.Errorf("AccountKey %q contains the credential", k)
	}
	if !strings.HasPrefix(k, "digitalocean|https://api.digitalocean.com|") {
		t.Errorf("account key = %q", k)
	}
	if k == "digitalocean|"+driver.AccountKey("https://api.digitalocean.com", cred+"x") {
		t.Error("different credentials give the same key")
	}
	if k != "digitalocean|"+driver.AccountKey("https://api.digitalocean.com", cred) {
		t.Error("AccountKey is not deterministic")
	}
}

func TestPacerTransport(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		switch r.URL.Path {
		case "/throttle":
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/exhaust":
			w.Header().Set("RateLimit-Limit", "100")
			w.Header().Set("RateLimit-Remaining", "0")
			fmt.Fprintln(w, "ok", n)
		default:
			fmt.Fprintln(w, "ok", n)
		}
	}))
	t.Cleanup(srv.Close)

	get := func(c *http.Client, path string, timeout time.Duration) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}

	t.Run("429 pauses the next request", func(t *testing.T) {
		p := NewPacer()
		c := p.Client(srv.Client())
		before := hits.Load()
		if code, err := get(c, "/throttle", time.Minute); err != nil || code != 429 {
			t.Fatalf("GET /throttle = %d, %v", code, err)
		}
		_, err := get(c, "/ok", 20*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GET after a 429 = %v, want it held back until its deadline", err)
		}
		if got := hits.Load() - before; got != 1 {
			t.Errorf("server saw %d requests, want 1 (the paused one must not be sent)", got)
		}
		st := p.Stats()
		if st.Throttled != 1 || st.Requests != 2 || st.Delayed != 1 {
			t.Errorf("Stats = %+v, want 2 requests, 1 delayed, 1 throttled", st)
		}
	})
	t.Run("RateLimit-Remaining 0 clamps", func(t *testing.T) {
		p := NewPacer(RateLimit{Requests: 100, Per: time.Hour})
		c := &http.Client{Transport: p.Transport(srv.Client().Transport)}
		if code, err := get(c, "/exhaust", time.Minute); err != nil || code != 200 {
			t.Fatalf("GET /exhaust = %d, %v", code, err)
		}
		if _, err := get(c, "/ok", 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GET after Remaining: 0 = %v, want it held back", err)
		}
	})
	t.Run("paces without changing answers", func(t *testing.T) {
		p := NewPacer(RateLimit{Requests: 1000, Per: time.Second})
		base := srv.Client()
		c := p.Client(base)
		if c == base || c.Transport == base.Transport {
			t.Error("Client did not copy the client and wrap its transport")
		}
		for range 5 {
			if code, err := get(c, "/ok", time.Minute); err != nil || code != 200 {
				t.Fatalf("GET = %d, %v", code, err)
			}
		}
		if st := p.Stats(); st.Requests != 5 || st.Throttled != 0 {
			t.Errorf("Stats = %+v", st)
		}
	})
	t.Run("request body is closed when the wait fails", func(t *testing.T) {
		p := NewPacer()
		p.Throttled(time.Hour)
		body := &closeRecorder{Reader: strings.NewReader("x")}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/ok", body)
		resp, err := p.Transport(srv.Client().Transport).RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			t.Fatal("RoundTrip succeeded while paused")
		}
		if !body.closed.Load() {
			t.Error("request body not closed")
		}
	})
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }
