package spuff_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spuffgo/spuff/provider"
	_ "github.com/spuffgo/spuff/provider/hetzner" // registers "hetzner"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The whole lifecycle of a machine, on the simulated Hetzner Cloud API: the
// driver is enabled by its blank import and opened by name. Against the
// real cloud, the Config would be empty and the token read from
// HCLOUD_TOKEN.
func Example() {
	ctx := context.Background()
	srv := hcloudsim.NewServer(simcloud.Options{BootDelay: 50 * time.Millisecond})
	defer srv.Close()

	p, err := provider.Open(ctx, "hetzner", hcloudsim.Config(srv))
	if err != nil {
		fmt.Println(err)
		return
	}
	inst, err := p.CreateInstance(ctx, provider.InstanceRequest{
		Name: "dev-1", Region: "fsn1", Size: "cx22",
		Image:  provider.Ubuntu("24.04"),
		Labels: map[string]string{"team": "core"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	inst, err = p.WaitReady(ctx, inst.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(inst.Name, inst.Status, inst.IP().IsValid(), inst.Labels["team"])

	list, _ := p.ListInstances(ctx)
	fmt.Println("managed machines:", len(list))

	if err := p.DestroyInstance(ctx, inst.ID); err != nil {
		fmt.Println(err)
	}
	// Destroying again is not an error: the machine is already gone.
	fmt.Println("destroy again:", p.DestroyInstance(ctx, inst.ID))
	_, err = p.GetInstance(ctx, inst.ID)
	fmt.Println("gone:", errors.Is(err, provider.ErrNotFound))
	// Output:
	// dev-1 active true core
	// managed machines: 1
	// destroy again: <nil>
	// gone: true
}

// Errors are classified portably: test the kind with errors.Is, read the
// details with errors.As.
func Example_errors() {
	ctx := context.Background()
	srv := hcloudsim.NewServer(simcloud.Options{})
	defer srv.Close()
	p, _ := provider.Open(ctx, "hetzner", hcloudsim.Config(srv))

	// An invalid request fails before any API call, naming the field.
	_, err := p.CreateInstance(ctx, provider.InstanceRequest{Name: "dev_1", Region: "fsn1", Size: "cx22", Image: provider.Ubuntu("24.04")})
	var perr *provider.Error
	if errors.Is(err, provider.ErrInvalidConfig) && errors.As(err, &perr) {
		fmt.Println("invalid field:", perr.Field)
	}

	// The cloud says no: an unknown machine.
	_, err = p.GetInstance(ctx, "424242")
	fmt.Println("not found:", errors.Is(err, provider.ErrNotFound), "retryable:", provider.IsRetryable(err))

	// A wrong token.
	cfg := hcloudsim.Config(srv)
	cfg.Token = "not-the-token"
	bad, _ := provider.Open(ctx, "hetzner", cfg)
	_, err = bad.ListInstances(ctx)
	fmt.Println("authentication:", errors.Is(err, provider.ErrAuthentication))

	// A provider nobody registered.
	_, err = provider.Open(ctx, "vultr", provider.Config{})
	fmt.Println("unknown provider:", errors.Is(err, provider.ErrUnknownProvider))
	// Output:
	// invalid field: Name
	// not found: true retryable: false
	// authentication: true
	// unknown provider: true
}
