package aws

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
)

// Name is the name the driver registers under.
const Name = "aws"

// EC2's limits and timings.
const (
	// MaxUserDataBytes is EC2's user data limit: 16 KB of raw data, before
	// base64 encoding.
	MaxUserDataBytes = 16384
	// ExpectedBoot is a typical time from RunInstances to running with a
	// public IP (20 to 40 s); it tunes the default wait policy.
	ExpectedBoot = 30 * time.Second
	// ExpectedSnapshot is a typical time CreateImage takes to make an AMI
	// of a small root volume available.
	ExpectedSnapshot = 3 * time.Minute
	// listPageSize is DescribeInstances' and DescribeImages' largest page.
	listPageSize = 1000
)

func init() { provider.Register(Name, opener{}) }

// An Option configures what the driver sets on the instances it launches,
// and where it looks for them.
type Option func(*options)

type options struct {
	subnet          string
	securityGroups  []string
	instanceProfile string
	volumeSize      int32
	regions         []string
	noReboot        bool
	expectedBoot    time.Duration
}

// WithSubnet launches instances in the given subnet ("subnet-…") instead of
// the default VPC's. The subnet must assign public IPv4 addresses, or
// WaitReady never sees one.
func WithSubnet(id string) Option { return func(o *options) { o.subnet = id } }

// WithSecurityGroups attaches the given security groups ("sg-…") instead of
// the VPC's default group.
func WithSecurityGroups(ids ...string) Option {
	return func(o *options) { o.securityGroups = slices.Clone(ids) }
}

// WithInstanceProfile attaches an IAM instance profile, by name or by ARN
// ("arn:aws:iam::…:instance-profile/…").
func WithInstanceProfile(nameOrARN string) Option {
	return func(o *options) { o.instanceProfile = nameOrARN }
}

// WithVolumeSize sets the root volume's size in GiB (0 keeps the AMI's).
func WithVolumeSize(gb int) Option { return func(o *options) { o.volumeSize = int32(gb) } }

// WithRegions adds regions that ListInstances and ListSnapshots cover, and
// where instances and snapshots are looked for by ID, besides the default
// region, Config.Regions and the regions the Provider has launched in.
func WithRegions(regions ...string) Option {
	return func(o *options) { o.regions = append(o.regions, regions...) }
}

// WithExpectedBoot sets the typical boot time the default wait starts
// from, before it has seen any (ExpectedBoot by default; d ≤ 0 keeps it).
// It has no effect when Config.WaitPolicy is set.
func WithExpectedBoot(d time.Duration) Option {
	return func(o *options) { o.expectedBoot = max(d, 0) }
}

// WithNoReboot makes CreateSnapshot image a running instance without
// rebooting it (CreateImage's NoReboot). By default EC2 reboots the
// instance so that its file systems are consistent in the image.
func WithNoReboot() Option { return func(o *options) { o.noReboot = true } }

type opener struct{ opts []Option }

// Open builds the driver from s: static credentials when s.AccessKeyID is
// set, else the AWS default credential chain; the default region from
// s.Region, AWS_REGION, AWS_DEFAULT_REGION or the chain's configuration.
// It makes no network call.
func (o opener) Open(ctx context.Context, s *driver.Settings) (driver.Driver, error) {
	region := s.Region
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if region == "" {
			region = s.Env(k)
		}
	}
	var (
		awsCfg  awssdk.Config
		credKey string
	)
	if s.AccessKeyID != "" {
		if s.SecretAccessKey == "" {
			return nil, &driver.Error{Kind: driver.KindAuthentication, Field: "Config.SecretAccessKey",
				Message: "Config.AccessKeyID is set but Config.SecretAccessKey is empty"}
		}
		awsCfg = awssdk.Config{
			Region: region,
			Credentials: awssdk.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
				s.AccessKeyID, s.SecretAccessKey, s.SessionToken)),
		}
		credKey = s.AccessKeyID
	} else {
		// The chain's own calls (SSO, STS, instance metadata) use the
		// SDK's HTTP client, which honours AWS_CA_BUNDLE; they are not
		// EC2 calls and are not paced under EC2's limits.
		lo := []func(*config.LoadOptions) error{
			config.WithRetryer(func() awssdk.Retryer { return awssdk.NopRetryer{} }),
		}
		if region != "" {
			lo = append(lo, config.WithRegion(region))
		}
		var err error
		awsCfg, err = config.LoadDefaultConfig(ctx, lo...)
		if err != nil {
			return nil, &driver.Error{Kind: driver.KindAuthentication, Field: "Config.AccessKeyID",
				Message: "loading the AWS default configuration (environment, shared config files, AWS_PROFILE)", Err: err}
		}
		if awsCfg.Credentials == nil {
			return nil, &driver.Error{Kind: driver.KindAuthentication, Field: "Config.AccessKeyID", Message: missingCredentials}
		}
		if !chainConfigured(s) {
			// Only the instance metadata service is left: ask it once,
			// briefly (on EC2 it answers at once; elsewhere there is none),
			// so that a machine with no credentials at all is told so at
			// Open, as with every driver.
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := awsCfg.Credentials.Retrieve(rctx)
			cancel()
			if err != nil {
				return nil, &driver.Error{Kind: driver.KindAuthentication, Field: "Config.AccessKeyID", Message: missingCredentials}
			}
		}
		if region == "" {
			region = awsCfg.Region
		}
		// A stable name of the chain's identity without asking it (which
		// may take network calls): its environment's key and profile.
		credKey = "default-chain:" + s.Env("AWS_ACCESS_KEY_ID") + ":" + s.Env("AWS_PROFILE")
	}
	hc := sdkHTTPClient{s.HTTPClient}
	awsCfg.HTTPClient = hc
	awsCfg.Retryer = func() awssdk.Retryer { return awssdk.NopRetryer{} }
	awsCfg.RetryMaxAttempts = 0
	client := ec2.NewFromConfig(awsCfg, func(eo *ec2.Options) {
		if s.Endpoint != "" {
			eo.BaseEndpoint = awssdk.String(s.Endpoint)
		}
		eo.APIOptions = append(eo.APIOptions, addClassMiddleware)
	})
	endpoint := s.Endpoint
	if endpoint == "" {
		endpoint = "ec2.amazonaws.com"
	}
	return newDriver(client, hc, region, s, driver.AccountKey(endpoint, credKey), o.opts), nil
}

