package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/digitalocean/godo"
	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/provider/digitalocean"
	"github.com/spuffgo/spuff/provider/hetzner"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// cloud is what the report knows of one provider: its real boot times and
// rate limits (scaled at run time), its simulated API, its driver, and the
// bare SDK call GetInstance is compared with.
type cloud struct {
	// name is the driver's registered name; title the cloud's.
	name, title string
	// expected is the driver's ExpectedBoot: the prior its default wait
	// starts from, and the centre of the boot times the report simulates
	// (times 0.5, 1 and 2 in (a)).
	expected time.Duration
	// limits are the account's real API rate limits as the driver paces
	// them (real time).
	limits []provider.RateLimit
	// limitText describes them.
	limitText string
	// pageSize is the driver's ListInstances page size.
	pageSize int
	// newServer serves a simulated cloud of this dialect.
	newServer func(opts simcloud.Options) *simcloud.Server
	// config reaches srv with valid credentials.
	config func(url, token string) provider.Config
	// open builds the driver with the prior boot time its default wait
	// starts from (the driver's ExpectedBoot, scaled).
	open func(ctx context.Context, cfg provider.Config, expected time.Duration) (provider.Provider, error)
	// request is a valid create request.
	request func(name string) provider.InstanceRequest
	// modelID maps a driver's instance ID to the model's.
	modelID func(id string) (int64, error)
	// instanceID maps a model ID to the driver's instance ID.
	instanceID func(id int64) string
	// bare returns the bare SDK's get-one-instance call on the server,
	// over rt.
	bare func(url, token, id string, rt http.RoundTripper) (func(ctx context.Context) error, error)
}

// bootJitter spreads the simulated boot times by ±20 % around their
// centre (uniform).
const bootJitter = 0.2

// world returns the realistic world of c's dialect at time scale s, with
// machines that boot in factor × the driver's prior (±bootJitter): every
// documented delay (listing lag, destroy windows, late public IPs, EC2's
// eventual consistency) and rate limit of the cloud, scaled.
func (c *cloud) world(s scaling, factor float64, seed uint64) simcloud.Options {
	o := simcloud.Realistic(s.factor)
	o.Seed = seed
	o.BootDelay = time.Duration(factor * float64(c.expected))
	o.BootJitter = bootJitter
	o.SnapshotFailRate = -1
	return o
}

// unlimitedWorld is world without rate limits (EC2's buckets included).
func (c *cloud) unlimitedWorld(s scaling, factor float64, seed uint64) simcloud.Options {
	o := c.world(s, factor, seed)
	o.RateLimits = unlimited
	o.Buckets = map[string]simcloud.RateLimit{}
	return o
}

