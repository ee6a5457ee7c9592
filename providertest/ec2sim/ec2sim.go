// Package ec2sim serves a simulated cloud (package simcloud) as the Amazon
// EC2 API: the EC2 Query protocol, form-encoded POSTs with Action and
// Version=2016-11-15 answered in XML, so that aws-sdk-go-v2's ec2 client
// runs against it unmodified.
//
//	srv := ec2sim.Start(t, simcloud.Options{})
//	p, err := aws.Open(ctx, provider.Config{
//		Endpoint:        srv.URL,
//		AccessKeyID:     srv.Cloud.Token(),
//		SecretAccessKey: "anything",
//		Region:          "us-east-1",
//	})
//
// # Authentication and regions
//
// Requests are authenticated by the access key ID in the SigV4
// Authorization header (Credential=AKID/date/region/ec2/aws4_request); the
// signature is not verified. The region is the one the request is signed
// for: instances, snapshots and the account's own AMIs live in the region
// they were made in, as in EC2. Catalogue AMIs are offered in every region.
//
// # Operations
//
// RunInstances (MinCount to MaxCount instances in one reservation, as many
// as quota and capacity allow; ClientToken idempotency: the same token
// returns the same reservation, other parameters give
// IdempotentParameterMismatch — in the realistic world any other
// parameter, as EC2 documents), DescribeInstances (filters tag:KEY,
// tag-key, tag-value, instance-state-name, instance-id, instance-type,
// image-id, client-token, key-name, availability-zone; MaxResults 5 to
// 1000 with NextToken, not combinable with InstanceId), TerminateInstances,
// CreateImage (an AMI with one EBS snapshot of the root volume behind it),
// DescribeImages (Owner self, amazon or account IDs; filters name with *
// and ? wildcards, architecture, state, tag:KEY, tag-key, owner-id,
// image-id, is-public, image-type, root-device-type, virtualization-type,
// description), DeregisterImage (with DeleteAssociatedSnapshots),
// DeleteSnapshot, DescribeSnapshots, CreateTags and DescribeKeyPairs; the
// catalogue's DescribeRegions, DescribeInstanceTypes and
// DescribeInstanceTypeOfferings (catalog.go); and, on the same endpoint,
// the AWS Price List API's GetProducts in AWS JSON 1.1 (pricing.go), so
// that aws-sdk-go-v2's pricing client runs against it too.
//
// Instances go pending → running and get a public IP shortly before (in the
// realistic world a few only after they run); TerminateInstances answers
// shutting-down, the instance stays "shutting-down" for
// simcloud.Options.DestroyDelay (30 s in the realistic world, 0 in the
// simple one), then "terminated" for simcloud.Options.Retention (one hour by
// default, as in EC2). With Options.ConsistencyDelay or an injected
// simcloud.FaultConsistency, a new instance answers
// InvalidInstanceID.NotFound to every call for a while, as EC2 does right
// after a launch; Options.ListingDelay keeps it out of listings longer.
// AMIs go pending → available, or pending → failed.
//
// # Throttling
//
// The simple world throttles every action on one bucket (RateLimit); the
// realistic world as EC2 documents, per account and region, each action on
// a bucket of its own sized by its class, RunInstances and
// TerminateInstances also on a bucket of instances (see Buckets). Either
// answers RequestLimitExceeded, HTTP 503; the realistic world without
// Retry-After, as EC2.
//
// # Catalogue
//
// NewCloud adds official-looking Ubuntu (owner 099720109477) and Debian
// (owner 136693071363) AMIs of several dates for x86_64 and arm64, and
// decoys an image resolver must not pick: a newer debian-12-backports-*
// image, Ubuntu minimal and Pro images, an image that is still pending, and
// an "Ubuntu" image of another owner. In the realistic world each region
// has its own copy of every AMI, with its own ID, and RepublishImage
// publishes a newer build under the same name pattern.
//
// # Key pairs
//
// The account's key pairs are the model's; DescribeKeyPairs reports their
// fingerprints as EC2 does in the realistic world (KeyFingerprint), and the
// realistic account also holds an imported and an EC2-created RSA key.
package ec2sim

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// apiVersion is the EC2 API version the dialect speaks.
const apiVersion = "2016-11-15"

