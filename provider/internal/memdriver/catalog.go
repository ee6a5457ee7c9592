package memdriver

import (
	"context"
	"maps"
	"slices"

	"github.com/spuffgo/spuff/provider/driver"
)

var _ driver.Cataloger = (*Driver)(nil)

// Catalog returns a copy of d.Catalogue, or a catalogue without regions
// and sizes when it is nil. It counts as a call.
func (d *Driver) Catalog(context.Context) (*driver.Catalog, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	d.catalogs++
	if d.Catalogue == nil {
		return &driver.Catalog{}, nil
	}
	c := *d.Catalogue
	c.Regions = slices.Clone(c.Regions)
	c.Sizes = slices.Clone(c.Sizes)
	for i := range c.Sizes {
		c.Sizes[i].Regions = slices.Clone(c.Sizes[i].Regions)
		c.Sizes[i].Prices = maps.Clone(c.Sizes[i].Prices)
	}
	return &c, nil
}

// Catalogs returns how many Catalog calls reached the cloud.
func (d *Driver) Catalogs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.catalogs
}
