package hetzner_test

import (
	"slices"
	"strconv"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// expectedCatalog is the catalogue srv serves, from the dialect's tables
// and the model: each server type in the locations hcloudsim.Catalog
// offers it in (every location for a type it does not know) where the
// model has room for it now, at its net hourly price in euros; a location
// is available while some type is.
func expectedCatalog(srv *simcloud.Server) *provider.Catalog {
	c := srv.Cloud
	o := c.Options()
	table := hcloudsim.Catalog()
	out := &provider.Catalog{Provider: "hetzner"}
	avail := map[string]bool{}
	for name, s := range o.Sizes {
		info, known := table[name]
		size := provider.Size{Name: name, VCPUs: max(s.VCPUs, 1), MemoryMiB: max(s.MemoryMB, 512), DiskGB: max(s.DiskGB, 10), Arch: s.Arch, Regions: []string{}}
		for _, l := range o.Regions {
			p, offered := info.Prices[l]
			if known && !offered || !c.Available(l, name) {
				continue
			}
			size.Regions = append(size.Regions, l)
			avail[l] = true
			if offered {
				h, _ := strconv.ParseFloat(p.Hourly, 64)
				if size.Prices == nil {
					size.Prices = map[string]provider.Price{}
				}
				size.Prices[l] = provider.Price{Hourly: h, Currency: hcloudsim.Currency}
			}
		}
		slices.Sort(size.Regions)
		out.Sizes = append(out.Sizes, size)
	}
	for _, l := range o.Regions {
		out.Regions = append(out.Regions, provider.Region{Name: l, Available: avail[l]})
	}
	return out
}
