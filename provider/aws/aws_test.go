package aws_test

import (
	"fmt"
	"sync/atomic"
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
		Republish: func(srv *simcloud.Server, req provider.InstanceRequest) int64 {
			return republish(srv, req)
		},
		Catalog: expectedCatalog,
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
		// Four times the realistic world's lag (cloud time).
		opts.ConsistencyDelay, opts.ListingDelay = 8*time.Second, 20*time.Second
		return ec2sim.Start(t, opts)
	}
	providertest.Run(t, h)
}

var republished atomic.Int64

// republish publishes a newer official AMI of req's image (Ubuntu or
// Debian, for its size's architecture) under the same name pattern, as
// Canonical and Debian do, and returns its model ID. A later one is newer
// (by its creation date, else its name).
func republish(srv *simcloud.Server, req provider.InstanceRequest) int64 {
	n := republished.Add(1)
	arch := aws.Architecture(req.Size)
	deb := "amd64"
	if arch == "arm64" {
		deb = "arm64"
	}
	now := srv.Cloud.Now()
	img := simcloud.Image{Kind: simcloud.ImageDistribution, Version: req.Image.Value, Arch: arch, MinDiskGB: 8, SizeGB: 2,
		CreatedAt: now, ReadyAt: now}
	date := img.CreatedAt.UTC().Format("20060102")
	switch req.Image.Kind {
	case provider.ImageDebian:
		img.Name = fmt.Sprintf("debian-%s-%s-%s-9%04d", req.Image.Value, deb, date, n)
		img.Distribution, img.Owner = "Debian", ec2sim.DebianOwner
	default:
		img.Name = fmt.Sprintf("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-%s-%s-server-%s.%04d", req.Image.Value, deb, date, n)
		img.Distribution, img.Owner = "Ubuntu", ec2sim.CanonicalOwner
	}
	return srv.Cloud.AddImage(img)
}
