package soak_test

import (
	"context"
	"strconv"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/provider/digitalocean"
	"github.com/spuffgo/spuff/provider/hetzner"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// target is one driver and its simulated cloud.
type target struct {
	name    string
	server  func(opts simcloud.Options) *simcloud.Server
	config  func(srv *simcloud.Server) provider.Config
	open    func(ctx context.Context, cfg provider.Config) (provider.Provider, error)
	request func(name string) provider.InstanceRequest
	modelID func(id string) (int64, error)
	// volumes reports that a snapshot has a volume snapshot behind it
	// (EC2's EBS snapshots behind an AMI).
	volumes bool
}

func parseID(id string) (int64, error) { return strconv.ParseInt(id, 10, 64) }

// unlimited is a rate limit the soak never reaches: the clouds' real
// limits would make a long soak last hours, and 429s come from the faults.
var unlimited = []simcloud.RateLimit{{Requests: 1 << 30, Per: time.Second}}

func targets() []target {
	return []target{
		{
			name:   digitalocean.Name,
			server: dosim.NewServer,
			config: dosim.Config,
			open: func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
				return digitalocean.Open(ctx, cfg)
			},
			request: func(name string) provider.InstanceRequest {
				return provider.InstanceRequest{Name: name, Region: "nyc3", Size: "s-1vcpu-1gb", Image: provider.Ubuntu("24.04"),
					Labels: map[string]string{"soak": "yes"}, UserData: "#cloud-config\n"}
			},
			modelID: parseID,
		},
		{
			name:   hetzner.Name,
			server: func(opts simcloud.Options) *simcloud.Server { return hcloudsim.NewServer(opts) },
			config: hcloudsim.Config,
			open: func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
				return hetzner.Open(ctx, cfg)
			},
			request: func(name string) provider.InstanceRequest {
				return provider.InstanceRequest{Name: name, Region: "fsn1", Size: "cx22", Image: provider.Ubuntu("24.04"),
					Labels: map[string]string{"soak": "yes"}, UserData: "#cloud-config\n"}
			},
			modelID: parseID,
		},
		{
			name:   aws.Name,
			server: func(opts simcloud.Options) *simcloud.Server { return ec2sim.NewServer(opts) },
			config: ec2sim.Config,
			open: func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
				return aws.Open(ctx, cfg)
			},
			request: func(name string) provider.InstanceRequest {
				return provider.InstanceRequest{Name: name, Region: ec2sim.Regions[0], Size: "t3.micro", Image: provider.Ubuntu("24.04"),
					Labels: map[string]string{"soak": "yes"}, UserData: "#cloud-config\n"}
			},
			modelID: ec2sim.ModelID,
			volumes: true,
		},
	}
}

