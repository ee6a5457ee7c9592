package provider

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
)

// Secret is a credential. It formats as "[redacted]" with every fmt verb,
// in slog output and in JSON, so a Config can be printed or logged without
// leaking it. Convert it with string(s) where the real value is needed.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]" (or "" for an empty secret).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns "[redacted]" for %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// Format writes "[redacted]" whatever the verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler, so JSON and other encoders
// write "[redacted]" too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is what a Factory needs to build a Provider. Every field is
// optional; each driver documents the defaults it takes from the
// environment (for example DIGITALOCEAN_TOKEN).
type Config struct {
	// Token is the API token (DigitalOcean, Hetzner). Empty means "take it
	// from the provider's conventional environment variable".
	Token Secret
	// AccessKeyID, SecretAccessKey and SessionToken are static AWS
	// credentials. Empty means the AWS default credential chain.
	AccessKeyID     string
	SecretAccessKey Secret
	SessionToken    Secret
	// Region is the default region for clouds whose API is regional (AWS),
	// used when a request does not name one and for account-wide calls.
	Region string
	// Regions are further regions a regional cloud (AWS) covers: listings
	// and lookups by ID look in Region and in each of these. Empty means
	// Region alone (plus the regions this Provider made something in).
	Regions []string
	// Endpoint overrides the API base URL, for simulated clouds, proxies and
	// tests. Empty means the cloud's public endpoint.
	Endpoint string
	// HTTPClient is the client used for API calls. Nil means a client built
	// by the driver on http.DefaultTransport. Its Transport is wrapped with
	// the account's rate-limit pacer.
	HTTPClient *http.Client `json:"-"`
	// Timeouts bounds waits and requests; zero fields take defaults.
	Timeouts ProviderTimeouts
	// Logger receives debug logs of API calls, retries and waits. Nil means
	// no logging. Tokens and user data are never logged.
	Logger *slog.Logger `json:"-"`
	// Owner is the ownership label value; empty means DefaultOwner
	// ("spuff"). Instances and snapshots carry OwnerLabel=Owner, and only
	// those are listed.
	Owner string
	// WaitPolicy schedules polls while waiting; nil means DefaultWait
	// tuned to the cloud's typical boot or snapshot time.
	WaitPolicy WaitPolicy `json:"-"`
	// BootTimes remembers the boot times seen, which the default wait
	// schedules its polls from; nil means the process's. Give one to keep
	// it between runs (it marshals to JSON) or apart.
	BootTimes *BootTimes `json:"-"`
	// Retry is the retry policy of calls that are safe to repeat; zero
	// fields take RetryPolicy's defaults.
	Retry RetryPolicy
	// Pacer paces API calls under the account's rate limit; nil means the
	// pacer shared by every Provider of the same provider and account in
	// this process, with the cloud's published limits. Give one (NewPacer)
	// to keep a Provider's budget apart, or to share one budget on purpose.
	Pacer *Pacer `json:"-"`
	// Getenv reads environment variables; nil means os.Getenv. Tests set it
	// to stay independent of the process environment.
	Getenv func(string) string `json:"-"`
	// DialContext opens the connections WaitSSH makes to machines (not
	// API calls: those go through HTTPClient); nil means a net.Dialer. The
	// simulated clouds' SSH servers are reached through it
	// (providertest/simssh), as a proxy or a bastion would be.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error) `json:"-"`
}

// ownerValue returns c.Owner, or DefaultOwner when it is empty.
func (c *Config) ownerValue() string {
	if c.Owner == "" {
		return DefaultOwner
	}
	return c.Owner
}

// log returns c.Logger, or a logger that discards everything.
func (c *Config) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Validate checks the fields every driver shares.
func (c *Config) Validate() error {
	if c.Owner != "" && (len(c.Owner) > MaxLabelValueLength || !labelWord(c.Owner)) {
		return invalid("Config.Owner", fmt.Sprintf("owner must be 1 to %d letters, digits, '-' or '_', starting and ending with a letter or digit", MaxLabelValueLength))
	}
	return nil
}
