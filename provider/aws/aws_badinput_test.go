package aws_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/ec2sim"
)

// badRequests are the invalid requests of this cloud's own rules, which
// the conformance suite checks next to providertest.CommonBadRequests: each
// is refused before any API call, naming its field.
func badRequests() []providertest.BadRequest {
	return []providertest.BadRequest{
		{Name: "user data over 16 KB", Edit: func(r *provider.InstanceRequest) { r.UserData = strings.Repeat("x", aws.MaxUserDataBytes+1) }, Field: "UserData"},
		{Name: "not a region", Edit: func(r *provider.InstanceRequest) { r.Region = "nyc3" }, Field: "Region"},
		{Name: "not an instance type", Edit: func(r *provider.InstanceRequest) { r.Size = "cx22" }, Field: "Size"},
		{Name: "two SSH keys", Edit: func(r *provider.InstanceRequest) { r.SSHKeys = []string{"laptop", "ci"} }, Field: "SSHKeys"},
		{Name: "label Name", Edit: func(r *provider.InstanceRequest) { r.Labels = map[string]string{"Name": "x"} }, Field: `Labels["Name"]`},
		{Name: "custom image not an AMI", Edit: func(r *provider.InstanceRequest) { r.Image = provider.CustomImage("ubuntu-24-04-x64") }, Field: "Image"},
		{Name: "snapshot not an AMI", Edit: func(r *provider.InstanceRequest) { r.Image = provider.SnapshotImage("12345") }, Field: "Image"},
	}
}

// TestBadSnapshotNameMakesNoCall: a snapshot name the cloud refuses is
// refused before any API call, naming the field. (An empty name is not
// among them: the portable layer names the snapshot then.)
func TestBadSnapshotNameMakesNoCall(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, providertest.Options())
	p, err := aws.Open(context.Background(), fastConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"ab", "a:b", "naïve", strings.Repeat("n", 129)} {
		var perr *provider.Error
		if _, err := p.CreateSnapshot(ctx, ec2sim.InstanceID(1), name); !errors.As(err, &perr) || perr.Kind != provider.KindInvalidConfig || perr.Field != "name" {
			t.Errorf("CreateSnapshot named %q: %v, want invalid config naming the field name", name, err)
		}
	}
	if n := srv.Cloud.TotalCalls(); n != 0 {
		t.Errorf("invalid requests made %d API calls, want 0: %v", n, srv.Cloud.Stats().Calls)
	}
}

// FuzzCreateInstance feeds CreateInstance arbitrary requests, with no
// network (see providertest.FuzzCreateInstance).
func FuzzCreateInstance(f *testing.F) {
	f.Add("dev-1", "us-east-1", "t3.micro", "ubuntu:24.04", "#cloud-config\n", "env", "dev", "laptop")
	f.Add("", "", "", "", "", "", "", "")
	f.Add("dev_box", "nyc3", "cx22", "snapshot:123", "\xff", "Name", "x", "")
	f.Add("a.b.c", "eu-west-1", "t4g.small", "custom:ami-0123456789abcdef0", strings.Repeat("u", 17000), "a b", "", "key-0123456789abcdef0")
	f.Add("x", "us-gov-west-1", "m7i-flex.large", "debian:12.", "", "k", "v:w", "3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa")
	providertest.FuzzCreateInstance(f, func(cfg provider.Config) (provider.Provider, error) {
		return aws.Open(context.Background(), cfg)
	})
}
