// Command benchreport measures spuff's waiting, pacing, listing and call
// overhead against the simulated clouds, side by side with the strategies
// people use today, and prints a markdown report (docs/benchmarks.md is
// its latest output):
//
//	go run ./examples/benchreport > docs/benchmarks.md
//
// Per provider it measures (a) how soon WaitReady notices a machine is
// ready, and the API calls it spends, for spuff's adaptive wait, fixed 5 s
// polling (the original spuff), the AWS SDK waiter's schedule and
// hcloud-go's 500 ms polling; (b) fleets of machines created, awaited and
// destroyed at once under the provider's rate limit, against the lower
// bound the limit implies; (c) ListInstances over 10,000 managed among
// 10,000 unmanaged instances; (d) the client CPU and allocations of one
// GetInstance against the bare SDK call. Real boot times and rate limits
// are scaled down by one factor (-scale), so that the run takes a few
// minutes. Each figure is printed next to its target, with PASS or FAIL.
//
// Flags choose the clouds, sections and sizes; -quick runs tiny sizes in a
// few seconds, to check that everything works.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// bootFactors are the boot-time distributions of (a): centred on these
// multiples of each driver's prior (ExpectedBoot).
var bootFactors = []float64{0.5, 1, 2}

// options are the run's settings.
type options struct {
	scale, fleetScale       float64
	clouds                  []*cloud
	sections                string
	latencyN, latencyConc   int
	fleets                  []int
	fleetStrategies         []strategy
	listManaged, listOthers int
	listIters               int
	getRounds               int
	// getIters, when positive, measures each GetInstance round with this
	// many calls instead of testing.Benchmark for benchtime.
	getIters  int
	benchtime time.Duration
	// args are the flags given, for the reproducing command line.
	args []string
	// self is the executable children are started from; asTest starts it
	// as a test binary.
	self   string
	asTest bool
	// progress receives a line per step; nil discards.
	progress io.Writer
}

func main() {
	testing.Init() // testing.Benchmark's flags, for -benchtime
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// run parses args and writes the report to stdout (progress to stderr). With
// -serve it serves a simulated cloud for a parent instead.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, serveJSON, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if serveJSON != "" {
		var sa serveArgs
		if err := json.Unmarshal([]byte(serveJSON), &sa); err != nil {
			return fmt.Errorf("-serve: %w", err)
		}
		return serve(sa, stdin, stdout)
	}
	if o.self == "" {
		if o.self, err = os.Executable(); err != nil {
			return err
		}
	}
	o.progress = stderr
	if f := flag.Lookup("test.benchtime"); f != nil && o.getIters == 0 {
		if err := f.Value.Set(o.benchtime.String()); err != nil {
			return err
		}
	}
	rep, err := measureAll(ctx, o)
	if err != nil {
		return err
	}
	rep.write(stdout)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, string, error) {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o                         options
		cloudList, fleetList, fst string
		quick                     bool
		serveJSON                 string
	)
	fs.Float64Var(&o.scale, "scale", 25, "time runs this many times faster than real in (a) for boots up to 20 s, faster in proportion for longer ones")
	fs.Float64Var(&o.fleetScale, "fleet-scale", 10, "time runs this many times faster than real in (b): boot times and rate-limit periods are divided by it")
	fs.StringVar(&cloudList, "clouds", "digitalocean,hetzner,aws", "clouds to measure, comma-separated")
	fs.StringVar(&o.sections, "sections", "abcd", "sections to run: a (readiness), b (fleets), c (listing), d (GetInstance cost)")
	fs.IntVar(&o.latencyN, "latency-n", 60, "machines awaited per cloud and strategy in (a)")
	fs.IntVar(&o.latencyConc, "latency-conc", 10, "machines awaited at a time in (a)")
	fs.StringVar(&fleetList, "fleets", "100,500", "fleet sizes in (b), comma-separated")
	fs.StringVar(&fst, "fleet-strategies", "spuff,fixed5s,awswaiter,hcloud500ms", "wait strategies run as fleets in (b), the baselines on the first fleet size only: spuff, fixed5s, awswaiter, hcloud500ms")
	fs.IntVar(&o.listManaged, "list-managed", 10000, "managed instances in (c)")
	fs.IntVar(&o.listOthers, "list-unmanaged", 10000, "unmanaged instances in (c)")
	fs.IntVar(&o.listIters, "list-iters", 3, "listings measured per cloud in (c)")
	fs.IntVar(&o.getRounds, "get-rounds", 31, "alternating CPU rounds per cloud and way in (d)")
	fs.DurationVar(&o.benchtime, "benchtime", 500*time.Millisecond, "testing.Benchmark's time for ns/op and allocations in (d)")
	fs.BoolVar(&quick, "quick", false, "tiny sizes, to check that everything runs (a few seconds)")
	fs.StringVar(&serveJSON, "serve", "", "internal: serve a simulated cloud for a parent process")
	if err := fs.Parse(args); err != nil {
		return o, "", err
	}
	if fs.NArg() > 0 {
		return o, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "serve" {
			o.args = append(o.args, "-"+f.Name+"="+f.Value.String())
		}
	})
	if quick {
		o.latencyN, o.latencyConc, fleetList, o.listManaged, o.listOthers, o.listIters, o.getRounds, o.getIters = 2, 2, "4", 120, 60, 1, 1, 5
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "scale" })
		if !explicit {
			// Both keep a scale at which the clouds' own timings
			// (the per-request and look-up timeouts divided by it) still
			// outlast a loaded machine's scheduling under -race: at 500
			// a 10 s look-up is 20 ms.
			o.scale, o.fleetScale = 100, 50
		}
	}
	if o.scale <= 0 || o.fleetScale <= 0 {
		return o, "", errors.New("-scale and -fleet-scale must be positive")
	}
	for _, name := range strings.Split(cloudList, ",") {
		c := cloudNamed(strings.TrimSpace(name))
		if c == nil {
			return o, "", fmt.Errorf("-clouds: no cloud %q (digitalocean, hetzner, aws)", name)
		}
		o.clouds = append(o.clouds, c)
	}
	for _, v := range strings.Split(fleetList, ",") {
		if strings.TrimSpace(v) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			return o, "", fmt.Errorf("-fleets: %q is not a fleet size", v)
		}
		o.fleets = append(o.fleets, n)
	}
	for _, k := range strings.Split(fst, ",") {
		found := false
		for _, s := range strategies {
			if s.key == strings.TrimSpace(k) {
				o.fleetStrategies, found = append(o.fleetStrategies, s), true
			}
		}
		if !found {
			return o, "", fmt.Errorf("-fleet-strategies: no strategy %q", k)
		}
	}
	return o, serveJSON, nil
}

