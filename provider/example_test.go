package provider_test

import (
	"context"
	"errors"
	"fmt"
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

// A driver turns the SDK's error into an *Error; callers test its kind with
// errors.Is, read the details with errors.As, and still reach the SDK's own
// error through Unwrap.
func ExampleClassify() {
	sdkErr := errors.New("server not found") // what the SDK returned
	err := provider.Classify("hetzner", "GetInstance", http.StatusNotFound, nil, sdkErr)

	fmt.Println(err)
	fmt.Println(errors.Is(err, provider.ErrNotFound))
	fmt.Println(errors.Is(err, sdkErr))
	fmt.Println(provider.IsRetryable(err))

	var perr *provider.Error
	if errors.As(err, &perr) {
		fmt.Println(perr.Provider, perr.Op, perr.Status)
	}
	// Output:
	// spuff: hetzner: GetInstance: not found [HTTP 404]: server not found
	// true
	// true
	// false
	// hetzner GetInstance 404
}

func ExampleRetryAfter() {
	h := http.Header{"Retry-After": []string{"30"}}
	err := provider.Classify("digitalocean", "ListInstances", http.StatusTooManyRequests, h, errors.New("too many requests"))

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
	reg.Register("toy", func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
		return &toyProvider{name: "toy", cfg: cfg}, nil
	})

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

// A Waiter polls until the condition holds, riding over transient errors
// such as a 503, and gives up with a timeout error naming the last state.
func ExampleWaiter() {
	polls := 0
	poll := func(ctx context.Context) (done bool, state string, err error) {
		polls++
		switch polls {
		case 1:
			return false, "new", nil
		case 2:
			return false, "", &provider.Error{Kind: provider.KindAPI, Status: 503} // transient
		default:
			return true, "active", nil
		}
	}
	w := provider.Waiter{
		Op:      "WaitReady",
		Timeout: time.Minute,
		Policy:  provider.FixedWait(time.Millisecond),
	}
	err := w.Wait(context.Background(), poll)
	fmt.Println(err, polls)

	// A condition that never holds ends in a timeout.
	w.Timeout = 10 * time.Millisecond
	err = w.Wait(context.Background(), func(ctx context.Context) (bool, string, error) {
		return false, "booting", nil
	})
	var perr *provider.Error
	if errors.As(err, &perr) {
		fmt.Println(errors.Is(err, provider.ErrTimeout), perr.LastState)
	}
	// Output:
	// <nil> 3
	// true booting
}
