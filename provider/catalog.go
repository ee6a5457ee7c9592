package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/spuffgo/spuff/provider/driver"
)

// Catalog is what a provider's cloud lists of its regions and sizes, with
// the hourly prices it publishes. FetchCatalog returns it; Pick chooses
// placements from it.
//
// What each cloud's catalogue holds:
//   - DigitalOcean: /v2/regions and /v2/sizes (every page); a size is
//     offered in the regions its "regions" lists while it is "available";
//     prices are its price_hourly, in US dollars (the API reference's unit),
//     the same in every region.
//   - Hetzner: locations, server types and datacenters (every page); a
//     server type is offered in a location its server type lists when the
//     location's datacenter has it available; prices are each location's
//     net hourly price (VAT excluded, so that they compare with the other
//     clouds'), in the project's currency from /pricing.
//   - AWS: DescribeRegions, DescribeInstanceTypes and
//     DescribeInstanceTypeOfferings (every page); prices are the Linux
//     on-demand, shared-tenancy prices of the AWS Price List API
//     (GetProducts), in US dollars, for the regions the Provider covers;
//     other regions' prices are unknown.
type Catalog struct {
	// Provider is the provider's registered name.
	Provider string `json:"provider"`
	// Regions are every region of the cloud, sorted by name.
	Regions []Region `json:"regions"`
	// Sizes are every size, sorted by name.
	Sizes []Size `json:"sizes"`
	// Notes say what the catalogue lacks and why ("prices unknown: …").
	Notes []string `json:"notes,omitempty"`
	// FetchedAt is when the cloud was read.
	FetchedAt time.Time `json:"fetched_at"`
}

// Region is a region of the cloud.
type Region struct {
	// Name is the region's identifier in an InstanceRequest ("nyc3",
	// "fsn1", "eu-west-1").
	Name string `json:"name"`
	// Description is the cloud's human name ("New York 3").
	Description string `json:"description,omitempty"`
	// Available reports that the region takes new machines now, as far
	// as the cloud says (see Catalog). Pick leaves unavailable regions
	// out.
	Available bool `json:"available"`
}

// Size is a machine size, normalised across clouds.
type Size struct {
	// Name is the size's identifier in an InstanceRequest ("s-1vcpu-1gb",
	// "cx22", "t3.micro").
	Name string `json:"name"`
	// Description is the cloud's description or class of the size.
	Description string `json:"description,omitempty"`
	// VCPUs is the number of virtual CPUs.
	VCPUs int `json:"vcpus"`
	// MemoryMiB is the memory in MiB (4096 for 4 GiB).
	MemoryMiB int `json:"memory_mib"`
	// DiskGB is the local disk in GB; 0 when the size has none of its
	// own (EC2's EBS-only types).
	DiskGB int `json:"disk_gb"`
	// Arch is ArchX86 or ArchARM.
	Arch string `json:"arch"`
	// Regions are the regions the size is offered in now, sorted.
	Regions []string `json:"regions"`
	// Prices are the hourly prices by region, where the cloud publishes
	// one; a region without an entry has an unknown price.
	Prices map[string]Price `json:"prices,omitempty"`
}

// The architectures of Size.Arch and Requirements.Arch.
const (
	ArchX86 = driver.ArchX86
	ArchARM = driver.ArchARM
)

// OfferedIn reports whether the size can be created in region.
func (s *Size) OfferedIn(region string) bool {
	_, ok := slices.BinarySearch(s.Regions, region)
	return ok
}

// Price returns the size's hourly price in region: the zero Price (not
// Known) when the cloud publishes none.
func (s *Size) Price(region string) Price { return s.Prices[region] }

// Price is an hourly price, taxes excluded, as the cloud publishes it. The
// zero Price is an unknown price: spuff never invents one.
type Price struct {
	// Hourly is the price of one hour.
	Hourly float64 `json:"hourly"`
	// Currency is the ISO 4217 code ("USD", "EUR"); empty for an unknown
	// price.
	Currency string `json:"currency"`
}

// Known reports whether the price is known.
func (p Price) Known() bool { return p.Currency != "" }

// String writes the price as "0.0060 EUR/h", or "unknown".
func (p Price) String() string {
	if !p.Known() {
		return "unknown"
	}
	return strconv.FormatFloat(p.Hourly, 'f', max(4, decimals(p.Hourly)), 64) + " " + p.Currency + "/h"
}

// decimals is the number of decimals the price needs, at most 6.
func decimals(f float64) int {
	for d := 0; d < 6; d++ {
		if s := math.Pow10(d); math.Abs(f*s-math.Round(f*s)) < 1e-9 {
			return d
		}
	}
	return 6
}

// MarshalJSON writes an unknown price as null.
func (p Price) MarshalJSON() ([]byte, error) {
	if !p.Known() {
		return []byte("null"), nil
	}
	type plain Price
	return json.Marshal(plain(p))
}

// Size returns the size called name.
func (c *Catalog) Size(name string) (*Size, bool) {
	i, ok := slices.BinarySearchFunc(c.Sizes, name, func(s Size, n string) int { return cmpString(s.Name, n) })
	if !ok {
		return nil, false
	}
	return &c.Sizes[i], true
}

