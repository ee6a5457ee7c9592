package digitalocean_test

import (
	"slices"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// expectedCatalog is the catalogue srv serves, from the dialect's tables
// and the model: every region (unavailable while disabled), every size in
// the regions with room for it now, at its price_hourly in dollars (none
// for a size the dialect has no price for), all x86-64.
func expectedCatalog(srv *simcloud.Server) *provider.Catalog {
	c := srv.Cloud
	o := c.Options()
	out := &provider.Catalog{Provider: "digitalocean"}
	for _, r := range o.Regions {
		out.Regions = append(out.Regions, provider.Region{Name: r, Description: dosim.Regions[r], Available: !c.RegionDisabled(r)})
	}
	for slug, s := range o.Sizes {
		size := provider.Size{Name: slug, VCPUs: s.VCPUs, MemoryMiB: max((s.MemoryMB+7)/8*8, 8), DiskGB: s.DiskGB, Arch: provider.ArchX86, Regions: []string{}}
		info := dosim.Sizes[slug]
		for _, r := range o.Regions {
			if c.Available(r, slug) {
				size.Regions = append(size.Regions, r)
				if info.PriceHourly > 0 {
					if size.Prices == nil {
						size.Prices = map[string]provider.Price{}
					}
					size.Prices[r] = provider.Price{Hourly: info.PriceHourly, Currency: "USD"}
				}
			}
		}
		slices.Sort(size.Regions)
		out.Sizes = append(out.Sizes, size)
	}
	return out
}
