package aws

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/spuffgo/spuff/provider"
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
	// consistencyWindow is how long after a launch (or CreateImage) an
	// InvalidInstanceID.NotFound (InvalidAMIID.NotFound) is taken for EC2's
	// eventual consistency rather than for a missing resource.
	consistencyWindow = time.Minute
	// maxResponseBytes bounds what is read of one API answer.
	maxResponseBytes = 32 << 20
	// listPageSize is DescribeInstances' and DescribeImages' largest page.
	listPageSize = 1000
)

// RateLimit is EC2's default request token bucket for non-mutating actions
// (a bucket of 100 requests refilled at 20 per second), which the driver
// paces every call under.
var RateLimit = provider.RateLimit{Requests: 100, Per: 5 * time.Second}

func init() {
	provider.Register(Name, func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
		return Open(ctx, cfg)
	})
}

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
}

// WithSubnet launches instances in the given subnet ("subnet-…") instead of
// the default VPC's. The subnet must assign public IPv4 addresses, or
// WaitReady never sees one.
func WithSubnet(id string) Option { return func(o *options) { o.subnet = id } }

// WithSecurityGroups attaches the given security groups ("sg-…") instead of
// the VPC's default group.
func WithSecurityGroups(ids ...string) Option {
	return func(o *options) { o.securityGroups = append([]string(nil), ids...) }
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
// region and the regions this Provider has launched in.
func WithRegions(regions ...string) Option {
	return func(o *options) { o.regions = append(o.regions, regions...) }
}

// WithNoReboot makes CreateSnapshot image a running instance without
// rebooting it (CreateImage's NoReboot). By default EC2 reboots the
// instance so that its file systems are consistent in the image.
func WithNoReboot() Option { return func(o *options) { o.noReboot = true } }

// Provider is the EC2 driver. It is safe for concurrent use.
type Provider struct {
	opts   options
	owner  string
	region string // default region; may be empty
	policy *provider.Policy
	// fast schedules the short waits of eventual consistency (a resource
	// not yet visible, a snapshot not yet released).
	fast *provider.Policy
	// callOpt applies to every SDK call: no SDK retries (ours are the
	// only ones) and a bound on the answer's size.
	callOpt func(*ec2.Options)

	mu       sync.Mutex
	base     *ec2.Client
	clients  map[string]*ec2.Client
	placed   map[string]placement // instance or AMI ID -> where and when we made it
	used     map[string]bool      // regions this Provider made something in
	imageMap map[imageKey]cachedImage
	// fetchMu makes one image lookup at a time: creates made at once
	// wait for it rather than each repeating it.
	fetchMu sync.Mutex
}

type placement struct {
	region string
	at     time.Time
}

var _ provider.Provider = (*Provider)(nil)

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
func Open(ctx context.Context, cfg provider.Config, opts ...Option) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = cfg.Env("AWS_REGION")
	}
	if region == "" {
		region = cfg.Env("AWS_DEFAULT_REGION")
	}
	credKey := cfg.AccessKeyID
	if credKey == "" {
		credKey = "default-chain:" + cfg.Env("AWS_ACCESS_KEY_ID") + ":" + cfg.Env("AWS_PROFILE")
	}
	policy := newPolicy(cfg, credKey)

	var awsCfg awssdk.Config
	if cfg.AccessKeyID != "" {
		if cfg.SecretAccessKey == "" {
			return nil, &provider.Error{Kind: provider.KindAuthentication, Provider: Name, Op: "Open", Field: "Config.SecretAccessKey",
				Message: "Config.AccessKeyID is set but Config.SecretAccessKey is empty"}
		}
		awsCfg = awssdk.Config{
			Region: region,
			Credentials: awssdk.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
				cfg.AccessKeyID, string(cfg.SecretAccessKey), string(cfg.SessionToken))),
		}
		if cfg.HTTPClient != nil {
			awsCfg.HTTPClient = cfg.HTTPClient
		}
	} else {
		lo := []func(*config.LoadOptions) error{
			config.WithRetryer(func() awssdk.Retryer { return awssdk.NopRetryer{} }),
		}
		// Without an HTTP client of the caller's, the SDK builds its own,
		// which honours AWS_CA_BUNDLE; pacing wraps it per call.
		if cfg.HTTPClient != nil {
			lo = append(lo, config.WithHTTPClient(cfg.HTTPClient))
		}
		if region != "" {
			lo = append(lo, config.WithRegion(region))
		}
		var err error
		awsCfg, err = config.LoadDefaultConfig(ctx, lo...)
		if err != nil {
			return nil, &provider.Error{Kind: provider.KindAuthentication, Provider: Name, Op: "Open",
				Message: "loading the AWS default configuration (environment, shared config files, AWS_PROFILE)", Err: err}
		}
		if awsCfg.Credentials == nil {
			return nil, &provider.Error{Kind: provider.KindAuthentication, Provider: Name, Op: "Open",
				Message: "no AWS credentials: set Config.AccessKeyID and Config.SecretAccessKey, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"}
		}
		region = awsCfg.Region
	}
	awsCfg.Retryer = func() awssdk.Retryer { return awssdk.NopRetryer{} }
	awsCfg.RetryMaxAttempts = 0
	client := ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = awssdk.String(cfg.Endpoint)
		}
	})
	return build(client, cfg, region, policy, opts), nil
}