// Owner account IDs of the catalogue's AMIs and of the simulated account.
const (
	// CanonicalOwner publishes the official Ubuntu AMIs.
	CanonicalOwner = "099720109477"
	// DebianOwner publishes the official Debian AMIs.
	DebianOwner = "136693071363"
	// AccountID is the simulated account's ID: the owner of its
	// instances, AMIs and EBS snapshots.
	AccountID = "123456789012"
	// impostorOwner publishes an image named like Ubuntu's.
	impostorOwner = "111122223333"
)

// Regions are the regions of the default catalogue.
var Regions = []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1"}

// Sizes are the instance types of the default catalogue: t3 and m5 are
// x86_64, t4g and m7g (Graviton) arm64.
var Sizes = map[string]simcloud.Size{
	"t3.micro":  {Arch: "x86_64", VCPUs: 2, MemoryMB: 1024, DiskGB: 8},
	"t3.small":  {Arch: "x86_64", VCPUs: 2, MemoryMB: 2048, DiskGB: 8},
	"t3.medium": {Arch: "x86_64", VCPUs: 2, MemoryMB: 4096, DiskGB: 8},
	"m5.large":  {Arch: "x86_64", VCPUs: 2, MemoryMB: 8192, DiskGB: 8},
	"t4g.micro": {Arch: "arm64", VCPUs: 2, MemoryMB: 1024, DiskGB: 8},
	"t4g.small": {Arch: "arm64", VCPUs: 2, MemoryMB: 2048, DiskGB: 8},
	"m7g.large": {Arch: "arm64", VCPUs: 2, MemoryMB: 8192, DiskGB: 8},
}

// RateLimit is the simple world's single request bucket for every action:
// 100 requests refilled at 20 per second (EC2's non-mutating class, applied
// to all). The realistic world uses Buckets instead.
var RateLimit = simcloud.RateLimit{Requests: 100, Per: 5 * time.Second}

// DefaultRetention is how long a terminated instance stays visible ("about
// an hour", EC2 User Guide, Terminate Amazon EC2 instances).
const DefaultRetention = time.Hour

// The bucket definitions of Buckets: a class of actions, or one action
// with a bucket of its own. Each API action draws from its own bucket of
// its class's size (Charge.Key is the action).
const (
	BucketNonMutating           = "non-mutating"
	BucketUnfiltered            = "unfiltered-non-mutating"
	BucketMutating              = "mutating"
	BucketRunInstances          = "RunInstances"
	BucketRunInstancesRes       = "RunInstances/instances"
	BucketTerminateInstances    = "TerminateInstances"
	BucketTerminateInstancesRes = "TerminateInstances/instances"
	BucketCreateTags            = "CreateTags"
	BucketDeregisterImage       = "DeregisterImage"
	BucketDeleteSnapshot        = "DeleteSnapshot"
)

// bucket is a token bucket of size tokens refilled at rate a second.
func bucket(size int, rate float64) simcloud.RateLimit {
	return simcloud.RateLimit{Requests: size, Per: time.Duration(float64(size) / rate * float64(time.Second)), NoRetryAfter: true}
}

// Buckets returns EC2's documented default token buckets per account and
// region (EC2 Developer Guide, "Request throttling for the Amazon EC2 API":
// request token bucket sizes and refill rates; resource token bucket sizes
// and refill rates), as bucket maximum capacity / refill per second:
//   - non-mutating actions (Describe*, filtered or paginated): 100 / 20;
//   - unfiltered and unpaginated non-mutating actions (of those the
//     dialect serves, DescribeInstances and DescribeSnapshots requested
//     with neither a filter nor MaxResults/NextToken; an ID list is not a
//     filter): 50 / 10;
//   - mutating actions not listed otherwise (CreateImage): 50 / 5;
//   - RunInstances 5 / 2, plus a resource bucket of 1,000 instances
//     refilled at 2 a second, charged the instances asked for (MaxCount);
//   - TerminateInstances 100 / 5, plus 1,000 instances refilled at 20;
//   - CreateTags 100 / 10; DeregisterImage and DeleteSnapshot 100 / 5.
//
// A throttled call gets RequestLimitExceeded without Retry-After.
func Buckets() map[string]simcloud.RateLimit {
	return map[string]simcloud.RateLimit{
		BucketNonMutating:           bucket(100, 20),
		BucketUnfiltered:            bucket(50, 10),
		BucketMutating:              bucket(50, 5),
		BucketRunInstances:          bucket(5, 2),
		BucketRunInstancesRes:       bucket(1000, 2),
		BucketTerminateInstances:    bucket(100, 5),
		BucketTerminateInstancesRes: bucket(1000, 20),
		BucketCreateTags:            bucket(100, 10),
		BucketDeregisterImage:       bucket(100, 5),
		BucketDeleteSnapshot:        bucket(100, 5),
	}
}

