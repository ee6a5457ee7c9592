package hetzner_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/hetzner"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// A program's tests can run against the simulated Hetzner Cloud API instead
// of the real one: no token, no cost, machines that boot in 100 ms. In a
// test, hcloudsim.Start(t, opts) does the first two lines and closes the
// server at the test's end.
func Example_simulatedCloud() {
	cloud := hcloudsim.NewCloud(providertest.Options())
	srv := simcloud.NewServer(cloud, hcloudsim.Handler(cloud))
	defer srv.Close()

	ctx := context.Background()
	cfg := provider.Config{Endpoint: srv.URL, Token: provider.Secret(cloud.Token())}
	// The simulated machines boot in 100 ms: tune the waits to that.
	p, err := hetzner.Open(ctx, cfg, hetzner.WithExpectedBoot(100*time.Millisecond))
	if err != nil {
		panic(err)
	}
	inst, err := p.CreateInstance(ctx, provider.InstanceRequest{
		Name: "dev-1", Region: "fsn1", Size: "cax11", Image: provider.Ubuntu("24.04"),
	})
	if err != nil {
		panic(err)
	}
	inst, err = p.WaitReady(ctx, inst.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(inst.Name, inst.Status, inst.Size, inst.IP().IsValid())
	fmt.Println("servers:", len(cloud.LiveInstances()))
	_ = p.DestroyInstance(ctx, inst.ID)
	fmt.Println("servers:", len(cloud.LiveInstances()))
	// Output:
	// dev-1 active cax11 true
	// servers: 1
	// servers: 0
}

// New builds a Provider on an hcloud-go client the caller made: start from
// ClientOptions (a paced transport, hcloud-go's retries off) and add your
// own options after them. As reaches the client again.
func ExampleNew() {
	srv := hcloudsim.NewServer(providertest.Options())
	defer srv.Close()

	cfg := provider.Config{Endpoint: srv.URL, Token: provider.Secret(srv.Cloud.Token())}
	opts, err := hetzner.ClientOptions(cfg)
	if err != nil {
		panic(err)
	}
	client := hcloud.NewClient(append(opts, hcloud.WithApplication("my-tool", "1.0"))...)
	p, err := hetzner.New(client, cfg)
	if err != nil {
		panic(err)
	}
	keys, err := p.ListSSHKeys(context.Background())
	if err != nil {
		panic(err)
	}
	var c *hcloud.Client
	fmt.Println(len(keys) > 0, p.As(&c) && c == client)
	// Output:
	// true true
}
