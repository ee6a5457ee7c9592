package digitalocean_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/digitalocean"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/dosim"
)

// devBox is the code under test: it starts a machine and returns its IP.
func devBox(ctx context.Context, p provider.Provider) (netip.Addr, error) {
	inst, err := p.CreateInstance(ctx, provider.InstanceRequest{
		Name: "dev-1", Region: "nyc3", Size: "s-1vcpu-1gb", Image: provider.Ubuntu("24.04"),
		Labels: map[string]string{"team": "core"},
	})
	if err != nil {
		return netip.Addr{}, err
	}
	if inst, err = p.WaitReady(ctx, inst.ID); err != nil {
		return netip.Addr{}, err
	}
	return inst.IP(), nil
}

// Test your own code against the simulated DigitalOcean API: no account, no
// network, no bill. In a test, dosim.Start(t, opts) also closes the server
// when the test ends; srv.Cloud can inject faults and tells what exists.
func Example_simulatedAPI() {
	ctx := context.Background()
	srv := dosim.NewServer(providertest.Options())
	defer srv.Close()
	p, _ := digitalocean.Open(ctx, dosim.Config(srv)) // endpoint, token, waits in simulated time
	ip, err := devBox(ctx, p)
	fmt.Println(ip.IsValid(), err)
	m := srv.Cloud.LiveInstances()[0]
	fmt.Println(m.Name, m.Labels["team"], m.Labels["managed-by"])
	// Output:
	// true <nil>
	// dev-1 core spuff
}
