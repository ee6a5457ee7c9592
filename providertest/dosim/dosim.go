// Package dosim serves a simulated cloud (package simcloud) in the
// DigitalOcean API v2 dialect, so that godo, doctl-style clients and spuff's
// digitalocean driver run against it unmodified.
//
// It speaks the endpoints a machine lifecycle needs: droplets (create, get,
// list by tag or name with pages, delete), droplet actions (snapshot, and
// the droplet's action list), actions, images, snapshots, tags and their
// resources, the account's SSH keys, and the catalogue's regions and sizes
// (a size listed in the regions that can place it now, as DigitalOcean
// does). Bodies, status codes, error bodies
// ({"id":"not_found","message":"..."}), pagination links (absolute
// first/prev/next/last URLs, as godo derives the current page from them) and
// the RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset headers follow
// DigitalOcean's OpenAPI description; the package's tests check every
// request and response against it.
//
// Start one in a test, and point spuff's driver (or godo) at it:
//
//	srv := dosim.Start(t, simcloud.Options{})
//	p, err := digitalocean.Open(ctx, dosim.Config(srv)) // or provider.Open(ctx, "digitalocean", ...)
//
// Requests carry the token srv.Cloud.Token() as "Authorization: Bearer".
// srv.Cloud is the model: inject faults with Inject, seed accounts with
// AddInstances, and assert on Stats and LiveInstances.
//
// In the realistic world (simcloud.Realistic) the limits are the API
// reference's (RealisticRateLimits: a burst 429 says retry-after in whole
// seconds, an hourly one does not; GET /v2/account/keys has its own
// limit), a droplet is still returned for seconds after its DELETE (status
// as before, locked), a new droplet is missing from listings for seconds,
// some run a while before their public address shows, and a create the
// region cannot place answers 422 "Size is not available in this region."
// (simcloud.Cloud.SetCapacity, FaultCapacity) or "Region is not available"
// (DisableRegion, FaultRegionDisabled), apart from the droplet-limit quota.
package dosim

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// RateLimits are the simple world's rate limits: DigitalOcean's published
// 250 requests per minute and 5,000 per hour, per account, as token
// buckets, every 429 with a Retry-After. RealisticRateLimits are the
// realistic world's.
var RateLimits = []simcloud.RateLimit{
	{Requests: 250, Per: time.Minute},
	{Requests: 5000, Per: time.Hour},
}

// RealisticRateLimits are DigitalOcean's rate limits as its API reference
// describes them (DigitalOcean API v2, "Rate Limit"), per token:
//   - 250 requests per minute, the burst limit: a 429 over it carries
//     retry-after, whole seconds ("retry-after: 29"), and
//     ratelimit-remaining 0;
//   - 5,000 requests per hour, each request on its own one-hour timer: a
//     429 over it carries no retry-after, and ratelimit-reset is when the
//     oldest request expires;
//   - 10 GET /v2/account/keys per 60 seconds ("Only 10 GET requests to the
//     /v2/account/keys endpoint to list SSH keys can be made per 60
//     seconds"), on top of the others; the reference names no retry-after
//     for it, so none is sent.
//
// The minute window is modelled with per-request timers too.
func RealisticRateLimits() []simcloud.RateLimit {
	return []simcloud.RateLimit{
		{Name: windowMinute, Requests: 250, Per: time.Minute, Sliding: true},
		{Name: windowHour, Requests: 5000, Per: time.Hour, Sliding: true, NoRetryAfter: true},
		{Name: windowKeys, Requests: 10, Per: time.Minute, Sliding: true, NoRetryAfter: true, Ops: []simcloud.Op{simcloud.OpListSSHKeys}},
	}
}

// The names of the realistic windows, read by RateHeaders.
const (
	windowMinute = "minute"
	windowHour   = "hour"
	windowKeys   = "ssh-keys"
)

// The realistic world's DigitalOcean numbers that are not published;
// estimates from observed behaviour.
const (
	// realBoot is create to "active": most droplets take under a minute.
	realBoot = 45 * time.Second
	// realSnapshot is a droplet snapshot of a small disk: a few minutes.
	realSnapshot = 4 * time.Minute
	// realDestroy is how long a droplet is still returned (GET, listings)
	// after its DELETE answered 204: seconds (godo issue 146: "wait 3-4
	// sec for the droplet to be deleted for real"; vagrant-digitalocean
	// issue 213: "in like 10 seconds").
	realDestroy = 5 * time.Second
	// realListing is how long a new droplet is missing from listings by tag
	// or name.
	realListing = 3 * time.Second
)

