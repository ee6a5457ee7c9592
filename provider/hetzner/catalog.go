package hetzner

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider/driver"
)

var _ driver.Cataloger = (*drv)(nil)

// Catalog reads the locations, the server types (every page of each) and
// the project's currency (GET /pricing). A server type is offered in the
// locations its "locations" list where it is available now and not past
// its removal date; its price there is that location's net hourly price
// (VAT excluded, comparable with the other clouds' prices; the gross price
// adds the project's VAT rate), in the project's currency. A location is
// available when some server type is available in it.
func (d *drv) Catalog(ctx context.Context) (*driver.Catalog, error) {
	c := &driver.Catalog{}
	var locations []*hcloud.Location
	for page := 1; page > 0; {
		list, resp, err := d.client.Location.List(ctx, hcloud.LocationListOpts{ListOpts: hcloud.ListOpts{Page: page, PerPage: PageSize}})
		if err != nil {
			return nil, classify(resp, err)
		}
		locations = append(locations, list...)
		page = nextPage(resp, page)
	}
	var types []*hcloud.ServerType
	for page := 1; page > 0; {
		list, resp, err := d.client.ServerType.List(ctx, hcloud.ServerTypeListOpts{ListOpts: hcloud.ListOpts{Page: page, PerPage: PageSize}})
		if err != nil {
			return nil, classify(resp, err)
		}
		types = append(types, list...)
		page = nextPage(resp, page)
	}
	currency := ""
	pricing, resp, err := d.client.Pricing.Get(ctx)
	switch err = classify(resp, err); {
	case err == nil && pricing.Currency != "":
		currency = pricing.Currency
	case err == nil:
		c.Notes = append(c.Notes, "prices unknown: /pricing names no currency")
	case driver.KindOf(err) == driver.KindAuthentication || driver.KindOf(err) == driver.KindNotFound:
		c.Notes = append(c.Notes, "prices unknown: /pricing could not be read ("+err.Error()+")")
	default:
		return nil, err
	}
	now := time.Now()
	availableIn := map[string]bool{}
	for _, t := range types {
		s := serverTypeSize(t, currency, now)
		for _, l := range s.Regions {
			availableIn[l] = true
		}
		c.Sizes = append(c.Sizes, s)
	}
	for _, l := range locations {
		c.Regions = append(c.Regions, driver.Region{Name: l.Name, Description: l.Description, Available: availableIn[l.Name]})
	}
	return c, nil
}

// serverTypeSize maps a server type: the locations where it is available
// at now, and its net hourly price in each (none without a currency).
func serverTypeSize(t *hcloud.ServerType, currency string, now time.Time) driver.Size {
	arch := driver.ArchX86
	if t.Architecture == hcloud.ArchitectureARM {
		arch = driver.ArchARM
	}
	s := driver.Size{Name: t.Name, Description: t.Description, VCPUs: t.Cores, MemoryMiB: int(math.Round(float64(t.Memory) * 1024)),
		DiskGB: t.Disk, Arch: arch, Regions: []string{}}
	if t.IsDeprecated() && !now.Before(t.UnavailableAfter()) {
		return s // removed
	}
	for _, l := range t.Locations {
		if l.Location == nil || !l.Available || l.IsDeprecated() && !now.Before(l.UnavailableAfter()) {
			continue
		}
		s.Regions = append(s.Regions, l.Location.Name)
	}
	if currency == "" {
		return s
	}
	for _, p := range t.Pricings {
		if p.Location == nil {
			continue
		}
		net, err := strconv.ParseFloat(p.Hourly.Net, 64)
		if err != nil {
			continue // not a price: unknown
		}
		if s.Prices == nil {
			s.Prices = map[string]driver.Price{}
		}
		s.Prices[p.Location.Name] = driver.Price{Hourly: net, Currency: currency}
	}
	return s
}
