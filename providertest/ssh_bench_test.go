package providertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/provider/digitalocean"
	"github.com/spuffgo/spuff/provider/hetzner"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
	"github.com/spuffgo/spuff/providertest/simssh"
)

// benchClouds are the simulated clouds the SSH benchmark runs on.
var benchClouds = []struct {
	name   string
	start  func(t testing.TB, opts simcloud.Options) *simcloud.Server
	config func(srv *simcloud.Server) provider.Config
	open   func(ctx context.Context, cfg provider.Config) (provider.Provider, error)
	req    func(name string) provider.InstanceRequest
}{
	{"digitalocean", dosim.Start, dosim.Config, func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
		return digitalocean.Open(ctx, cfg)
	}, func(name string) provider.InstanceRequest {
		return provider.InstanceRequest{Name: name, Region: "nyc3", Size: "s-1vcpu-1gb", Image: provider.Ubuntu("24.04")}
	}},
	{"aws", ec2sim.Start, ec2sim.Config, func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
		return aws.Open(ctx, cfg)
	}, func(name string) provider.InstanceRequest {
		return provider.InstanceRequest{Name: name, Region: "us-east-1", Size: "t3.micro", Image: provider.Ubuntu("24.04")}
	}},
	{"hetzner", func(t testing.TB, opts simcloud.Options) *simcloud.Server { return hcloudsim.Start(t, opts) }, hcloudsim.Config, func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
		return hetzner.Open(ctx, cfg)
	}, func(name string) provider.InstanceRequest {
		return provider.InstanceRequest{Name: name, Region: "fsn1", Size: "cx22", Image: provider.Ubuntu("24.04")}
	}},
}

// benchOptions are the realistic world at the suite's scale, with boots of
// 5 s (50 ms): what is measured comes after the boot.
func benchOptions() simcloud.Options {
	o := providertest.Options()
	o.BootDelay = 5 * time.Second
	return o
}

// BenchmarkSSHHandshake measures WaitSSH on the simulated clouds, one
// machine per iteration (the realistic world at 1/100: sshd up 80 ms after
// the machine runs, keys 20 ms later, cloud-init 250 ms after): the time from the
// port's first accepted connection to the first handshake with an
// accepted host key (handshake-p50/p95), from sshd listening to the first
// connection (port-lag-p50), and the API calls made after the machine ran
// (api-calls/op, zero).
func BenchmarkSSHHandshake(b *testing.B) {
	for _, c := range benchClouds {
		b.Run(c.name, func(b *testing.B) {
			srv := c.start(b, benchOptions())
			sshd := simssh.Start(b, srv.Cloud, simssh.Options{})
			ctx := context.Background()
			p, err := c.open(ctx, providertest.FastConfig(c.config(srv)))
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			got, err := providertest.MeasureSSH(ctx, p, sshd, b.N, func(i int) provider.InstanceRequest {
				return c.req(fmt.Sprintf("bench-%d", i))
			})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			med, p95, err := got.Summary(provider.StageHandshake)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(med.Microseconds())/1000, "handshake-p50-ms")
			b.ReportMetric(float64(p95.Microseconds())/1000, "handshake-p95-ms")
			b.ReportMetric(float64(providertest.Percentile(got.PortLag, 50).Microseconds())/1000, "port-lag-p50-ms")
			b.ReportMetric(float64(got.APICalls)/float64(b.N), "api-calls/op")
		})
	}
}

// TestMeasureSSH: the measurement the report reads has one sample per
// machine and stage, and no API call after the machines ran.
func TestMeasureSSH(t *testing.T) {
	t.Parallel()
	for _, c := range benchClouds {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := c.start(t, benchOptions())
			sshd := simssh.Start(t, srv.Cloud, simssh.Options{})
			ctx := context.Background()
			p, err := c.open(ctx, providertest.FastConfig(c.config(srv)))
			if err != nil {
				t.Fatal(err)
			}
			const n = 3
			got, err := providertest.MeasureSSH(ctx, p, sshd, n, func(i int) provider.InstanceRequest {
				return c.req(fmt.Sprintf("measure-%d", i))
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []provider.Stage{provider.StageAPI, provider.StagePort, provider.StageHandshake, provider.StageAuth, provider.StageCloudInit} {
				if len(got.Stages[s]) != n {
					t.Errorf("%d samples of stage %s, want %d", len(got.Stages[s]), s, n)
				}
			}
			if med, p95, err := got.Summary(provider.StageHandshake); err != nil || med <= 0 || p95 < med {
				t.Errorf("handshake median %v, p95 %v, %v", med, p95, err)
			}
			if len(got.PortLag) != n || got.APICalls != 0 {
				t.Errorf("%d port lags, %d API calls after running; want %d and 0", len(got.PortLag), got.APICalls, n)
			}
			if len(srv.Cloud.LiveInstances()) != 0 {
				t.Errorf("machines left behind")
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		d    []time.Duration
		p    int
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 95, 7 * time.Millisecond},
		{ms(3, 1, 2), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 95, 19 * time.Millisecond},
		{ms(1, 2, 3), 100, 3 * time.Millisecond},
		{ms(1, 2, 3), 0, 1 * time.Millisecond},
	} {
		if got := providertest.Percentile(tc.d, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %d) = %v, want %v", tc.d, tc.p, got, tc.want)
		}
	}
}
