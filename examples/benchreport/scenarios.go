package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
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

// ---- (a) readiness latency ----

// latencyResult is how fast one strategy notices readiness on one cloud,
// for one distribution of boot times.
type latencyResult struct {
	cloud    *cloud
	strategy strategy
	// factor is the distribution's centre over the driver's prior
	// (ExpectedBoot): 0.5, 1 or 2; scale how many times faster than real
	// time it ran.
	factor, scale float64
	// n is the number of machines awaited; errors the waits that failed.
	n, errors int
	// lag is the time from the machine really being ready (the model's
	// ReadyAt, or its public IP when that comes later) to the poll that
	// saw it ready leaving the client, and frac that time over the
	// machine's boot time, per machine, sorted; returned is the time to
	// WaitReady returning (the poll's round trip included, which the time
	// scale magnifies); boot the boot times (real time).
	lag, returned, boot []time.Duration
	frac                []float64
	// calls is the mean number of API calls a wait made (the cloud's
	// GetInstance count over n), polls the per-wait count (sorted).
	calls float64
	polls []int
}

// runLatency creates n machines, conc at a time, on a fresh simulated cloud
// in the realistic world at time scale s, with boot times centred on
// factor × the driver's prior and no rate limit, awaits each with the
// strategy right after its create, and measures how late each wait
// notices readiness. spuff's own strategy starts from a fresh BootTimes:
// what it learns is measured from the prior on.
func runLatency(ctx context.Context, c *cloud, st strategy, s scaling, factor float64, n, conc int, seedN uint64) (*latencyResult, error) {
	srv := c.newServer(c.unlimitedWorld(s, factor, seedN))
	defer srv.Close()
	cfg := c.config(srv.URL, srv.Cloud.Token())
	cfg.Pacer = provider.NewPacer()
	cfg.WaitPolicy = st.policy(c, s)
	cfg.BootTimes = &provider.BootTimes{}
	cfg.HTTPClient = &http.Client{Transport: stamping{http.DefaultTransport}}
	cfg.Timeouts = s.timeouts()
	cfg.Retry = s.retry()
	p, err := c.open(ctx, cfg, s.d(c.expected))
	if err != nil {
		return nil, err
	}
	res := &latencyResult{cloud: c, strategy: st, factor: factor, scale: 1 / s.factor, n: n}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	before := srv.Cloud.Calls(simcloud.OpGetInstance)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				lag, returned, boot, polls, err := awaitOne(ctx, p, c, srv.Cloud, fmt.Sprintf("lat-%d", i))
				mu.Lock()
				if err != nil {
					res.errors++
				} else {
					res.lag = append(res.lag, s.real(lag))
					res.returned = append(res.returned, s.real(returned))
					res.boot = append(res.boot, s.real(boot))
					res.frac = append(res.frac, float64(lag)/float64(boot))
					res.polls = append(res.polls, polls)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.calls = float64(srv.Cloud.Calls(simcloud.OpGetInstance)-before) / float64(n)
	slices.Sort(res.lag)
	slices.Sort(res.returned)
	slices.Sort(res.boot)
	slices.Sort(res.frac)
	slices.Sort(res.polls)
	return res, nil
}

// readyAt is when a simulated machine is really ready: running, with its
// public IP (which comes late on some).
func readyAt(m simcloud.Instance) time.Time {
	if m.IPAt.After(m.ReadyAt) {
		return m.IPAt
	}
	return m.ReadyAt
}

// awaitOne creates a machine, awaits it and destroys it, and returns the
// time from the machine being really ready to the poll that saw it leaving
// the client and to WaitReady returning, its boot time, and the polls the
// wait made.
func awaitOne(ctx context.Context, p provider.Provider, c *cloud, cl *simcloud.Cloud, name string) (lag, returned, boot time.Duration, polls int, err error) {
	inst, err := p.CreateInstance(ctx, c.request(name))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer func() {
		if derr := p.DestroyInstance(context.WithoutCancel(ctx), inst.ID); derr != nil && err == nil {
			err = derr
		}
	}()
	var n atomic.Int64
	sent := new(atomic.Int64)
	wctx := provider.WithWaitTrace(ctx, &provider.WaitTrace{Polled: func(provider.WaitEvent) { n.Add(1) }})
	wctx = context.WithValue(wctx, sentKey{}, sent)
	if _, err := p.WaitReady(wctx, inst.ID); err != nil {
		return 0, 0, 0, 0, err
	}
	noticed := time.Now()
	mid, err := c.modelID(inst.ID)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	m, err := cl.GetInstance(mid)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	ready := readyAt(m)
	// The poll that saw the machine ready was the wait's last request;
	// it may have left a moment before the cloud made the machine ready
	// and arrived after.
	lag = max(0, time.Unix(0, sent.Load()).Sub(ready))
	return lag, noticed.Sub(ready), ready.Sub(m.CreatedAt), int(n.Load()), nil
}

// sentKey keys, in a request's context, the *atomic.Int64 that stamping
// sets to the time the request leaves (Unix nanoseconds).
type sentKey struct{}

// stamping records when each request whose context asks for it leaves the
// client, after spuff's pacing.
type stamping struct{ base http.RoundTripper }

func (s stamping) RoundTrip(req *http.Request) (*http.Response, error) {
	if t, ok := req.Context().Value(sentKey{}).(*atomic.Int64); ok {
		t.Store(time.Now().UnixNano())
	}
	return s.base.RoundTrip(req)
}

// ---- (b) fleets ----

// fleetResult is one fleet of create → wait → destroy under the cloud's
// scaled rate limit.
type fleetResult struct {
	cloud    *cloud
	strategy strategy
	n        int
	// wall is the fleet's wall time; lb its lower bound, the larger of
	// lbRate and lbBoot (all real time).
	wall, lb, lbRate, lbBoot time.Duration
	// calls are the API calls the cloud saw; throttled those it answered
	// with a rate-limit error (429, EC2's RequestLimitExceeded).
	calls, throttled int
	// surfaced are rate-limit errors returned to the caller, failures the
	// machines whose create, wait or destroy failed, errs their errors.
	surfaced, failures int
	errs               []string
	// leaks are machines still live at the end; duplicates creates that
	// made a second machine of one name.
	leaks, duplicates int
}

// fleetProviders is how many Providers (of one account, sharing its pacer)
// drive a fleet.
const fleetProviders = 4

// runFleet runs n create → wait → destroy at once on a fresh simulated
// cloud with the cloud's boot times and rate limits scaled by s.
func runFleet(ctx context.Context, c *cloud, st strategy, s scaling, n int, seedN uint64) (*fleetResult, error) {
	limits := s.limits(c.limits)
	srv := c.newServer(c.world(s, 1, seedN))
	defer srv.Close()
	pacer := provider.NewPacer(limits...) // the account's, shared
	var ps []provider.Provider
	for range fleetProviders {
		cfg := c.config(srv.URL, srv.Cloud.Token())
		cfg.Pacer = pacer
		cfg.WaitPolicy = st.policy(c, s)
		cfg.Timeouts = s.timeouts()
		cfg.Retry = s.retry()
		p, err := c.open(ctx, cfg, s.d(c.expected))
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	res := &fleetResult{cloud: c, strategy: st, n: n}
	var (
		mu    sync.Mutex
		boots []time.Duration
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		res.failures++
		if errors.Is(err, provider.ErrRateLimit) {
			res.surfaced++
		}
		if len(res.errs) < 3 {
			res.errs = append(res.errs, err.Error())
		}
	}
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := ps[i%len(ps)]
			inst, err := p.CreateInstance(ctx, c.request(fmt.Sprintf("fleet-%d", i)))
			if err != nil {
				fail(err)
				return
			}
			_, werr := p.WaitReady(ctx, inst.ID)
			if mid, err := c.modelID(inst.ID); err == nil {
				if m, err := srv.Cloud.GetInstance(mid); err == nil {
					mu.Lock()
					boots = append(boots, readyAt(m).Sub(m.CreatedAt))
					mu.Unlock()
				}
			}
			derr := p.DestroyInstance(ctx, inst.ID)
			if err := errors.Join(werr, derr); err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	res.wall = s.real(time.Since(start))
	stats := srv.Cloud.Stats()
	res.calls, res.throttled = stats.TotalCalls, stats.RateLimited
	res.leaks, res.duplicates = stats.LiveInstances, stats.Duplicates
	rate, boot := lowerBound(limits, n, 3, 1, boots)
	res.lbRate, res.lbBoot = s.real(rate), s.real(boot)
	res.lb = max(res.lbRate, res.lbBoot)
	return res, nil
}

// lowerBound is the shortest time in which any client could run n
// create → wait → destroy under the token buckets limits (each starting
// full), making perMachine calls a machine of which beforeCreate come
// before the machine exists, given the machines' boot times:
//
//   - rate: every call needs a token: max over windows of
//     (n·perMachine − bucket) / refill rate;
//   - boot: the k-th machine cannot exist before the k·beforeCreate-th
//     call is admitted, t_k = max over windows of (k·beforeCreate −
//     bucket) / rate, and is ready a boot time later; giving the longest
//     boots the earliest slots minimizes the last ready time,
//     max_k (t_k + boot_k).
func lowerBound(limits []provider.RateLimit, n, perMachine, beforeCreate int, boots []time.Duration) (rate, boot time.Duration) {
	admitted := func(calls int) time.Duration {
		var t time.Duration
		for _, l := range limits {
			if l.Class != "" {
				continue
			}
			r := float64(l.Requests) / l.Per.Seconds()
			if over := float64(calls - l.Requests); over > 0 {
				t = max(t, time.Duration(over/r*float64(time.Second)))
			}
		}
		return t
	}
	rate = admitted(n * perMachine)
	desc := slices.Clone(boots)
	slices.SortFunc(desc, func(a, b time.Duration) int { return int(b - a) })
	for k, b := range desc {
		boot = max(boot, admitted((k+1)*beforeCreate)+b)
	}
	return rate, boot
}

// ---- (c) listing ----

// listResult is ListInstances over many managed among unmanaged
// instances, the cloud served by a child process.
type listResult struct {
	cloud              *cloud
	managed, unmanaged int
	// got is the number of distinct managed instances returned, foreign
	// the unmanaged ones returned.
	got, foreign int
	// pages is the number of list requests one listing made; minPages
	// the fewest the page size allows.
	pages, minPages int
	// wall and cpu are per listing (the client's CPU time); allocs and
	// bytes the client's allocations per listing.
	wall, cpu     time.Duration
	allocs, bytes uint64
}

// runList lists the managed instances of a child-served cloud once,
// checking completeness and pages, then iters more times, measured.
func runList(ctx context.Context, c *cloud, ch *child, managed, unmanaged, iters int) (*listResult, error) {
	var requests atomic.Int64
	cfg := c.config(ch.URL, ch.Token)
	cfg.Pacer = provider.NewPacer()
	cfg.HTTPClient = &http.Client{Transport: counting{n: &requests, base: http.DefaultTransport}}
	p, err := c.open(ctx, cfg, c.expected)
	if err != nil {
		return nil, err
	}
	res := &listResult{cloud: c, managed: managed, unmanaged: unmanaged,
		minPages: (managed + c.pageSize - 1) / c.pageSize}
	// The warm-up listing is the one checked for completeness and pages.
	requests.Store(0)
	list, err := p.ListInstances(ctx)
	if err != nil {
		return nil, err
	}
	res.pages = int(requests.Load())
	seen := make(map[string]bool, len(list))
	for _, in := range list {
		if !strings.HasPrefix(in.Name, "managed-") {
			res.foreign++
			continue
		}
		seen[in.ID] = true
	}
	res.got = len(seen)
	if iters <= 0 {
		return res, nil
	}
	list = nil
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0, start := cpuTime(), time.Now()
	for range iters {
		if _, err := p.ListInstances(ctx); err != nil {
			return nil, err
		}
	}
	res.wall = time.Since(start) / time.Duration(iters)
	res.cpu = (cpuTime() - cpu0) / time.Duration(iters)
	runtime.ReadMemStats(&ms1)
	res.allocs = (ms1.Mallocs - ms0.Mallocs) / uint64(iters)
	res.bytes = (ms1.TotalAlloc - ms0.TotalAlloc) / uint64(iters)
	return res, nil
}

// counting counts the requests it carries.
type counting struct {
	n    *atomic.Int64
	base http.RoundTripper
}

func (c counting) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(req)
}

// ---- (d) CPU per GetInstance ----

// callResult is the client's cost of one way to get an instance.
type callResult struct {
	// nsOp is wall time per call (the child server's time included);
	// cpuOp the client's CPU time per call.
	nsOp, cpuOp   float64
	allocs, bytes int64
	err           error
}

// getResult compares spuff's GetInstance with the bare SDK call, over
// loopback HTTP to the child process and with the same server's answer
// replayed in memory.
type getResult struct {
	cloud *cloud
	// loopback and replay are the two ways of reaching the server.
	loopback, replay getPair
}

// getPair is one comparison: each one's median round, and the median of
// the rounds' CPU ratios (spuff over SDK).
type getPair struct {
	spuff, sdk callResult
	ratio      float64
}

// runGet measures GetInstance through the driver and the bare SDK call on
// a child-served cloud, in rounds alternating which goes first, with
// GOMAXPROCS 1 (the client has one call in flight: idle processors would
// only add the scheduler's spinning and a concurrent GC's share to its CPU
// time): once over loopback HTTP, once with the server's answer recorded
// and replayed in memory, which leaves the kernel and the scheduler out and
// measures the client's own work alone.
func runGet(ctx context.Context, c *cloud, ch *child, rounds, iters int) (*getResult, error) {
	res := &getResult{cloud: c}
	for _, replayed := range []bool{false, true} {
		var rt http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
		if replayed {
			rt = &replay{base: rt, saved: map[string]*recorded{}}
		}
		warm := 20
		if iters > 0 {
			warm = min(warm, iters)
		}
		ours, bare, err := getters(ctx, c, ch, rt, warm)
		if err != nil {
			return nil, err
		}
		pair, err := comparePair(ctx, ours, bare, rounds, iters)
		if err != nil {
			return nil, err
		}
		if replayed {
			res.replay = pair
		} else {
			res.loopback = pair
		}
	}
	return res, nil
}

// getters returns spuff's GetInstance and the bare SDK call of the child's
// instance, both over rt.
func getters(ctx context.Context, c *cloud, ch *child, rt http.RoundTripper, warm int) (ours, bare func(context.Context) error, err error) {
	cfg := c.config(ch.URL, ch.Token)
	cfg.HTTPClient = &http.Client{Transport: rt}
	// The account's windows, never reached: the pacer's bookkeeping is
	// part of what is measured, its waiting is not.
	var windows []provider.RateLimit
	for _, l := range c.limits {
		windows = append(windows, provider.RateLimit{Requests: 1 << 30, Per: l.Per})
	}
	cfg.Pacer = provider.NewPacer(windows...)
	p, err := c.open(ctx, cfg, c.expected)
	if err != nil {
		return nil, nil, err
	}
	if bare, err = c.bare(ch.URL, ch.Token, ch.ID, rt); err != nil {
		return nil, nil, err
	}
	ours = func(ctx context.Context) error {
		_, err := p.GetInstance(ctx, ch.ID)
		return err
	}
	// Warm both up (connections, caches, recordings), and check they
	// work.
	for range warm {
		if err := ours(ctx); err != nil {
			return nil, nil, fmt.Errorf("spuff GetInstance: %w", err)
		}
		if err := bare(ctx); err != nil {
			return nil, nil, fmt.Errorf("bare SDK call: %w", err)
		}
	}
	return ours, bare, nil
}

// comparePair measures spuff's call and the SDK's with GOMAXPROCS 1: ns/op
// and allocations with testing.Benchmark (or iters calls each when iters
// is positive), then the CPU time per call in rounds short rounds of the
// same number of calls, alternating which goes first, so that the load of
// a shared machine, which drifts over seconds, weighs on both alike. The
// ratio is the median of the rounds' ratios.
func comparePair(ctx context.Context, ours, bare func(context.Context) error, rounds, iters int) (getPair, error) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a, b := measure(ctx, ours, iters), measure(ctx, bare, iters)
	if err := errors.Join(a.err, b.err); err != nil {
		return getPair{}, err
	}
	// Calls per round: about roundTime's worth of the SDK's.
	k := iters
	if k <= 0 {
		k = max(5, int(roundTime.Nanoseconds()/int64(max(1, b.nsOp))))
	}
	var cpuA, cpuB, ratios []float64
	for i := range rounds {
		var x, y float64
		var err error
		if i%2 == 0 {
			x, err = cpuPerCall(ctx, ours, k)
			if err == nil {
				y, err = cpuPerCall(ctx, bare, k)
			}
		} else {
			y, err = cpuPerCall(ctx, bare, k)
			if err == nil {
				x, err = cpuPerCall(ctx, ours, k)
			}
		}
		if err != nil {
			return getPair{}, err
		}
		cpuA, cpuB, ratios = append(cpuA, x), append(cpuB, y), append(ratios, x/y)
	}
	a.cpuOp, b.cpuOp = medianOf(cpuA), medianOf(cpuB)
	return getPair{spuff: a, sdk: b, ratio: medianOf(ratios)}, nil
}

