package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
)

// The benchmarks measure what the report measures, one figure at a time,
// for `go test -bench` (with -benchmem, -cpuprofile and benchstat):
//
//	go test -run '^$' -bench . -benchmem ./examples/benchreport
//
// Simulated clouds that benchmarks measure the client against run in a
// child process (this test binary, see TestMain), so that allocations and
// profiles are the client's alone.

// childFor starts a child serving args for the benchmark, stopped at its
// end.
func childFor(b *testing.B, args serveArgs) *child {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ch, err := startChild(self, true, args)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ch.stop)
	return ch
}

// BenchmarkGetInstance compares spuff's GetInstance with the bare SDK call
// on the same server: godo Droplets.Get, hcloud-go Server.GetByID, EC2
// DescribeInstances, over loopback HTTP and with the server's answer
// replayed from memory (the client's own work alone). cpu-ns/op is the
// client process's CPU time per call (run with -cpu 1 to leave the
// scheduler's spinning out of the loopback figures).
func BenchmarkGetInstance(b *testing.B) {
	for _, c := range clouds {
		b.Run(c.name, func(b *testing.B) {
			ch := childFor(b, serveArgs{Cloud: c.name, Managed: 1})
			ctx := context.Background()
			for _, way := range []string{"loopback", "replay"} {
				var rt http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
				if way == "replay" {
					rt = &replay{base: rt, saved: map[string]*recorded{}}
				}
				ours, bare, err := getters(ctx, c, ch, rt, 20)
				if err != nil {
					b.Fatal(err)
				}
				for _, call := range []struct {
					name string
					fn   func(context.Context) error
				}{{"spuff", ours}, {"sdk", bare}} {
					b.Run(way+"/"+call.name, func(b *testing.B) {
						b.ReportAllocs()
						cpu0 := cpuTime()
						for b.Loop() {
							if err := call.fn(ctx); err != nil {
								b.Fatal(err)
							}
						}
						b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
					})
				}
			}
		})
	}
}

// BenchmarkListInstances lists 10,000 managed among 10,000 unmanaged
// instances, and reports the pages one listing takes.
func BenchmarkListInstances(b *testing.B) {
	const managed, unmanaged = 10000, 10000
	for _, c := range clouds {
		b.Run(c.name, func(b *testing.B) {
			ch := childFor(b, serveArgs{Cloud: c.name, Managed: managed, Unmanaged: unmanaged})
			var r *listResult
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if r, err = runList(context.Background(), c, ch, managed, unmanaged, 0); err != nil {
					b.Fatal(err)
				}
				if r.got != managed || r.foreign != 0 {
					b.Fatalf("listed %d of %d managed and %d others", r.got, managed, r.foreign)
				}
			}
			b.ReportMetric(float64(r.pages), "pages/op")
			b.ReportMetric(float64(r.minPages), "min-pages")
		})
	}
}

// BenchmarkWaitReady awaits machines with each wait strategy (time scaled
// 1/50, no rate limit), boot times centred on 0.5, 1 and 2 times each
// driver's prior, and reports the median and p95 lag as fractions of the
// boot time and the API calls per wait. spuff's strategy starts each
// iteration from a fresh BootTimes and learns over its 12 waits.
func BenchmarkWaitReady(b *testing.B) {
	s := scaling{factor: 1.0 / 50}
	for _, c := range clouds {
		for _, f := range bootFactors {
			for _, st := range strategies {
				b.Run(fmt.Sprintf("%s/%gx/%s", c.name, f, st.key), func(b *testing.B) {
					var p50, p95, calls float64
					for i := 0; b.Loop(); i++ {
						r, err := runLatency(context.Background(), c, st, s, f, 12, 4, uint64(i))
						if err != nil || r.errors > 0 {
							b.Fatalf("%v, %d errors", err, r.errors)
						}
						p50 += r.frac[len(r.frac)/2]
						p95 += r.frac[len(r.frac)*95/100]
						calls += r.calls
					}
					b.ReportMetric(100*p50/float64(b.N), "lag-p50-%boot")
					b.ReportMetric(100*p95/float64(b.N), "lag-p95-%boot")
					b.ReportMetric(calls/float64(b.N), "calls/wait")
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}

// BenchmarkFleet runs fleets of 100 create → wait → destroy under each
// cloud's rate limit (time scaled 1/10, as in the report) and reports wall
// time over the lower bound, 429s the cloud answered, and failures.
func BenchmarkFleet(b *testing.B) {
	s := scaling{factor: 1.0 / 10}
	for _, c := range clouds {
		for _, n := range []int{100} {
			b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
				var ratio, throttled, failures float64
				for i := 0; b.Loop(); i++ {
					r, err := runFleet(context.Background(), c, spuffWait, s, n, uint64(i))
					if err != nil {
						b.Fatal(err)
					}
					ratio += float64(r.wall) / float64(r.lb)
					throttled += float64(r.throttled)
					failures += float64(r.failures + r.leaks)
				}
				b.ReportMetric(ratio/float64(b.N), "wall/lower-bound")
				b.ReportMetric(throttled/float64(b.N), "429s/op")
				b.ReportMetric(failures/float64(b.N), "failures/op")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
