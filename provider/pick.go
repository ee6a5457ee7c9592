package provider

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Requirements describe the machines Pick may choose. The zero value
// accepts every size of every available region.
type Requirements struct {
	// MinVCPUs, MinMemoryMiB and MinDiskGB are the least a size must
	// have (0: any). Memory is in MiB: 4 GiB is 4096.
	MinVCPUs     int
	MinMemoryMiB int
	MinDiskGB    int
	// Arch is the architecture a size must have, ArchX86 or ArchARM
	// ("amd64" and "aarch64" are read as those); "" accepts both.
	Arch string
	// Regions, when set, are the only regions allowed.
	Regions []string
	// Sizes, when set, are the only sizes allowed.
	Sizes []string
	// MaxHourly, when known, is the price ceiling: a placement whose
	// price exceeds it, or cannot be compared with it (unknown, or in
	// another currency without a rate in Rates), is left out.
	MaxHourly Price
	// Rates converts currencies so that prices in several can be ordered
	// and held to MaxHourly: each currency's value in one common unit
	// ({"EUR": 1.08, "USD": 1} compares in dollars). A currency without
	// a rate is compared only with prices of its own currency.
	Rates map[string]float64
	// MaxAge is how old a cached catalogue may be (see FetchCatalog);
	// 0 reads each provider's catalogue anew.
	MaxAge time.Duration
}

// Validate checks the requirements, and returns the first violation as an
// *Error of KindInvalidConfig naming its field.
func (r *Requirements) Validate() error {
	if err := r.validate(); err != nil {
		return err
	}
	return nil
}

func (r *Requirements) validate() *Error {
	switch {
	case r.MinVCPUs < 0:
		return invalid("MinVCPUs", "must not be negative")
	case r.MinMemoryMiB < 0:
		return invalid("MinMemoryMiB", "must not be negative")
	case r.MinDiskGB < 0:
		return invalid("MinDiskGB", "must not be negative")
	case normArch(r.Arch) == "?":
		return invalid("Arch", fmt.Sprintf("architecture %q is not %s or %s", r.Arch, ArchX86, ArchARM))
	case r.MaxHourly.Known() && !(r.MaxHourly.Hourly >= 0) || r.MaxHourly.Hourly != 0 && !r.MaxHourly.Known():
		return invalid("MaxHourly", "a price ceiling is a non-negative amount with its currency")
	}
	for c, v := range r.Rates {
		if c == "" || !(v > 0) || math.IsInf(v, 0) {
			return invalid(fmt.Sprintf("Rates[%q]", c), "a rate is a positive number for a currency code")
		}
	}
	return nil
}

// normArch returns the architecture a name means, "" for any and "?" for
// none known.
func normArch(a string) string {
	switch strings.ToLower(a) {
	case "":
		return ""
	case "x86_64", "x86", "amd64":
		return ArchX86
	case "arm64", "aarch64", "arm":
		return ArchARM
	}
	return "?"
}

// Fits reports whether the size meets the requirements of vCPUs, memory,
// disk, architecture and, when Sizes is set, name. (Regions and prices are
// about a placement, not a size: see Pick.)
func (r *Requirements) Fits(s *Size) bool {
	if s.VCPUs < r.MinVCPUs || s.MemoryMiB < r.MinMemoryMiB || s.DiskGB < r.MinDiskGB {
		return false
	}
	if a := normArch(r.Arch); a != "" && normArch(s.Arch) != a {
		return false
	}
	return len(r.Sizes) == 0 || slices.Contains(r.Sizes, s.Name)
}

// Offer is a placement Pick chose: where a machine fitting the
// requirements can be made, and what an hour of it costs.
type Offer struct {
	// Placement is the provider, region and size, ready for
	// CreateWithFailover.
	Placement Placement `json:"placement"`
	// Size is the size's catalogue entry, its Prices reduced to this
	// placement's.
	Size Size `json:"size"`
	// Region is the region's catalogue entry.
	Region Region `json:"region"`
	// Price is the hourly price there; the zero Price when the cloud
	// publishes none.
	Price Price `json:"price"`
}

// String describes the offer on one line.
func (o Offer) String() string {
	return fmt.Sprintf("%s: %d vCPU, %s, %s disk, %s, %s", o.Placement, o.Size.VCPUs, mib(o.Size.MemoryMiB), gb(o.Size.DiskGB), o.Size.Arch, o.Price)
}

func mib(n int) string {
	if n%1024 == 0 {
		return strconv.Itoa(n/1024) + " GiB"
	}
	return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " GiB"
}

func gb(n int) string {
	if n == 0 {
		return "no local"
	}
	return strconv.Itoa(n) + " GB"
}

