package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// offerJSON is a row of `sizes --json`.
type offerJSON struct {
	Placement struct {
		Provider, Region, Size string
	} `json:"placement"`
	Size struct {
		VCPUs     int    `json:"vcpus"`
		MemoryMiB int    `json:"memory_mib"`
		Arch      string `json:"arch"`
	} `json:"size"`
	Price struct {
		Hourly   float64 `json:"hourly"`
		Currency string  `json:"currency"`
	} `json:"price"`
}

// sizesJSON runs `sizes --json` with args and decodes it.
func (e *env) sizesJSON(args ...string) []offerJSON {
	e.t.Helper()
	r := e.must(append([]string{"sizes", "--json"}, args...)...)
	var out []offerJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("sizes --json printed %q: %v", r.stdout, err)
	}
	return out
}

// TestSizesFitAndAreCheapestFirst: on every provider, `sizes --min-cpu 2
// --min-mem 4` lists only placements that fit, cheapest first (unknown
// prices last), in the table as in --json, and leaves out some that
// `sizes` alone lists; --arch, --region and --max-price narrow it.
func TestSizesFitAndAreCheapestFirst(t *testing.T) {
	t.Parallel()
	for i := range backends {
		b := &backends[i]
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			all := e.sizesJSON("--provider", b.name)
			fit := e.sizesJSON("--provider", b.name, "--min-cpu", "2", "--min-mem", "4")
			if len(fit) == 0 || len(fit) >= len(all) {
				t.Fatalf("sizes lists %d placements, --min-cpu 2 --min-mem 4 %d: want some, and fewer", len(all), len(fit))
			}
			checkOffers(t, fit, func(o offerJSON) bool { return o.Size.VCPUs >= 2 && o.Size.MemoryMiB >= 4096 })

			// The table has the same rows, in the same order.
			r := e.must("sizes", "--provider", b.name, "--min-cpu", "2", "--min-mem", "4")
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != len(fit)+1 || strings.Join(strings.Fields(lines[0]), " ") != "PROVIDER REGION SIZE VCPU MEMORY DISK ARCH PRICE/H" {
				t.Fatalf("sizes table has %d lines, --json %d rows:\n%v", len(lines), len(fit), r)
			}
			for i, l := range lines[1:] {
				f := strings.Fields(l)
				o := fit[i]
				price := "unknown"
				if o.Price.Currency != "" {
					price = strconv.FormatFloat(o.Price.Hourly, 'f', -1, 64)
				}
				if len(f) < 9 || f[0] != b.name || f[1] != o.Placement.Region || f[2] != o.Placement.Size || f[3] != strconv.Itoa(o.Size.VCPUs) {
					t.Errorf("table row %d %q, json %+v", i+1, l, o)
					continue
				}
				if got, err := strconv.ParseFloat(f[len(f)-2], 64); price != "unknown" && (err != nil || got != o.Price.Hourly || f[len(f)-1] != o.Price.Currency) ||
					price == "unknown" && f[len(f)-1] != "unknown" {
					t.Errorf("table row %d %q shows the price %s %s as %q", i+1, l, price, o.Price.Currency, f[len(f)-2:])
				}
			}
			if !strings.Contains(r.stderr, strconv.Itoa(len(fit))+" placements on "+b.name+" (2+ vCPU, 4+ GiB), cheapest first") {
				t.Errorf("sizes does not sum up what it listed:\n%v", r)
			}

			// Narrower: one region, one architecture, a price ceiling.
			region := fit[0].Placement.Region
			checkOffers(t, e.sizesJSON("--provider", b.name, "--min-cpu", "2", "--region", region), func(o offerJSON) bool {
				return o.Placement.Region == region && o.Size.VCPUs >= 2
			})
			for _, arch := range []string{"x86_64", "arm64"} {
				checkOffers(t, e.sizesJSON("--provider", b.name, "--arch", arch), func(o offerJSON) bool { return o.Size.Arch == arch })
			}
			ceiling := fit[0].Price.Hourly
			capped := e.sizesJSON("--provider", b.name, "--min-cpu", "2", "--min-mem", "4", "--max-price", strconv.FormatFloat(ceiling, 'f', -1, 64))
			checkOffers(t, capped, func(o offerJSON) bool { return o.Price.Currency != "" && o.Price.Hourly <= ceiling })
			if len(capped) == 0 || len(capped) == len(fit) {
				t.Errorf("--max-price %v kept %d of %d placements", ceiling, len(capped), len(fit))
			}
		})
	}
}

// checkOffers checks that every offer fits and that they come cheapest
// first, those without a price last.
func checkOffers(t *testing.T, offers []offerJSON, fits func(offerJSON) bool) {
	t.Helper()
	for i, o := range offers {
		if !fits(o) {
			t.Errorf("offer %d does not fit: %+v", i, o)
		}
		if i == 0 {
			continue
		}
		prev := offers[i-1]
		switch {
		case prev.Price.Currency == "" && o.Price.Currency != "":
			t.Errorf("offer %d has a price (%+v) after one without (%+v)", i, o, prev)
		case prev.Price.Currency != "" && o.Price.Currency == prev.Price.Currency && o.Price.Hourly < prev.Price.Hourly:
			t.Errorf("offer %d (%+v) is cheaper than offer %d (%+v) before it", i, o, i-1, prev)
		}
	}
}

// TestSizesRefusesWhatItCannotDo: an unknown region and a malformed
// ceiling are refused, and nothing that fits is said plainly.
func TestSizesRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--provider", "hetzner", "--region", "atlantis"}, exitFailed, `hetzner has no region "atlantis"`},
		{[]string{"--provider", "hetzner", "--max-price", "cheap"}, exitUsage, "--max-price"},
		{[]string{"--provider", "hetzner", "--min-mem", "-1"}, exitUsage, "--min-mem"},
		{[]string{"--provider", "hetzner", "--min-cpu", "4096"}, exitOK, "no size of hetzner fits (4096+ vCPU)"},
	} {
		r := e.run(append([]string{"sizes"}, c.args...)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.says) {
			t.Errorf("want exit %d and %q:\n%v", c.code, c.says, r)
		}
	}
	if got := e.sizesJSON("--provider", "hetzner", "--min-cpu", "4096"); got == nil || len(got) != 0 {
		t.Errorf("sizes --json with nothing that fits = %v, want []", got)
	}
}