// SizeInfo is what the dialect shows of a size beyond the model's
// simcloud.Size: prices and description.
type SizeInfo struct {
	simcloud.Size
	// PriceMonthly and PriceHourly are in US dollars.
	PriceMonthly, PriceHourly float64
	// TransferTB is the monthly transfer allowance in terabytes.
	TransferTB float64
	// Description is DigitalOcean's name of the size class ("Basic").
	Description string
}

// Sizes is the default size catalogue: a few of DigitalOcean's slugs, with
// their published prices (digitalocean.com/pricing/droplets, 2024–2025:
// Basic from $4 a month for 512 MiB; the hourly price is the monthly one
// over 672 hours, as DigitalOcean bills, $6 a month being $0.00893 an
// hour). The API's /v2/sizes lists a size in the regions that can place
// it now (see simcloud.Cloud.Room), its prices the same in every region.
var Sizes = map[string]SizeInfo{
	"s-1vcpu-512mb-10gb": {simcloud.Size{Arch: "x86_64", VCPUs: 1, MemoryMB: 512, DiskGB: 10}, 4, 0.00595, 0.5, "Basic"},
	"s-1vcpu-1gb":        {simcloud.Size{Arch: "x86_64", VCPUs: 1, MemoryMB: 1024, DiskGB: 25}, 6, 0.00893, 1, "Basic"},
	"s-1vcpu-2gb":        {simcloud.Size{Arch: "x86_64", VCPUs: 1, MemoryMB: 2048, DiskGB: 50}, 12, 0.01786, 2, "Basic"},
	"s-2vcpu-2gb":        {simcloud.Size{Arch: "x86_64", VCPUs: 2, MemoryMB: 2048, DiskGB: 60}, 18, 0.02679, 3, "Basic"},
	"s-2vcpu-4gb":        {simcloud.Size{Arch: "x86_64", VCPUs: 2, MemoryMB: 4096, DiskGB: 80}, 24, 0.03571, 4, "Basic"},
	"s-4vcpu-8gb":        {simcloud.Size{Arch: "x86_64", VCPUs: 4, MemoryMB: 8192, DiskGB: 160}, 48, 0.07143, 5, "Basic"},
	"c-2":                {simcloud.Size{Arch: "x86_64", VCPUs: 2, MemoryMB: 4096, DiskGB: 25}, 42, 0.0625, 4, "CPU-Optimized"},
	"g-2vcpu-8gb":        {simcloud.Size{Arch: "x86_64", VCPUs: 2, MemoryMB: 8192, DiskGB: 25}, 63, 0.09375, 4, "General Purpose"},
}

// Regions is the default region catalogue, slug to name. Every slug is one
// the OpenAPI description lists.
var Regions = map[string]string{
	"nyc1": "New York 1",
	"nyc3": "New York 3",
	"sfo3": "San Francisco 3",
	"ams3": "Amsterdam 3",
	"fra1": "Frankfurt 1",
	"lon1": "London 1",
	"sgp1": "Singapore 1",
	"tor1": "Toronto 1",
	"blr1": "Bangalore 1",
	"syd1": "Sydney 1",
}

// CatalogImage is an official image of the default catalogue.
type CatalogImage struct {
	Slug, Name, Distribution, Version string
	MinDiskGB                         int
	SizeGB                            float64
}

// Images is the default image catalogue. Ubuntu and Debian slugs follow
// DigitalOcean's scheme: "ubuntu-24-04-x64", "debian-12-x64".
var Images = []CatalogImage{
	{"ubuntu-24-04-x64", "24.04 (LTS) x64", "Ubuntu", "24.04", 7, 2.36},
	{"ubuntu-22-04-x64", "22.04 (LTS) x64", "Ubuntu", "22.04", 7, 2.2},
	{"ubuntu-20-04-x64", "20.04 (LTS) x64", "Ubuntu", "20.04", 7, 1.9},
	{"debian-12-x64", "12 x64", "Debian", "12", 7, 0.94},
	{"debian-11-x64", "11 x64", "Debian", "11", 7, 0.87},
	{"fedora-40-x64", "40 x64", "Fedora", "40", 7, 1.12},
	{"rockylinux-9-x64", "9 x64", "Rocky Linux", "9", 7, 1.04},
}