// Pick returns every placement of the providers' catalogues that meets r,
// cheapest first: a size that fits (Requirements.Fits) in an available
// region it is offered in, allowed by r and under r's price ceiling. Pass
// Placements of the result to CreateWithFailover to make one machine at
// the cheapest placement that has room.
//
// Prices in one currency are ordered directly; prices in several are
// converted by r.Rates, and a currency without a rate comes after those
// with one. Placements of unknown price come last. Ties go to fewer
// vCPUs, less memory, then by provider, region and size name.
//
// Catalogues are read through FetchCatalog with r.MaxAge. When some
// provider's catalogue cannot be read, Pick returns the others' offers
// and an error naming the failures (errors.Join of *Error values); with
// no provider at all, or invalid requirements, it returns only an error.
func Pick(ctx context.Context, r Requirements, providers ...Provider) ([]Offer, error) {
	if err := r.validate(); err != nil {
		err.Op = "Pick"
		return nil, err
	}
	if len(providers) == 0 {
		return nil, &Error{Kind: KindInvalidConfig, Op: "Pick", Field: "providers", Message: "no provider to pick from"}
	}
	var offers []Offer
	var errs []error
	for _, p := range providers {
		c, err := fetchShared(ctx, p, r.MaxAge)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		offers = append(offers, r.offers(p, c)...)
	}
	r.sort(offers)
	return offers, errors.Join(errs...)
}

// fetchShared is FetchCatalog without the copy (Pick copies what it
// keeps).
func fetchShared(ctx context.Context, p Provider, maxAge time.Duration) (*Catalog, error) {
	if m, ok := p.(*machines); ok {
		return m.catalog(ctx, maxAge)
	}
	return FetchCatalog(ctx, p, maxAge)
}

// offers returns c's placements that meet r.
func (r *Requirements) offers(p Provider, c *Catalog) []Offer {
	var out []Offer
	for i := range c.Sizes {
		s := &c.Sizes[i]
		if !r.Fits(s) {
			continue
		}
		for _, name := range s.Regions {
			reg, ok := c.Region(name)
			if !ok || !reg.Available || len(r.Regions) > 0 && !slices.Contains(r.Regions, name) {
				continue
			}
			price := s.Price(name)
			if !r.underCeiling(price) {
				continue
			}
			size := *s
			size.Regions = slices.Clone(s.Regions)
			size.Prices = nil
			if price.Known() {
				size.Prices = map[string]Price{name: price}
			}
			out = append(out, Offer{Placement: Placement{Provider: p, Region: name, Size: s.Name}, Size: size, Region: *reg, Price: price})
		}
	}
	return out
}

// underCeiling reports whether price is under r's ceiling (always, with
// none).
func (r *Requirements) underCeiling(price Price) bool {
	ceil := r.MaxHourly
	if !ceil.Known() {
		return true
	}
	if !price.Known() {
		return false
	}
	if price.Currency == ceil.Currency {
		return price.Hourly <= ceil.Hourly
	}
	pr, ok1 := r.Rates[price.Currency]
	cr, ok2 := r.Rates[ceil.Currency]
	return ok1 && ok2 && price.Hourly*pr <= ceil.Hourly*cr
}

// sort orders offers as Pick documents.
func (r *Requirements) sort(offers []Offer) {
	// The currencies without a rate, in order of name, come after those
	// with one.
	var unrated []string
	for _, o := range offers {
		if c := o.Price.Currency; c != "" && r.Rates[c] == 0 && !slices.Contains(unrated, c) {
			unrated = append(unrated, c)
		}
	}
	slices.Sort(unrated)
	group := func(p Price) (int, float64) {
		switch {
		case !p.Known():
			return len(unrated) + 1, 0
		case r.Rates[p.Currency] > 0:
			return 0, p.Hourly * r.Rates[p.Currency]
		}
		return 1 + slices.Index(unrated, p.Currency), p.Hourly
	}
	slices.SortStableFunc(offers, func(a, b Offer) int {
		ga, va := group(a.Price)
		gb, vb := group(b.Price)
		return cmp.Or(
			cmp.Compare(ga, gb), cmp.Compare(va, vb),
			cmp.Compare(a.Size.VCPUs, b.Size.VCPUs), cmp.Compare(a.Size.MemoryMiB, b.Size.MemoryMiB),
			cmp.Compare(a.Placement.providerName(), b.Placement.providerName()),
			cmp.Compare(a.Placement.Region, b.Placement.Region), cmp.Compare(a.Placement.Size, b.Placement.Size),
		)
	})
}

// Placements returns the offers' placements, in order: the list
// CreateWithFailover tries.
func Placements(offers []Offer) []Placement {
	out := make([]Placement, len(offers))
	for i, o := range offers {
		out[i] = o.Placement
	}
	return out
}