// measureAll runs the chosen sections.
func measureAll(ctx context.Context, o options) (*report, error) {
	rep := &report{opts: o, machine: machine(), started: time.Now()}
	say := func(format string, args ...any) {
		if o.progress != nil {
			fmt.Fprintf(o.progress, "benchreport: %s: "+format+"\n", append([]any{time.Since(rep.started).Round(time.Millisecond)}, args...)...)
		}
	}
	if strings.Contains(o.sections, "a") {
		l, err := measureLatency(ctx, o, say)
		if err != nil {
			return nil, err
		}
		rep.latency = l
	}
	if strings.Contains(o.sections, "b") {
		for ci, c := range o.clouds {
			for i, n := range o.fleets {
				for _, st := range o.fleetStrategies {
					if i > 0 && st.key != spuffWait.key {
						continue // baselines on the first size only, to keep the run short
					}
					// One seed per cloud and size: every strategy's
					// fleet has the same boot times.
					say("(b) %s, fleet of %d, %s", c.title, n, st.name)
					f, err := runFleet(ctx, c, st, scaling{factor: 1 / o.fleetScale}, n, uint64(100+10*ci+i))
					if err != nil {
						return nil, fmt.Errorf("(b) %s fleet of %d: %w", c.title, n, err)
					}
					rep.fleets = append(rep.fleets, f)
				}
			}
		}
		for _, c := range o.clouds {
			sh, err := checkSharing(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("pacer sharing on %s: %w", c.title, err)
			}
			rep.sharing = append(rep.sharing, sh)
		}
	}
	if strings.Contains(o.sections, "c") || strings.Contains(o.sections, "d") {
		for _, c := range o.clouds {
			// One child per measure; with -quick, one for both (the
			// first managed instance is the one GetInstance reads).
			var shared *child
			if o.getIters > 0 && strings.Contains(o.sections, "c") && strings.Contains(o.sections, "d") {
				ch, err := startChild(o.self, o.asTest, serveArgs{Cloud: c.name, Managed: o.listManaged, Unmanaged: o.listOthers})
				if err != nil {
					return nil, err
				}
				defer ch.stop()
				shared = ch
			}
			serveFor := func(args serveArgs) (*child, func(), error) {
				if shared != nil {
					return shared, func() {}, nil
				}
				ch, err := startChild(o.self, o.asTest, args)
				if err != nil {
					return nil, nil, err
				}
				return ch, ch.stop, nil
			}
			if strings.Contains(o.sections, "c") {
				say("(c) %s: listing %d managed among %d unmanaged", c.title, o.listManaged, o.listOthers)
				ch, stop, err := serveFor(serveArgs{Cloud: c.name, Managed: o.listManaged, Unmanaged: o.listOthers})
				if err != nil {
					return nil, err
				}
				l, err := runList(ctx, c, ch, o.listManaged, o.listOthers, o.listIters)
				stop()
				if err != nil {
					return nil, fmt.Errorf("(c) %s: %w", c.title, err)
				}
				rep.lists = append(rep.lists, l)
			}
			if strings.Contains(o.sections, "d") {
				say("(d) %s: GetInstance against the bare SDK", c.title)
				ch, stop, err := serveFor(serveArgs{Cloud: c.name, Managed: 1})
				if err != nil {
					return nil, err
				}
				g, err := runGet(ctx, c, ch, o.getRounds, o.getIters)
				stop()
				if err != nil {
					return nil, fmt.Errorf("(d) %s: %w", c.title, err)
				}
				rep.gets = append(rep.gets, g)
			}
		}
	}
	rep.elapsed = time.Since(rep.started)
	return rep, nil
}