// Defaults fills what opts leaves empty with DigitalOcean's catalogue and
// limits: the regions and sizes above, and the world's rate limits when
// opts.RateLimits is nil (a non-nil empty slice means no rate limit):
// RateLimits in the simple world; in the realistic one RealisticRateLimits,
// Retry-After in whole seconds, droplets that take most of a minute to
// boot, snapshots that take minutes, droplets still returned for seconds
// after their DELETE and missing from listings for seconds after their
// create (see the real* constants).
func Defaults(opts simcloud.Options) simcloud.Options {
	if len(opts.Regions) == 0 {
		for slug := range Regions {
			opts.Regions = append(opts.Regions, slug)
		}
		slices.Sort(opts.Regions)
	}
	if len(opts.Sizes) == 0 {
		opts.Sizes = make(map[string]simcloud.Size, len(Sizes))
		for slug, s := range Sizes {
			opts.Sizes[slug] = s.Size
		}
	}
	if !opts.IsRealistic() {
		if opts.RateLimits == nil {
			opts.RateLimits = slices.Clone(RateLimits)
		}
		return opts
	}
	if opts.RateLimits == nil {
		opts.RateLimits = RealisticRateLimits()
	}
	if opts.RetryAfter == simcloud.RetryAfterAuto {
		opts.RetryAfter = simcloud.RetryAfterWholeSeconds
	}
	simcloud.SetDefault(&opts.BootDelay, realBoot)
	simcloud.SetDefault(&opts.SnapshotDelay, realSnapshot)
	simcloud.SetDefault(&opts.DestroyDelay, realDestroy)
	simcloud.SetDefault(&opts.ListingDelay, realListing)
	return opts
}

// NewCloud returns a simulated cloud with DigitalOcean's defaults (see
// Defaults) and its image catalogue.
func NewCloud(opts simcloud.Options) *simcloud.Cloud {
	c := simcloud.New(Defaults(opts))
	AddCatalog(c)
	return c
}

// AddCatalog adds the images of Images that c lacks (by slug), available in
// every region of c. A cloud loaded from saved state keeps its own.
func AddCatalog(c *simcloud.Cloud) {
	have := make(map[string]bool)
	imgs, _ := c.ListImages(func(m *simcloud.Image) bool { return m.Kind == simcloud.ImageDistribution }, 0, 0)
	for _, m := range imgs {
		have[m.Slug] = true
	}
	regions := c.Options().Regions
	for _, im := range Images {
		if have[im.Slug] {
			continue
		}
		c.AddImage(simcloud.Image{
			Kind: simcloud.ImageDistribution, Name: im.Name, Slug: im.Slug,
			Description:  im.Distribution + " " + im.Version + " x64",
			Distribution: im.Distribution, Version: im.Version, Arch: "x86_64",
			Owner: "digitalocean", Regions: slices.Clone(regions),
			SizeGB: im.SizeGB, MinDiskGB: im.MinDiskGB,
			CreatedAt: time.Date(2024, 4, 25, 0, 0, 0, 0, time.UTC),
		})
	}
}

// Start serves a new simulated DigitalOcean (NewCloud(opts)) on a loopback
// port for the duration of the test, and closes it when the test ends.
func Start(t testing.TB, opts simcloud.Options) *simcloud.Server {
	t.Helper()
	srv := NewServer(opts)
	t.Cleanup(srv.Close)
	return srv
}

// NewServer serves a new simulated DigitalOcean (NewCloud(opts)) on a
// loopback port until its Close method is called. In tests, Start does the
// closing.
func NewServer(opts simcloud.Options) *simcloud.Server {
	cloud := NewCloud(opts)
	return simcloud.NewServer(cloud, NewHandler(cloud))
}

// Config returns a Config that reaches srv with its token, and waits
// tuned to its simulated time: polls at the pace of its boot delay rather
// than a real droplet's.
func Config(srv *simcloud.Server) provider.Config {
	return provider.Config{
		Endpoint:   srv.URL,
		Token:      provider.Secret(srv.Cloud.Token()),
		WaitPolicy: srv.WaitPolicy(),
	}
}

// ImageID returns the model ID of the catalogue image with the given slug,
// or 0.
func ImageID(c *simcloud.Cloud, slug string) int64 {
	imgs, _ := c.ListImages(func(m *simcloud.Image) bool { return m.Slug == slug }, 0, 1)
	if len(imgs) == 0 {
		return 0
	}
	return imgs[0].ID
}

// Tags returns the DigitalOcean tags of a label set: "key:value", or "key"
// alone for an empty value, sorted.
func Tags(labels map[string]string) []string {
	tags := make([]string, 0, len(labels))
	for k, v := range labels {
		if v == "" {
			tags = append(tags, k)
		} else {
			tags = append(tags, k+":"+v)
		}
	}
	slices.Sort(tags)
	return tags
}

// Labels returns the label set of DigitalOcean tags, the inverse of Tags: a
// tag "key:value" is the label key=value, a tag without a colon the label
// key with an empty value.
func Labels(tags []string) map[string]string {
	labels := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v, _ := strings.Cut(t, ":")
		labels[k] = v
	}
	return labels
}

// hasTag reports whether labels carry the tag.
func hasTag(labels map[string]string, tag string) bool {
	k, v, _ := strings.Cut(tag, ":")
	got, ok := labels[k]
	return ok && got == v
}
