package digitalocean

import (
	"context"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/provider/driver"
)

var _ driver.Cataloger = (*drv)(nil)

// Currency is the currency of DigitalOcean's prices: the API reference
// gives price_hourly and price_monthly "in US dollars".
const Currency = "USD"

// Catalog reads GET /v2/regions and GET /v2/sizes, every page. A size is
// offered in the regions its "regions" lists while it is "available"; its
// price_hourly (in US dollars, the same in every region) is its price in
// each. Droplets are x86-64 machines: every size's architecture is x86_64.
// A size without a price_hourly has an unknown price.
func (d *drv) Catalog(ctx context.Context) (*driver.Catalog, error) {
	c := &driver.Catalog{}
	for page := 1; ; page++ {
		regions, resp, err := d.client.Regions.List(ctx, &godo.ListOptions{Page: page, PerPage: PageSize})
		if err != nil {
			return nil, classify(err)
		}
		for _, r := range regions {
			c.Regions = append(c.Regions, driver.Region{Name: r.Slug, Description: r.Name, Available: r.Available})
		}
		if lastPage(resp, len(regions), len(c.Regions)) {
			break
		}
	}
	for page := 1; ; page++ {
		sizes, resp, err := d.client.Sizes.List(ctx, &godo.ListOptions{Page: page, PerPage: PageSize})
		if err != nil {
			return nil, classify(err)
		}
		for _, s := range sizes {
			c.Sizes = append(c.Sizes, size(s))
		}
		if lastPage(resp, len(sizes), len(c.Sizes)) {
			break
		}
	}
	return c, nil
}

// size maps a size of /v2/sizes.
func size(s godo.Size) driver.Size {
	out := driver.Size{Name: s.Slug, Description: s.Description, VCPUs: s.Vcpus, MemoryMiB: s.Memory, DiskGB: s.Disk,
		Arch: driver.ArchX86, Regions: []string{}}
	if !s.Available {
		return out
	}
	out.Regions = append(out.Regions, s.Regions...)
	if s.PriceHourly > 0 {
		out.Prices = make(map[string]driver.Price, len(s.Regions))
		for _, r := range s.Regions {
			out.Prices[r] = driver.Price{Hourly: s.PriceHourly, Currency: Currency}
		}
	}
	return out
}
