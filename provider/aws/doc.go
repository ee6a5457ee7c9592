// Package aws is spuff's Amazon EC2 driver, built on
// aws-sdk-go-v2/service/ec2. Importing it registers the provider "aws":
//
//	import _ "github.com/spuffgo/spuff/provider/aws"
//
//	p, err := provider.Open(ctx, "aws", provider.Config{Region: "eu-west-1"})
//
// Open does the same with options (WithSubnet, WithSecurityGroups,
// WithInstanceProfile, WithVolumeSize, WithRegions, WithNoReboot); New
// builds a Provider on an EC2 client of your own. The driver translates
// between EC2 and package provider, which runs every rule (validation,
// ownership labels, exactly-once creates, retries, pacing, waiting,
// snapshot cleanup) over it.
//
// # Credentials and regions
//
// Config.AccessKeyID, SecretAccessKey and SessionToken give static
// credentials. Without them the AWS default chain is used
// (aws-sdk-go-v2/config: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
// AWS_PROFILE with the shared config and credentials files, SSO, web
// identity, container and instance metadata); it reads the process
// environment itself. The default region is Config.Region, else AWS_REGION
// or AWS_DEFAULT_REGION, else the shared config's.
//
// EC2 is regional: a request's Region is where its instance is launched,
// with one client per region, made once. Listings cover the default region,
// Config.Regions, those of WithRegions and every region this Provider has
// launched in; the driver remembers in which region it made each instance
// and AMI, and looks an ID up there, else in every covered region.
// Config.Endpoint, when set, is every client's base endpoint (simulated
// clouds, proxies, LocalStack).
//
// # Instances
//
// CreateInstance calls RunInstances with the create call's idempotency
// token as ClientToken: the portable layer gives each call its own token
// and repeats an attempt whose outcome is unknown with the same token and
// the same parameters, so EC2 makes one instance whatever the retries, and
// a later call of the same request (after a destroy, or once Canonical has
// published a newer AMI) is a new launch, never an IdempotentParameterMismatch.
// Tags — Name, the ownership label, the request's key and labels — are
// set on the instance and its volumes at launch; a machine with a TTL is
// launched with the shutdown behaviour "terminate", so that a shutdown
// from inside ends it and its billing. User data is sent
// base64-encoded; EC2 takes at most 16 KB of it before encoding. A request
// names at most one SSH key, the one key pair EC2 installs: a key pair
// name, a key pair ID ("key-…") or a fingerprint as EC2 reports it
// (colon-hex MD5 or SHA-1 for RSA keys, base64 SHA-256 for ed25519 keys,
// with or without "=" padding); IDs and fingerprints are looked up with
// DescribeKeyPairs in the request's region. A label may not be called
// "Name": that tag holds the instance name.
//
// States: pending is StatusNew, running StatusActive, stopping StatusOff,
// stopped StatusArchive, shutting-down StatusDestroying; a terminated
// instance is gone (GetInstance answers ErrNotFound, ListInstances, which
// asks for every other state, omits it).
//
// # Images
//
// provider.Ubuntu("24.04") and provider.Debian("12") resolve, once per
// create call, to the newest available official AMI of the instance type's
// architecture (arm64 for Graviton families such as t4g, m7g, c7gn, x2gd,
// otherwise x86_64; see Architecture): DescribeImages by owner — Canonical
// 099720109477, Debian 136693071363 — and name pattern (see ImageQuery),
// with Debian's backports images left out. Creates made at once share one
// lookup; a later create looks again, so it boots an AMI published since.
// CustomImage and SnapshotImage take an AMI ID.
//
// # Snapshots
//
// A snapshot is an AMI made by CreateImage, the AMI and the EBS snapshots
// behind it tagged at creation with Name, the ownership label and the
// snapshot's key. AMI names are 3 to 128 letters, digits, spaces and
// ( ) [ ] . / - ' @ _ (no ':'), unique per region. DeleteSnapshot
// deregisters the AMI and deletes every EBS snapshot behind it, which would
// otherwise stay billed (also those a half-finished earlier delete of it
// left). provider.Reap finds and deletes the managed EBS snapshots whose AMI
// is gone, whatever left them (the driver is a driver.Orphaner).
//
// # Rate limits and retries
//
// Calls are paced under EC2's request buckets per API (EC2 developer
// guide, "Request throttling"; see RateLimits): a class per bucket, read
// from each request's operation name, so a burst of creates waits on
// RunInstances' 5 tokens refilled at 2 a second while reads go on under
// their own 100 at 20. EC2 sends no Retry-After: a RequestLimitExceeded
// pauses the account's pacer for its own backoff. The SDK's retryer is off
// on every call (aws.NopRetryer, also on a client given to New): the
// portable layer's retries are the only ones, so attempts never multiply
// and a capacity error (HTTP 500, which the SDK would repeat) reaches EC2
// once. The SDK's HTTP client is the paced one spuff gives the driver
// (Config.HTTPClient's transport, or a client given to New's own).
//
// # Errors
//
// Errors are classified by EC2's error code, kept in provider.Error.Code:
// AuthFailure, UnauthorizedOperation and missing credentials (the message
// names AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_PROFILE) are
// KindAuthentication; RequestLimitExceeded (HTTP 503) is KindRateLimit
// with no RetryAfter; *.NotFound codes are KindNotFound, or
// KindInvalidConfig naming the field for a create's AMI or key pair;
// InstanceLimitExceeded, VcpuLimitExceeded and the other *LimitExceeded
// quotas are KindQuotaExceeded; InsufficientInstanceCapacity,
// InsufficientHostCapacity and Unsupported (an instance type an
// Availability Zone lacks) are KindCapacity, never retried;
// IdempotentParameterMismatch and InvalidAMIName.Duplicate are
// KindConflict; InvalidParameterValue, *.Malformed and the like are
// KindInvalidConfig with the field the code or message names (Image,
// Size, Region, SSHKeys, UserData); InternalError and Unavailable are
// KindAPI with their 5xx status, retryable. The SDK's error
// (smithy.APIError, *awshttp.ResponseError) stays reachable with
// errors.As.
//
// # Catalogue
//
// provider.FetchCatalog reads the regions (a region the account has not
// opted in to is unavailable), the instance types and where each is
// offered, and the Linux on-demand prices of the AWS Price List API
// (service pricing, endpoint us-east-1, on the EC2 client's credentials
// and endpoint) for the regions the Provider covers; other regions'
// prices, and every price when the credentials lack pricing:GetProducts,
// are unknown (Catalog.Notes says why).
//
// # As
//
// Provider.As sets a **ec2.Client to the default region's client (the
// one given to New), and a *provider.Stats to the Provider's call counts.
package aws