// New builds a Provider on a caller-made EC2 client, used for its region
// (client.Options().Region, else cfg.Region); clients for other regions are
// derived from its options. Credentials and endpoint are the client's;
// cfg supplies timeouts, logger, owner label and policies. Whatever retryer
// the client has, the driver makes every call with the SDK's retries off,
// and paces it under the account's rate limit around the client's own
// HTTP client.
func New(client *ec2.Client, cfg provider.Config, opts ...Option) *Provider {
	region := client.Options().Region
	if region == "" {
		region = cfg.Region
	}
	credKey := cfg.AccessKeyID
	if credKey == "" {
		credKey = fmt.Sprintf("client:%p", client)
	}
	return build(client, cfg, region, newPolicy(cfg, credKey), opts)
}

func newPolicy(cfg provider.Config, credKey string) *provider.Policy {
	return provider.NewPolicy(Name, cfg, provider.PolicyDefaults{
		Credential:   credKey,
		Endpoint:     cfg.Endpoint,
		RateLimits:   []provider.RateLimit{RateLimit},
		ExpectedBoot: ExpectedBoot,
	})
}

func build(client *ec2.Client, cfg provider.Config, region string, policy *provider.Policy, opts []Option) *Provider {
	p := &Provider{
		owner:    cfg.OwnerValue(),
		region:   region,
		policy:   policy,
		base:     client,
		clients:  map[string]*ec2.Client{},
		placed:   map[string]placement{},
		used:     map[string]bool{},
		imageMap: map[imageKey]cachedImage{},
	}
	p.opts.regions = append(p.opts.regions, cfg.Regions...)
	for _, o := range opts {
		o(&p.opts)
	}
	fastCfg := cfg
	fastCfg.Pacer = policy.Pacer
	if fastCfg.WaitPolicy == nil {
		fastCfg.WaitPolicy = provider.ExponentialWait(250*time.Millisecond, 2*time.Second, 2, 0.2)
	}
	p.fast = provider.NewPolicy(Name, fastCfg, provider.PolicyDefaults{})
	if region != "" {
		p.clients[region] = client
	}
	p.callOpt = func(o *ec2.Options) {
		o.Retryer = awssdk.NopRetryer{}
		o.RetryMaxAttempts = 0
		next := o.HTTPClient
		if next == nil {
			next = http.DefaultClient
		}
		o.HTTPClient = pacedClient{pacer: policy.Pacer, next: next}
	}
	return p
}

// Name returns "aws".
func (p *Provider) Name() string { return Name }

// String describes the provider without its credentials.
func (p *Provider) String() string {
	return fmt.Sprintf("aws.Provider{region: %q, owner: %q}", p.region, p.owner)
}

// Capabilities reports what EC2 supports through this driver. IPv6 is
// false: instances in a default VPC get no public IPv6 address.
func (p *Provider) Capabilities() provider.Capabilities {
	return provider.Capabilities{Snapshots: true, SSHKeys: true, UserData: true, MaxUserDataBytes: MaxUserDataBytes}
}

// As gives access to the SDK client of the default region: target must be
// a **ec2.Client.
func (p *Provider) As(target any) bool {
	if t, ok := target.(**ec2.Client); ok {
		*t = p.base
		return true
	}
	return false
}

