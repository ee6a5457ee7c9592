package providertest

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The suite's checks of capacity errors, failover across placements, the
// catalogue and Pick.

// otherRegion returns a region of the cloud other than region.
func (e *env) otherRegion(region string) string {
	e.t.Helper()
	for _, r := range e.cloud.Options().Regions {
		if r != region {
			return r
		}
	}
	e.t.Skip("the simulated cloud has one region: no failover to check")
	return ""
}

// testCapacityTyped checks that a refusal for capacity is ErrCapacity —
// not a quota, not invalid config, not retryable — and reaches the cloud
// once (neither the portable layer nor the SDK repeats it), while a quota
// and a size that does not exist keep their own kinds.
func testCapacityTyped(t *testing.T, h Harness) {
	req := h.Request("capacity")
	tests := []struct {
		name    string
		opts    func(*simcloud.Options)
		cloud   func(c *simcloud.Cloud)
		size    string // replaces the request's, when set
		want    error
		creates int // creates that reach the cloud; -1: any
	}{
		{"placement full", func(o *simcloud.Options) {
			o.Capacity = []simcloud.Capacity{{Region: req.Region, Size: req.Size, Max: 0}}
		}, nil, "", provider.ErrCapacity, 1},
		{"region disabled", nil, func(c *simcloud.Cloud) { c.DisableRegion(req.Region, true) }, "", provider.ErrCapacity, 1},
		{"capacity fault", nil, func(c *simcloud.Cloud) {
			c.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultCapacity})
		}, "", provider.ErrCapacity, 1},
		{"region disabled fault", nil, func(c *simcloud.Cloud) {
			c.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultRegionDisabled})
		}, "", provider.ErrCapacity, 1},
		{"quota is not capacity", func(o *simcloud.Options) { o.MaxInstances = 1 }, nil, "", provider.ErrQuotaExceeded, -1},
		{"a size that does not exist is invalid", nil, nil, "zz9.nosuchsize", provider.ErrInvalidConfig, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := suiteOptions()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			quota := tc.want == provider.ErrQuotaExceeded
			e := setup(t, h, opts, nil)
			var first *provider.Instance
			if quota {
				first = e.create(h.Request(e.name("quota")))
			}
			if tc.cloud != nil {
				tc.cloud(e.cloud)
			}
			r := h.Request(e.name("cap"))
			if tc.size != "" {
				r.Size = tc.size
			}
			before := e.cloud.Stats().Calls[simcloud.OpCreateInstance]
			_, err := e.p.CreateInstance(e.ctx, r)
			creates := e.cloud.Stats().Calls[simcloud.OpCreateInstance] - before
			switch {
			case quota:
				wantKind(t, err, provider.ErrQuotaExceeded, "CreateInstance past the instance limit")
				if errors.Is(err, provider.ErrCapacity) {
					t.Errorf("a quota matches ErrCapacity: %v", err)
				}
			default:
				perr := wantKind(t, err, tc.want, "CreateInstance "+tc.name)
				if tc.want == provider.ErrCapacity {
					if errors.Is(err, provider.ErrQuotaExceeded) || errors.Is(err, provider.ErrInvalidConfig) || provider.IsRetryable(err) {
						t.Errorf("capacity error %v: quota %v, invalid %v, retryable %v; want none", err,
							errors.Is(err, provider.ErrQuotaExceeded), errors.Is(err, provider.ErrInvalidConfig), provider.IsRetryable(err))
					}
					if perr.Leftover != "" {
						t.Errorf("a refused create names a leftover %s", perr.Leftover)
					}
				} else if errors.Is(err, provider.ErrCapacity) {
					t.Errorf("%s matches ErrCapacity: %v", tc.name, err)
				}
			}
			if tc.creates >= 0 && creates != tc.creates {
				t.Errorf("the refused create reached the cloud %d times, want %d (capacity is never retried in place)", creates, tc.creates)
			}
			if n := len(e.liveNamed(r.Name)); n != 0 {
				t.Errorf("a refused create left %d machines", n)
			}
			if first != nil {
				e.destroy(first.ID)
			}
			e.noLeaks()
		})
	}
}

