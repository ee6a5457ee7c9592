package aws_test

import (
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

const (
	testRegion = "us-east-1"
	// customImage is an older catalogue AMI, which no ImageSpec resolves to.
	customImage = "debian-12-amd64-20240717-1811"
)

func simConfig(srv *simcloud.Server) provider.Config {
	return provider.Config{
		Endpoint:        srv.URL,
		AccessKeyID:     srv.Cloud.Token(),
		SecretAccessKey: "sim-secret-key",
		Region:          testRegion,
	}
}

func harness() providertest.Harness {
	return providertest.Harness{
		Name:   aws.Name,
		Start:  ec2sim.Start,
		Config: simConfig,
		Request: func(name string) provider.InstanceRequest {
			return provider.InstanceRequest{Name: name, Region: testRegion, Size: "t3.micro", Image: provider.Ubuntu("24.04")}
		},
		CustomImage: func(srv *simcloud.Server) (string, int64) {
			id := ec2sim.FindImage(srv.Cloud, customImage)
			return ec2sim.ImageID(id), id
		},
		ModelID:              ec2sim.ModelID,
		MissingID:            ec2sim.InstanceID(0x7ffffffffff),
		ListPageSize:         1000,
		BadRequests:          badRequests(),
		MalformedIDs:         []string{"", "i-", "i-xyz", "i-123", "ami-0123456789abcdef0", "12345"},
		MalformedSnapshotIDs: []string{"", "ami-", "ami-xyz", "i-0123456789abcdef0", "snap-0123456789abcdef0"},
		Skip: map[string]string{
			// The check asks for a Retry-After; EC2 sends none (EC2
			// developer guide, "Request throttling"), and the driver
			// reads none. TestRequestLimitExceeded checks the rest.
			"ErrorRateLimit": "EC2's RequestLimitExceeded carries no Retry-After",
		},
	}
}

// TestConformance runs the provider conformance suite against the
// simulated EC2 API.
func TestConformance(t *testing.T) {
	providertest.Run(t, harness())
}

// TestConformanceEventualConsistency runs the suite with every new
// instance invisible to the API for a while after RunInstances, as EC2
// is.
func TestConformanceEventualConsistency(t *testing.T) {
	h := harness()
	h.Start = func(t testing.TB, opts simcloud.Options) *simcloud.Server {
		opts.ConsistencyDelay = 40 * time.Millisecond
		return ec2sim.Start(t, opts)
	}
	providertest.Run(t, h)
}
