package soak_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// badAnswer is a wrong answer the simulated cloud gives to every call
// while it is armed.
type badAnswer struct {
	name string
	// fault is a fault of the model, which runs the call first and then
	// spoils its answer (malformed, truncated, huge); or
	fault simcloud.FaultKind
	// write answers instead of the cloud, which never runs the call.
	write func(w http.ResponseWriter, r *http.Request, tg target)
	// only, if set, limits the answer to these operations (reading tens
	// of megabytes is slow under the race detector).
	only []string
}

func badAnswers() []badAnswer {
	return []badAnswer{
		{name: "malformed", fault: simcloud.FaultMalformed},
		{name: "truncated", fault: simcloud.FaultTruncated},
		// One call is enough to show the bound: reading tens of
		// megabytes is slow under the race detector.
		{name: "huge", fault: simcloud.FaultHuge, only: []string{"ListInstances"}},
		{name: "418", write: func(w http.ResponseWriter, _ *http.Request, _ target) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "I'm a teapot")
		}},
		{name: "302 without Location", write: func(w http.ResponseWriter, _ *http.Request, _ target) {
			w.WriteHeader(http.StatusFound)
		}},
		{name: "302 loop", write: func(w http.ResponseWriter, r *http.Request, _ target) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		}},
		{name: "200 with an error body", write: func(w http.ResponseWriter, _ *http.Request, tg target) {
			w.Header().Set("Content-Type", tg.errorType)
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, tg.errorBody)
		}},
		{name: "200 empty", write: func(w http.ResponseWriter, _ *http.Request, tg target) {
			w.Header().Set("Content-Type", tg.errorType)
			w.WriteHeader(http.StatusOK)
		}},
		{name: "500 HTML", write: func(w http.ResponseWriter, _ *http.Request, _ target) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "<html><body>upstream error</body></html>")
		}},
	}
}

// bodyMeter counts the bytes the driver reads of each answer, below its
// own bound: the largest read is what a runaway answer can cost.
type bodyMeter struct {
	base http.RoundTripper
	max  atomic.Int64
}

func (m *bodyMeter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.base.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = &meteredBody{rc: resp.Body, m: m}
	}
	return resp, err
}

type meteredBody struct {
	rc io.ReadCloser
	n  int64
	m  *bodyMeter
}

func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	for {
		old := b.m.max.Load()
		if b.n <= old || b.m.max.CompareAndSwap(old, b.n) {
			break
		}
	}
	return n, err
}

func (b *meteredBody) Close() error { return b.rc.Close() }

// TestBadResponses: malformed, truncated and huge bodies, unexpected
// status codes (418, 302, a 500 that is not the API's) and 200 answers
// that carry an error or nothing, on every call of every operation, give
// typed errors — never a panic, never more read of an answer than the
// driver's bound. A machine a spoiled create made is returned, named by
// the error, or adopted by the same request repeated; a snapshot a
// spoiled CreateSnapshot made is named by the error or listed as managed.
func TestBadResponses(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			for _, b := range badAnswers() {
				t.Run(b.name, func(t *testing.T) { badResponses(t, tg, b) })
			}
		})
	}
}

