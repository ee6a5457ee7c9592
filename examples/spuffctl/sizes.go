package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spuffgo/spuff/provider"
)

// catalogAge is how old a catalogue `sizes` reads may be: it reads it once
// and picks from the same read.
const catalogAge = time.Minute

func cmdSizes(a *app, args []string) error {
	fs := a.flags()
	minCPU := fs.Int("min-cpu", 0, "at least this many vCPUs")
	minMem := fs.Float64("min-mem", 0, "at least this much memory, in GiB (0.5 for 512 MiB)")
	minDisk := fs.Int("min-disk", 0, "at least this much local disk, in GB")
	arch := fs.String("arch", "", "architecture: x86_64 (amd64) or arm64 (default: both)")
	var regions, sizes listFlag
	fs.Var(&regions, "region", "only this region (repeatable, or comma-separated)")
	fs.Var(&sizes, "size", "only this size (repeatable, or comma-separated)")
	maxPrice := fs.String("max-price", "", "hourly price ceiling, such as 0.05 (in the cloud's currency) or 0.05EUR")
	_, ctx, cancel, err := a.begin(fs, args, func(n int) bool { return n > 0 }, "sizes takes no arguments")
	if err != nil {
		return err
	}
	defer cancel()
	req := provider.Requirements{MinVCPUs: *minCPU, MinDiskGB: *minDisk, Arch: *arch, MaxAge: catalogAge}
	if *minMem < 0 || math.IsNaN(*minMem) || math.IsInf(*minMem, 0) {
		return usagef("--min-mem %v: want GiB, such as 4 or 0.5", *minMem)
	}
	req.MinMemoryMiB = int(math.Ceil(*minMem * 1024))
	if req.Regions, err = splitAll("region", regions); err != nil {
		return err
	}
	if req.Sizes, err = splitAll("size", sizes); err != nil {
		return err
	}
	amount, currency, err := parsePrice(*maxPrice)
	if err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return usagef("%v", err)
	}

	// One read of the catalogue: its notes, the currency a bare
	// --max-price is in, the regions named; Pick then reads the cache.
	cat, err := provider.FetchCatalog(ctx, a.p, catalogAge)
	if err != nil {
		return err
	}
	for _, n := range cat.Notes {
		fmt.Fprintf(a.stderr, "%s: note: %s\n", programName, n)
	}
	for _, r := range req.Regions {
		if _, ok := cat.Region(r); !ok {
			names := make([]string, 0, len(cat.Regions))
			for _, reg := range cat.Regions {
				names = append(names, reg.Name)
			}
			return fmt.Errorf("%s has no region %q (its regions: %s)", a.p.Name(), r, strings.Join(names, ", "))
		}
	}
	if *maxPrice != "" {
		if currency == "" {
			cs := currencies(cat)
			switch len(cs) {
			case 0:
				return fmt.Errorf("--max-price: %s publishes no prices here, so none can be held to a ceiling", a.p.Name())
			case 1:
				currency = cs[0]
			default:
				return usagef("--max-price %s: %s prices in %s; say which, as in %s%s", *maxPrice, a.p.Name(), strings.Join(cs, " and "), *maxPrice, cs[0])
			}
		}
		req.MaxHourly = provider.Price{Hourly: amount, Currency: currency}
	}
	offers, err := provider.Pick(ctx, req, a.p)
	if err != nil {
		return err
	}
	if a.jsonOut {
		if offers == nil {
			offers = []provider.Offer{}
		}
		return a.printJSON(offers)
	}
	if len(offers) == 0 {
		fmt.Fprintf(a.stderr, "no size of %s fits (%s)\n", a.p.Name(), describe(req))
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tREGION\tSIZE\tVCPU\tMEMORY\tDISK\tARCH\tPRICE/H")
	for _, o := range offers {
		disk := "-"
		if o.Size.DiskGB > 0 {
			disk = strconv.Itoa(o.Size.DiskGB) + " GB"
		}
		price := "unknown"
		if o.Price.Known() {
			price = strconv.FormatFloat(o.Price.Hourly, 'f', max(4, priceDecimals(o.Price.Hourly)), 64) + " " + o.Price.Currency
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", o.Placement.Provider.Name(), o.Placement.Region, o.Placement.Size,
			o.Size.VCPUs, memory(o.Size.MemoryMiB), disk, o.Size.Arch, price)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "%d placements on %s (%s), cheapest first; `%s up --region r1,r2 --size s1,s2` tries several in order\n",
		len(offers), a.p.Name(), describe(req), programName)
	return nil
}

// splitAll splits every value of a repeated, comma-separated flag.
func splitAll(flagName string, values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		items, err := splitList(flagName, v)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if !slices.Contains(out, it) {
				out = append(out, it)
			}
		}
	}
	return out, nil
}

// parsePrice reads a --max-price: "0.05", "0.05EUR", "0.05 usd".
func parsePrice(s string) (float64, string, error) {
	if s == "" {
		return 0, "", nil
	}
	num := strings.TrimRightFunc(s, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == ' ' })
	cur := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || cur != "" && len(cur) != 3 {
		return 0, "", usagef("--max-price %q: want an hourly price such as 0.05, or with its currency: 0.05EUR", s)
	}
	return v, cur, nil
}

// currencies are the currencies of the catalogue's prices, sorted.
func currencies(c *provider.Catalog) []string {
	var out []string
	for _, s := range c.Sizes {
		for _, p := range s.Prices {
			if p.Known() && !slices.Contains(out, p.Currency) {
				out = append(out, p.Currency)
			}
		}
	}
	slices.Sort(out)
	return out
}

// memory writes MiB as GiB: "4 GiB", "0.5 GiB".
func memory(mib int) string {
	return strconv.FormatFloat(float64(mib)/1024, 'f', -1, 64) + " GiB"
}

// priceDecimals is the number of decimals a price needs, at most 6.
func priceDecimals(f float64) int {
	for d := 0; d < 6; d++ {
		if s := math.Pow10(d); math.Abs(f*s-math.Round(f*s)) < 1e-9 {
			return d
		}
	}
	return 6
}

// describe writes requirements for a message: "2+ vCPU, 4+ GiB, arm64".
func describe(r provider.Requirements) string {
	var parts []string
	if r.MinVCPUs > 0 {
		parts = append(parts, strconv.Itoa(r.MinVCPUs)+"+ vCPU")
	}
	if r.MinMemoryMiB > 0 {
		parts = append(parts, strings.TrimSuffix(memory(r.MinMemoryMiB), " GiB")+"+ GiB")
	}
	if r.MinDiskGB > 0 {
		parts = append(parts, strconv.Itoa(r.MinDiskGB)+"+ GB disk")
	}
	if r.Arch != "" {
		parts = append(parts, r.Arch)
	}
	if len(r.Regions) > 0 {
		parts = append(parts, "in "+strings.Join(r.Regions, ", "))
	}
	if len(r.Sizes) > 0 {
		parts = append(parts, "sizes "+strings.Join(r.Sizes, ", "))
	}
	if r.MaxHourly.Known() {
		parts = append(parts, "at most "+r.MaxHourly.String())
	}
	if len(parts) == 0 {
		return "any size"
	}
	return strings.Join(parts, ", ")
}
