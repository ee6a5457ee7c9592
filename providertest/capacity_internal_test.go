package providertest

import (
	"strings"
	"testing"

	"github.com/spuffgo/spuff/provider"
)

// The catalogue check can fail: each altered catalogue is reported.
func TestCatalogDiffsCanFail(t *testing.T) {
	t.Parallel()
	want := func() *provider.Catalog {
		return &provider.Catalog{Provider: "p",
			Regions: []provider.Region{{Name: "r1", Available: true}, {Name: "r2", Available: false}},
			Sizes: []provider.Size{
				{Name: "a", VCPUs: 2, MemoryMiB: 4096, DiskGB: 40, Arch: provider.ArchX86, Regions: []string{"r1"},
					Prices: map[string]provider.Price{"r1": {Hourly: 0.006, Currency: "EUR"}}},
				{Name: "b", VCPUs: 4, MemoryMiB: 8192, Arch: provider.ArchARM, Regions: []string{"r1"}},
			}}
	}
	if d := catalogDiffs(want(), want()); len(d) != 0 {
		t.Fatalf("equal catalogues differ: %v", d)
	}
	tests := []struct {
		name  string
		alter func(c *provider.Catalog)
		want  string
	}{
		{"a page of sizes missing", func(c *provider.Catalog) { c.Sizes = c.Sizes[:1] }, "size b is missing"},
		{"a region missing", func(c *provider.Catalog) { c.Regions = c.Regions[:1] }, "region r2 is missing"},
		{"availability wrong", func(c *provider.Catalog) { c.Regions[1].Available = true }, "available true, want false"},
		{"a price invented", func(c *provider.Catalog) {
			c.Sizes[1].Prices = map[string]provider.Price{"r1": {Hourly: 0.01, Currency: "EUR"}}
		}, "price in r1"},
		{"a price lost", func(c *provider.Catalog) { c.Sizes[0].Prices = nil }, "price in r1 unknown"},
		{"a currency wrong", func(c *provider.Catalog) { c.Sizes[0].Prices["r1"] = provider.Price{Hourly: 0.006, Currency: "USD"} }, "price in r1"},
		{"memory wrong", func(c *provider.Catalog) { c.Sizes[0].MemoryMiB = 4000 }, "4000 MiB"},
		{"offered elsewhere", func(c *provider.Catalog) { c.Sizes[1].Regions = []string{"r1", "r2"} }, "offered in"},
	}
	for _, tc := range tests {
		got := want()
		tc.alter(got)
		d := catalogDiffs(got, want())
		if !strings.Contains(strings.Join(d, "\n"), tc.want) {
			t.Errorf("%s: differences %q, want one with %q", tc.name, d, tc.want)
		}
	}
}
