// Package hetzner is spuff's Hetzner Cloud driver, on the official SDK
// github.com/hetznercloud/hcloud-go/v2. Importing it registers the
// provider "hetzner":
//
//	import _ "github.com/spuffgo/spuff/provider/hetzner"
//
//	p, err := provider.Open(ctx, "hetzner", provider.Config{}) // token from HCLOUD_TOKEN
//
// New builds one on an *hcloud.Client the caller made, for full control of
// the transport; ClientOptions gives the client options spuff recommends.
//
// # Configuration
//
// The API token is Config.Token, else the environment variable
// HCLOUD_TOKEN (the hcloud CLI's), else HETZNER_TOKEN. The endpoint is
// Config.Endpoint, else HCLOUD_ENDPOINT, else https://api.hetzner.cloud/v1.
// Calls are paced under Hetzner's published limit, 3,600 requests an hour
// per project (one returned every second), corrected by the RateLimit-*
// headers.
//
// # Mapping
//
//   - Instances are servers; Region is the location ("fsn1") and Size the
//     server type ("cx22", "cax11").
//   - Labels are Hetzner's native labels: the ownership label is
//     managed-by=<owner> and the request's key spuff-key=<key>, set when
//     the server is made. Listing asks for them with a label selector, 50
//     servers a page (the API's largest), every page.
//   - provider.Ubuntu("24.04") and provider.Debian("12") are the system
//     images "ubuntu-24.04" and "debian-12" of the server type's
//     architecture (x86 for cx, cpx and ccx types, Arm for cax types).
//     CustomImage takes an image ID or name; SnapshotImage a snapshot ID.
//   - Snapshots are images of type snapshot made by the server's
//     create_image action, carrying their labels from the start. Hetzner
//     snapshots have no name: the name is the image's description.
//   - A server in Hetzner's status deleting is being destroyed
//     (provider.StatusDestroying).
//   - User data is limited to 32 KiB and must be UTF-8, checked before any
//     call.
//
// # Retries and exactly-once
//
// hcloud-go's own retries are off (MaxRetries 0): they would repeat a
// create whose answer was lost, outside the rate-limit pacer. Package
// provider retries what is safe to repeat, and runs the create protocol
// over Hetzner's unique server names: a create repeated after a lost answer
// is refused with uniqueness_error, and the server holding the name is
// adopted if it carries the request's key label — else the create fails
// with provider.ErrConflict naming that server in Error.Existing. Hetzner's
// conflict (409: the resource changed during the request) and locked (423:
// another action is running on it) refuse a call without doing it, and
// hcloud-go documents them as worth repeating: they are retried, creates
// included.
//
// A snapshot carries the ownership and key labels from its creation, so
// ListSnapshots shows it while it is being made, and a CreateSnapshot
// repeated after a lost answer or a timeout finds it and resumes waiting
// for it rather than making a second.
//
// # Expiry
//
// A request's TTL is kept on the server as the label spuff-expires, which
// provider.Reap acts on. Hetzner Cloud offers no way for a machine to destroy
// itself without credentials, and a powered-off server is still billed:
// nothing ends an expired server but a reaper (spuffctl reap, or
// provider.Reap from a scheduled job). Run one.
//
// # Errors
//
// Hetzner's error codes map to the portable kinds: unauthorized and
// forbidden to provider.ErrAuthentication, not_found to ErrNotFound,
// rate_limit_exceeded to ErrRateLimit (Hetzner sends no Retry-After: the
// wait is the time the bucket takes to return one request, from
// RateLimit-Reset, when RateLimit-Remaining is 0), resource_limit_exceeded
// to ErrQuotaExceeded, invalid_input and json_error to ErrInvalidConfig
// naming the field, uniqueness_error to ErrConflict, resource_unavailable
// ("server location disabled", "error during placement") and
// placement_error to ErrCapacity, conflict and locked to retryable ErrAPI,
// server errors to ErrAPI. The hcloud.Error stays reachable with errors.As.
//
// # Catalogue
//
// provider.FetchCatalog reads the locations, the server types (offered
// in a location while its "available" says so) and the project's currency
// from /pricing; prices are each location's net price (VAT excluded).
//
// # As
//
// As reaches the SDK client and the Provider's call counts:
//
//	var c *hcloud.Client
//	p.As(&c)
//	var st provider.Stats
//	p.As(&st)
package hetzner

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
)

