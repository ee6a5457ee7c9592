package soak_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"

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
	name string
	// cloud makes the simulated cloud with the dialect's defaults, and
	// handler serves it in the cloud's wire format.
	cloud   func(opts simcloud.Options) *simcloud.Cloud
	handler func(c *simcloud.Cloud) http.Handler
	config  func(srv *simcloud.Server) provider.Config
	open    func(ctx context.Context, cfg provider.Config) (provider.Provider, error)
	request func(name string) provider.InstanceRequest
	modelID func(id string) (int64, error)
	// instanceID and imageID format model IDs as the driver's IDs.
	instanceID, imageID func(id int64) string
	// volumes reports that a snapshot has a volume snapshot behind it
	// (EC2's EBS snapshots behind an AMI).
	volumes bool
	// maxBody is the most the driver reads of one answer.
	maxBody int64
	// xml: the cloud answers in XML (EC2), which the SDK decodes far more
	// slowly than JSON.
	xml bool
	// errorBody is an error answer in the cloud's format, and its
	// content type.
	errorBody, errorType string
	// limits are the driver's published rate limits, for a pacer scaled
	// to the simulated time.
	limits []provider.RateLimit
	// retryAfter reports that the cloud sends Retry-After with its 429s
	// (DigitalOcean); EC2 and Hetzner send none.
	retryAfter bool
	// nativeIdempotency: a create carries a token the cloud dedups on
	// (EC2's ClientToken); uniqueNames: the cloud refuses a second
	// machine of a name (Hetzner). Neither: DigitalOcean.
	nativeIdempotency, uniqueNames bool
	// createToken returns the idempotency token of a create request's
	// form, and whether the form is a create (EC2's Query protocol).
	createToken func(form url.Values) (string, bool)
}

// maxResponseBytes is the bound spuff reads of one API answer.
const maxResponseBytes = 32 << 20

// server serves a new simulated cloud with opts, its handler wrapped by
// wrap when it is not nil, until the test ends.
func (tg target) server(t testing.TB, opts simcloud.Options, wrap func(http.Handler) http.Handler) *simcloud.Server {
	c := tg.cloud(opts)
	h := tg.handler(c)
	if wrap != nil {
		h = wrap(h)
	}
	srv := simcloud.NewServer(c, h)
	t.Cleanup(srv.Close)
	return srv
}

func parseID(id string) (int64, error) { return strconv.ParseInt(id, 10, 64) }

func formatID(id int64) string { return strconv.FormatInt(id, 10) }

func targets() []target {
	return []target{
		{
			name:    digitalocean.Name,
			cloud:   dosim.NewCloud,
			handler: func(c *simcloud.Cloud) http.Handler { return dosim.NewHandler(c) },
			config:  dosim.Config,
			open: func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
				return digitalocean.Open(ctx, cfg)
			},
			request: func(name string) provider.InstanceRequest {
				return provider.InstanceRequest{Name: name, Region: "nyc3", Size: "s-1vcpu-1gb", Image: provider.Ubuntu("24.04"),
					Labels: map[string]string{"soak": "yes"}, UserData: "#cloud-config\n"}
			},
			modelID:    parseID,
			instanceID: formatID,
			imageID:    formatID,
			maxBody:    maxResponseBytes,
			errorBody:  `{"id":"server_error","message":"Server was unable to give you a response."}`,
			errorType:  "application/json",
			limits:     digitalocean.RateLimits,
			retryAfter: true,
		},
		{
			name:    hetzner.Name,
			cloud:   hcloudsim.NewCloud,
			handler: func(c *simcloud.Cloud) http.Handler { return hcloudsim.Handler(c) },
			config:  hcloudsim.Config,
			open: func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
				return hetzner.Open(ctx, cfg)
			},
			request: func(name string) provider.InstanceRequest {
				return provider.InstanceRequest{Name: name, Region: "fsn1", Size: "cx22", Image: provider.Ubuntu("24.04"),
					Labels: map[string]string{"soak": "yes"}, UserData: "#cloud-config\n"}
			},
			modelID:     parseID,
			instanceID:  formatID,
			imageID:     formatID,
			maxBody:     maxResponseBytes,
			errorBody:   `{"error":{"code":"server_error","message":"Server was unable to give you a response.","details":{}}}`,
			errorType:   "application/json",
			limits:      hetzner.RateLimits,
			uniqueNames: true,
		},
		{
			name:    aws.Name,
			cloud:   ec2sim.NewCloud,
			handler: func(c *simcloud.Cloud) http.Handler { return ec2sim.Handler(c) },
			config:  ec2sim.Config,
			open: func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
				return aws.Open(ctx, cfg)
			},
			request: func(name string) provider.InstanceRequest {
				return provider.InstanceRequest{Name: name, Region: ec2sim.Regions[0], Size: "t3.micro", Image: provider.Ubuntu("24.04"),
					Labels: map[string]string{"soak": "yes"}, UserData: "#cloud-config\n"}
			},
			modelID:           ec2sim.ModelID,
			instanceID:        ec2sim.InstanceID,
			imageID:           ec2sim.ImageID,
			volumes:           true,
			maxBody:           32 << 20, // aws reads up to 32 MiB
			xml:               true,
			errorBody:         `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred</Message></Error></Errors><RequestID>5eed0000-0000-4000-8000-000000000000</RequestID></Response>`,
			errorType:         "text/xml;charset=UTF-8",
			limits:            aws.RateLimits,
			nativeIdempotency: true,
			createToken: func(form url.Values) (string, bool) {
				return form.Get("ClientToken"), form.Get("Action") == "RunInstances"
			},
		},
	}
}
