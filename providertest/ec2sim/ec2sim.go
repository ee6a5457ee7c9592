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
// RunInstances (with ClientToken idempotency: the same token returns the
// same reservation, other parameters give IdempotentParameterMismatch),
// DescribeInstances (filters tag:KEY, tag-key, tag-value,
// instance-state-name, instance-id, instance-type, image-id, client-token,
// key-name, availability-zone; MaxResults 5 to 1000 with NextToken, not
// combinable with InstanceId), TerminateInstances, CreateImage (an AMI with
// one EBS snapshot of the root volume behind it), DescribeImages (Owner
// self, amazon or account IDs; filters name with * and ? wildcards,
// architecture, state, tag:KEY, tag-key, owner-id, image-id, is-public,
// image-type, root-device-type, virtualization-type, description),
// DeregisterImage (with DeleteAssociatedSnapshots), DeleteSnapshot,
// DescribeSnapshots, CreateTags and DescribeKeyPairs.
//
// Instances go pending → running and get a public IP shortly before; a
// terminated instance stays visible as "terminated" for
// simcloud.Options.Retention (one hour by default, as in EC2). With
// Options.ConsistencyDelay or an injected simcloud.FaultConsistency, a new
// instance answers InvalidInstanceID.NotFound to every call for a while,
// as EC2 does right after a launch.
//
// # Errors
//
// Errors are EC2's: <Response><Errors><Error><Code>…</Code><Message>…
// </Message></Error></Errors><RequestID>…</RequestID></Response> with
// AuthFailure (401), UnauthorizedOperation (403), RequestLimitExceeded (503,
// the answer to throttling and to simcloud.FaultRateLimit), InternalError
// (500), Unavailable (503), and, with status 400,
// InvalidInstanceID.NotFound, InvalidInstanceID.Malformed,
// InvalidAMIID.NotFound, InvalidAMIID.Malformed, InvalidSnapshot.NotFound,
// InvalidSnapshot.InUse, InvalidKeyPair.NotFound, InvalidAMIName.Malformed,
// InvalidAMIName.Duplicate, InstanceLimitExceeded, ResourceLimitExceeded,
// InvalidParameterValue, InvalidParameterCombination, MissingParameter,
// IdempotentParameterMismatch and InvalidAction.
//
// # Catalogue
//
// NewCloud adds official-looking Ubuntu (owner 099720109477) and Debian
// (owner 136693071363) AMIs of several dates for x86_64 and arm64, and
// decoys an image resolver must not pick: a newer debian-12-backports-*
// image, Ubuntu minimal and Pro images, an image that is still pending, and
// an "Ubuntu" image of another owner.
package ec2sim

import (
	"fmt"
	"maps"
	"net/http"
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

// RateLimit is EC2's default request token bucket for non-mutating
// actions, which Defaults applies to every call: a bucket of 100 requests
// refilled at 20 per second.
var RateLimit = simcloud.RateLimit{Requests: 100, Per: 5 * time.Second}

// DefaultRetention is how long a terminated instance stays visible.
const DefaultRetention = time.Hour

// Defaults fills the dialect's defaults into the zero fields of opts: EC2's
// request rate limit (a nil RateLimits; an empty non-nil slice means
// unlimited), the Regions and Sizes catalogues, and the retention of
// terminated instances.
func Defaults(opts simcloud.Options) simcloud.Options {
	if opts.RateLimits == nil {
		opts.RateLimits = []simcloud.RateLimit{RateLimit}
	}
	if opts.Regions == nil {
		opts.Regions = append([]string(nil), Regions...)
	}
	if opts.Sizes == nil {
		opts.Sizes = maps.Clone(Sizes)
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	return opts
}

// NewCloud returns a cloud with the dialect's defaults and its AMI
// catalogue.
func NewCloud(opts simcloud.Options) *simcloud.Cloud {
	c := simcloud.New(Defaults(opts))
	AddCatalog(c)
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
// image's CreatedAt is the date in its name.
func AddCatalog(c *simcloud.Cloud) {
	now := c.Now()
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
			MinDiskGB:    8,
			SizeGB:       2,
			CreatedAt:    created,
			ReadyAt:      ready,
		})
	}
}

// FindImage returns the model ID of the catalogue AMI with the given name,
// or 0.
func FindImage(c *simcloud.Cloud, name string) int64 {
	page, _ := c.ListImages(func(m *simcloud.Image) bool { return m.Name == name }, 0, 1)
	if len(page) == 0 {
		return 0
	}
	return page[0].ID
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
	return h
}

// HandlerOption changes how the dialect behaves, to exercise drivers
// against older or different endpoints.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	ignoreDeleteAssociated bool
}

// IgnoreDeleteAssociatedSnapshots makes DeregisterImage ignore its
// DeleteAssociatedSnapshots parameter, as endpoints that predate it do: the
// EBS snapshots behind the AMI are left for separate DeleteSnapshot calls.
func IgnoreDeleteAssociatedSnapshots() HandlerOption {
	return func(c *handlerConfig) { c.ignoreDeleteAssociated = true }
}