// roundTime is the length of one round of the CPU comparison.
const roundTime = 40 * time.Millisecond

// cpuPerCall makes k calls and returns the process's CPU time per call.
func cpuPerCall(ctx context.Context, fn func(context.Context) error, k int) (float64, error) {
	cpu0 := cpuTime()
	for range k {
		if err := fn(ctx); err != nil {
			return 0, err
		}
	}
	return float64((cpuTime() - cpu0).Nanoseconds()) / float64(k), nil
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// replay answers each distinct request (method, URL, body) with the
// answer base gave the first time, from memory.
type replay struct {
	base  http.RoundTripper
	mu    sync.Mutex
	saved map[string]*recorded
}

type recorded struct {
	status int
	header http.Header
	body   []byte
}

func (r *replay) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Method + " " + req.URL.String()
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		key += " " + string(b)
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	r.mu.Lock()
	rec := r.saved[key]
	r.mu.Unlock()
	if rec == nil {
		resp, err := r.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		rec = &recorded{status: resp.StatusCode, header: resp.Header, body: body}
		r.mu.Lock()
		r.saved[key] = rec
		r.mu.Unlock()
	}
	return &http.Response{
		Status: strconv.Itoa(rec.status) + " " + http.StatusText(rec.status), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body)), ContentLength: int64(len(rec.body)),
		Request: req,
	}, nil
}

// measure runs fn under testing.Benchmark (for -benchtime, with its
// counting of allocations), or iters times when iters is positive.
func measure(ctx context.Context, fn func(ctx context.Context) error, iters int) callResult {
	var failed error
	loop := func(n int) {
		for range n {
			if err := fn(ctx); err != nil && failed == nil {
				failed = err
			}
		}
	}
	var res callResult
	if iters > 0 {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		start := time.Now()
		loop(iters)
		res.nsOp = float64(time.Since(start).Nanoseconds()) / float64(iters)
		runtime.ReadMemStats(&ms1)
		res.allocs = int64(ms1.Mallocs-ms0.Mallocs) / int64(iters)
		res.bytes = int64(ms1.TotalAlloc-ms0.TotalAlloc) / int64(iters)
	} else {
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			loop(b.N)
		})
		if r.N > 0 {
			res.nsOp = float64(r.T.Nanoseconds()) / float64(r.N)
			res.allocs, res.bytes = r.AllocsPerOp(), r.AllocedBytesPerOp()
		}
	}
	if failed != nil {
		return callResult{nsOp: math.NaN(), cpuOp: math.NaN(), err: failed}
	}
	return res
}
