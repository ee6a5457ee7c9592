package hcloudsim

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// Currency is the currency of the simulated project's prices, and VATRate
// the VAT rate /pricing reports (a German project's): gross prices are the
// net ones plus it.
const (
	Currency = "EUR"
	VATRate  = "19.00"
)

// Price is a server type's price in one location, net (VAT excluded), in
// euros, as decimal strings the way the API writes them.
type Price struct {
	Hourly, Monthly string
	// IncludedTB is the traffic included each month, in TB.
	IncludedTB int
}

// ServerType is an entry of the server type catalogue: the model's size,
// what the API shows of it, and the locations it is offered in, each with
// its price.
type ServerType struct {
	simcloud.Size
	// CPUType is "shared" or "dedicated".
	CPUType string
	// Prices are by location; a type is offered in exactly these.
	Prices map[string]Price
}

// The location groups of the catalogue's prices.
var (
	eu  = []string{"fsn1", "nbg1", "hel1"}
	us  = []string{"ash", "hil"}
	sin = []string{"sin"}
)

func priced(p Price, groups ...[]string) map[string]Price {
	out := map[string]Price{}
	for _, g := range groups {
		for _, l := range g {
			out[l] = p
		}
	}
	return out
}

func merge(ms ...map[string]Price) map[string]Price {
	out := map[string]Price{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// Catalog returns the default server type catalogue: Hetzner Cloud's
// line-up, locations and net prices as published on 21 October 2025
// (Hetzner's price list as collected in tonoid/hcloud-multiregion-mongodb-
// replicaset, HETZNER_SERVERS.md, "Last update: Oct 21, 2025"): the
// cost-optimised cx23 and cx33 and the Arm cax11 and cax21 in the EU
// locations only, the regular-performance cpx22 and cpx32 in the EU and
// Singapore, the older cpx11 and cpx21 in the US locations only, and the
// dedicated ccx13 everywhere, Singapore and the US dearer. cx22, deprecated
// on 16 October 2025 (Hetzner changelog "2025-10-16: server types
// deprecated") but orderable until its removal, keeps its last EU price of
// €3.79 a month (€4.51 with 19 % VAT, as deployment guides of the time
// quote it), €0.0060 an hour.
func Catalog() map[string]ServerType {
	x86, arm := "x86_64", "arm64"
	return map[string]ServerType{
		"cx22":  {simcloud.Size{Arch: x86, VCPUs: 2, MemoryMB: 4096, DiskGB: 40}, "shared", priced(Price{"0.0060", "3.79", 20}, eu)},
		"cx23":  {simcloud.Size{Arch: x86, VCPUs: 2, MemoryMB: 4096, DiskGB: 40}, "shared", priced(Price{"0.0056", "3.49", 20}, eu)},
		"cx33":  {simcloud.Size{Arch: x86, VCPUs: 4, MemoryMB: 8192, DiskGB: 80}, "shared", priced(Price{"0.0088", "5.49", 20}, eu)},
		"cax11": {simcloud.Size{Arch: arm, VCPUs: 2, MemoryMB: 4096, DiskGB: 40}, "shared", priced(Price{"0.0061", "3.79", 20}, eu)},
		"cax21": {simcloud.Size{Arch: arm, VCPUs: 4, MemoryMB: 8192, DiskGB: 80}, "shared", priced(Price{"0.0104", "6.49", 20}, eu)},
		"cpx11": {simcloud.Size{Arch: x86, VCPUs: 2, MemoryMB: 2048, DiskGB: 40}, "shared", priced(Price{"0.0080", "4.99", 1}, us)},
		"cpx21": {simcloud.Size{Arch: x86, VCPUs: 3, MemoryMB: 4096, DiskGB: 80}, "shared", priced(Price{"0.0153", "9.49", 2}, us)},
		"cpx22": {simcloud.Size{Arch: x86, VCPUs: 2, MemoryMB: 4096, DiskGB: 80}, "shared",
			merge(priced(Price{"0.0104", "6.49", 20}, eu), priced(Price{"0.0200", "12.49", 1}, sin))},
		"cpx32": {simcloud.Size{Arch: x86, VCPUs: 4, MemoryMB: 8192, DiskGB: 160}, "shared",
			merge(priced(Price{"0.0176", "10.99", 20}, eu), priced(Price{"0.0408", "25.49", 2}, sin))},
		"ccx13": {simcloud.Size{Arch: x86, VCPUs: 2, MemoryMB: 8192, DiskGB: 80}, "dedicated",
			merge(priced(Price{"0.0200", "12.49", 20}, eu), priced(Price{"0.0217", "13.49", 1}, us), priced(Price{"0.0345", "21.50", 1}, sin))},
	}
}

// tb is a terabyte in bytes, as included_traffic counts them.
const tb = int64(1) << 40

// serverTypeWire is the API's view of the server type name of the model's
// catalogue: the locations of Catalog where it is offered (every location
// of the cloud for a type Catalog does not know, then without a price).
func serverTypeWire(id int64, name string, sz simcloud.Size, locations []wireLocation) wireServerType {
	info, known := Catalog()[name]
	cpu := info.CPUType
	if !known {
		cpu = "shared"
		if strings.HasPrefix(name, "ccx") {
			cpu = "dedicated"
		}
	}
	st := wireServerType{
		ID: id, Name: name, Description: strings.ToUpper(name), Category: cpu, Cores: max(sz.VCPUs, 1),
		Memory: float64(max(sz.MemoryMB, 512)) / 1024, Disk: float64(max(sz.DiskGB, 10)),
		Prices: []wirePrice{}, Locations: []wireServerTypeLocation{}, StorageType: "local", CPUType: cpu, Architecture: wireArch(sz.Arch),
	}
	for _, l := range locations {
		p, offered := info.Prices[l.Name]
		if known && !offered {
			continue
		}
		st.Locations = append(st.Locations, wireServerTypeLocation{ID: l.ID, Name: l.Name})
		if !offered {
			continue
		}
		st.Prices = append(st.Prices, wirePrice{
			Location:          l.Name,
			PriceHourly:       amount(p.Hourly),
			PriceMonthly:      amount(p.Monthly),
			IncludedTraffic:   int64(p.IncludedTB) * tb,
			PricePerTBTraffic: amount("1.00"),
		})
	}
	return st
}

// amount writes a net price with its gross (VAT added), ten decimals, as
// the API does.
func amount(net string) wireAmount {
	n, _ := strconv.ParseFloat(net, 64)
	vat, _ := strconv.ParseFloat(VATRate, 64)
	return wireAmount{Net: strconv.FormatFloat(n, 'f', 10, 64), Gross: strconv.FormatFloat(n*(1+vat/100), 'f', 10, 64)}
}

// available returns t with each location's availability now: whether the
// model takes a machine of the type there (simcloud.Cloud.Room).
func (h *handler) available(t wireServerType) wireServerType {
	t.Locations = slices.Clone(t.Locations)
	for i, l := range t.Locations {
		t.Locations[i].Available = h.cloud.Available(l.Name, t.Name)
		t.Locations[i].Recommended = t.Locations[i].Available
	}
	return t
}

// datacenterTypes returns the server types a location's datacenter
// supports (those offered there) and has available now (supported, with
// room in the model).
func (h *handler) datacenterTypes(l wireLocation) wireDatacenterServerTypes {
	out := wireDatacenterServerTypes{Available: []int64{}, AvailableForMigration: []int64{}, Supported: []int64{}}
	for _, t := range h.types {
		if !slices.ContainsFunc(t.Locations, func(x wireServerTypeLocation) bool { return x.Name == l.Name }) {
			continue
		}
		out.Supported = append(out.Supported, t.ID)
		if h.cloud.Available(l.Name, t.Name) {
			out.Available = append(out.Available, t.ID)
			out.AvailableForMigration = append(out.AvailableForMigration, t.ID)
		}
	}
	return out
}

// getPricing answers GET /pricing: the project's currency and VAT rate,
// and the server types' prices per location. The other resources' prices,
// which spuff does not read, are placeholders in the schema's shape.
func (h *handler) getPricing(w http.ResponseWriter, _ *http.Request) {
	type typePrice struct {
		ID     int64       `json:"id"`
		Name   string      `json:"name"`
		Prices []wirePrice `json:"prices"`
	}
	types := make([]typePrice, 0, len(h.types))
	for _, t := range h.types {
		types = append(types, typePrice{ID: t.ID, Name: t.Name, Prices: t.Prices})
	}
	monthly := func(loc, net string) map[string]any {
		return map[string]any{"location": loc, "price_monthly": amount(net)}
	}
	var ipv4, ipv6 []map[string]any
	for _, l := range h.locations {
		ipv4 = append(ipv4, monthly(l.Name, "0.50"))
		ipv6 = append(ipv6, monthly(l.Name, "0.00"))
	}
	writeJSON(w, http.StatusOK, map[string]any{"pricing": map[string]any{
		"currency":      Currency,
		"vat_rate":      VATRate,
		"image":         map[string]any{"price_per_gb_month": amount("0.0119")},
		"volume":        map[string]any{"price_per_gb_month": amount("0.0440")},
		"server_backup": map[string]any{"percentage": "20.00"},
		"floating_ip":   map[string]any{"price_monthly": amount("3.00")},
		"floating_ips": []map[string]any{
			{"type": "ipv4", "prices": ipv4}, {"type": "ipv6", "prices": ipv6},
		},
		"primary_ips":         []map[string]any{},
		"load_balancer_types": []map[string]any{},
		"server_types":        types,
	}})
}
