package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// Settings are what a driver is opened with: the caller's provider.Config,
// translated. Settings format without their secrets.
type Settings struct {
	// Token is the API token the caller gave, "" for the driver's default
	// (its environment variables: see TokenFromEnv).
	Token string
	// AccessKeyID, SecretAccessKey and SessionToken are static AWS
	// credentials, "" for the default chain.
	AccessKeyID, SecretAccessKey, SessionToken string
	// Region is the default region of a regional cloud; Regions further
	// regions it covers.
	Region  string
	Regions []string
	// Endpoint overrides the API base URL, "" for the cloud's.
	Endpoint string
	// HTTPClient is the client to build the SDK on: the caller's client
	// with its transport paced under the account's rate limit and its
	// answers bounded. Never nil.
	HTTPClient *http.Client
	// PollInterval is the caller's longest pause between polls, for SDKs
	// that poll on their own (hcloud-go's action polling).
	PollInterval time.Duration
	// Logger receives the driver's debug logs; never nil. Never log
	// tokens or user data.
	Logger *slog.Logger
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// Env returns the environment variable key, through Getenv when set.
func (s *Settings) Env(key string) string {
	if s.Getenv != nil {
		return s.Getenv(key)
	}
	return os.Getenv(key)
}

// TokenFromEnv returns s.Token, else the first non-empty of the given
// environment variables, else "".
func (s *Settings) TokenFromEnv(keys ...string) string {
	if s.Token != "" {
		return s.Token
	}
	for _, k := range keys {
		if v := s.Env(k); v != "" {
			return v
		}
	}
	return ""
}

// String describes the settings without their secrets.
func (s *Settings) String() string {
	return fmt.Sprintf("driver.Settings{Endpoint: %q, Region: %q, Regions: %q}", s.Endpoint, s.Region, s.Regions)
}

// GoString is String, for %#v.
func (s *Settings) GoString() string { return s.String() }

// MissingToken returns the error of a driver opened without credentials:
// KindAuthentication, naming the environment variable to set.
func MissingToken(envVar string) *Error {
	return &Error{Kind: KindAuthentication, Field: "Config.Token",
		Message: "no API token: set the environment variable " + envVar + " (or Config.Token)"}
}

// RateLimit is one window of a cloud's API rate limit: at most Requests
// requests in any period Per (DigitalOcean: 250 a minute and 5,000 an
// hour; Hetzner: 3,600 an hour). With a Class, the window covers only the
// requests of that class (see Info.RequestClass): EC2 has a bucket per
// action.
type RateLimit struct {
	Requests int
	Per      time.Duration
	Class    string
	// Sliding: the cloud counts each request against the window for Per
	// after it was made (DigitalOcean's per-request timers), rather than
	// refilling a bucket continuously (EC2, Hetzner). A bucket's burst
	// and refill together admit up to twice Requests in one Per; a sliding
	// window admits Requests, so the pacer also keeps a log of the last
	// Requests' send times for it.
	Sliding bool
}

// AccountKey names an account for Info.Account: the endpoint and a hash
// of the credential (never the credential itself).
func AccountKey(endpoint, credential string) string {
	sum := sha256.Sum256([]byte(credential))
	return endpoint + "|" + hex.EncodeToString(sum[:12])
}
