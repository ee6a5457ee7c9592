// Package digitalocean is spuff's DigitalOcean driver, on the official SDK
// github.com/digitalocean/godo. Importing it registers the provider
// "digitalocean":
//
//	import _ "github.com/spuffgo/spuff/provider/digitalocean"
//
//	p, err := provider.Open(ctx, "digitalocean", provider.Config{}) // token from DIGITALOCEAN_TOKEN
//
// New builds one on a *godo.Client the caller made, for full control of the
// transport.
//
// # Configuration
//
// The API token is Config.Token, else the environment variable
// DIGITALOCEAN_TOKEN, else DIGITALOCEAN_ACCESS_TOKEN (doctl's name). The
// endpoint is Config.Endpoint, else https://api.digitalocean.com/. Calls
// are paced under DigitalOcean's published limits, 250 requests a minute
// and 5,000 an hour per account, corrected by the RateLimit-* headers.
//
// # Mapping
//
//   - Instances are droplets; Region is the region slug ("nyc3") and Size
//     the size slug ("s-1vcpu-1gb").
//   - Labels are tags "key:value" (a label with an empty value is the tag
//     "key"); the ownership label is the tag "managed-by:<owner>", and
//     listing asks for it with tag_name, 200 droplets a page (the API's
//     largest), every page.
//   - provider.Ubuntu("24.04") and provider.Debian("12") are the slugs
//     "ubuntu-24-04-x64" and "debian-12-x64" (dots become dashes).
//     CustomImage takes an image ID or slug; SnapshotImage a snapshot ID.
//   - A snapshot is the droplet's snapshot action, waited on; the image it
//     made is then found among the droplet's snapshots, tagged as managed
//     and returned with its real ID.
//   - User data is limited to 64 KiB and must be UTF-8 (it travels in a
//     JSON string), checked before any call. Droplet names take letters,
//     digits, '.' and '-' only.
//
// # Retries
//
// godo's own retries are off: the driver builds its client with godo.New on
// a plain, paced *http.Client that adds the token (godo.NewFromToken would
// retry every request four times, a create included, which can make a
// second droplet; and godo.WithRetryAndBackoffs panics on a client that is
// not OAuth2's). spuff's retry policy is the only one. Droplet names are
// not unique on DigitalOcean, so a create is protected by a lookup: before
// creating, and again after a create whose outcome is unknown (a lost
// answer, a 5xx, a timeout), the driver lists the live droplets with the
// ownership tag and the exact name, and adopts the one it finds instead of
// making a second. DigitalOcean's listings may lag a create, so after an
// unknown outcome the driver looks for up to twice
// Config.Timeouts.PollInterval (10 s by default) before creating again.
// Likewise WaitReady takes a 404 for a droplet this Provider made less than
// a minute ago, and has not seen since, for "not visible yet".
//
// # Errors
//
// godo does not parse the "id" of DigitalOcean's error bodies, so errors are
// classified by HTTP status: 401 and 403 are authentication errors, 404 not
// found, 422 and 400 invalid config (or quota exceeded when the message
// says a limit would be exceeded), 429 rate limit, with the Retry-After, or
// the time to RateLimit-Reset when no request is left. The *godo.ErrorResponse
// is reachable with errors.As.
package digitalocean

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/provider"
)

// Name is the name the driver registers under.
const Name = "digitalocean"

// MaxUserDataBytes is DigitalOcean's limit on user data: 64 KiB.
const MaxUserDataBytes = 64 << 10

// PageSize is the page size of list calls: the API's largest.
const PageSize = 200

// DefaultEndpoint is DigitalOcean's API.
const DefaultEndpoint = "https://api.digitalocean.com/"

// ExpectedBoot is a droplet's typical time from create to active with an
// IP, which tunes the default wait policy.
const ExpectedBoot = 45 * time.Second

// RateLimits are DigitalOcean's published API limits per account.
var RateLimits = []provider.RateLimit{
	{Requests: 250, Per: time.Minute},
	{Requests: 5000, Per: time.Hour},
}

func init() {
	provider.Register(Name, func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
		p, err := Open(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return p, nil
	})
}

// Provider is the DigitalOcean driver. Safe for concurrent use.
type Provider struct {
	client   *godo.Client
	pol      *provider.Policy
	owner    string
	ownerTag string
	unsure   provider.Recent // names whose last create had an unknown outcome
}

var _ provider.Provider = (*Provider)(nil)

// Option tunes a Provider.
type Option func(*options)