// Name is the name the driver registers under.
const Name = "hetzner"

// MaxUserDataBytes is the largest user data Hetzner accepts (32 KiB).
const MaxUserDataBytes = 32 << 10

// PageSize is the page size of every list call: the API's maximum.
const PageSize = 50

// ExpectedBoot is the typical time from create to a running server with
// its address (10 to 20 s), which tunes the default wait policy.
const ExpectedBoot = 15 * time.Second

// ExpectedSnapshot is the typical time a snapshot of a small server takes.
const ExpectedSnapshot = time.Minute

// RateLimits are Hetzner's default API limit per project: 3,600 requests
// an hour, one returned every second.
var RateLimits = []provider.RateLimit{{Requests: 3600, Per: time.Hour}}

func init() { provider.Register(Name, opener{}) }

// Option tunes a Provider.
type Option func(*options)

type options struct {
	expectedBoot time.Duration
}

// WithExpectedBoot tunes the default wait policy to machines that are
// usually ready after d (ExpectedBoot by default). It has no effect when
// Config.WaitPolicy is set.
func WithExpectedBoot(d time.Duration) Option {
	return func(o *options) { o.expectedBoot = d }
}

type opener struct{ opts []Option }

func (o opener) Open(_ context.Context, s *driver.Settings) (driver.Driver, error) {
	c, err := connect(s)
	if err != nil {
		return nil, err
	}
	return newDriver(hcloud.NewClient(c.options...), c.account, o.opts), nil
}

// connection is what a client is built from.
type connection struct {
	options []hcloud.ClientOption
	account string
}

// connect checks the token and endpoint of s and returns the client
// options spuff uses with them: s's paced HTTP client, hcloud-go's
// retries off, its action polling capped at s.PollInterval.
func connect(s *driver.Settings) (connection, error) {
	tok := s.TokenFromEnv("HCLOUD_TOKEN", "HETZNER_TOKEN")
	if tok == "" {
		return connection{}, driver.MissingToken("HCLOUD_TOKEN")
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < 0x20 || c == 0x7f {
			return connection{}, &driver.Error{Kind: driver.KindAuthentication, Field: "Config.Token",
				Message: "the API token contains a control character (a pasted newline?)"}
		}
	}
	ep := endpoint(s)
	if u, err := url.Parse(ep); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return connection{}, driver.Invalid("Config.Endpoint", fmt.Sprintf("endpoint %q is not an http(s) URL", ep))
	}
	poll := max(s.PollInterval, 500*time.Millisecond)
	return connection{
		account: driver.AccountKey(ep, tok),
		options: []hcloud.ClientOption{
			hcloud.WithEndpoint(ep),
			hcloud.WithToken(tok),
			hcloud.WithHTTPClient(s.HTTPClient),
			hcloud.WithApplication("spuff", ""),
			hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0, BackoffFunc: hcloud.ConstantBackoff(0)}),
			hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ExponentialBackoffWithOpts(hcloud.ExponentialBackoffOpts{
				Base: 500 * time.Millisecond, Multiplier: 1.5, Cap: poll, Jitter: true,
			})}),
		},
	}, nil
}

// endpoint returns the API endpoint of s: Config.Endpoint, HCLOUD_ENDPOINT
// or hcloud.Endpoint.
func endpoint(s *driver.Settings) string {
	if s.Endpoint != "" {
		return s.Endpoint
	}
	if e := s.Env("HCLOUD_ENDPOINT"); e != "" {
		return e
	}
	return hcloud.Endpoint
}

// Open builds a Provider from cfg: the token from Config.Token or the
// environment, an hcloud-go client made with ClientOptions' settings on a
// paced HTTP client. It makes no network call.
func Open(ctx context.Context, cfg provider.Config, opts ...Option) (provider.Provider, error) {
	return provider.OpenDriver(ctx, Name, opener{opts: opts}, cfg)
}

