package aws_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/providertest"
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

// Prices come from the Price List API only: a region covered by the
// Provider has the prices of its products, a product the list lacks
// (m7g.large in eu-west-1) stays unknown, and credentials that may not
// read the list leave every price unknown, said in Notes.
func TestCatalogPrices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		hopts  []ec2sim.HandlerOption
		known  map[string]bool // "region/type" whose price is known
		note   string
		unseen string // a placement whose price must be unknown
	}{
		{"covered regions", nil, map[string]bool{"us-east-1/m7g.large": true, "eu-west-1/m5.large": true}, "", "eu-west-1/m7g.large"},
		{"no access to the price list", []ec2sim.HandlerOption{ec2sim.WithoutPricingAccess()}, nil, "pricing:GetProducts", "us-east-1/t3.micro"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := ec2sim.StartWith(t, providertest.Options(), tc.hopts...)
			cfg := providertest.FastConfig(simConfig(srv))
			cfg.Regions = []string{"eu-west-1"}
			p, err := aws.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := provider.FetchCatalog(ctx, p, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			for k := range tc.known {
				region, typ, _ := strings.Cut(k, "/")
				s, _ := c.Size(typ)
				if !s.Price(region).Known() || s.Price(region).Currency != "USD" {
					t.Errorf("%s: price %v, want a known dollar price", k, s.Price(region))
				}
			}
			region, typ, _ := strings.Cut(tc.unseen, "/")
			if s, _ := c.Size(typ); s.Price(region).Known() {
				t.Errorf("%s has price %v, which the Price List does not publish", tc.unseen, s.Price(region))
			}
			if s, _ := c.Size("t3.micro"); s.Price("us-west-2").Known() {
				t.Errorf("us-west-2, not covered, has a price")
			}
			if tc.note != "" && !strings.Contains(strings.Join(c.Notes, "\n"), tc.note) {
				t.Errorf("notes %q do not say why prices are unknown (%q)", c.Notes, tc.note)
			}
		})
	}
}