// testFailover checks CreateWithFailover across two regions: the first
// refused or faulty, the machine made once, whatever answers are lost.
func testFailover(t *testing.T, h Harness) {
	tests := []struct {
		name   string
		setup  func(e *env, first, second string, size string)
		region func(first, second string) string // where the machine must be; "" either
	}{
		{"first full, answer lost in the second", func(e *env, first, _, size string) {
			e.cloud.SetCapacity(first, size, 0)
			e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultNone}) // the first create is answered
			e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
		}, func(_, second string) string { return second }},
		{"first full, its refusal lost", func(e *env, first, _, size string) {
			// The first placement's outcome stays unknown until the
			// outcome horizon: no machine is made elsewhere meanwhile.
			e.cloud.SetCapacity(first, size, 0)
			e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
		}, func(_, second string) string { return second }},
		{"answer lost in the first, then a capacity refusal", func(e *env, _, _, _ string) {
			e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
			e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultCapacity})
		}, nil},
		{"first disabled, connection dropped and a 503 in the second", func(e *env, first, _, _ string) {
			e.cloud.DisableRegion(first, true)
			e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultNone}) // the first create is answered
			e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultDrop})
			e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultUnavailable})
		}, func(_, second string) string { return second }},
		{"random faults", func(e *env, _, _, _ string) {
			e.cloud.SetRandomFaults(simcloud.RandomFaults{Rate: 0.35, Ops: []simcloud.Op{simcloud.OpCreateInstance, simcloud.OpListInstances, simcloud.OpGetInstance},
				Kinds: []simcloud.FaultKind{simcloud.FaultLoseResponse, simcloud.FaultCapacity, simcloud.FaultDrop, simcloud.FaultUnavailable,
					simcloud.FaultInternal, simcloud.FaultRateLimit, simcloud.FaultConsistency},
				Delay: cloudTime(faultDelay)})
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, h, suiteOptions(), nil)
			req := h.Request(e.name("failover"))
			first, second := req.Region, e.otherRegion(req.Region)
			tc.setup(e, first, second, req.Size)
			places := []provider.Placement{{Provider: e.p, Region: first, Size: req.Size}, {Provider: e.p, Region: second, Size: req.Size}}
			var inst *provider.Instance
			var err error
			attempts := 0
			for attempts < 40 {
				attempts++
				inst, err = provider.CreateWithFailover(e.ctx, req, places)
				if n := len(e.liveNamed(req.Name)); n > 1 {
					t.Fatalf("after %d failover calls, %d machines named %s (err %v)", attempts, n, req.Name, err)
				}
				if err == nil {
					break
				}
				var ferr *provider.FailoverError
				if !errors.As(err, &ferr) && !errors.Is(err, provider.ErrOutcomeUnknown) {
					t.Fatalf("failover call %d: %v is neither a *FailoverError nor an unknown outcome", attempts, err)
				}
				if ferr != nil && len(ferr.Attempts) == 0 {
					t.Fatalf("a FailoverError lists no placement: %v", err)
				}
				t.Logf("failover call %d: %v", attempts, err)
				time.Sleep(50 * time.Millisecond) // as a careful caller pauses
			}
			if err != nil {
				t.Fatalf("no machine after %d failover calls: %v", attempts, err)
			}
			e.cloud.SetRandomFaults(simcloud.RandomFaults{})
			live := e.liveNamed(req.Name)
			if len(live) != 1 || e.modelID(inst.ID) != live[0].ID {
				t.Fatalf("made %s, machines named %s: %+v; want exactly that one", inst.ID, req.Name, live)
			}
			if tc.region != nil {
				if want := tc.region(first, second); live[0].Region != want && !strings.HasPrefix(live[0].Region, want) {
					t.Errorf("the machine is in %s, want %s", live[0].Region, want)
				}
			}
			if inst.Size != req.Size || (inst.Region != first && inst.Region != second && !strings.HasPrefix(inst.Region, first) && !strings.HasPrefix(inst.Region, second)) {
				t.Errorf("the instance says %s/%s, want one of the placements", inst.Region, inst.Size)
			}
			t.Logf("%d failover call(s), faults %s, the machine in %s", attempts, faultCounts(e.cloud.Stats().FaultsInjected), live[0].Region)
			// The same call again adopts it.
			again, err := provider.CreateWithFailover(e.ctx, req, places)
			if err != nil || again.ID != inst.ID {
				t.Errorf("repeating the failover: %v, %v; want the same machine %s", again, err, inst.ID)
			}
			e.destroy(inst.ID)
			e.noLeaks()
		})
	}
}