type options struct {
	expectedBoot time.Duration
}

// WithExpectedBoot sets the typical boot time the default wait policy is
// tuned to (ExpectedBoot by default). It has no effect when
// Config.WaitPolicy is set.
func WithExpectedBoot(d time.Duration) Option {
	return func(o *options) { o.expectedBoot = d }
}

func token(cfg provider.Config) provider.Secret {
	return cfg.TokenFromEnv("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN")
}

func endpoint(cfg provider.Config) string {
	e := cfg.Endpoint
	if e == "" {
		e = DefaultEndpoint
	}
	if !strings.HasSuffix(e, "/") {
		e += "/" // godo resolves "v2/droplets" against it
	}
	return e
}

func newPolicy(cfg provider.Config, credential string, o options) *provider.Policy {
	boot := o.expectedBoot
	if boot <= 0 {
		boot = ExpectedBoot
	}
	return provider.NewPolicy(Name, cfg, provider.PolicyDefaults{
		Credential: credential, Endpoint: endpoint(cfg), RateLimits: RateLimits, ExpectedBoot: boot,
	})
}

// Open builds a Provider from cfg: the token from Config.Token or the
// environment, a godo client made with godo.New on a paced HTTP client (no
// retries of its own). It makes no network call.
func Open(_ context.Context, cfg provider.Config, opts ...Option) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, provider.Classify(Name, "Open", 0, nil, err)
	}
	tok := token(cfg)
	if tok == "" {
		return nil, &provider.Error{Kind: provider.KindAuthentication, Provider: Name, Op: "Open",
			Message: "no API token: set Config.Token or the environment variable DIGITALOCEAN_TOKEN"}
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	pol := newPolicy(cfg, string(tok), o)
	base := &http.Client{}
	if cfg.HTTPClient != nil {
		cp := *cfg.HTTPClient
		base = &cp
	}
	base.Transport = &transport{token: string(tok), base: base.Transport}
	client, err := godo.New(pol.Client(base), godo.SetBaseURL(endpoint(cfg)), godo.SetUserAgent("spuff"))
	if err != nil {
		return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: "Open", Field: "Config.Endpoint", Message: "bad endpoint", Err: err}
	}
	return newProvider(client, cfg, pol), nil
}

// New builds a Provider on a godo client the caller made. The client is used
// as it is: spuff does not wrap its transport, so build it with godo.New
// (not godo.NewFromToken, whose retries can repeat a create) on a client
// paced with provider.Pacer.Client to keep the account under its rate
// limit. cfg gives the owner, timeouts, retry and wait policies; its token
// and endpoint are not used.
func New(client *godo.Client, cfg provider.Config, opts ...Option) (*Provider, error) {
	if client == nil {
		return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: "New", Field: "client", Message: "nil *godo.Client"}
	}
	if err := cfg.Validate(); err != nil {
		return nil, provider.Classify(Name, "New", 0, nil, err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if client.BaseURL != nil {
		cfg.Endpoint = client.BaseURL.String()
	}
	return newProvider(client, cfg, newPolicy(cfg, fmt.Sprintf("client-%p", client), o)), nil
}

func newProvider(client *godo.Client, cfg provider.Config, pol *provider.Policy) *Provider {
	owner := cfg.OwnerValue()
	return &Provider{client: client, pol: pol, owner: owner, ownerTag: provider.OwnerLabel + ":" + owner}
}

// Name returns "digitalocean".
func (p *Provider) Name() string { return Name }

// String describes the provider without its credentials: fmt prints the
// SDK client's fields, the token among them, for a pointer reached through
// a verb other than %v.
func (p *Provider) String() string { return fmt.Sprintf("digitalocean.Provider{owner: %q}", p.owner) }

// Capabilities reports snapshots, SSH keys, user data up to 64 KiB and IPv6.
func (p *Provider) Capabilities() provider.Capabilities {
	return provider.Capabilities{Snapshots: true, SSHKeys: true, UserData: true, IPv6: true, MaxUserDataBytes: MaxUserDataBytes}
}

// Client returns the godo client the Provider uses.
func (p *Provider) Client() *godo.Client { return p.client }

// Stats returns the calls, retries and pacing the Provider has done.
func (p *Provider) Stats() provider.PolicyStats { return p.pol.Stats() }

// transport adds the bearer token to each request. (The Policy's client
// bounds what is read of each answer.)
type transport struct {
	token string
	base  http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return base.RoundTrip(r)
}
