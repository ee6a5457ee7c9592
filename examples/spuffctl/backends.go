package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"

	_ "github.com/spuffgo/spuff/provider/aws"
	_ "github.com/spuffgo/spuff/provider/digitalocean"
	_ "github.com/spuffgo/spuff/provider/hetzner"
)

// backend is what spuffctl knows of a provider beyond the registry: where
// its credentials come from, sensible defaults, the form of its IDs, and
// its simulated cloud.
type backend struct {
	name string
	// envVars are the credential variables, for help and hints.
	envVars []string
	// credentials says where credentials were found ("HCLOUD_TOKEN",
	// "profile file ~/.aws/credentials"), or "" when none were.
	credentials func(getenv func(string) string) string
	// endpointVar is the environment variable that points the real-cloud
	// client at another endpoint (a proxy, `spuffctl sim serve`), or "".
	// The drivers read HCLOUD_ENDPOINT and AWS_ENDPOINT_URL themselves;
	// spuffctl passes DIGITALOCEAN_API_URL on.
	endpointVar string
	// authHint tells how to fix an authentication error.
	authHint string
	// keyImport is how a user registers a public key on the account.
	keyImport string
	// region, size are the defaults of `up`.
	region, size string
	// regional is true for a cloud whose API is per region (AWS).
	regional bool
	// instanceID and snapshotID match the cloud's ID formats.
	instanceID, snapshotID *regexp.Regexp
	// sim is the built-in simulated cloud of the provider.
	sim simDialect
}

// simDialect builds the provider's simulated cloud.
type simDialect struct {
	defaults func(simcloud.Options) simcloud.Options
	newCloud func(simcloud.Options) *simcloud.Cloud
	handler  func(*simcloud.Cloud) http.Handler
	// config reaches a simulated cloud's server.
	config func(*simcloud.Server) provider.Config
}

// firstEnv returns a credentials function that reports the first of keys
// that is set.
func firstEnv(keys ...string) func(func(string) string) string {
	return func(getenv func(string) string) string {
		for _, k := range keys {
			if getenv(k) != "" {
				return k
			}
		}
		return ""
	}
}

var numericID = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)

// backends lists the providers spuffctl drives. The first is the one used
// when no provider is named.
var backends = []backend{
	{
		name:        "digitalocean",
		envVars:     []string{"DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"},
		credentials: firstEnv("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"),
		endpointVar: "DIGITALOCEAN_API_URL",
		authHint:    "set DIGITALOCEAN_TOKEN to a valid DigitalOcean API token (read and write scopes)",
		keyImport:   "`doctl compute ssh-key import NAME --public-key-file FILE` (or the control panel)",
		region:      "nyc3",
		size:        "s-1vcpu-1gb",
		instanceID:  numericID,
		snapshotID:  numericID,
		sim: simDialect{
			defaults: dosim.Defaults,
			newCloud: dosim.NewCloud,
			handler:  func(c *simcloud.Cloud) http.Handler { return dosim.NewHandler(c) },
			config:   dosim.Config,
		},
	},
	{
		name:        "hetzner",
		envVars:     []string{"HCLOUD_TOKEN", "HETZNER_TOKEN"},
		credentials: firstEnv("HCLOUD_TOKEN", "HETZNER_TOKEN"),
		endpointVar: "HCLOUD_ENDPOINT",
		authHint:    "set HCLOUD_TOKEN to a valid Hetzner Cloud API token (Read & Write) of the project",
		keyImport:   "`hcloud ssh-key create --name NAME --public-key-from-file FILE` (or the console)",
		region:      "fsn1",
		size:        "cx22",
		instanceID:  numericID,
		snapshotID:  numericID,
		sim: simDialect{
			defaults: hcloudsim.Defaults,
			newCloud: hcloudsim.NewCloud,
			handler:  func(c *simcloud.Cloud) http.Handler { return hcloudsim.Handler(c) },
			config:   hcloudsim.Config,
		},
	},
	{
		name:        "aws",
		envVars:     []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE"},
		credentials: awsCredentials,
		endpointVar: "AWS_ENDPOINT_URL",
		authHint:    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, to credentials allowed to use EC2",
		keyImport:   "`aws ec2 import-key-pair --key-name NAME --public-key-material fileb://FILE` (in each region used)",
		region:      "us-east-1",
		size:        "t3.micro",
		regional:    true,
		instanceID:  regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`),
		snapshotID:  regexp.MustCompile(`^ami-[0-9a-f]{8}([0-9a-f]{9})?$`),
		sim: simDialect{
			defaults: ec2sim.Defaults,
			newCloud: ec2sim.NewCloud,
			handler:  func(c *simcloud.Cloud) http.Handler { return ec2sim.Handler(c) },
			config:   ec2sim.Config,
		},
	},
}

// awsCredentials reports where the AWS default credential chain would find
// credentials: the environment, a web identity token, a profile, or the
// shared credentials and config files. (It cannot see instance metadata
// without a network call, and does not try.)
func awsCredentials(getenv func(string) string) string {
	if getenv("AWS_ACCESS_KEY_ID") != "" {
		return "AWS_ACCESS_KEY_ID"
	}
	if getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "" {
		return "AWS_WEB_IDENTITY_TOKEN_FILE"
	}
	if p := getenv("AWS_PROFILE"); p != "" {
		return "AWS_PROFILE (profile " + p + ")"
	}
	home := getenv("HOME")
	file := func(envVar, rel string) (shown, path string) {
		if p := getenv(envVar); p != "" {
			return p + " (" + envVar + ")", p
		}
		if home == "" {
			return "", ""
		}
		return "~/" + rel, filepath.Join(home, rel)
	}
	if shown, path := file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"); path != "" {
		if _, err := os.Stat(path); err == nil {
			return "profile file " + shown
		}
	}
	if shown, path := file("AWS_CONFIG_FILE", ".aws/config"); path != "" {
		if b, err := os.ReadFile(path); err == nil && awsConfigHasCredentials(string(b)) {
			return "profile file " + shown
		}
	}
	return ""
}

// awsConfigHasCredentials reports whether an AWS config file sets anything
// that yields credentials (keys, SSO, a role, a credential process).
func awsConfigHasCredentials(s string) bool {
	for _, key := range []string{"aws_access_key_id", "sso_start_url", "sso_session", "role_arn", "credential_process", "credential_source", "web_identity_token_file"} {
		if strings.Contains(s, key) {
			return true
		}
	}
	return false
}

func findBackend(name string) *backend {
	for i := range backends {
		if backends[i].name == name {
			return &backends[i]
		}
	}
	return nil
}

// defaultRegion is the region `up` uses when --region is not given: for
// AWS, AWS_REGION or AWS_DEFAULT_REGION when set, as the AWS tools do.
func (b *backend) defaultRegion(getenv func(string) string) string {
	if b.regional {
		for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
			if r := getenv(k); r != "" {
				return r
			}
		}
	}
	return b.region
}

// remoteSimConfig is the Config that reaches a simulated cloud served by
// `spuffctl sim serve` at url with the account credential token, with a
// wait policy paced to its boot time (as simcloud.Server.WaitPolicy).
func (b *backend) remoteSimConfig(url, token string, boot time.Duration) provider.Config {
	gap := max(boot/10, time.Millisecond)
	cfg := provider.Config{Endpoint: url, WaitPolicy: provider.AdaptiveWait(boot, gap, max(boot/2, gap))}
	if b.regional {
		cfg.AccessKeyID, cfg.SecretAccessKey, cfg.Region = token, "simulated", b.region
	} else {
		cfg.Token = provider.Secret(token)
	}
	return cfg
}
