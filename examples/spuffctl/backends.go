package main

import (
	"net/http"
	"os"
	"path/filepath"

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
// its credentials come from, sensible defaults, and its simulated cloud.
type backend struct {
	name string
	// envVars are the credential variables, for help and detection.
	envVars []string
	// hasCredentials reports whether credentials are configured.
	hasCredentials func(getenv func(string) string) bool
	// region, size are the defaults of `up`.
	region, size string
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

func anyEnv(keys ...string) func(func(string) string) bool {
	return func(getenv func(string) string) bool {
		for _, k := range keys {
			if getenv(k) != "" {
				return true
			}
		}
		return false
	}
}

// backends lists the providers spuffctl drives, in the order it looks for
// credentials when --provider is not given.
var backends = []backend{
	{
		name:           "digitalocean",
		envVars:        []string{"DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"},
		hasCredentials: anyEnv("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"),
		region:         "nyc3",
		size:           "s-1vcpu-1gb",
		sim: simDialect{
			defaults: dosim.Defaults,
			newCloud: dosim.NewCloud,
			handler:  func(c *simcloud.Cloud) http.Handler { return dosim.NewHandler(c) },
			config:   dosim.Config,
		},
	},
	{
		name:           "hetzner",
		envVars:        []string{"HCLOUD_TOKEN", "HETZNER_TOKEN"},
		hasCredentials: anyEnv("HCLOUD_TOKEN", "HETZNER_TOKEN"),
		region:         "fsn1",
		size:           "cx22",
		sim: simDialect{
			defaults: hcloudsim.Defaults,
			newCloud: hcloudsim.NewCloud,
			handler:  func(c *simcloud.Cloud) http.Handler { return hcloudsim.Handler(c) },
			config:   hcloudsim.Config,
		},
	},
	{
		name:    "aws",
		envVars: []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE"},
		hasCredentials: func(getenv func(string) string) bool {
			if anyEnv("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE")(getenv) {
				return true
			}
			home := getenv("HOME")
			if home == "" {
				return false
			}
			_, err := os.Stat(filepath.Join(home, ".aws", "credentials"))
			return err == nil
		},
		region: "us-east-1",
		size:   "t3.micro",
		sim: simDialect{
			defaults: ec2sim.Defaults,
			newCloud: ec2sim.NewCloud,
			handler:  func(c *simcloud.Cloud) http.Handler { return ec2sim.Handler(c) },
			config:   ec2sim.Config,
		},
	},
}

func findBackend(name string) *backend {
	for i := range backends {
		if backends[i].name == name {
			return &backends[i]
		}
	}
	return nil
}