// clouds are the three providers, in report order.
var clouds = []*cloud{
	{
		name: digitalocean.Name, title: "DigitalOcean",
		expected:  digitalocean.ExpectedBoot,
		limits:    digitalocean.RateLimits,
		limitText: "250/min and 5,000/h",
		pageSize:  digitalocean.PageSize,
		newServer: func(opts simcloud.Options) *simcloud.Server { return dosim.NewServer(opts) },
		config: func(url, token string) provider.Config {
			return provider.Config{Endpoint: url, Token: provider.Secret(token)}
		},
		open: func(ctx context.Context, cfg provider.Config, expected time.Duration) (provider.Provider, error) {
			return digitalocean.Open(ctx, cfg, digitalocean.WithExpectedBoot(expected))
		},
		request: func(name string) provider.InstanceRequest {
			return provider.InstanceRequest{Name: name, Region: "nyc3", Size: "s-1vcpu-1gb", Image: provider.Ubuntu("24.04")}
		},
		modelID:    func(id string) (int64, error) { return strconv.ParseInt(id, 10, 64) },
		instanceID: func(id int64) string { return strconv.FormatInt(id, 10) },
		bare: func(url, token, id string, rt http.RoundTripper) (func(ctx context.Context) error, error) {
			n, err := strconv.Atoi(id)
			if err != nil {
				return nil, err
			}
			hc := &http.Client{Transport: bearer{token: token, base: rt}}
			c, err := godo.New(hc, godo.SetBaseURL(url+"/"))
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				_, _, err := c.Droplets.Get(ctx, n)
				return err
			}, nil
		},
	},
	{
		name: hetzner.Name, title: "Hetzner",
		expected:  hetzner.ExpectedBoot,
		limits:    hetzner.RateLimits,
		limitText: "3,600/h, 1/s refill",
		pageSize:  hetzner.PageSize,
		newServer: func(opts simcloud.Options) *simcloud.Server { return hcloudsim.NewServer(opts) },
		config: func(url, token string) provider.Config {
			return provider.Config{Endpoint: url, Token: provider.Secret(token)}
		},
		open: func(ctx context.Context, cfg provider.Config, expected time.Duration) (provider.Provider, error) {
			return hetzner.Open(ctx, cfg, hetzner.WithExpectedBoot(expected))
		},
		request: func(name string) provider.InstanceRequest {
			return provider.InstanceRequest{Name: name, Region: "fsn1", Size: "cx22", Image: provider.Ubuntu("24.04")}
		},
		modelID:    func(id string) (int64, error) { return strconv.ParseInt(id, 10, 64) },
		instanceID: func(id int64) string { return strconv.FormatInt(id, 10) },
		bare: func(url, token, id string, rt http.RoundTripper) (func(ctx context.Context) error, error) {
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return nil, err
			}
			c := hcloud.NewClient(hcloud.WithEndpoint(url), hcloud.WithToken(token), hcloud.WithHTTPClient(&http.Client{Transport: rt}))
			return func(ctx context.Context) error {
				s, _, err := c.Server.GetByID(ctx, n)
				if err == nil && s == nil {
					err = fmt.Errorf("server %d not found", n)
				}
				return err
			}, nil
		},
	},
	{
		name: aws.Name, title: "AWS EC2",
		expected:  aws.ExpectedBoot,
		limits:    aws.RateLimits,
		limitText: "per-action buckets: RunInstances 5 at 2/s and 1,000 instances at 2/s; TerminateInstances 100 at 5/s and 1,000 instances at 20/s; reads 100 at 20/s",
		pageSize:  1000,
		newServer: func(opts simcloud.Options) *simcloud.Server { return ec2sim.NewServer(opts) },
		config: func(url, token string) provider.Config {
			return provider.Config{Endpoint: url, AccessKeyID: token, SecretAccessKey: "simulated", Region: ec2sim.Regions[0]}
		},
		open: func(ctx context.Context, cfg provider.Config, expected time.Duration) (provider.Provider, error) {
			return aws.Open(ctx, cfg, aws.WithExpectedBoot(expected))
		},
		request: func(name string) provider.InstanceRequest {
			return provider.InstanceRequest{Name: name, Region: ec2sim.Regions[0], Size: "t3.micro", Image: provider.Ubuntu("24.04")}
		},
		modelID:    ec2sim.ModelID,
		instanceID: ec2sim.InstanceID,
		bare: func(url, token, id string, rt http.RoundTripper) (func(ctx context.Context) error, error) {
			c := ec2.NewFromConfig(awssdk.Config{
				Region:      ec2sim.Regions[0],
				Credentials: credentials.NewStaticCredentialsProvider(token, "simulated", ""),
				HTTPClient:  &http.Client{Transport: rt},
			}, func(o *ec2.Options) { o.BaseEndpoint = awssdk.String(url) })
			in := &ec2.DescribeInstancesInput{InstanceIds: []string{id}}
			return func(ctx context.Context) error {
				out, err := c.DescribeInstances(ctx, in)
				if err == nil && (len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0) {
					err = fmt.Errorf("instance %s not found", id)
				}
				return err
			}, nil
		},
	},
}

// cloudNamed returns the cloud of a driver name, or nil.
func cloudNamed(name string) *cloud {
	for _, c := range clouds {
		if c.name == name {
			return c
		}
	}
	return nil
}

// bearer adds DigitalOcean's bearer token, as godo's oauth2 client would.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// scaling is the report's time scale: every real duration (boot times,
// rate-limit periods, timeouts, poll intervals) is multiplied by factor.
type scaling struct{ factor float64 }

func (s scaling) d(d time.Duration) time.Duration { return time.Duration(float64(d) * s.factor) }

// real converts a scaled duration back to real time.
func (s scaling) real(d time.Duration) time.Duration { return time.Duration(float64(d) / s.factor) }

// limits returns the driver's rate limits scaled: the same bucket sizes,
// refilled 1/factor times faster, for the account's provider.Pacer.
func (s scaling) limits(ls []provider.RateLimit) []provider.RateLimit {
	out := make([]provider.RateLimit, len(ls))
	for i, l := range ls {
		out[i] = l
		out[i].Per = s.d(l.Per)
	}
	return out
}

// timeouts are spuff's default timeouts, scaled.
func (s scaling) timeouts() provider.ProviderTimeouts {
	t := provider.DefaultTimeouts()
	return provider.ProviderTimeouts{
		InstanceReady: s.d(t.InstanceReady), ActionComplete: s.d(t.ActionComplete),
		PollInterval: s.d(t.PollInterval), HTTPRequest: s.d(t.HTTPRequest),
		SSHConnect: s.d(t.SSHConnect), CloudInit: s.d(t.CloudInit), Lookup: s.d(t.Lookup),
	}
}

// retry is spuff's default retry policy, scaled.
func (s scaling) retry() provider.RetryPolicy {
	return provider.RetryPolicy{MaxAttempts: 5, InitialDelay: s.d(250 * time.Millisecond), MaxDelay: s.d(15 * time.Second)}
}
