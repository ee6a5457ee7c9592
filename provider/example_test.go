package provider_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/provider/internal/memdriver"
	"net/http"
	"time"

	"github.com/spuffgo/spuff/provider"
)

func ExampleParseImageSpec() {
	spec, err := provider.ParseImageSpec("ubuntu:24.04")
	if err != nil {
		panic(err)
	}
	fmt.Println(spec.Kind, spec.Value)
	fmt.Println(spec) // String round-trips

	_, err = provider.ParseImageSpec("fedora:40")
	fmt.Println(errors.Is(err, provider.ErrInvalidConfig))
	// Output:
	// ubuntu 24.04
	// ubuntu:24.04
	// true
}

func ExampleInstanceRequest_Validate() {
	req := provider.InstanceRequest{
		Name:   "dev_1", // underscores are not allowed in hostnames
		Region: "fsn1",
		Size:   "cx22",
		Image:  provider.Debian("12"),
	}
	err := req.Validate()

	var perr *provider.Error
	if errors.As(err, &perr) {
		fmt.Println("invalid field:", perr.Field)
	}
	fmt.Println(errors.Is(err, provider.ErrInvalidConfig))
	// Output:
	// invalid field: Name
	// true
}

// A create that collides with a machine that already exists is a
// conflict naming that machine in Existing: it is not the caller's to clean
// up. Only Leftover names what the failed call itself made.
func ExampleError() {
	mem := memdriver.New()
	mem.Add(driver.Instance{Name: "prod-db", State: driver.StateRunning, Labels: map[string]string{"managed-by": "someone-else"}})
	mem.UniqueNames = true // as on Hetzner
	p, _ := provider.OpenDriver(context.Background(), "mem", mem.Opener(), provider.Config{})

	_, err := p.CreateInstance(context.Background(), provider.InstanceRequest{
		Name: "prod-db", Region: "r1", Size: "s1", Image: provider.Ubuntu("24.04"),
	})
	var perr *provider.Error
	if errors.As(err, &perr) {
		fmt.Println(errors.Is(err, provider.ErrConflict), perr.Field, "existing:", perr.Existing, "leftover:", perr.Leftover == "")
	}
	fmt.Println(provider.IsRetryable(err))
	// Output:
	// true Name existing: 1 leftover: true
	// false
}

func ExampleRetryAfter() {
	err := fmt.Errorf("listing: %w", &provider.Error{Kind: provider.KindRateLimit, Provider: "digitalocean", Op: "ListInstances", Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second})

	if errors.Is(err, provider.ErrRateLimit) {
		d, ok := provider.RetryAfter(err)
		fmt.Println("rate limited; retry after", d, ok)
	}
	fmt.Println("retryable:", provider.IsRetryable(err))
	// Output:
	// rate limited; retry after 30s true
	// retryable: true
}

// A Registry made for a test holds a toy provider; a name that is not
// registered gives an error that lists what is and hints at the blank
// import that registers a driver.
func ExampleRegistry() {
	reg := provider.NewRegistry()
	reg.Register("toy", memdriver.New().Opener())

	p, err := reg.Open(context.Background(), "toy", provider.Config{})
	if err != nil {
		panic(err)
	}
	fmt.Println("opened", p.Name())
	fmt.Println(reg.Names())

	_, err = reg.Open(context.Background(), "hetzner", provider.Config{})
	fmt.Println(errors.Is(err, provider.ErrUnknownProvider))
	fmt.Println(err)
	// Output:
	// opened toy
	// [toy]
	// true
	// spuff: Open hetzner: unknown provider: no provider "hetzner" is registered (registered: toy); forgotten import? add: import _ "github.com/spuffgo/spuff/provider/hetzner"
}
