package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/provider/internal/memdriver"
)

func eur(h float64) driver.Price { return driver.Price{Hourly: h, Currency: "EUR"} }
func usd(h float64) driver.Price { return driver.Price{Hourly: h, Currency: "USD"} }

// hetznerLike is a small catalogue in the shape of Hetzner's.
func hetznerLike() *driver.Catalog {
	return &driver.Catalog{
		Regions: []driver.Region{{Name: "fsn1", Description: "Falkenstein", Available: true}, {Name: "nbg1", Available: true},
			{Name: "hel1", Available: true}, {Name: "ash", Available: false}},
		Sizes: []driver.Size{
			{Name: "cx22", VCPUs: 2, MemoryMiB: 4096, DiskGB: 40, Arch: driver.ArchX86, Regions: []string{"nbg1", "fsn1", "hel1"},
				Prices: map[string]driver.Price{"fsn1": eur(0.006), "nbg1": eur(0.006), "hel1": eur(0.006)}},
			{Name: "cpx11", VCPUs: 2, MemoryMiB: 2048, DiskGB: 40, Arch: driver.ArchX86, Regions: []string{"fsn1", "ash"},
				Prices: map[string]driver.Price{"fsn1": eur(0.007), "ash": eur(0.008)}},
			{Name: "cax11", VCPUs: 2, MemoryMiB: 4096, DiskGB: 40, Arch: driver.ArchARM, Regions: []string{"fsn1"},
				Prices: map[string]driver.Price{"fsn1": eur(0.0061)}},
			{Name: "ccx13", VCPUs: 2, MemoryMiB: 8192, DiskGB: 80, Arch: driver.ArchX86, Regions: []string{"fsn1", "nowhere"},
				Prices: map[string]driver.Price{"fsn1": eur(0.02), "nowhere": eur(0.01)}},
			{Name: "cx32", VCPUs: 4, MemoryMiB: 8192, DiskGB: 80, Arch: driver.ArchX86, Regions: []string{"fsn1"}}, // price unknown
		},
	}
}