// The realistic world's EC2 numbers that are not published; estimates.
const (
	// realBoot is pending to running: about half a minute for a Linux
	// instance on EBS.
	realBoot = 30 * time.Second
	// realAMI is CreateImage to "available": several minutes for a small
	// root volume.
	realAMI = 5 * time.Minute
	// realAMIFailRate is the share of AMIs that go pending, then failed.
	realAMIFailRate = 0.01
	// realConsistency is how long a new instance answers
	// InvalidInstanceID.NotFound (EC2 Developer Guide, "Eventual
	// consistency in the Amazon EC2 API": changes take a few seconds, at
	// times longer).
	realConsistency = 2 * time.Second
	// realListing is how long a new instance is missing from filtered
	// DescribeInstances listings.
	realListing = 5 * time.Second
	// realShuttingDown is how long a terminated instance is
	// "shutting-down" ("tens of seconds") before "terminated".
	realShuttingDown = 30 * time.Second
)

// Defaults fills the dialect's defaults into the zero fields of opts: the
// Regions and Sizes catalogues, the retention of terminated instances,
// and the world's rate limit. The simple world has one 100-token bucket
// refilled at 20 a second for every action (RateLimit; a nil RateLimits,
// an empty non-nil slice means unlimited) and a fractional Retry-After.
// The realistic world has EC2's per-action and resource Buckets, no
// global RateLimits, no Retry-After, instances that run for a while
// without a public IP, AMIs that take minutes and sometimes fail,
// eventual consistency and listing lag, a shutting-down window, per-region
// AMI IDs, strict client tokens and EC2's key fingerprints (see the
// real* constants and Buckets for the numbers).
func Defaults(opts simcloud.Options) simcloud.Options {
	if opts.Regions == nil {
		opts.Regions = append([]string(nil), Regions...)
	}
	if opts.Sizes == nil {
		opts.Sizes = maps.Clone(Sizes)
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if !opts.IsRealistic() {
		if opts.RateLimits == nil {
			opts.RateLimits = []simcloud.RateLimit{RateLimit}
		}
		return opts
	}
	if opts.RateLimits == nil {
		opts.RateLimits = []simcloud.RateLimit{}
	}
	if opts.Buckets == nil {
		opts.Buckets = Buckets()
	}
	if opts.RetryAfter == simcloud.RetryAfterAuto {
		opts.RetryAfter = simcloud.RetryAfterNever
	}
	simcloud.SetDefault(&opts.BootDelay, realBoot)
	simcloud.SetDefault(&opts.SnapshotDelay, realAMI)
	simcloud.SetDefault(&opts.ConsistencyDelay, realConsistency)
	simcloud.SetDefault(&opts.ListingDelay, realListing)
	simcloud.SetDefault(&opts.DestroyDelay, realShuttingDown)
	if opts.SnapshotFailRate == 0 {
		opts.SnapshotFailRate = realAMIFailRate
	}
	return opts
}

// NewCloud returns a cloud with the dialect's defaults and its AMI
// catalogue (one copy per region when the cloud's RegionalImages is on, as
// in the realistic world); the realistic world's account also has an
// imported and an EC2-created RSA key pair.
func NewCloud(opts simcloud.Options) *simcloud.Cloud {
	c := simcloud.New(Defaults(opts))
	AddCatalog(c)
	if c.Options().IsRealistic() {
		addRealisticKeys(c)
	}
	return c
}

// Start serves a new cloud (see NewCloud) as the EC2 API on a loopback
// port until the test ends.
func Start(tb testing.TB, opts simcloud.Options) *simcloud.Server {
	tb.Helper()
	return StartWith(tb, opts)
}

// StartWith is Start with handler options.
func StartWith(tb testing.TB, opts simcloud.Options, hopts ...HandlerOption) *simcloud.Server {
	tb.Helper()
	srv := NewServer(opts, hopts...)
	tb.Cleanup(srv.Close)
	return srv
}

// NewServer serves a new simulated EC2 API (NewCloud(opts)) on loopback
// until its Close; Start is the form for tests.
func NewServer(opts simcloud.Options, hopts ...HandlerOption) *simcloud.Server {
	c := NewCloud(opts)
	return simcloud.NewServer(c, Handler(c, hopts...))
}

// Config returns the provider.Config that reaches srv: its endpoint, its
// account's access key (the secret key is not checked), the region
// us-east-1, and a wait policy paced to its simulated boot time.
func Config(srv *simcloud.Server) provider.Config {
	return provider.Config{
		Endpoint:        srv.URL,
		AccessKeyID:     srv.Cloud.Token(),
		SecretAccessKey: "simulated",
		Region:          Regions[0],
		WaitPolicy:      srv.WaitPolicy(),
	}
}

// catalogImage is one AMI of the catalogue.
type catalogImage struct {
	name, owner, distro, version, arch, date string
	pending                                  bool
}

func catalog() []catalogImage {
	var out []catalogImage
	ubuntu := func(codename, version, disk string, dates map[string][]string) {
		for _, arch := range []string{"x86_64", "arm64"} {
			for _, d := range dates[arch] {
				out = append(out, catalogImage{
					name:  fmt.Sprintf("ubuntu/images/%s/ubuntu-%s-%s-%s-server-%s", disk, codename, version, debArch(arch), d),
					owner: CanonicalOwner, distro: "Ubuntu", version: version, arch: arch, date: d,
				})
			}
		}
	}
	ubuntu("jammy", "22.04", "hvm-ssd", map[string][]string{
		"x86_64": {"20240301", "20250110"},
		"arm64":  {"20240301", "20250108"},
	})
	ubuntu("noble", "24.04", "hvm-ssd-gp3", map[string][]string{
		"x86_64": {"20240423", "20250115", "20250301"},
		"arm64":  {"20240423", "20250220", "20250115"},
	})
	debian := func(version string, dates map[string][]string) {
		for _, arch := range []string{"x86_64", "arm64"} {
			for _, d := range dates[arch] {
				out = append(out, catalogImage{
					name:  fmt.Sprintf("debian-%s-%s-%s", version, debArch(arch), d),
					owner: DebianOwner, distro: "Debian", version: version, arch: arch, date: d[:8],
				})
			}
		}
	}
	debian("11", map[string][]string{
		"x86_64": {"20240104-1616"},
		"arm64":  {"20240104-1616"},
	})
	debian("12", map[string][]string{
		"x86_64": {"20240717-1811", "20250112-1989"},
		"arm64":  {"20240717-1811", "20250113-1990"},
	})
	// Decoys, each newer than what an image resolver should pick.
	out = append(out,
		catalogImage{name: "debian-12-backports-amd64-20250210-2019", owner: DebianOwner, distro: "Debian", version: "12-backports", arch: "x86_64", date: "20250210"},
		catalogImage{name: "debian-12-backports-arm64-20250210-2019", owner: DebianOwner, distro: "Debian", version: "12-backports", arch: "arm64", date: "20250210"},
		catalogImage{name: "ubuntu-minimal/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-minimal-20250401", owner: CanonicalOwner, distro: "Ubuntu", version: "24.04-minimal", arch: "x86_64", date: "20250401"},
		catalogImage{name: "ubuntu-pro-server/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-pro-server-20250402", owner: CanonicalOwner, distro: "Ubuntu", version: "24.04-pro", arch: "x86_64", date: "20250402"},
		catalogImage{name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250410", owner: CanonicalOwner, distro: "Ubuntu", version: "24.04-pending", arch: "x86_64", date: "20250410", pending: true},
		catalogImage{name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250501", owner: impostorOwner, distro: "Impostor", version: "24.04", arch: "x86_64", date: "20250501"},
	)
	return out
}

func debArch(arch string) string {
	if arch == "x86_64" {
		return "amd64"
	}
	return arch
}

// AddCatalog adds the dialect's AMI catalogue to c (NewCloud does). Each
// image's CreatedAt is the date in its name. With the cloud's
// RegionalImages on, each AMI is published once per region, with an ID of
// its own, as EC2's AMI IDs differ from region to region; otherwise one
// image serves every region.
func AddCatalog(c *simcloud.Cloud) {
	now := c.Now()
	regions := [][]string{nil}
	if c.RegionalImages() {
		regions = regions[:0]
		for _, r := range c.Options().Regions {
			regions = append(regions, []string{r})
		}
	}
	for _, in := range regions {
		for _, ci := range catalog() {
			created, _ := time.Parse("20060102", ci.date)
			created = created.Add(12 * time.Hour)
			ready := created
			if ready.After(now) {
				ready = now
			}
			if ci.pending {
				ready = now.Add(100 * 365 * 24 * time.Hour)
			}
			desc := fmt.Sprintf("Canonical, %s, %s", ci.distro, ci.version)
			if ci.owner == DebianOwner {
				desc = "Debian " + ci.version + " (" + ci.date + ")"
			}
			c.AddImage(simcloud.Image{
				Kind:         simcloud.ImageDistribution,
				Name:         ci.name,
				Description:  desc,
				Distribution: ci.distro,
				Version:      ci.version,
				Arch:         ci.arch,
				Owner:        ci.owner,
				Regions:      in,
				MinDiskGB:    8,
				SizeGB:       2,
				CreatedAt:    created,
				ReadyAt:      ready,
			})
		}
	}
}

// FindImage returns the model ID of the catalogue AMI with the given name
// (the one of the first region, Regions[0], when AMIs are regional), or 0.
func FindImage(c *simcloud.Cloud, name string) int64 {
	region := ""
	if c.RegionalImages() && len(c.Options().Regions) > 0 {
		region = c.Options().Regions[0]
	}
	return FindImageIn(c, region, name)
}

// FindImageIn returns the model ID of the newest AMI with the given name
// offered in region ("" for any), or 0.
func FindImageIn(c *simcloud.Cloud, region, name string) int64 {
	page, _ := c.ListImages(func(m *simcloud.Image) bool {
		return m.Name == name && (region == "" || len(m.Regions) == 0 || slices.Contains(m.Regions, region))
	}, 0, 0)
	if len(page) == 0 {
		return 0
	}
	return page[len(page)-1].ID
}

// datedName matches a catalogue AMI name's date: "-20250115" at the end
// (Ubuntu) or "-20250112-1989" (Debian, with a build number).
var datedName = regexp.MustCompile(`-(\d{8})(-(\d+))?$`)

// RepublishImage publishes the successor of the catalogue AMI called name
// in every region that has it, as Canonical and Debian publish a new build
// under the same name pattern: the same name with the date of the cloud's
// clock (at least a day after the old one) and, for Debian, the next build
// number. The newest AMI of the pattern then changes: a create that
// resolves it again gets another image ID. It returns the new AMI IDs by
// region ("" when the AMI serves every region).
func RepublishImage(c *simcloud.Cloud, name string) (map[string]string, error) {
	m := datedName.FindStringSubmatch(name)
	if m == nil {
		return nil, fmt.Errorf("ec2sim: %q does not end with a date", name)
	}
	old, _ := time.Parse("20060102", m[1])
	date := c.Now().UTC().Truncate(24 * time.Hour)
	if !date.After(old) {
		date = old.AddDate(0, 0, 1)
	}
	next := strings.TrimSuffix(name, m[0]) + "-" + date.Format("20060102")
	if m[3] != "" {
		build, _ := strconv.Atoi(m[3])
		next += "-" + strconv.Itoa(build+1)
	}
	page, _ := c.ListImages(func(im *simcloud.Image) bool { return im.Name == name && im.Kind == simcloud.ImageDistribution }, 0, 0)
	if len(page) == 0 {
		return nil, fmt.Errorf("ec2sim: no catalogue AMI %q", name)
	}
	out := make(map[string]string, len(page))
	for _, im := range page {
		id, err := c.RepublishImage(im.ID, next)
		if err != nil {
			return nil, fmt.Errorf("ec2sim: republishing %s: %w", name, err)
		}
		region := ""
		if len(im.Regions) > 0 {
			region = im.Regions[0]
		}
		out[region] = ImageID(id)
	}
	return out, nil
}

// The EC2 ID prefixes of the model's resources.
const (
	PrefixInstance    = "i-"
	PrefixImage       = "ami-"
	PrefixSnapshot    = "snap-"
	PrefixReservation = "r-"
	PrefixVolume      = "vol-"
	PrefixKeyPair     = "key-"
)

// FormatID formats a model ID as an EC2 ID with the given prefix
// ("i-", "ami-", "snap-"): the prefix and 17 hexadecimal digits.
func FormatID(prefix string, id int64) string {
	return fmt.Sprintf("%s%017x", prefix, id)
}

// InstanceID, ImageID and SnapshotID format model IDs as EC2 IDs.
func InstanceID(id int64) string { return FormatID(PrefixInstance, id) }

// ImageID formats a model image ID as an AMI ID.
func ImageID(id int64) string { return FormatID(PrefixImage, id) }

// SnapshotID formats a model volume snapshot ID as an EBS snapshot ID.
func SnapshotID(id int64) string { return FormatID(PrefixSnapshot, id) }

// ParseID returns the model ID of an EC2 ID with the given prefix: the
// prefix followed by 8 or 17 hexadecimal digits.
func ParseID(prefix, s string) (int64, error) {
	hex, ok := strings.CutPrefix(s, prefix)
	if !ok || (len(hex) != 8 && len(hex) != 17) {
		return 0, fmt.Errorf("ec2sim: %q is not an ID of the form %s<hex>", s, prefix)
	}
	n, err := strconv.ParseInt(hex, 16, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("ec2sim: %q is not an ID of the form %s<hex>", s, prefix)
	}
	return n, nil
}

// ModelID returns the model ID of any EC2 ID the dialect makes ("i-…",
// "ami-…", "snap-…").
func ModelID(s string) (int64, error) {
	for _, p := range []string{PrefixInstance, PrefixImage, PrefixSnapshot, PrefixVolume, PrefixReservation, PrefixKeyPair} {
		if strings.HasPrefix(s, p) {
			return ParseID(p, s)
		}
	}
	return 0, fmt.Errorf("ec2sim: %q is not an EC2 ID", s)
}

// Handler serves c as the EC2 API.
func Handler(c *simcloud.Cloud, opts ...HandlerOption) http.Handler {
	h := &handler{cloud: c}
	for _, o := range opts {
		o(&h.cfg)
	}
	h.ec2Fingerprints = h.cfg.fingerprints.Enabled(c.Options().IsRealistic())
	return h
}

// HandlerOption changes how the dialect behaves, to exercise drivers
// against older or different endpoints.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	ignoreDeleteAssociated bool
	fingerprints           simcloud.Switch
	denyPricing            bool // WithoutPricingAccess (pricing.go)
}

// Fingerprints picks how DescribeKeyPairs reports fingerprints: On for
// EC2's own formats (see KeyFingerprint), Off for the model's MD5 of the
// key blob (DigitalOcean's and Hetzner's form, what the dialect always
// sent before). simcloud.Auto, the default, is EC2's in the realistic
// world.
func Fingerprints(s simcloud.Switch) HandlerOption {
	return func(c *handlerConfig) { c.fingerprints = s }
}

// IgnoreDeleteAssociatedSnapshots makes DeregisterImage ignore its
// DeleteAssociatedSnapshots parameter, as endpoints that predate it do: the
// EBS snapshots behind the AMI are left for separate DeleteSnapshot calls.
func IgnoreDeleteAssociatedSnapshots() HandlerOption {
	return func(c *handlerConfig) { c.ignoreDeleteAssociated = true }
}
