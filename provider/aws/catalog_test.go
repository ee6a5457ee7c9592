package aws_test

import (
	"slices"
	"strconv"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// expectedCatalog is the catalogue srv serves, as a Provider covering
// only its default region (testRegion) reads it: the cloud's regions
// enabled and the opt-in ones not, every instance type offered in every
// enabled region (EC2 lists offerings, not capacity), EBS-only (no local
// disk), priced where the Price List has a product in the covered region.
func expectedCatalog(srv *simcloud.Server) *provider.Catalog {
	o := srv.Cloud.Options()
	prices := ec2sim.OnDemandPrices()[testRegion]
	out := &provider.Catalog{Provider: "aws"}
	for _, r := range o.Regions {
		out.Regions = append(out.Regions, provider.Region{Name: r, Available: true})
	}
	for _, r := range ec2sim.OptInRegions {
		if !slices.Contains(o.Regions, r) {
			out.Regions = append(out.Regions, provider.Region{Name: r, Available: false})
		}
	}
	regions := slices.Sorted(slices.Values(o.Regions))
	for name, s := range o.Sizes {
		size := provider.Size{Name: name, VCPUs: s.VCPUs, MemoryMiB: s.MemoryMB, Arch: s.Arch, Regions: regions}
		if p, ok := prices[name]; ok {
			h, _ := strconv.ParseFloat(p, 64)
			size.Prices = map[string]provider.Price{testRegion: {Hourly: h, Currency: "USD"}}
		}
		out.Sizes = append(out.Sizes, size)
	}
	return out
}