// openCatalog opens an in-memory provider named name with catalogue c.
func openCatalog(t *testing.T, name string, c *driver.Catalog) (provider.Provider, *memdriver.Driver) {
	t.Helper()
	mem := memdriver.New()
	mem.Catalogue = c
	p, err := provider.OpenDriver(context.Background(), name, mem.Opener(), provider.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return p, mem
}

func TestFetchCatalogNormalises(t *testing.T) {
	t.Parallel()
	p, mem := openCatalog(t, "hetzner", hetznerLike())
	c, err := provider.FetchCatalog(context.Background(), p, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range c.Sizes {
		names = append(names, s.Name)
	}
	if !slices.IsSorted(names) || len(names) != 5 {
		t.Errorf("sizes %v, want all 5 sorted", names)
	}
	ccx, _ := c.Size("ccx13")
	if !slices.Equal(ccx.Regions, []string{"fsn1"}) || ccx.Price("nowhere").Known() {
		t.Errorf("ccx13 offered in %v with prices %v; a region the cloud does not list is dropped", ccx.Regions, ccx.Prices)
	}
	cx22, _ := c.Size("cx22")
	if !slices.Equal(cx22.Regions, []string{"fsn1", "hel1", "nbg1"}) || cx22.Price("hel1") != (provider.Price{Hourly: 0.006, Currency: "EUR"}) {
		t.Errorf("cx22: %v %v", cx22.Regions, cx22.Prices)
	}
	if cx32, _ := c.Size("cx32"); cx32.Price("fsn1").Known() || cx32.Price("fsn1").String() != "unknown" {
		t.Errorf("cx32's price is %v, want unknown", cx32.Price("fsn1"))
	}
	// Cached for maxAge, read anew when older or asked with 0; the copy
	// is the caller's.
	c.Sizes[0].Name = "changed"
	c2, _ := provider.FetchCatalog(context.Background(), p, time.Minute)
	if mem.Catalogs() != 1 || c2.Sizes[0].Name == "changed" {
		t.Errorf("%d reads, first size %q: want 1 read and an unchanged cache", mem.Catalogs(), c2.Sizes[0].Name)
	}
	if _, err := provider.FetchCatalog(context.Background(), p, 0); err != nil || mem.Catalogs() != 2 {
		t.Errorf("maxAge 0: %v, %d reads; want a fresh read", err, mem.Catalogs())
	}
}

func TestFetchCatalogNotSupported(t *testing.T) {
	t.Parallel()
	_, err := provider.FetchCatalog(context.Background(), wrapped{}, time.Minute)
	if !errors.Is(err, provider.ErrNotSupported) {
		t.Errorf("a foreign Provider: %v, want ErrNotSupported", err)
	}
}

// wrapped is a Provider not made by package provider.
type wrapped struct{ provider.Provider }

func (wrapped) Name() string { return "wrapped" }

func TestPick(t *testing.T) {
	t.Parallel()
	hz, _ := openCatalog(t, "hetzner", hetznerLike())
	do, _ := openCatalog(t, "digitalocean", &driver.Catalog{
		Regions: []driver.Region{{Name: "fra1", Available: true}, {Name: "nyc3", Available: true}},
		Sizes: []driver.Size{{Name: "s-2vcpu-4gb", VCPUs: 2, MemoryMiB: 4096, DiskGB: 80, Arch: driver.ArchX86, Regions: []string{"fra1", "nyc3"},
			Prices: map[string]driver.Price{"fra1": usd(0.03571), "nyc3": usd(0.03571)}}},
	})
	ctx := context.Background()
	tests := []struct {
		name string
		r    provider.Requirements
		ps   []provider.Provider
		want []string // "provider region size", in order
	}{
		{"2 vCPU 4 GiB, cheapest first", provider.Requirements{MinVCPUs: 2, MinMemoryMiB: 4096}, []provider.Provider{hz},
			[]string{"hetzner fsn1 cx22", "hetzner hel1 cx22", "hetzner nbg1 cx22", "hetzner fsn1 cax11", "hetzner fsn1 ccx13", "hetzner fsn1 cx32"}},
		{"arm only", provider.Requirements{Arch: "aarch64"}, []provider.Provider{hz}, []string{"hetzner fsn1 cax11"}},
		{"regions allowed; unavailable ash left out", provider.Requirements{Regions: []string{"ash", "nbg1"}}, []provider.Provider{hz},
			[]string{"hetzner nbg1 cx22"}},
		{"a ceiling leaves out unknown prices", provider.Requirements{MinMemoryMiB: 8192, MaxHourly: provider.Price{Hourly: 0.05, Currency: "EUR"}},
			[]provider.Provider{hz}, []string{"hetzner fsn1 ccx13"}},
		{"sizes allowed", provider.Requirements{Sizes: []string{"cpx11", "cx32"}}, []provider.Provider{hz}, []string{"hetzner fsn1 cpx11", "hetzner fsn1 cx32"}},
		{"two currencies with rates", provider.Requirements{MinVCPUs: 2, MinMemoryMiB: 4096, Regions: []string{"fsn1", "nyc3"}, Rates: map[string]float64{"EUR": 1.1, "USD": 1}},
			[]provider.Provider{do, hz}, []string{"hetzner fsn1 cx22", "hetzner fsn1 cax11", "hetzner fsn1 ccx13", "digitalocean nyc3 s-2vcpu-4gb", "hetzner fsn1 cx32"}},
		{"two currencies without rates: each apart", provider.Requirements{MinVCPUs: 2, MinMemoryMiB: 4096, Regions: []string{"fsn1", "nyc3"}},
			[]provider.Provider{do, hz}, []string{"hetzner fsn1 cx22", "hetzner fsn1 cax11", "hetzner fsn1 ccx13", "digitalocean nyc3 s-2vcpu-4gb", "hetzner fsn1 cx32"}},
		{"a ceiling in dollars, converted", provider.Requirements{MinMemoryMiB: 4096, Regions: []string{"fsn1", "nyc3"}, MaxHourly: provider.Price{Hourly: 0.01, Currency: "USD"},
			Rates: map[string]float64{"EUR": 1.1, "USD": 1}}, []provider.Provider{do, hz}, []string{"hetzner fsn1 cx22", "hetzner fsn1 cax11"}},
		{"nothing fits", provider.Requirements{MinVCPUs: 64}, []provider.Provider{hz, do}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			offers, err := provider.Pick(ctx, tc.r, tc.ps...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range offers {
				got = append(got, o.Placement.String())
				if !tc.r.Fits(&o.Size) || o.Size.Name != o.Placement.Size || o.Region.Name != o.Placement.Region || !o.Region.Available {
					t.Errorf("offer %v does not fit %+v", o, tc.r)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("picked\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestPickInvalidAndPartial(t *testing.T) {
	t.Parallel()
	hz, _ := openCatalog(t, "hetzner", hetznerLike())
	for _, tc := range []struct {
		r     provider.Requirements
		field string
	}{
		{provider.Requirements{MinVCPUs: -1}, "MinVCPUs"},
		{provider.Requirements{Arch: "sparc"}, "Arch"},
		{provider.Requirements{MaxHourly: provider.Price{Hourly: 1}}, "MaxHourly"},
		{provider.Requirements{Rates: map[string]float64{"EUR": 0}}, `Rates["EUR"]`},
	} {
		_, err := provider.Pick(context.Background(), tc.r, hz)
		requireInvalid(t, err, tc.field)
	}
	_, err := provider.Pick(context.Background(), provider.Requirements{})
	requireInvalid(t, err, "providers")
	// A provider without a catalogue: the others' offers, and an error.
	offers, err := provider.Pick(context.Background(), provider.Requirements{Arch: provider.ArchARM}, wrapped{}, hz)
	if len(offers) != 1 || !errors.Is(err, provider.ErrNotSupported) {
		t.Errorf("partial pick: %v offers, err %v; want hetzner's 1 and ErrNotSupported", len(offers), err)
	}
}

// A pick never returns a placement that does not fit: random catalogues
// and requirements, every offer checked against the catalogue itself.
func TestPickNeverReturnsWhatDoesNotFit(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	regions := []string{"r1", "r2", "r3", "r4"}
	for round := range 50 {
		c := &driver.Catalog{}
		for _, r := range regions {
			c.Regions = append(c.Regions, driver.Region{Name: r, Available: rng.IntN(4) > 0})
		}
		for i := range 30 {
			s := driver.Size{Name: fmt.Sprintf("s%02d", i), VCPUs: 1 << rng.IntN(5), MemoryMiB: 512 << rng.IntN(7), DiskGB: 10 * rng.IntN(20),
				Arch: []string{driver.ArchX86, driver.ArchARM}[rng.IntN(2)], Prices: map[string]driver.Price{}}
			for _, r := range regions {
				if rng.IntN(2) == 0 {
					s.Regions = append(s.Regions, r)
					if rng.IntN(5) > 0 {
						s.Prices[r] = []driver.Price{eur(rng.Float64() / 10), usd(rng.Float64() / 10)}[rng.IntN(2)]
					}
				}
			}
			c.Sizes = append(c.Sizes, s)
		}
		p, _ := openCatalog(t, "mem", c)
		r := provider.Requirements{MinVCPUs: rng.IntN(9), MinMemoryMiB: rng.IntN(8192), MinDiskGB: rng.IntN(100),
			Arch: []string{"", driver.ArchX86, driver.ArchARM}[rng.IntN(3)], Regions: regions[:rng.IntN(5)]}
		if rng.IntN(2) == 0 {
			r.MaxHourly = provider.Price{Hourly: rng.Float64() / 10, Currency: "EUR"}
		}
		offers, err := provider.Pick(context.Background(), r, p)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, s := range c.Sizes {
			for _, reg := range s.Regions {
				avail := c.Regions[slices.IndexFunc(c.Regions, func(x driver.Region) bool { return x.Name == reg })].Available
				price, known := s.Prices[reg]
				fits := s.VCPUs >= r.MinVCPUs && s.MemoryMiB >= r.MinMemoryMiB && s.DiskGB >= r.MinDiskGB && (r.Arch == "" || r.Arch == s.Arch) &&
					avail && (len(r.Regions) == 0 || slices.Contains(r.Regions, reg)) &&
					(!r.MaxHourly.Known() || known && price.Currency == "EUR" && price.Hourly <= r.MaxHourly.Hourly)
				if fits {
					want++
				}
				idx := slices.IndexFunc(offers, func(o provider.Offer) bool { return o.Placement.Size == s.Name && o.Placement.Region == reg })
				if fits != (idx >= 0) {
					t.Fatalf("round %d: %s in %s (%d vCPU, %d MiB, %d GB, %s, %v, available %v) fits %v, offered %v; requirements %+v",
						round, s.Name, reg, s.VCPUs, s.MemoryMiB, s.DiskGB, s.Arch, price, avail, fits, idx >= 0, r)
				}
			}
		}
		if len(offers) != want {
			t.Fatalf("round %d: %d offers, want %d", round, len(offers), want)
		}
		for i := 1; i < len(offers); i++ {
			a, b := offers[i-1].Price, offers[i].Price
			if a.Known() && b.Known() && a.Currency == b.Currency && a.Hourly > b.Hourly || !a.Known() && b.Known() {
				t.Fatalf("round %d: offers out of order: %v before %v", round, offers[i-1], offers[i])
			}
		}
	}
}

func TestOfferJSON(t *testing.T) {
	t.Parallel()
	hz, _ := openCatalog(t, "hetzner", hetznerLike())
	offers, err := provider.Pick(context.Background(), provider.Requirements{Sizes: []string{"cx32", "cax11"}}, hz)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(provider.Placements(offers))
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"provider":"hetzner","region":"fsn1","size":"cax11"},{"provider":"hetzner","region":"fsn1","size":"cx32"}]`; string(b) != want {
		t.Errorf("placements JSON %s, want %s", b, want)
	}
	b, _ = json.Marshal(offers[1].Price)
	if string(b) != "null" {
		t.Errorf("an unknown price is %s in JSON, want null", b)
	}
}