// Stats returns what the provider's policy has done (API calls, retries,
// pacing).
func (p *Provider) Stats() provider.PolicyStats { return p.policy.Stats() }

// client returns the EC2 client of region, made from the base client's
// options on first use.
func (p *Provider) client(region string) *ec2.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[region]; ok {
		return c
	}
	c := ec2.New(p.base.Options(), func(o *ec2.Options) { o.Region = region })
	p.clients[region] = c
	return c
}

// regions lists where to look for the provider's resources: the default
// region, the WithRegions ones, then every region this Provider made an
// instance or snapshot in (not every region it was asked about: a create
// in a region that does not exist must not break later listings).
func (p *Provider) regions() []string {
	var out []string
	add := func(r string) {
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	add(p.region)
	for _, r := range p.opts.regions {
		add(r)
	}
	p.mu.Lock()
	known := make([]string, 0, len(p.used))
	for r := range p.used {
		known = append(known, r)
	}
	p.mu.Unlock()
	slices.Sort(known)
	for _, r := range known {
		add(r)
	}
	return out
}

// regionsFor returns the regions where id may be: the one it was made in
// when this Provider made it, else every region it covers.
func (p *Provider) regionsFor(id string) []string {
	p.mu.Lock()
	pl, ok := p.placed[id]
	p.mu.Unlock()
	if ok {
		return []string{pl.region}
	}
	return p.regions()
}

// place records that id was made in region now.
func (p *Provider) place(id, region string) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.placed[id] = placement{region: region, at: now}
	p.used[region] = true
	if len(p.placed) > 4096 {
		for k, v := range p.placed {
			if now.Sub(v.at) > consistencyWindow {
				delete(p.placed, k)
			}
		}
	}
}

// fresh reports whether this Provider made id within the consistency
// window, and how much of the window is left.
func (p *Provider) fresh(id string) (time.Duration, bool) {
	p.mu.Lock()
	pl, ok := p.placed[id]
	p.mu.Unlock()
	if !ok {
		return 0, false
	}
	left := consistencyWindow - time.Since(pl.at)
	return left, left > 0
}

// noRegion is the error of a call that needs a region when none is known.
func noRegion(op string) error {
	return &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Field: "Config.Region",
		Message: "no region: set Config.Region, AWS_REGION or AWS_DEFAULT_REGION"}
}

// call runs one EC2 call in region under the retry policy: fn must be safe
// to repeat. Its error is classified.
func (p *Provider) call(ctx context.Context, op, region string, fn func(ctx context.Context, c *ec2.Client) error) error {
	c := p.client(region)
	return p.policy.Call(ctx, op, func(ctx context.Context) error {
		return classify(op, fn(ctx, c))
	})
}

// pacedClient is the HTTP client of every SDK call: it waits for the
// account's Pacer before each request and feeds it each answer, and caps
// the size of the answer the SDK reads, so a runaway body fails instead of
// exhausting memory. It wraps the SDK's own client (or the caller's), so
// settings such as AWS_CA_BUNDLE keep working, and it paces a client
// given to New as well; the credential providers' calls (SSO, STS,
// instance metadata) are not paced under EC2's limit.
type pacedClient struct {
	pacer *provider.Pacer
	next  ec2.HTTPClient
}

func (c pacedClient) Do(req *http.Request) (*http.Response, error) {
	if err := c.pacer.Wait(req.Context()); err != nil {
		return nil, err
	}
	if req.Body != nil {
		// smithy-go closes the request body as soon as Do returns, and its
		// body's WriteTo then answers io.EOF. net/http may still be
		// checking the body for extra bytes after the answer came (with
		// io.Copy, which takes WriteTo's EOF for an error); the write
		// error then closes the connection under the answer being read.
		// Hiding WriteTo makes a read after close a clean end of body.
		req.Body = readOnlyBody{req.Body}
	}
	resp, err := c.next.Do(req)
	if resp != nil {
		c.pacer.Observe(resp.StatusCode, resp.Header)
		provider.LimitBody(resp, maxResponseBytes)
	}
	return resp, err
}

// readOnlyBody hides every method of a request body but Read and Close.
type readOnlyBody struct{ rc io.ReadCloser }

func (b readOnlyBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b readOnlyBody) Close() error               { return b.rc.Close() }