// measureLatency runs (a): every cloud, boot-time distribution and
// strategy in turn, one seed per cloud and distribution, so that every
// strategy awaits machines with the same boot times. They run one after
// the other: on a shared machine, runs at once would measure each other's
// load (a loopback round trip of a few milliseconds reads as a second at
// these time scales).
func measureLatency(ctx context.Context, o options, say func(string, ...any)) ([]*latencyResult, error) {
	var out []*latencyResult
	for i, c := range o.clouds {
		for j, f := range bootFactors {
			for _, st := range strategies {
				if f != 1 && st.key != spuffWait.key && st.key != fixed5s.key {
					continue // the other baselines at the prior's boot times only
				}
				s := latencyScale(o.scale, c, f)
				say("(a) %s, boots %g× the prior, %s: %d machines, time %g× faster", c.title, f, st.name, o.latencyN, 1/s.factor)
				l, err := runLatency(ctx, c, st, s, f, o.latencyN, o.latencyConc, uint64(10*i+j+1))
				if err != nil {
					return nil, fmt.Errorf("(a) %s %g× %s: %w", c.title, f, st.name, err)
				}
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// latencyScale is the time scale of (a) for boots of factor × c's prior:
// scale for boots up to 20 s, faster in proportion for longer ones, so
// that the lag targets (5 % and 10 % of the boot time) stay as many
// milliseconds of the test's time as the shortest boots' 1 s and 2 s, and
// every distribution takes about as long to measure.
func latencyScale(scale float64, c *cloud, factor float64) scaling {
	boot := factor * c.expected.Seconds()
	return scaling{factor: 1 / (scale * max(1, boot/20))}
}

// sharingResult says whether Providers of one account share a pacer.
type sharingResult struct {
	cloud            *cloud
	shared, separate bool
}

// checkSharing opens two Providers from the same credentials and one from
// another, each with the driver's default (shared) pacer, makes one call
// with the first, and compares what the pacers counted.
func checkSharing(ctx context.Context, c *cloud) (sharingResult, error) {
	srv := c.newServer(simcloud.Options{RateLimits: unlimited})
	defer srv.Close()
	srv.Cloud.AddToken("another-" + srv.Cloud.Token())
	open := func(token string) (provider.Provider, error) {
		return c.open(ctx, c.config(srv.URL, token), c.expected)
	}
	requests := func(p provider.Provider) int64 {
		var st provider.Stats
		p.As(&st)
		return st.Pacer.Requests
	}
	a, err := open(srv.Cloud.Token())
	if err != nil {
		return sharingResult{}, err
	}
	b, err := open(srv.Cloud.Token())
	if err != nil {
		return sharingResult{}, err
	}
	other, err := open("another-" + srv.Cloud.Token())
	if err != nil {
		return sharingResult{}, err
	}
	if _, err := a.ListInstances(ctx); err != nil {
		return sharingResult{}, err
	}
	ra := requests(a)
	return sharingResult{cloud: c,
		shared:   ra > 0 && requests(b) == ra,
		separate: requests(other) == 0,
	}, nil
}

// machine describes the computer the report ran on.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d logical CPUs (GOMAXPROCS %d), %s/%s, %s", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
}