// Region returns the region called name.
func (c *Catalog) Region(name string) (*Region, bool) {
	i, ok := slices.BinarySearchFunc(c.Regions, name, func(r Region, n string) int { return cmpString(r.Name, n) })
	if !ok {
		return nil, false
	}
	return &c.Regions[i], true
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Clone returns a deep copy of the catalogue.
func (c *Catalog) Clone() *Catalog {
	if c == nil {
		return nil
	}
	out := *c
	out.Regions = slices.Clone(c.Regions)
	out.Notes = slices.Clone(c.Notes)
	out.Sizes = make([]Size, len(c.Sizes))
	for i, s := range c.Sizes {
		s.Regions = slices.Clone(s.Regions)
		s.Prices = maps.Clone(s.Prices)
		out.Sizes[i] = s
	}
	return &out
}

// FetchCatalog returns p's catalogue of regions, sizes and prices: the one
// p read less than maxAge ago, else a fresh one (maxAge <= 0 always reads
// the cloud). A fleet that picks a size per machine reads the catalogue
// once per maxAge, not per machine; concurrent calls share one read. The
// result is the caller's to modify.
//
// A provider whose driver lists no catalogue answers ErrNotSupported, as
// does a Provider not opened by this package (Open, OpenDriver or a
// driver's constructor).
func FetchCatalog(ctx context.Context, p Provider, maxAge time.Duration) (*Catalog, error) {
	const op = "FetchCatalog"
	m, ok := p.(*machines)
	if !ok {
		name := "?"
		if p != nil {
			name = p.Name()
		}
		return nil, &Error{Kind: KindNotSupported, Provider: name, Op: op, Message: "the Provider was not opened by package provider; it has no catalogue"}
	}
	c, err := m.catalog(ctx, maxAge)
	if err != nil {
		return nil, err
	}
	return c.Clone(), nil
}

// catalogCache is a Provider's last catalogue.
type catalogCache struct {
	mu    sync.Mutex
	last  *Catalog
	reads flight
}

// catalog returns the cached catalogue when younger than maxAge, else
// reads it (once for every concurrent caller). The result is shared: do
// not modify it.
func (m *machines) catalog(ctx context.Context, maxAge time.Duration) (*Catalog, error) {
	const op = "FetchCatalog"
	start := time.Now()
	cat, ok := m.d.(driver.Cataloger)
	if !ok {
		return nil, &Error{Kind: KindNotSupported, Provider: m.name, Op: op, Message: "the driver lists no catalogue of regions and sizes"}
	}
	if c := m.cachedCatalog(maxAge); c != nil {
		return c, nil
	}
	v, err := m.cat.reads.do(ctx, "catalog", func(ctx context.Context) (any, error) {
		if c := m.cachedCatalog(maxAge); c != nil {
			return c, nil // read by the call this one waited for
		}
		dc, err := retried(ctx, m.pol, op, cat.Catalog)
		if err != nil {
			return nil, err
		}
		if dc == nil {
			return nil, &Error{Kind: KindAPI, Message: "the driver returned no catalogue"}
		}
		c := portableCatalog(m.name, dc, time.Now())
		m.cat.mu.Lock()
		m.cat.last = c
		m.cat.mu.Unlock()
		return c, nil
	})
	if err != nil {
		return nil, m.fail(op, "catalog", "", start, err)
	}
	return v.(*Catalog), nil
}

func (m *machines) cachedCatalog(maxAge time.Duration) *Catalog {
	m.cat.mu.Lock()
	defer m.cat.mu.Unlock()
	if c := m.cat.last; c != nil && maxAge > 0 && time.Since(c.FetchedAt) < maxAge {
		return c
	}
	return nil
}

// portableCatalog normalises a driver's catalogue: sorted, without
// duplicates, sizes offered only in regions the cloud lists, prices only
// where the size is offered and the price is a real one.
func portableCatalog(name string, dc *driver.Catalog, at time.Time) *Catalog {
	c := &Catalog{Provider: name, FetchedAt: at, Notes: slices.Clone(dc.Notes)}
	known := map[string]bool{}
	for _, r := range dc.Regions {
		if r.Name == "" || known[r.Name] {
			continue
		}
		known[r.Name] = true
		c.Regions = append(c.Regions, Region{Name: r.Name, Description: r.Description, Available: r.Available})
	}
	slices.SortFunc(c.Regions, func(a, b Region) int { return cmpString(a.Name, b.Name) })
	seen := map[string]bool{}
	dropped := 0
	for _, s := range dc.Sizes {
		if s.Name == "" || seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		out := Size{Name: s.Name, Description: s.Description, VCPUs: s.VCPUs, MemoryMiB: s.MemoryMiB, DiskGB: s.DiskGB, Arch: s.Arch}
		for _, r := range s.Regions {
			if known[r] && !slices.Contains(out.Regions, r) {
				out.Regions = append(out.Regions, r)
			}
		}
		slices.Sort(out.Regions)
		for r, p := range s.Prices {
			if !out.OfferedIn(r) {
				continue
			}
			if p.Currency == "" || math.IsNaN(p.Hourly) || math.IsInf(p.Hourly, 0) || p.Hourly < 0 {
				dropped++
				continue
			}
			if out.Prices == nil {
				out.Prices = map[string]Price{}
			}
			out.Prices[r] = Price{Hourly: p.Hourly, Currency: p.Currency}
		}
		if out.Regions == nil {
			out.Regions = []string{}
		}
		c.Sizes = append(c.Sizes, out)
	}
	slices.SortFunc(c.Sizes, func(a, b Size) int { return cmpString(a.Name, b.Name) })
	if dropped > 0 {
		c.Notes = append(c.Notes, fmt.Sprintf("%d prices the cloud sent were not usable numbers with a currency and are reported unknown", dropped))
	}
	if c.Regions == nil {
		c.Regions = []Region{}
	}
	if c.Sizes == nil {
		c.Sizes = []Size{}
	}
	return c
}
