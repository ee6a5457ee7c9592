package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// report holds every figure of one run and writes them as markdown.
type report struct {
	opts    options
	machine string
	started time.Time
	elapsed time.Duration

	latency []*latencyResult
	fleets  []*fleetResult
	lists   []*listResult
	gets    []*getResult
	sharing []sharingResult
	missed  []string
}

// pass formats a target's verdict, and remembers a miss.
func (r *report) pass(ok bool, what string) string {
	if ok {
		return "**PASS**"
	}
	r.missed = append(r.missed, what)
	return "**FAIL**"
}

func (r *report) write(w io.Writer) {
	o := r.opts
	// The sections first, so that the summary knows every verdict.
	var body strings.Builder
	if len(r.latency) > 0 {
		r.writeLatency(&body)
	}
	if len(r.fleets) > 0 {
		r.writeFleets(&body)
	}
	if len(r.lists) > 0 {
		r.writeLists(&body)
	}
	if len(r.gets) > 0 {
		r.writeGets(&body)
	}
	if len(r.sharing) > 0 {
		r.writeSharing(&body)
	}

	fmt.Fprintf(w, "# spuff benchmarks\n\n")
	fmt.Fprintf(w, "Generated %s by\n\n```\n%s\n```\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"), o.commandLine())
	fmt.Fprintf(w, "on %s; the run took %s.\n\n", r.machine, r.elapsed.Round(time.Second))
	fmt.Fprintf(w, "Every figure is measured against spuff's simulated clouds (`providertest/dosim`, `hcloudsim`, `ec2sim`), "+
		"the official SDKs (godo, hcloud-go, aws-sdk-go-v2) talking to them over loopback HTTP. Real boot times and real "+
		"rate limits are scaled down by one factor per section: (a) runs %g× faster than real time (a 45 s boot takes %s), "+
		"(b) %g× faster (DigitalOcean's 250 requests a minute refill in %s); durations below are converted back to real "+
		"time.", o.scale, dur(scaling{1 / o.scale}.d(45*time.Second)), o.fleetScale, dur(scaling{1 / o.fleetScale}.d(time.Minute)))
	if o.fleetScale < o.scale {
		fmt.Fprintf(w, " (b) runs slower than (a) because at %g× a fleet of 500 would make this machine's CPU (the "+
			"simulated cloud's and the SDKs'), not the rate limit, the bottleneck.", o.scale)
	}
	fmt.Fprintf(w, " Baselines are alternative wait policies (`Config.WaitPolicy`) of the same drivers, measured in "+
		"the same run.\n\n")
	if len(r.missed) == 0 {
		fmt.Fprintf(w, "**Every target is met in this run.**\n\n")
	} else {
		fmt.Fprintf(w, "**Targets missed in this run:**\n\n")
		for _, m := range r.missed {
			fmt.Fprintf(w, "- %s\n", m)
		}
		fmt.Fprintf(w, "\n")
	}
	io.WriteString(w, body.String())
	fmt.Fprintf(w, "## Reproducing\n\n"+
		"From a clone of the repository:\n\n"+
		"```\ngo run ./examples/benchreport > docs/benchmarks.md   # this report; progress goes to stderr\n"+
		"go run ./examples/benchreport -quick                 # every section at tiny sizes, in seconds\n"+
		"go test -run '^$' -bench . -benchmem ./examples/benchreport   # the same measures as Go benchmarks\n```\n\n"+
		"`go run ./examples/benchreport -h` lists the flags (clouds, sections, sizes, time scales). Timing figures "+
		"vary from run to run by a few percent, more on a loaded machine, and the calls per wait with the jitter of "+
		"the schedules; pages, failures and leaks do not vary.\n")
}

