// Package crash_test proves that a process killed at any point of a
// machine's life leaves nothing a reaper cannot find: a child process runs
// create → wait → snapshot → destroy against a simulated cloud the test
// keeps, over and over, with a TTL on everything it makes, and is killed
// with SIGKILL (no context cancel, no deferred cleanup) at random moments.
// Afterwards one reaper pass must leave no machine and no snapshot past its
// expiry, and no machine may ever have been made without its expiry.
//
// SPUFF_CRASH_KILLS sets the kills per provider (default 12);
// SPUFF_CRASH_SEED the seed of the kill times.
package crash_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
)

// ttl is the life of everything the child makes.
const ttl = 10 * time.Minute

// childEnv names the environment that makes the test binary the child.
const childEnv = "SPUFF_CRASH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

type target struct {
	name    string
	start   func(t testing.TB, opts simcloud.Options) *simcloud.Server
	config  func(srv *simcloud.Server) provider.Config
	request func(name string) provider.InstanceRequest
}

var targets = []target{
	{digitalocean.Name, dosim.Start, dosim.Config, func(n string) provider.InstanceRequest {
		return provider.InstanceRequest{Name: n, Region: "nyc3", Size: "s-1vcpu-1gb", Image: provider.Ubuntu("24.04")}
	}},
	{hetzner.Name, func(t testing.TB, o simcloud.Options) *simcloud.Server { return hcloudsim.Start(t, o) }, hcloudsim.Config, func(n string) provider.InstanceRequest {
		return provider.InstanceRequest{Name: n, Region: "fsn1", Size: "cx22", Image: provider.Ubuntu("24.04")}
	}},
	{aws.Name, ec2sim.Start, ec2sim.Config, func(n string) provider.InstanceRequest {
		return provider.InstanceRequest{Name: n, Region: "us-east-1", Size: "t3.micro", Image: provider.Ubuntu("24.04")}
	}},
}

func targetNamed(name string) target {
	for _, tg := range targets {
		if tg.name == name {
			return tg
		}
	}
	panic("no target " + name)
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestKilledAnywhereLeavesNothingAReaperMisses kills the child at random
// points of its lifecycles, many times per provider, then reaps once.
func TestKilledAnywhereLeavesNothingAReaperMisses(t *testing.T) {
	kills := envInt("SPUFF_CRASH_KILLS", 12)
	seed := uint64(envInt("SPUFF_CRASH_SEED", 2026))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			opts := providertest.Options()
			opts.BootDelay = 20 * time.Second     // 200 ms
			opts.SnapshotDelay = 30 * time.Second // 300 ms
			srv := tg.start(t, opts)
			cfg := tg.config(srv)
			rng := rand.New(rand.NewPCG(seed, uint64(len(tg.name))))
			var lifecycles, steps atomic.Int64
			for k := range kills {
				cmd := exec.Command(exe, "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"=1", "SPUFF_CRASH_PROVIDER="+tg.name,
					"SPUFF_CRASH_ENDPOINT="+cfg.Endpoint, "SPUFF_CRASH_TOKEN="+string(cfg.Token),
					"SPUFF_CRASH_KEY="+cfg.AccessKeyID, "SPUFF_CRASH_SECRET="+string(cfg.SecretAccessKey),
					"SPUFF_CRASH_REGION="+cfg.Region, fmt.Sprintf("SPUFF_CRASH_RUN=%d", k))
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					sc := bufio.NewScanner(out)
					for sc.Scan() {
						switch {
						case strings.HasPrefix(sc.Text(), "lifecycle"):
							lifecycles.Add(1)
						case strings.HasPrefix(sc.Text(), "step"):
							steps.Add(1)
						}
					}
				}()
				// Anywhere from the first create to a few lifecycles in.
				time.Sleep(time.Duration(20+rng.IntN(1200)) * time.Millisecond)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-done
				_ = cmd.Wait()
			}
			made := srv.Cloud.AllInstances()
			// What a killed child left in flight finishes: snapshots are
			// made, listings catch up.
			time.Sleep(time.Second)
			p, err := provider.Open(context.Background(), tg.name, providertest.FastConfig(cfg))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			before := srv.Cloud.Stats()
			rep, err := provider.Reap(ctx, p, provider.ReapOptions{Now: time.Now().Add(ttl + time.Minute)})
			if err != nil {
				t.Errorf("reaper: %v", err)
			}
			// Destroys take a while: wait for the cloud to finish them.
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) && len(srv.Cloud.LiveInstances())+len(srv.Cloud.DeletingInstances()) > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			st := srv.Cloud.Stats()
			if len(srv.Cloud.LiveInstances()) != 0 || st.LiveSnapshots != 0 || st.LiveVolumeSnapshots != 0 {
				t.Errorf("after one reaper pass: %d machines, %d snapshots, %d volume snapshots left past their expiry",
					len(srv.Cloud.LiveInstances()), st.LiveSnapshots, st.LiveVolumeSnapshots)
			}
			noExpiry := 0
			for _, in := range made {
				if in.Labels["spuff-expires"] == "" {
					noExpiry++
				}
			}
			if noExpiry != 0 {
				t.Errorf("%d machines were made without their expiry by requests that asked for one", noExpiry)
			}
			t.Logf("%s: %d kills, %d steps and %d whole lifecycles done by the children, %d machines made, left at the kills: %d machines and %d snapshots; the reaper destroyed %d, failed %d; duplicates %d",
				tg.name, kills, steps.Load(), lifecycles.Load(), len(made), before.LiveInstances, before.LiveSnapshots, len(rep.Destroyed), len(rep.Failed), st.Duplicates)
		})
	}
}

// child runs lifecycles until it is killed, printing each step.
func child() int {
	tg := targetNamed(os.Getenv("SPUFF_CRASH_PROVIDER"))
	cfg := providertest.FastConfig(provider.Config{
		Endpoint: os.Getenv("SPUFF_CRASH_ENDPOINT"), Token: provider.Secret(os.Getenv("SPUFF_CRASH_TOKEN")),
		AccessKeyID: os.Getenv("SPUFF_CRASH_KEY"), SecretAccessKey: provider.Secret(os.Getenv("SPUFF_CRASH_SECRET")),
		Region: os.Getenv("SPUFF_CRASH_REGION"), HTTPClient: &http.Client{},
	})
	ctx := context.Background()
	p, err := provider.Open(ctx, tg.name, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	run := os.Getenv("SPUFF_CRASH_RUN")
	for n := 0; ; n++ {
		step := func(what string, err error) bool {
			if err != nil {
				fmt.Fprintf(os.Stderr, "crash child %s/%s: %s: %v\n", run, tg.name, what, err)
				return false
			}
			fmt.Println("step", what)
			return true
		}
		req := tg.request(fmt.Sprintf("crash-%s-%d", run, n))
		req.TTL = ttl
		inst, err := p.CreateInstance(ctx, req)
		if !step("create", err) {
			continue
		}
		_, err = p.WaitReady(ctx, inst.ID)
		if !step("wait", err) {
			continue
		}
		snap, err := p.CreateSnapshot(ctx, inst.ID, req.Name+"-snap", provider.SnapshotTTL(ttl))
		step("snapshot", err)
		if !step("destroy", p.DestroyInstance(ctx, inst.ID)) {
			continue
		}
		if snap != nil && !step("delete snapshot", p.DeleteSnapshot(ctx, snap.ID)) {
			continue
		}
		fmt.Println("lifecycle", n)
	}
}