// catalogOptions are the suite's options with many more sizes than the
// dialect's defaults, so that every listing of sizes takes several pages
// (DigitalOcean's 200 a page, Hetzner's 50, EC2's 100).
func catalogOptions(t *testing.T, h Harness) simcloud.Options {
	probe := h.Start(t, suiteOptions()) // closed at the test's end
	opts := suiteOptions()
	opts.Sizes = maps.Clone(probe.Cloud.Options().Sizes)
	opts.Regions = slices.Clone(probe.Cloud.Options().Regions)
	for i := range 240 {
		arch := "x86_64"
		if i%3 == 0 {
			arch = "arm64"
		}
		opts.Sizes[fmt.Sprintf("zz%d.size%03d", i%7, i)] = simcloud.Size{Arch: arch, VCPUs: 1 << (i % 6), MemoryMB: 512 << (i % 8), DiskGB: 10 * (i%9 + 1)}
	}
	return opts
}

// testCatalog checks that FetchCatalog returns what the simulated cloud
// serves (Harness.Catalog), every page of it, with the availability the
// cloud shows of a full placement and a disabled region, and that it is
// cached for the age asked.
func testCatalog(t *testing.T, h Harness) {
	if h.Catalog == nil {
		t.Skip("the harness does not say what catalogue its cloud serves")
	}
	e := setup(t, h, catalogOptions(t, h), nil)
	req := h.Request("catalog")
	e.cloud.SetCapacity(req.Region, req.Size, 0)
	regions := e.cloud.Options().Regions
	e.cloud.DisableRegion(regions[len(regions)-1], true)
	e.cloud.Inject(simcloud.Fault{Op: simcloud.OpCatalog, Kind: simcloud.FaultUnavailable}) // read again, whole
	got, err := provider.FetchCatalog(e.ctx, e.p, time.Minute)
	if errors.Is(err, provider.ErrNotSupported) {
		t.Skipf("the driver has no catalogue: %v", err)
	}
	if err != nil {
		t.Fatalf("FetchCatalog: %v", err)
	}
	want := h.Catalog(e.srv)
	compareCatalogs(t, got, want)
	reads := e.cloud.Stats().Calls[simcloud.OpCatalog]
	if _, err := provider.FetchCatalog(e.ctx, e.p, time.Minute); err != nil {
		t.Fatal(err)
	}
	if again := e.cloud.Stats().Calls[simcloud.OpCatalog]; again != reads {
		t.Errorf("a second FetchCatalog within its maxAge made %d calls, want 0 (cached)", again-reads)
	}
	t.Logf("catalogue: %d regions, %d sizes in %d calls", len(got.Regions), len(got.Sizes), reads)
}

func compareCatalogs(t *testing.T, got, want *provider.Catalog) {
	t.Helper()
	diffs := catalogDiffs(got, want)
	for i, d := range diffs {
		if i == 15 {
			t.Errorf("… and %d more differences", len(diffs)-i)
			break
		}
		t.Error(d)
	}
}