// chainConfigured reports whether the default credential chain has a
// source besides the instance metadata service: credentials or a role in
// the environment, a profile, a container's credentials, or a shared
// config or credentials file.
func chainConfigured(s *driver.Settings) bool {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"} {
		if s.Env(k) != "" {
			return true
		}
	}
	for _, f := range []string{config.DefaultSharedCredentialsFilename(), config.DefaultSharedConfigFilename()} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}

// missingCredentials says where credentials come from.
const missingCredentials = "no AWS credentials: set Config.AccessKeyID and Config.SecretAccessKey, " +
	"or the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"

// Open builds a Provider from cfg.
//
// Credentials are cfg.AccessKeyID, cfg.SecretAccessKey and
// cfg.SessionToken when AccessKeyID is set; otherwise the AWS default
// credential chain (aws-sdk-go-v2/config.LoadDefaultConfig: environment,
// shared config and credentials files with AWS_PROFILE, SSO, web identity,
// ECS and EC2 instance metadata), which reads the process environment
// itself. The default region is cfg.Region, else AWS_REGION or
// AWS_DEFAULT_REGION (through cfg.Getenv), else the default chain's region.
// cfg.Endpoint, when set, is the base endpoint of every region's client.
// It makes no network call.
func Open(ctx context.Context, cfg provider.Config, opts ...Option) (provider.Provider, error) {
	return provider.OpenDriver(ctx, Name, opener{opts: opts}, cfg)
}

// New builds a Provider on a caller-made EC2 client, used for its region
// (client.Options().Region, else cfg.Region); clients for other regions are
// derived from its options. Credentials and endpoint are the client's;
// cfg supplies timeouts, logger, owner label, regions and policies, and
// cfg.HTTPClient, when set, replaces the client's HTTP client. Whatever
// retryer the client has, every call the Provider makes has the SDK's
// retries off and goes through the client's HTTP client (or
// cfg.HTTPClient) paced under the account's rate limits; calls the caller
// makes on the client itself are not paced.
func New(client *ec2.Client, cfg provider.Config, opts ...Option) (provider.Provider, error) {
	if client == nil {
		return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: "New", Field: "client", Message: "nil *ec2.Client"}
	}
	base := client.Options()
	if cfg.HTTPClient == nil && base.HTTPClient != nil {
		cfg.HTTPClient = &http.Client{Transport: doTransport{base.HTTPClient}}
	}
	account := fmt.Sprintf("client-%p", client)
	if cfg.AccessKeyID != "" {
		account = driver.AccountKey(awssdk.ToString(base.BaseEndpoint), cfg.AccessKeyID)
	}
	return provider.OpenDriver(context.Background(), Name, driver.OpenerFunc(func(_ context.Context, s *driver.Settings) (driver.Driver, error) {
		region := base.Region
		if region == "" {
			region = s.Region
		}
		return newDriver(client, sdkHTTPClient{s.HTTPClient}, region, s, account, opts), nil
	}), cfg)
}

// drv is the EC2 driver. It is safe for concurrent use.
type drv struct {
	base    *ec2.Client
	hc      ec2.HTTPClient // the paced client every call goes through
	region  string         // default region; may be empty
	account string
	log     *slog.Logger
	opts    options

	mu      sync.Mutex
	clients map[string]*ec2.Client
	// covered are the regions listings cover: the default region, the
	// configured ones, then those this driver made something in, in the
	// order first seen (only appended to, so that page tokens naming a
	// region stay valid).
	covered []string
	placed  map[string]placement       // instance or AMI ID -> the region it was made in
	images  map[imageKey]resolvedImage // the last lookup's AMI, per region, image and architecture
	// fetchMu makes one image lookup at a time: creates made at once
	// wait for it and share its AMI rather than each repeating it.
	fetchMu sync.Mutex

	pricingState // the Price List API client (catalog.go)
}

