package hcloudsim_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

type serverTypes struct {
	ServerTypes []struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"`
		Locations []struct {
			Name      string `json:"name"`
			Available bool   `json:"available"`
		} `json:"locations"`
		Prices []struct {
			Location    string `json:"location"`
			PriceHourly struct {
				Net, Gross string
			} `json:"price_hourly"`
		} `json:"prices"`
	} `json:"server_types"`
	Meta struct {
		Pagination struct {
			NextPage *int `json:"next_page"`
		} `json:"pagination"`
	} `json:"meta"`
}

// TestCatalogEndpoints drives the catalogue's endpoints, every answer
// validated against the OpenAPI description: the server types in the
// locations Catalog offers them in, at its net prices with VAT added for
// gross, their availability following the model's capacity, the
// datacenters' available types likewise, and /pricing's currency.
func TestCatalogEndpoints(t *testing.T) {
	t.Parallel()
	c := newClient(t, simcloud.Options{})
	c.cloud.SetCapacity("fsn1", "cx22", 0)
	c.cloud.DisableRegion("hel1", true)

	var all serverTypes
	for page := 1; page > 0; {
		var st serverTypes
		c.do("GET", "/server_types?per_page=4&page="+strconv.Itoa(page), nil, &st)
		all.ServerTypes = append(all.ServerTypes, st.ServerTypes...)
		page = 0
		if st.Meta.Pagination.NextPage != nil {
			page = *st.Meta.Pagination.NextPage
		}
	}
	table := hcloudsim.Catalog()
	if len(all.ServerTypes) != len(table) {
		t.Fatalf("%d server types over the pages, want %d", len(all.ServerTypes), len(table))
	}
	for _, st := range all.ServerTypes {
		info := table[st.Name]
		var locs []string
		for _, l := range st.Locations {
			locs = append(locs, l.Name)
			want := !(l.Name == "hel1" || l.Name == "fsn1" && st.Name == "cx22")
			if l.Available != want {
				t.Errorf("%s in %s: available %v, want %v", st.Name, l.Name, l.Available, want)
			}
		}
		slices.Sort(locs)
		var offered []string
		for l := range info.Prices {
			offered = append(offered, l)
		}
		slices.Sort(offered)
		if !slices.Equal(locs, offered) {
			t.Errorf("%s is listed in %v, want %v", st.Name, locs, offered)
		}
		for _, p := range st.Prices {
			if !strings.HasPrefix(p.PriceHourly.Net, info.Prices[p.Location].Hourly) {
				t.Errorf("%s in %s: net %s, want %s", st.Name, p.Location, p.PriceHourly.Net, info.Prices[p.Location].Hourly)
			}
		}
	}
	var dcs struct {
		Datacenters []struct {
			Location    struct{ Name string } `json:"location"`
			ServerTypes struct {
				Available []int64 `json:"available"`
				Supported []int64 `json:"supported"`
			} `json:"server_types"`
		} `json:"datacenters"`
	}
	c.do("GET", "/datacenters", nil, &dcs)
	for _, dc := range dcs.Datacenters {
		if dc.Location.Name == "hel1" && len(dc.ServerTypes.Available) != 0 {
			t.Errorf("disabled hel1 has types available: %v", dc.ServerTypes.Available)
		}
		if dc.Location.Name == "fsn1" && len(dc.ServerTypes.Available) != len(dc.ServerTypes.Supported)-1 {
			t.Errorf("fsn1 (cx22 full): %d available of %d supported, want one fewer", len(dc.ServerTypes.Available), len(dc.ServerTypes.Supported))
		}
	}
	var pricing struct {
		Pricing struct {
			Currency string `json:"currency"`
			VATRate  string `json:"vat_rate"`
		} `json:"pricing"`
	}
	c.do("GET", "/pricing", nil, &pricing)
	if pricing.Pricing.Currency != hcloudsim.Currency || pricing.Pricing.VATRate != hcloudsim.VATRate {
		t.Errorf("pricing: %+v", pricing.Pricing)
	}
	c.v.Report(t)
}