func (r *report) writeLatency(w io.Writer) {
	fmt.Fprintf(w, "## (a) Noticing readiness\n\n")
	fmt.Fprintf(w, "Each strategy awaits %d machines per cloud and boot-time distribution (%d at a time, no rate limit), each "+
		"right after its create, in the realistic world of each simulated cloud (listing lag, late public IPs on some "+
		"machines, EC2's eventual consistency, destroy windows). Boot times are uniform within ±%.0f %% of 0.5, 1 and 2 times "+
		"each driver's prior, its `ExpectedBoot` (DigitalOcean %s, Hetzner %s, EC2 %s): the prior is right, or off by half "+
		"or double. *Lag* is the time from the moment the simulated machine is really ready (running with its public IP) "+
		"to the poll that saw it ready leaving the client (after spuff's pacing); *lag/boot* divides it by that machine's "+
		"boot time; *returned* is the median time to `WaitReady` returning, that poll's round trip included, which the "+
		"time scale magnifies %g times (a loopback round trip of 10 ms on a loaded machine reads as %s). *Calls* are the API calls one wait "+
		"made (the cloud's GetInstance count over the machines). All strategies of a cloud and distribution await machines "+
		"with the same boot times.\n\n"+
		"Targets for spuff: median lag ≤ max(5 %% of the median boot, 1 s), p95 lag ≤ max(10 %% of it, 2 s), and no more "+
		"calls per wait than fixed 5 s polling on the same machines.\n\n"+
		"The strategies: **spuff (learning)** is the default, `Config.WaitPolicy` nil: each Provider starts from a fresh "+
		"`provider.BootTimes`, so its first waits schedule from the driver's prior alone, widely, and later ones from the boot "+
		"times seen (`boot.go`). **fixed 5 s** is the original spuff: a poll at once, then every 5 s. **AWS SDK waiter** is "+
		"aws-sdk-go-v2's `InstanceRunningWaiter` schedule (smithy-go's `ComputeDelay`: a poll at once, then 15 s, then delays "+
		"drawn in [15 s, 30 s], [15 s, 60 s], then [15 s, 120 s]). **hcloud-go 500 ms** polls every 500 ms, as hcloud-go's "+
		"action waiter does. The last two run at the prior's boot times only.\n\n",
		r.opts.latencyN, r.opts.latencyConc, 100*bootJitter, dur(clouds[0].expected), dur(clouds[1].expected), dur(clouds[2].expected),
		r.opts.scale, dur(scaling{r.opts.scale}.d(10*time.Millisecond)))
	fmt.Fprintf(w, "| Cloud | Boots (p5-p50-p95) | Strategy | Lag p50 | Lag p95 | Lag/boot p50 | Lag/boot p95 | Returned p50 | Calls/wait | Errors | Target |\n")
	fmt.Fprintf(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	type dist struct {
		cloud  string
		factor float64
	}
	fixed := map[dist]float64{}
	for _, l := range r.latency {
		if l.strategy.key == fixed5s.key {
			fixed[dist{l.cloud.name, l.factor}] = l.calls
		}
	}
	for _, l := range r.latency {
		target := ""
		if l.strategy.key == spuffWait.key && len(l.lag) > 0 {
			bootMed := l.boot[len(l.boot)/2]
			lim50, lim95 := max(bootMed/20, time.Second), max(bootMed/10, 2*time.Second)
			p50, p95 := pct(l.lag, 50), pct(l.lag, 95)
			f, haveFixed := fixed[dist{l.cloud.name, l.factor}]
			ok := p50 <= lim50 && p95 <= lim95 && l.errors == 0 && (!haveFixed || l.calls <= f)
			cmp := ""
			if haveFixed {
				cmp = fmt.Sprintf(", calls ≤ %.1f", f)
			}
			target = fmt.Sprintf("p50 ≤ %s, p95 ≤ %s%s: %s", dur(lim50), dur(lim95), cmp,
				r.pass(ok, fmt.Sprintf("(a) %s, boots %g× the prior: lag p50 %s (limit %s), p95 %s (limit %s), %.1f calls (fixed 5 s: %.1f), %d errors",
					l.cloud.title, l.factor, dur(p50), dur(lim50), dur(p95), dur(lim95), l.calls, f, l.errors)))
		}
		boots := "-"
		if len(l.boot) > 0 {
			boots = fmt.Sprintf("%g× prior: %s-%s-%s", l.factor, pctDur(l.boot, 5), pctDur(l.boot, 50), pctDur(l.boot, 95))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %d | %s |\n", l.cloud.title, boots, l.strategy.name,
			pctDur(l.lag, 50), pctDur(l.lag, 95), pctFrac(l.frac, 50), pctFrac(l.frac, 95), pctDur(l.returned, 50), l.calls, l.errors, target)
	}
	fmt.Fprintf(w, "\n")
}

func (r *report) writeFleets(w io.Writer) {
	fmt.Fprintf(w, "## (b) Fleets under the rate limit\n\n")
	fmt.Fprintf(w, "N machines are created, awaited and destroyed all at once, by %d Providers of one account sharing its pacer, "+
		"under the cloud's real rate limit (scaled). *Lower bound*: no client can finish sooner than the larger of "+
		"(1) the time the rate limit needs to admit every call the driver must make — N × calls per machine, less each "+
		"window's bucket, over its refill rate — and (2) the time the last machine can be ready: the k-th machine cannot "+
		"exist before its k × (calls before create) calls are admitted, and is ready one boot time later (the run's actual "+
		"boot times, longest first). Calls per machine: create, one poll that sees it ready, destroy; DigitalOcean's driver "+
		"also looks the name up before creating (droplet names are not unique, and a retried create must not make a second "+
		"machine), so 4 there. *429s seen*: calls the cloud refused for the rate limit; *surfaced*: rate-limit errors "+
		"returned to the caller. The baselines run on the smallest fleet only, to keep the run short. "+
		"Target: wall time ≤ 1.2 × lower bound, no failure, no leak, no 429 surfaced.\n\n", fleetProviders)
	fmt.Fprintf(w, "| Cloud (rate limit) | N | Strategy | Wall | Lower bound (rate / boot) | Wall/LB | API calls | 429s seen | 429s surfaced | Failures | Leaks | Target |\n")
	fmt.Fprintf(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, f := range r.fleets {
		ratio := float64(f.wall) / float64(f.lb)
		target := ""
		if f.strategy.key == spuffWait.key {
			ok := ratio <= 1.2 && f.failures == 0 && f.leaks == 0 && f.surfaced == 0 && f.duplicates == 0
			target = r.pass(ok, fmt.Sprintf("(b) %s fleet of %d: wall %.2f× the lower bound, %d failures, %d leaks, %d rate-limit errors surfaced",
				f.cloud.title, f.n, ratio, f.failures, f.leaks, f.surfaced))
		}
		fmt.Fprintf(w, "| %s (%s) | %d | %s | %s | %s (%s / %s) | %.2f | %d | %d | %d | %d | %d | %s |\n",
			f.cloud.title, f.cloud.limitText, f.n, f.strategy.name, dur(f.wall), dur(f.lb), dur(f.lbRate), dur(f.lbBoot),
			ratio, f.calls, f.throttled, f.surfaced, f.failures, f.leaks, target)
	}
	for _, f := range r.fleets {
		for _, e := range f.errs {
			fmt.Fprintf(w, "\n%s, N=%d, %s: error: `%s`", f.cloud.title, f.n, f.strategy.name, e)
		}
	}
	fmt.Fprintf(w, "\n")
}

func (r *report) writeLists(w io.Writer) {
	fmt.Fprintf(w, "## (c) Listing many instances\n\n")
	fmt.Fprintf(w, "`ListInstances` on an account of managed and unmanaged instances (interleaved); the cloud runs in a child "+
		"process, so time, CPU and allocations are the client's (driver and SDK) alone, per listing (mean of %d listings "+
		"after the one checked for completeness). "+
		"*Pages* are the list requests one listing made; the minimum is managed ÷ the API's largest page. "+
		"Target: every managed instance and no other, in the minimum of pages.\n\n", r.opts.listIters)
	fmt.Fprintf(w, "| Cloud | Managed / unmanaged | Returned | Foreign | Pages | Minimum | Time | CPU | Allocs | Allocated | Target |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, l := range r.lists {
		ok := l.got == l.managed && l.foreign == 0 && l.pages == l.minPages
		t := r.pass(ok, fmt.Sprintf("(c) %s: %d of %d returned, %d foreign, %d pages (minimum %d)", l.cloud.title, l.got, l.managed, l.foreign, l.pages, l.minPages))
		fmt.Fprintf(w, "| %s | %d / %d | %d | %d | %d | %d | %s | %s | %d | %.1f MB | %s |\n", l.cloud.title, l.managed, l.unmanaged,
			l.got, l.foreign, l.pages, l.minPages, dur(l.wall), dur(l.cpu), l.allocs, float64(l.bytes)/1e6, t)
	}
	fmt.Fprintf(w, "\n")
}

func (r *report) writeGets(w io.Writer) {
	fmt.Fprintf(w, "## (d) Cost of one GetInstance\n\n")
	fmt.Fprintf(w, "spuff's `GetInstance` (validation, pacer, retry policy, per-attempt timeout, error classification, "+
		"mapping to `provider.Instance`) against the bare SDK call on the same server: godo `Droplets.Get`, hcloud-go "+
		"`Server.GetByID`, aws-sdk-go-v2 `DescribeInstances` (each with the SDK's defaults, on `context.Background()`). "+
		"*ns/op*, *allocs/op* and *B/op* are `testing.Benchmark`'s (%s each). *CPU* is the client process's CPU time "+
		"(user and system, all threads: the server runs in a child process) per call, over %d short rounds of the same "+
		"number of calls (about %s each), alternating which goes first so that the load of a shared machine weighs on "+
		"both alike; the median round is shown, and the *CPU ratio* is the median of the rounds' ratios. Two ways to "+
		"reach the server:\n\n"+
		"- **replay**: its answer to each request is recorded once and replayed from memory, so that CPU is the "+
		"client's own work (SDK and spuff) without the kernel's and the scheduler's, which are the same for both and "+
		"vary by ±15 %% between runs on a shared machine. The target applies to this figure: the cost of spuff's "+
		"layer relative to what the SDK itself does.\n"+
		"- **loopback**: real HTTP over loopback; *ns/op* includes the server's time.\n\n"+
		"Both with GOMAXPROCS 1: the client has one call in flight, and idle processors would only add the scheduler's "+
		"spinning and a concurrent GC's share to its CPU time.\n\n"+
		"Target: spuff's CPU per call at most 1.10× the bare SDK's.\n\n", r.opts.benchtime, r.opts.getRounds, roundTime)
	fmt.Fprintf(w, "| Cloud | Reached by | Call | ns/op | CPU µs/op | allocs/op | B/op | CPU ratio | Target |\n")
	fmt.Fprintf(w, "|---|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, g := range r.gets {
		for _, way := range []struct {
			name string
			p    getPair
		}{{"replay", g.replay}, {"loopback", g.loopback}} {
			t := ""
			if way.name == "replay" {
				t = r.pass(way.p.ratio <= 1.10, fmt.Sprintf("(d) %s: GetInstance costs %.2f× the bare SDK call's CPU", g.cloud.title, way.p.ratio))
			}
			fmt.Fprintf(w, "| %s | %s | bare SDK | %.0f | %.1f | %d | %d | | |\n", g.cloud.title, way.name, way.p.sdk.nsOp, way.p.sdk.cpuOp/1e3, way.p.sdk.allocs, way.p.sdk.bytes)
			fmt.Fprintf(w, "| %s | %s | spuff | %.0f | %.1f | %d | %d | %.2f | %s |\n", g.cloud.title, way.name, way.p.spuff.nsOp, way.p.spuff.cpuOp/1e3, way.p.spuff.allocs, way.p.spuff.bytes, way.p.ratio, t)
		}
	}
	fmt.Fprintf(w, "\n")
}

func (r *report) writeSharing(w io.Writer) {
	fmt.Fprintf(w, "## Pacer sharing\n\n")
	fmt.Fprintf(w, "Two Providers opened from the same credentials and endpoint, without `Config.Pacer`, must share one "+
		"pacer (one budget for the account); a Provider of another credential must not.\n\n")
	fmt.Fprintf(w, "| Cloud | Same credentials share | Other credential separate | Target |\n|---|---|---|---|\n")
	for _, s := range r.sharing {
		t := r.pass(s.shared && s.separate, fmt.Sprintf("pacer sharing on %s: shared %v, separate %v", s.cloud.title, s.shared, s.separate))
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", s.cloud.title, yes(s.shared), yes(s.separate), t)
	}
	fmt.Fprintf(w, "\n")
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// dur formats a real duration briefly.
func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

func pctDur(s []time.Duration, p int) string {
	if len(s) == 0 {
		return "-"
	}
	return dur(pct(s, p))
}

// pct is the p-th percentile of s, sorted (nearest rank).
func pct(s []time.Duration, p int) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)]
}

func pctFrac(s []float64, p int) string {
	if len(s) == 0 {
		return "-"
	}
	v := s[min(len(s)-1, len(s)*p/100)]
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f %%", 100*v)
}

// commandLine is the command that reproduces the run.
func (o options) commandLine() string {
	args := []string{"go run ./examples/benchreport"}
	args = append(args, o.args...)
	return strings.Join(args, " ")
}