type placement struct {
	region string
	at     time.Time
}

// maxPlaced bounds the driver's memory of where it made what; entries
// older than placedLife are forgotten past it (the region stays covered).
const (
	maxPlaced  = 4096
	placedLife = time.Hour
)

func newDriver(client *ec2.Client, hc ec2.HTTPClient, region string, s *driver.Settings, account string, opts []Option) *drv {
	d := &drv{
		base: client, hc: hc, region: region, account: account, log: s.Logger,
		clients: map[string]*ec2.Client{},
		placed:  map[string]placement{},
		images:  map[imageKey]resolvedImage{},
	}
	for _, o := range opts {
		o(&d.opts)
	}
	if region != "" {
		d.clients[region] = client
	}
	for _, r := range append(append([]string{region}, s.Regions...), d.opts.regions...) {
		d.cover(r)
	}
	return d
}

// Info describes EC2: native idempotency (RunInstances' ClientToken), its
// request buckets per API (see RateLimits), one key pair per instance.
func (d *drv) Info() driver.Info {
	return driver.Info{
		Name: Name, Account: d.account, RateLimits: RateLimits, RequestClass: requestClass,
		NativeIdempotency: true,
		ExpectedBoot:      cmp.Or(d.opts.expectedBoot, ExpectedBoot), ExpectedSnapshot: ExpectedSnapshot,
		SSHKeys: true, UserData: true, MaxUserDataBytes: MaxUserDataBytes,
	}
}

// As reaches the SDK client of the default region: target must be a
// **ec2.Client.
func (d *drv) As(target any) bool {
	if t, ok := target.(**ec2.Client); ok {
		*t = d.base
		return true
	}
	return false
}

// callOpt applies to every SDK call the driver makes: no SDK retries (the
// portable layer's are the only ones), the paced HTTP client, and the
// rate-class middleware (see requestClass), also on a client given to New.
func (d *drv) callOpt(o *ec2.Options) {
	o.Retryer = awssdk.NopRetryer{}
	o.RetryMaxAttempts = 0
	o.HTTPClient = d.hc
	o.APIOptions = append(o.APIOptions, addClassMiddleware)
}

// client returns the EC2 client of region, made from the base client's
// options on first use.
func (d *drv) client(region string) *ec2.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.clients[region]; ok {
		return c
	}
	c := ec2.New(d.base.Options(), func(o *ec2.Options) { o.Region = region })
	d.clients[region] = c
	return c
}

// cover adds region to the covered regions.
func (d *drv) cover(region string) {
	if region == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.covered, region) {
		d.covered = append(d.covered, region)
	}
}

// regions returns the covered regions.
func (d *drv) regions() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.covered)
}

// place records that id was made in region: later calls about id go
// there, and listings cover region.
func (d *drv) place(id, region string) {
	d.cover(region)
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.placed) >= maxPlaced {
		for k, v := range d.placed {
			if now.Sub(v.at) > placedLife {
				delete(d.placed, k)
			}
		}
	}
	d.placed[id] = placement{region: region, at: now}
}

// regionsFor returns the regions where id may be: the one it was made in
// when this driver made it, else every covered region.
func (d *drv) regionsFor(id string) []string {
	d.mu.Lock()
	pl, ok := d.placed[id]
	d.mu.Unlock()
	if ok {
		return []string{pl.region}
	}
	return d.regions()
}

// noRegion is the error of a call that needs a region when none is known.
func noRegion() error {
	return driver.Invalid("Config.Region", "no region: set Config.Region, AWS_REGION or AWS_DEFAULT_REGION")
}

// sdkHTTPClient is the HTTP client of every SDK call: the paced client
// the portable layer gives the driver (per-request deadlines after pacing,
// bounded answers).
type sdkHTTPClient struct{ c *http.Client }

func (h sdkHTTPClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		// smithy-go closes the request body as soon as Do returns, and its
		// body's WriteTo then answers io.EOF. net/http may still be
		// checking the body for extra bytes after the answer came (with
		// io.Copy, which takes WriteTo's EOF for an error); the write
		// error then closes the connection under the answer being read.
		// Hiding WriteTo makes a read after close a clean end of body.
		req.Body = readOnlyBody{req.Body}
	}
	return h.c.Do(req)
}

// readOnlyBody hides every method of a request body but Read and Close.
type readOnlyBody struct{ rc io.ReadCloser }

func (b readOnlyBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b readOnlyBody) Close() error               { return b.rc.Close() }

// doTransport makes an SDK HTTP client (a client given to New has one of
// its own, with its TLS and proxy settings) the transport under the
// portable layer's pacing.
type doTransport struct{ c ec2.HTTPClient }

func (t doTransport) RoundTrip(req *http.Request) (*http.Response, error) { return t.c.Do(req) }

var (
	_ driver.Driver      = (*drv)(nil)
	_ driver.Snapshotter = (*drv)(nil)
	_ driver.Orphaner    = (*drv)(nil)
)