// badResponses runs every operation while the cloud gives answer b.
func badResponses(t *testing.T, tg target, b badAnswer) {
	if b.fault == simcloud.FaultHuge && raceDetector && tg.xml {
		t.Skipf("%s reads %d MiB of an answer, which encoding/xml takes a minute and more to do under the race detector on a loaded machine; run without -race", tg.name, tg.maxBody>>20)
	}
	var armed atomic.Bool
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if armed.Load() && b.write != nil {
				b.write(w, r, tg)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	meter := &bodyMeter{base: http.DefaultTransport}
	f := startFixture(t, tg, auditOptions(tg, 3), wrap, func(cfg *provider.Config) {
		cfg.HTTPClient = &http.Client{Transport: meter}
		cfg.Retry.MaxAttempts = 2
		if b.fault == simcloud.FaultHuge {
			cfg.Retry.MaxAttempts = 1
			cfg.Timeouts.HTTPRequest = 4 * time.Minute // reading tens of megabytes is slow under the race detector on a loaded machine
		}
		// Short, so that a wait fed bad answers ends well within each
		// call's 2 s bound; long enough that the fixture's own machine and
		// snapshot, made before any fault, are ready on a loaded machine
		// under -race (at 300 ms they were not always polled in time).
		cfg.Timeouts.InstanceReady = time.Second
		cfg.Timeouts.ActionComplete = time.Second
		cfg.Timeouts.PollInterval = 20 * time.Millisecond
	})
	src := f.ready("br-src")
	mid := f.modelID(src.ID)
	keep, err := f.p.CreateSnapshot(f.ctx, src.ID, "br-keep")
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	ops := []struct {
		name string
		call func(ctx context.Context) (any, error)
	}{
		{"CreateInstance", func(ctx context.Context) (any, error) { return f.p.CreateInstance(ctx, f.tg.request("br-new")) }},
		{"GetInstance", func(ctx context.Context) (any, error) { return f.p.GetInstance(ctx, src.ID) }},
		{"ListInstances", func(ctx context.Context) (any, error) { return f.p.ListInstances(ctx) }},
		{"WaitReady", func(ctx context.Context) (any, error) { return f.p.WaitReady(ctx, src.ID) }},
		{"CreateSnapshot", func(ctx context.Context) (any, error) { return f.p.CreateSnapshot(ctx, src.ID, "br-snap") }},
		{"ListSnapshots", func(ctx context.Context) (any, error) { return f.p.ListSnapshots(ctx) }},
		{"DeleteSnapshot", func(ctx context.Context) (any, error) { return nil, f.p.DeleteSnapshot(ctx, keep.ID) }},
		{"ListSSHKeys", func(ctx context.Context) (any, error) { return f.p.ListSSHKeys(ctx) }},
		{"DestroyInstance", func(ctx context.Context) (any, error) { return nil, f.p.DestroyInstance(ctx, src.ID) }},
	}
	if b.fault != simcloud.FaultNone {
		f.cloud.SetRandomFaults(simcloud.RandomFaults{Rate: 1, Kinds: []simcloud.FaultKind{b.fault}})
	}
	armed.Store(true)
	errs := map[string]error{}
	for _, op := range ops {
		if b.only != nil && !slices.Contains(b.only, op.name) {
			continue
		}
		// A bound on each call: EC2's GetInstance waits up to a minute
		// for a machine just made that answers "not found" (as an empty
		// answer reads).
		bound := 2 * time.Second
		if b.fault == simcloud.FaultHuge {
			bound = 4 * time.Minute
		}
		ctx, cancel := context.WithTimeout(f.ctx, bound)
		start := time.Now()
		res, err := callSafely(ctx, op.call)
		took := time.Since(start)
		cancel()
		errs[op.name] = err
		var perr *provider.Error
		switch {
		case errors.Is(err, errPanic):
			t.Errorf("%s: %v", op.name, err)
		case err != nil && !errors.As(err, &perr):
			t.Errorf("%s: untyped error %T: %v", op.name, err, err)
		case err != nil && perr.Kind == provider.KindUnknown:
			t.Errorf("%s: error of unknown kind: %v", op.name, err)
		case err == nil && isNilResult(res):
			t.Errorf("%s: no error and no result", op.name)
		}
		var tooLarge *driver.BodyTooLargeError
		if b.fault == simcloud.FaultHuge && !errors.As(err, &tooLarge) {
			t.Errorf("%s of a huge answer: %v, want the driver to stop reading at its bound", op.name, err)
		}
		t.Logf("%s %s (%s): %v", tg.name, op.name, took.Round(time.Millisecond), errOrOK(err))
	}
	armed.Store(false)
	f.cloud.ClearFaults()
	if got := meter.max.Load(); got > tg.maxBody+1 {
		t.Errorf("%d bytes of one answer were read; the bound is %d", got, tg.maxBody)
	}
	f.checkCreate("br-new", errs["CreateInstance"])
	f.checkSnapshots(mid, keep.ID, errs["CreateSnapshot"])
	for _, in := range f.cloud.LiveInstances() {
		if err := f.p.DestroyInstance(f.ctx, tg.instanceID(in.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if st := f.cloud.Stats(); st.LiveInstances+st.LiveSnapshots+st.LiveVolumeSnapshots != 0 || st.Duplicates != 0 {
		t.Errorf("left: %d machines, %d snapshots, %d volume snapshots; %d duplicates", st.LiveInstances, st.LiveSnapshots, st.LiveVolumeSnapshots, st.Duplicates)
		for _, m := range f.cloud.LiveSnapshots() {
			t.Errorf("left: snapshot %d %q of machine %d", m.ID, m.Name+m.Description, m.Source)
		}
	}
}

var errPanic = errors.New("panic")

// callSafely calls fn, turning a panic into an error.
func callSafely(ctx context.Context, fn func(ctx context.Context) (any, error)) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", errPanic, r, debug.Stack())
		}
	}()
	return fn(ctx)
}

// isNilResult reports whether a call's result is a nil pointer (a list
// may be empty; a nil result of a call that returns nothing is fine).
func isNilResult(res any) bool {
	switch r := res.(type) {
	case *provider.Instance:
		return r == nil || r.ID == ""
	case *provider.Snapshot:
		return r == nil || r.ID == ""
	}
	return false
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return fmt.Sprintf("%s: %v", provider.KindOf(err), err)
}

// checkCreate checks what a spoiled create left: no machine, or one the
// caller learns of — returned, named by the error, or returned by the same
// request repeated — and never two.
func (f *fixture) checkCreate(name string, err error) {
	f.t.Helper()
	live := f.liveNamed(name)
	if len(live) > 1 {
		f.t.Fatalf("create %s: %d machines", name, len(live))
	}
	var perr *provider.Error
	switch {
	case len(live) == 0:
		return
	case err == nil:
		// The spoiled create nonetheless returned the machine.
	case errors.As(err, &perr) && perr.ID == f.tg.instanceID(live[0]):
		// Named by the error.
	case provider.IsRetryable(err):
		inst, rerr := f.p.CreateInstance(f.ctx, f.tg.request(name))
		if rerr != nil || inst.ID != f.tg.instanceID(live[0]) || len(f.liveNamed(name)) != 1 {
			f.t.Errorf("create %s left machine %d; the same request repeated: %v, %v, %d machines", name, live[0], inst, rerr, len(f.liveNamed(name)))
		}
	default:
		f.t.Errorf("create %s left machine %d, but its error neither names it nor is retryable: %v", name, live[0], err)
	}
	if err := f.p.DestroyInstance(f.ctx, f.tg.instanceID(live[0])); err != nil {
		f.t.Errorf("destroy %d: %v", live[0], err)
	}
}

// checkSnapshots checks that every live snapshot of the machine mid but
// keep (which may have been deleted) is named by err or listed as managed,
// then deletes them.
func (f *fixture) checkSnapshots(mid int64, keep string, err error) {
	f.t.Helper()
	listed, lerr := f.p.ListSnapshots(f.ctx)
	if lerr != nil {
		f.t.Fatalf("ListSnapshots: %v", lerr)
	}
	var ids []string
	for _, s := range listed {
		ids = append(ids, s.ID)
	}
	var perr *provider.Error
	named, message := "", ""
	if errors.As(err, &perr) {
		message = perr.Message
		named = perr.Leftover
	}
	for _, m := range f.cloud.LiveSnapshots() {
		if m.Source != mid {
			continue
		}
		id := f.tg.imageID(m.ID)
		// The error names it, or (DigitalOcean, which cannot label a
		// snapshot it is asked for) says a snapshot of that name may
		// have been made; or it is listed as managed.
		told := id == named || (m.Name != "" && strings.Contains(message, strconv.Quote(m.Name)))
		if id != keep && !told && !slices.Contains(ids, id) {
			f.t.Errorf("snapshot %s (%q) was made by a spoiled CreateSnapshot, but neither its error (%v) names it nor ListSnapshots lists it", id, m.Name+m.Description, err)
		}
		// A snapshot being made is not there yet for DigitalOcean's API.
		time.Sleep(time.Until(m.ReadyAt))
		if derr := f.p.DeleteSnapshot(f.ctx, id); derr != nil {
			f.t.Errorf("DeleteSnapshot(%s): %v", id, derr)
		}
	}
}
