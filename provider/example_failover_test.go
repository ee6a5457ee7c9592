package provider_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/provider/internal/memdriver"
)

// A machine of one of two sizes in one of three locations: the failover
// moves on when a placement has no room, and makes one machine.
func ExampleCreateWithFailover() {
	ctx := context.Background()
	mem := memdriver.New() // an in-memory cloud; use provider.Open(ctx, "hetzner", cfg)
	mem.Refuse = func(in *driver.CreateInput) error {
		if in.Request.Region == "fsn1" { // fsn1 is out of capacity
			return &driver.Error{Kind: driver.KindCapacity, Status: 412, Code: "resource_unavailable", Message: "error during placement"}
		}
		return nil
	}
	p, _ := provider.OpenDriver(ctx, "hetzner", mem.Opener(), provider.Config{})

	req := provider.InstanceRequest{Name: "ci-runner-1", Image: provider.Ubuntu("24.04")}
	places := provider.Grid(p, []string{"fsn1", "nbg1", "hel1"}, []string{"cx22", "cpx11"})
	inst, err := provider.CreateWithFailover(ctx, req, places)
	if err != nil {
		panic(err)
	}
	fmt.Println("made", inst.Name, "in", inst.Region, "as", inst.Size)

	// When no placement has room, the error lists each one tried.
	_, err = provider.CreateWithFailover(ctx, provider.InstanceRequest{Name: "ci-runner-2", Image: provider.Ubuntu("24.04")},
		provider.Grid(p, []string{"fsn1"}, []string{"cx22", "cpx11"}))
	fmt.Println(errors.Is(err, provider.ErrCapacity))
	fmt.Println(err)
	// Output:
	// made ci-runner-1 in nbg1 as cx22
	// true
	// spuff: CreateWithFailover "ci-runner-2": no placement had room (2 tried)
	//   1. hetzner fsn1 cx22: no capacity [HTTP 412 resource_unavailable]: error during placement
	//   2. hetzner fsn1 cpx11: no capacity [HTTP 412 resource_unavailable]: error during placement
}

// The cheapest placements with at least 2 vCPUs and 4 GiB of memory,
// ready for CreateWithFailover.
func ExamplePick() {
	ctx := context.Background()
	mem := memdriver.New() // an in-memory cloud; use provider.Open(ctx, "hetzner", cfg)
	eur := func(h float64) driver.Price { return driver.Price{Hourly: h, Currency: "EUR"} }
	mem.Catalogue = &driver.Catalog{
		Regions: []driver.Region{{Name: "fsn1", Available: true}, {Name: "nbg1", Available: true}},
		Sizes: []driver.Size{
			{Name: "cpx11", VCPUs: 2, MemoryMiB: 2048, DiskGB: 40, Arch: driver.ArchX86, Regions: []string{"fsn1", "nbg1"},
				Prices: map[string]driver.Price{"fsn1": eur(0.007), "nbg1": eur(0.007)}},
			{Name: "cx22", VCPUs: 2, MemoryMiB: 4096, DiskGB: 40, Arch: driver.ArchX86, Regions: []string{"fsn1", "nbg1"},
				Prices: map[string]driver.Price{"fsn1": eur(0.006), "nbg1": eur(0.006)}},
			{Name: "cax21", VCPUs: 4, MemoryMiB: 8192, DiskGB: 80, Arch: driver.ArchARM, Regions: []string{"nbg1"},
				Prices: map[string]driver.Price{"nbg1": eur(0.0104)}},
		},
	}
	p, _ := provider.OpenDriver(ctx, "hetzner", mem.Opener(), provider.Config{})

	offers, err := provider.Pick(ctx, provider.Requirements{
		MinVCPUs: 2, MinMemoryMiB: 4 * 1024,
		MaxHourly: provider.Price{Hourly: 0.02, Currency: "EUR"},
		MaxAge:    10 * time.Minute, // a fleet picking per machine reads the catalogue once
	}, p)
	if err != nil {
		panic(err)
	}
	for _, o := range offers {
		fmt.Println(o)
	}
	inst, err := provider.CreateWithFailover(ctx, provider.InstanceRequest{Name: "build-1", Image: provider.Debian("12")}, provider.Placements(offers))
	if err != nil {
		panic(err)
	}
	fmt.Println("made", inst.Name, "in", inst.Region, "as", inst.Size)
	// Output:
	// hetzner fsn1 cx22: 2 vCPU, 4 GiB, 40 GB disk, x86_64, 0.0060 EUR/h
	// hetzner nbg1 cx22: 2 vCPU, 4 GiB, 40 GB disk, x86_64, 0.0060 EUR/h
	// hetzner nbg1 cax21: 4 vCPU, 8 GiB, 80 GB disk, arm64, 0.0104 EUR/h
	// made build-1 in fsn1 as cx22
}