// ClientOptions returns the hcloud-go client options spuff uses, for a
// client the caller builds and passes to New: cfg's endpoint and token (as
// Open finds them), an HTTP client made from cfg.HTTPClient whose
// transport is paced under the account's rate limit (cfg.Pacer, else the
// pacer every Provider of the account in this process shares) with its
// requests bounded by Config.Timeouts.HTTPRequest and its answers in
// size, hcloud-go's retries turned off (MaxRetries 0: spuff's policy
// retries, never a create blindly) and its action polling backing off from
// 500 ms to Config.Timeouts.PollInterval. Add your own options after them.
// A client built with them and passed to New with the same cfg behaves as
// one built by Open. It makes no network call.
func ClientOptions(cfg provider.Config) ([]hcloud.ClientOption, error) {
	var c connection
	// The portable layer builds the paced client, bound to the account's
	// pacer, exactly as for Open; the Provider it opens on the way is
	// dropped.
	_, err := provider.OpenDriver(context.Background(), Name, driver.OpenerFunc(func(_ context.Context, s *driver.Settings) (driver.Driver, error) {
		var err error
		if c, err = connect(s); err != nil {
			return nil, err
		}
		return &drv{account: c.account}, nil
	}), cfg)
	var perr *provider.Error
	if errors.As(err, &perr) {
		perr.Op = "ClientOptions"
	}
	if err != nil {
		return nil, err
	}
	return c.options, nil
}

// New builds a Provider on a client the caller made. The client is used as
// it is — its endpoint, token, transport, retries and polling are the
// caller's — so build it with ClientOptions(cfg) (above all, hcloud-go's
// own retries turned off, and a paced transport). cfg gives the owner,
// timeouts, logger, retry and wait policies; its token and endpoint (or
// their environment variables) only name the account whose rate budget the
// Provider's waits share.
func New(client *hcloud.Client, cfg provider.Config, opts ...Option) (provider.Provider, error) {
	if client == nil {
		return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: "New", Field: "client", Message: "nil *hcloud.Client"}
	}
	return provider.OpenDriver(context.Background(), Name, driver.OpenerFunc(func(_ context.Context, s *driver.Settings) (driver.Driver, error) {
		account := fmt.Sprintf("client-%p", client)
		if tok := s.TokenFromEnv("HCLOUD_TOKEN", "HETZNER_TOKEN"); tok != "" {
			account = driver.AccountKey(endpoint(s), tok)
		}
		return newDriver(client, account, opts), nil
	}), cfg)
}

// drv is the Hetzner Cloud driver.
type drv struct {
	client  *hcloud.Client
	account string
	boot    time.Duration
	cat     catalogue
}

func newDriver(client *hcloud.Client, account string, opts []Option) *drv {
	o := options{expectedBoot: ExpectedBoot}
	for _, opt := range opts {
		opt(&o)
	}
	if o.expectedBoot <= 0 {
		o.expectedBoot = ExpectedBoot
	}
	return &drv{client: client, account: account, boot: o.expectedBoot, cat: newCatalogue()}
}

// Info describes Hetzner Cloud: unique server names, 3,600 requests an
// hour, user data up to 32 KiB, IPv6.
func (d *drv) Info() driver.Info {
	return driver.Info{
		Name: Name, Account: d.account, RateLimits: RateLimits, UniqueNames: true,
		ExpectedBoot: d.boot, ExpectedSnapshot: ExpectedSnapshot,
		IPv6: true, SSHKeys: true, UserData: true, MaxUserDataBytes: MaxUserDataBytes, UserDataUTF8: true,
	}
}

// As reaches the hcloud-go client: target must be a **hcloud.Client.
func (d *drv) As(target any) bool {
	if t, ok := target.(**hcloud.Client); ok {
		*t = d.client
		return true
	}
	return false
}

// String describes the driver without its client, whose fields hold the
// token.
func (d *drv) String() string { return "hetzner.drv{}" }

// GoString is String, for %#v.
func (d *drv) GoString() string { return d.String() }

var (
	_ driver.Driver      = (*drv)(nil)
	_ driver.Snapshotter = (*drv)(nil)
)
