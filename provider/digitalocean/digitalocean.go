// Package digitalocean is spuff's DigitalOcean driver, on the official SDK
// github.com/digitalocean/godo. Importing it registers the provider
// "digitalocean":
//
//	import _ "github.com/spuffgo/spuff/provider/digitalocean"
//
//	p, err := provider.Open(ctx, "digitalocean", provider.Config{}) // token from DIGITALOCEAN_TOKEN
//
// New builds one on a *godo.Client the caller made, for full control of the
// transport; As reaches the client of either:
//
//	var c *godo.Client
//	p.As(&c)
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
// # Retries and exactly-once
//
// godo's own retries are off: the driver builds its client with godo.New on
// the paced *http.Client spuff gives it, adding the token (godo.NewFromToken
// would retry every request four times, a create included, which can make a
// second droplet). Droplet names are not unique on DigitalOcean and it has
// no idempotency key, so package provider's create protocol protects a
// create by a look-up: by name before creating, and by the request's key
// tag (spuff-key:<key>) after an attempt whose answer was lost.
//
// A snapshot is the droplet's snapshot action; DigitalOcean cannot tag it
// before it exists, so its labels travel in its name ("name [spuff:
// managed-by:spuff spuff-key:…]") until it is made and tagged: ListSnapshots
// finds it either way, and shows the plain name.
//
// # Expiry
//
// A request's TTL is kept on the droplet as the label spuff-expires, which
// provider.Reap acts on. DigitalOcean offers no way for a machine to destroy
// itself without credentials, and a powered-off droplet is still billed:
// nothing ends an expired droplet but a reaper (spuffctl reap, or
// provider.Reap from a scheduled job). Run one.
//
// # Errors
//
// godo does not parse the "id" of DigitalOcean's error bodies, so errors are
// classified by HTTP status: 401 and 403 are authentication errors, 404 not
// found, 422 and 400 invalid config naming the field the message names (or
// quota exceeded when it says a limit would be exceeded, or no capacity
// when a size or the region is unavailable), 429 rate limit, with the
// Retry-After, or the time to RateLimit-Reset when no request is left. The
// *godo.ErrorResponse is reachable with errors.As.
//
// # Catalogue
//
// provider.FetchCatalog reads /v2/regions and /v2/sizes, every page: a
// size is offered in the regions it lists, at its price_hourly in US
// dollars (see Catalog).
package digitalocean

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
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
// IP, the prior the default wait starts from.
const ExpectedBoot = 45 * time.Second

// ExpectedSnapshot is a droplet snapshot's typical time.
const ExpectedSnapshot = 2 * time.Minute

// keysClass is the rate-limit class of GET /v2/account/keys, which has a
// limit of its own.
const keysClass = "keys"

// RateLimits are DigitalOcean's published API limits per account: 250
// requests a minute, 5,000 an hour, and 10 a minute for the key listing,
// each request counted on its own timer for the window (sliding windows).
var RateLimits = []provider.RateLimit{
	{Requests: 250, Per: time.Minute, Sliding: true},
	{Requests: 5000, Per: time.Hour, Sliding: true},
	{Requests: 10, Per: time.Minute, Class: keysClass, Sliding: true},
}

func init() { provider.Register(Name, opener{}) }

// Option tunes a Provider.
type Option func(*options)

type options struct {
	expectedBoot time.Duration
}

// WithExpectedBoot sets the typical boot time the default wait policy
// starts from (ExpectedBoot by default). It has no effect when
// Config.WaitPolicy is set.
func WithExpectedBoot(d time.Duration) Option {
	return func(o *options) { o.expectedBoot = d }
}

type opener struct{ opts []Option }

func (o opener) Open(_ context.Context, s *driver.Settings) (driver.Driver, error) {
	tok := s.TokenFromEnv("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN")
	if tok == "" {
		return nil, driver.MissingToken("DIGITALOCEAN_TOKEN")
	}
	hc := *s.HTTPClient
	hc.Transport = &bearer{token: tok, base: hc.Transport}
	ep := endpoint(s.Endpoint)
	client, err := godo.New(&hc, godo.SetBaseURL(ep), godo.SetUserAgent("spuff"))
	if err != nil {
		return nil, &driver.Error{Kind: driver.KindInvalidConfig, Field: "Config.Endpoint", Message: "bad endpoint", Err: err}
	}
	return newDriver(client, driver.AccountKey(ep, tok), o.opts), nil
}

func endpoint(e string) string {
	if e == "" {
		e = DefaultEndpoint
	}
	if !strings.HasSuffix(e, "/") {
		e += "/" // godo resolves "v2/droplets" against it
	}
	return e
}

// Open builds a Provider from cfg: the token from Config.Token or the
// environment, a godo client made with godo.New on a paced HTTP client (no
// retries of its own). It makes no network call.
func Open(ctx context.Context, cfg provider.Config, opts ...Option) (provider.Provider, error) {
	return provider.OpenDriver(ctx, Name, opener{opts: opts}, cfg)
}

// New builds a Provider on a godo client the caller made. The client is
// used as it is: spuff does not wrap its transport, so build it with
// godo.New (not godo.NewFromToken, whose retries can repeat a create) on a
// client paced with provider.Pacer.Client to keep the account under its
// rate limit. cfg gives the owner, timeouts, retry and wait policies; its
// token and endpoint are not used.
func New(client *godo.Client, cfg provider.Config, opts ...Option) (provider.Provider, error) {
	if client == nil {
		return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: "New", Field: "client", Message: "nil *godo.Client"}
	}
	account := fmt.Sprintf("client-%p", client)
	return provider.OpenDriver(context.Background(), Name, driver.OpenerFunc(func(context.Context, *driver.Settings) (driver.Driver, error) {
		return newDriver(client, account, opts), nil
	}), cfg)
}

// drv is the DigitalOcean driver.
type drv struct {
	client  *godo.Client
	account string
	boot    time.Duration
}

func newDriver(client *godo.Client, account string, opts []Option) *drv {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	boot := o.expectedBoot
	if boot <= 0 {
		boot = ExpectedBoot
	}
	return &drv{client: client, account: account, boot: boot}
}

func (d *drv) Info() driver.Info {
	return driver.Info{
		Name: Name, Account: d.account, RateLimits: RateLimits, RequestClass: requestClass,
		ExpectedBoot: d.boot, ExpectedSnapshot: ExpectedSnapshot,
		IPv6: true, SSHKeys: true, UserData: true, MaxUserDataBytes: MaxUserDataBytes, UserDataUTF8: true,
	}
}

// requestClass puts the key listing in its own rate-limit class.
func requestClass(r *http.Request) string {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/v2/account/keys") {
		return keysClass
	}
	return ""
}

// As reaches the godo client: target must be a **godo.Client.
func (d *drv) As(target any) bool {
	if t, ok := target.(**godo.Client); ok {
		*t = d.client
		return true
	}
	return false
}

// bearer adds the token to each request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (t *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}

var (
	_ driver.Driver      = (*drv)(nil)
	_ driver.Snapshotter = (*drv)(nil)
)