// catalogDiffs lists how got differs from want.
func catalogDiffs(got, want *provider.Catalog) []string {
	var out []string
	errorf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if got.Provider != want.Provider {
		errorf("catalogue of %q, want %q", got.Provider, want.Provider)
	}
	gr := map[string]provider.Region{}
	for _, r := range got.Regions {
		gr[r.Name] = r
	}
	for _, w := range want.Regions {
		g, ok := gr[w.Name]
		switch {
		case !ok:
			errorf("region %s is missing", w.Name)
		case g.Available != w.Available:
			errorf("region %s: available %v, want %v", w.Name, g.Available, w.Available)
		case w.Description != "" && g.Description != w.Description:
			errorf("region %s: description %q, want %q", w.Name, g.Description, w.Description)
		}
		delete(gr, w.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(gr)) {
		errorf("region %s is not the cloud's", name)
	}
	if len(got.Sizes) != len(want.Sizes) {
		errorf("%d sizes, want %d (every page)", len(got.Sizes), len(want.Sizes))
	}
	for _, w := range want.Sizes {
		g, ok := got.Size(w.Name)
		if !ok {
			errorf("size %s is missing", w.Name)
			continue
		}
		if msg := sizeDiff(g, &w); msg != "" {
			errorf("size %s: %s", w.Name, msg)
		}
	}
	return out
}

// sizeDiff says how g differs from w, or "".
func sizeDiff(g, w *provider.Size) string {
	var d []string
	if g.VCPUs != w.VCPUs || g.MemoryMiB != w.MemoryMiB || g.DiskGB != w.DiskGB || g.Arch != w.Arch {
		d = append(d, fmt.Sprintf("%d vCPU %d MiB %d GB %s, want %d vCPU %d MiB %d GB %s",
			g.VCPUs, g.MemoryMiB, g.DiskGB, g.Arch, w.VCPUs, w.MemoryMiB, w.DiskGB, w.Arch))
	}
	if !slices.Equal(g.Regions, w.Regions) {
		d = append(d, fmt.Sprintf("offered in %v, want %v", g.Regions, w.Regions))
	}
	for _, r := range w.Regions {
		gp, wp := g.Price(r), w.Price(r)
		if gp.Known() != wp.Known() || gp.Currency != wp.Currency || math.Abs(gp.Hourly-wp.Hourly) > 1e-9 {
			d = append(d, fmt.Sprintf("price in %s %v, want %v", r, gp, wp))
		}
	}
	return strings.Join(d, "; ")
}

// testPickFits checks Pick against the cloud's own catalogue: every offer
// fits the requirements by the model's sizes, in a region with room, under
// the ceiling; and a failover over the offers makes the machine at the
// next one when the cheapest is full.
func testPickFits(t *testing.T, h Harness) {
	e := setup(t, h, suiteOptions(), nil)
	if _, err := provider.FetchCatalog(e.ctx, e.p, time.Minute); errors.Is(err, provider.ErrNotSupported) {
		t.Skipf("the driver has no catalogue: %v", err)
	}
	req := h.Request(e.name("pick"))
	model := e.cloud.Options().Sizes
	want := model[req.Size]
	tests := []provider.Requirements{
		{},
		{MinVCPUs: 2, MinMemoryMiB: 2048},
		{MinVCPUs: want.VCPUs, MinMemoryMiB: want.MemoryMB, Arch: want.Arch},
		{Arch: provider.ArchARM},
		{MinMemoryMiB: 8192, Regions: []string{req.Region}},
		{MinVCPUs: 64},
	}
	for i, r := range tests {
		r.MaxAge = time.Minute
		offers, err := provider.Pick(e.ctx, r, e.p)
		if err != nil {
			t.Fatalf("Pick %+v: %v", r, err)
		}
		for _, o := range offers {
			s, ok := model[o.Placement.Size]
			switch {
			case !ok:
				t.Errorf("requirements %d: offered %s, which the cloud does not have", i, o.Placement)
			case s.VCPUs < r.MinVCPUs || s.MemoryMB < r.MinMemoryMiB || r.Arch != "" && s.Arch != r.Arch:
				t.Errorf("requirements %d (%+v): offered %s (%d vCPU, %d MiB, %s), which does not fit", i, r, o.Placement, s.VCPUs, s.MemoryMB, s.Arch)
			case !slices.Contains(e.cloud.Options().Regions, o.Placement.Region) || !e.cloud.Available(o.Placement.Region, o.Placement.Size):
				t.Errorf("requirements %d: offered %s, where the cloud has no room", i, o.Placement)
			case len(r.Regions) > 0 && !slices.Contains(r.Regions, o.Placement.Region):
				t.Errorf("requirements %d: offered %s outside the regions allowed", i, o.Placement)
			case o.Placement.Provider != e.p:
				t.Errorf("requirements %d: offer %s is not of the provider asked", i, o.Placement)
			}
		}
	}
	offers, err := provider.Pick(e.ctx, provider.Requirements{MinVCPUs: want.VCPUs, MinMemoryMiB: want.MemoryMB, Arch: want.Arch, MaxAge: time.Minute}, e.p)
	if err != nil || len(offers) < 2 {
		t.Fatalf("Pick for the harness's size: %d offers, %v; want at least 2 to fail over", len(offers), err)
	}
	cheapest := offers[0].Placement
	e.cloud.SetCapacity(cheapest.Region, cheapest.Size, 0) // sold out since the (cached) pick
	inst, err := provider.CreateWithFailover(e.ctx, req, provider.Placements(offers[:2]))
	if err != nil {
		t.Fatalf("CreateWithFailover over the picked offers, the cheapest full: %v", err)
	}
	if inst.Size != offers[1].Placement.Size || !strings.HasPrefix(inst.Region, offers[1].Placement.Region) {
		t.Errorf("made %s/%s, want the second offer %s", inst.Region, inst.Size, offers[1].Placement)
	}
	e.destroy(inst.ID)
	e.noLeaks()
}
