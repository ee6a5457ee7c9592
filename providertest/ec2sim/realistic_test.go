package ec2sim_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// clock is a settable clock for the simulated cloud.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// realistic serves the realistic EC2 world at real time on a fake clock,
// with overrides applied to its options.
func realistic(t *testing.T, edit func(*simcloud.Options)) (*simcloud.Server, *clock) {
	t.Helper()
	clk := newClock()
	opts := simcloud.Realistic(1)
	opts.Now = clk.Now
	if edit != nil {
		edit(&opts)
	}
	return ec2sim.Start(t, opts), clk
}

// retryAfter returns the Retry-After header of an SDK error's response.
func retryAfter(err error) (string, bool) {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return "", false
	}
	v := re.Response.Header.Values("Retry-After")
	return strings.Join(v, ","), len(v) > 0
}

func TestRealisticThrottling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		burst  int // requests that pass on a full bucket
		call   func(c *ec2.Client, srv *simcloud.Server) error
		refill time.Duration // time for one more token
	}{
		{"DescribeInstances unfiltered and unpaginated: 50 / 10", 50, func(c *ec2.Client, _ *simcloud.Server) error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		}, 100 * time.Millisecond},
		{"DescribeInstances filtered: 100 / 20", 100, func(c *ec2.Client, _ *simcloud.Server) error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: awssdk.String("tag:managed-by"), Values: []string{"spuff"}}}})
			return err
		}, 50 * time.Millisecond},
		{"DescribeImages: 100 / 20", 100, func(c *ec2.Client, _ *simcloud.Server) error {
			_, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
			return err
		}, 50 * time.Millisecond},
		{"CreateTags: 100 / 10", 100, func(c *ec2.Client, srv *simcloud.Server) error {
			_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{catalogAMI(t, srv, jammy)}, Tags: []types.Tag{tagOf("k", "v")}})
			if code, _ := apiErr(err); code == "InvalidAMIID.NotFound" || code == "UnauthorizedOperation" {
				return nil // answered after admission: the token was taken
			}
			return err
		}, 100 * time.Millisecond},
		{"RunInstances: 5 / 2", 5, func(c *ec2.Client, srv *simcloud.Server) error {
			_, err := run(t, c, catalogAMI(t, srv, jammy), "t3.micro", "")
			return err
		}, 500 * time.Millisecond},
		{"TerminateInstances: 100 / 5", 100, func(c *ec2.Client, _ *simcloud.Server) error {
			_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0000000000000dead"}})
			if code, _ := apiErr(err); code == "InvalidInstanceID.NotFound" {
				return nil
			}
			return err
		}, 200 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, clk := realistic(t, nil)
			c := sdk(t, srv, "us-east-1")
			for i := range tc.burst {
				if err := tc.call(c, srv); err != nil {
					t.Fatalf("call %d of a full bucket: %v", i+1, err)
				}
			}
			err := tc.call(c, srv)
			wantCode(t, err, "RequestLimitExceeded", 503)
			if v, ok := retryAfter(err); ok {
				t.Errorf("RequestLimitExceeded carries Retry-After %q; EC2 sends none", v)
			}
			// Other actions and other regions have buckets of their own.
			if _, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{}); err != nil {
				t.Errorf("another action throttled too: %v", err)
			}
			if err := tc.call(sdk(t, srv, "eu-west-1"), srv); err != nil && !strings.Contains(err.Error(), "InvalidAMIID") {
				t.Errorf("another region throttled too: %v", err)
			}
			clk.Advance(tc.refill)
			if err := tc.call(c, srv); err != nil {
				t.Errorf("after one refill: %v", err)
			}
			if err := tc.call(c, srv); err == nil {
				t.Errorf("a second call on one refilled token passed")
			}
		})
	}
}

func TestRealisticResourceBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, clk := realistic(t, func(o *simcloud.Options) { o.Capacity = []simcloud.Capacity{{Max: 5000}} })
	c := sdk(t, srv, "us-east-1")
	ami := catalogAMI(t, srv, jammy)
	launch := func(n int32) error {
		_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: awssdk.String(ami), InstanceType: types.InstanceTypeT3Micro, MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(n)})
		return err
	}
	for range 4 {
		if err := launch(250); err != nil {
			t.Fatalf("launching 250: %v", err)
		}
	}
	clk.Advance(time.Second) // the request bucket refills 2; the resource bucket 2 instances
	err := launch(3)
	wantCode(t, err, "RequestLimitExceeded", 503)
	if _, ok := retryAfter(err); ok {
		t.Error("Retry-After on a resource throttle")
	}
	if err := launch(2); err != nil {
		t.Errorf("2 instances on 2 resource tokens: %v", err)
	}
	if n := len(srv.Cloud.LiveInstances()); n != 1002 {
		t.Errorf("%d instances launched, want 1002", n)
	}
}

func TestRealisticIdempotency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, clk := realistic(t, nil)
	c := sdk(t, srv, "us-east-1")
	const pattern = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
	before := newest(t, c, ec2sim.CanonicalOwner, pattern, "x86_64")
	req := func(ami string) *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: awssdk.String(ami), InstanceType: types.InstanceTypeT3Micro, MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1),
			ClientToken: awssdk.String("tok-1"), UserData: awssdk.String(b64("#!/bin/sh\n")),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{tagOf("Name", "box")}}}}
	}
	first, err := c.RunInstances(ctx, req(before))
	if err != nil {
		t.Fatal(err)
	}
	// Canonical publishes a newer build: a create that resolves the image
	// again sends another AMI with the same token.
	name := ""
	d, _ := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{before}})
	name = awssdk.ToString(d.Images[0].Name)
	if _, err := ec2sim.RepublishImage(srv.Cloud, name); err != nil {
		t.Fatal(err)
	}
	after := newest(t, c, ec2sim.CanonicalOwner, pattern, "x86_64")
	if after == before {
		t.Fatalf("the newest AMI is still %s after a republish", before)
	}
	clk.Advance(time.Second)
	edits := []struct {
		name string
		edit func(*ec2.RunInstancesInput)
	}{
		{"newer AMI", func(in *ec2.RunInstancesInput) { in.ImageId = awssdk.String(after) }},
		{"other user data", func(in *ec2.RunInstancesInput) { in.UserData = awssdk.String(b64("#!/bin/sh\necho\n")) }},
		{"other tags", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications[0].Tags = append(in.TagSpecifications[0].Tags, tagOf("env", "dev"))
		}},
		{"a key", func(in *ec2.RunInstancesInput) { in.KeyName = awssdk.String("laptop") }},
		{"a subnet", func(in *ec2.RunInstancesInput) { in.SubnetId = awssdk.String("subnet-0123") }},
		{"other counts", func(in *ec2.RunInstancesInput) { in.MaxCount = awssdk.Int32(2) }},
	}
	for _, e := range edits {
		clk.Advance(time.Second) // RunInstances refills 2 requests a second
		in := req(before)
		e.edit(in)
		_, err := c.RunInstances(ctx, in)
		if code, _ := apiErr(err); code != "IdempotentParameterMismatch" {
			t.Errorf("%s with the same token: %v, want IdempotentParameterMismatch", e.name, err)
		}
	}
	clk.Advance(time.Second)
	again, err := c.RunInstances(ctx, req(before))
	if err != nil || awssdk.ToString(again.Instances[0].InstanceId) != awssdk.ToString(first.Instances[0].InstanceId) {
		t.Fatalf("the same request again: %v, want the first instance", err)
	}
	id := awssdk.ToString(first.Instances[0].InstanceId)
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	// DescribeInstances forgets a terminated instance after about an hour;
	// the token is remembered at least 24 hours.
	clk.Advance(2 * time.Hour)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "InvalidInstanceID.NotFound", 400)
	clk.Advance(20 * time.Hour)
	_, err = c.RunInstances(ctx, req(after))
	wantCode(t, err, "IdempotentParameterMismatch", 400)
	replay, err := c.RunInstances(ctx, req(before))
	if err != nil || awssdk.ToString(replay.Instances[0].InstanceId) != id || replay.Instances[0].State.Name != types.InstanceStateNameTerminated {
		t.Errorf("the token a day later: %v, want the terminated instance %s", err, id)
	}
	if n := srv.Cloud.Stats().Created; n != 1 {
		t.Errorf("%d instances created, want 1", n)
	}
}

func TestMultiInstanceLaunch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, clk := realistic(t, func(o *simcloud.Options) { o.ConsistencyDelay, o.ListingDelay = -1, -1 })
	c := sdk(t, srv, "us-east-1")
	ami := catalogAMI(t, srv, jammy)
	in := &ec2.RunInstancesInput{ImageId: awssdk.String(ami), InstanceType: types.InstanceTypeT3Micro, MinCount: awssdk.Int32(3), MaxCount: awssdk.Int32(3),
		ClientToken: awssdk.String("fleet-1"), TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{tagOf("Name", "fleet"), tagOf("managed-by", "spuff")}}}}
	out, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 3 {
		t.Fatalf("%d instances in the reservation, want 3", len(out.Instances))
	}
	for i, x := range out.Instances {
		if awssdk.ToInt32(x.AmiLaunchIndex) != int32(i) {
			t.Errorf("instance %d has launch index %d", i, awssdk.ToInt32(x.AmiLaunchIndex))
		}
	}
	again, err := c.RunInstances(ctx, in)
	if err != nil || awssdk.ToString(again.ReservationId) != awssdk.ToString(out.ReservationId) || len(again.Instances) != 3 {
		t.Errorf("the token again: %v, want the same reservation of 3", err)
	}
	d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: awssdk.String("tag:managed-by"), Values: []string{"spuff"}}}})
	if err != nil || len(d.Reservations) != 1 || len(d.Reservations[0].Instances) != 3 {
		t.Errorf("DescribeInstances: %+v, %v; want one reservation of 3", d, err)
	}
	// Capacity for two more: MinCount 3 fails, MaxCount 5 launches two.
	srv.Cloud.SetCapacity("us-east-1", "t3.micro", 5)
	clk.Advance(time.Second)
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: awssdk.String(ami), InstanceType: types.InstanceTypeT3Micro, MinCount: awssdk.Int32(3), MaxCount: awssdk.Int32(5)})
	wantCode(t, err, "InsufficientInstanceCapacity", 500)
	part, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: awssdk.String(ami), InstanceType: types.InstanceTypeT3Micro, MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(5)})
	if err != nil || len(part.Instances) != 2 {
		t.Errorf("MinCount 1 MaxCount 5 with room for 2: %v", err)
	}
}

func TestCapacityAndQuotaErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   simcloud.Options
		prep   func(c *simcloud.Cloud)
		code   string
		status int
	}{
		{"injected capacity", simcloud.Realistic(1), func(c *simcloud.Cloud) {
			c.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultCapacity})
		}, "InsufficientInstanceCapacity", 500},
		{"exhausted size", simcloud.Realistic(1), func(c *simcloud.Cloud) { c.SetCapacity("us-east-1", "t3.micro", 0) }, "InsufficientInstanceCapacity", 500},
		{"disabled region", simcloud.Realistic(1), func(c *simcloud.Cloud) { c.DisableRegion("us-east-1", true) }, "InsufficientInstanceCapacity", 500},
		{"quota, not capacity", func() simcloud.Options { o := simcloud.Realistic(1); o.MaxInstances = 1; return o }(), func(c *simcloud.Cloud) {
			c.AddInstances(1, func(int) simcloud.InstanceSpec {
				return simcloud.InstanceSpec{Name: "first", Region: "us-east-1", Size: "t3.micro"}
			})
		}, "InstanceLimitExceeded", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := ec2sim.Start(t, tc.opts)
			tc.prep(srv.Cloud)
			_, err := run(t, sdk(t, srv, "us-east-1"), catalogAMI(t, srv, jammy), "t3.micro", "")
			wantCode(t, err, tc.code, tc.status)
		})
	}
}

func TestRegionalAMIs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, world := range []simcloud.World{simcloud.WorldSimple, simcloud.WorldRealistic} {
		t.Run(world.String(), func(t *testing.T) {
			t.Parallel()
			srv := ec2sim.Start(t, simcloud.Options{World: world, TimeScale: 0.001})
			us, eu := sdk(t, srv, "us-east-1"), sdk(t, srv, "eu-west-1")
			a := newest(t, us, ec2sim.CanonicalOwner, "ubuntu/images/*-24.04-amd64-server-*", "x86_64")
			b := newest(t, eu, ec2sim.CanonicalOwner, "ubuntu/images/*-24.04-amd64-server-*", "x86_64")
			if regional := world == simcloud.WorldRealistic; (a != b) != regional {
				t.Errorf("the same AMI in two regions: %s and %s (regional %v)", a, b, regional)
			}
			if a != b {
				_, err := eu.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{a}})
				wantCode(t, err, "InvalidAMIID.NotFound", 400)
				if got := ec2sim.ImageID(ec2sim.FindImageIn(srv.Cloud, "eu-west-1", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20250110")); got == catalogAMI(t, srv, jammy) {
					t.Errorf("FindImageIn(eu-west-1) = FindImage = %s", got)
				}
			}
		})
	}
}

func TestRealisticDestroyWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, clk := realistic(t, func(o *simcloud.Options) { o.ListingDelay = -1 })
	c := sdk(t, srv, "us-east-1")
	out, err := run(t, c, catalogAMI(t, srv, jammy), "t3.micro", "", tagOf("managed-by", "spuff"))
	if err != nil {
		t.Fatal(err)
	}
	id := awssdk.ToString(out.Instances[0].InstanceId)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "InvalidInstanceID.NotFound", 400) // eventual consistency
	clk.Advance(time.Minute)
	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameShuttingDown {
		t.Fatalf("terminate: %+v, %v", term, err)
	}
	state := func() types.InstanceStateName {
		t.Helper()
		d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			return "not found"
		}
		return d.Reservations[0].Instances[0].State.Name
	}
	listed := func() int {
		d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: awssdk.String("tag:managed-by"), Values: []string{"spuff"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return len(d.Reservations)
	}
	steps := []struct {
		after  time.Duration
		state  types.InstanceStateName
		listed int
	}{
		{0, types.InstanceStateNameShuttingDown, 1},
		{29 * time.Second, types.InstanceStateNameShuttingDown, 1},
		{time.Second, types.InstanceStateNameTerminated, 1},
		{59 * time.Minute, types.InstanceStateNameTerminated, 1},
		{time.Minute, "not found", 0},
	}
	for _, s := range steps {
		clk.Advance(s.after)
		if got, n := state(), listed(); got != s.state || n != s.listed {
			t.Errorf("+%v: state %s, listed %d; want %s, %d", s.after, got, n, s.state, s.listed)
		}
	}
	again, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "InvalidInstanceID.NotFound", 400)
	_ = again
}

func TestFingerprintFormats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Computed independently: ssh-keygen -l for the ed25519 key (OpenSSH's
	// SHA256 form, padded), openssl md5 -c over the DER public key and
	// openssl sha1 -c over the DER PKCS#8 private key for the RSA ones.
	want := map[string]string{
		"laptop":                  "WBkb683cwgnLTKO8b37krJ3iXWfNkrLTucqIKVX9i0g=",
		ec2sim.ImportedRSAKeyName: "16:af:ce:64:02:be:ca:00:a0:fa:7d:61:f6:20:c3:29",
		ec2sim.CreatedRSAKeyName:  "08:f3:3b:82:ad:98:f2:f6:4c:0d:e2:b0:8c:f5:e3:cf:b0:88:e3:57",
	}
	srv, _ := realistic(t, nil)
	c := sdk(t, srv, "us-east-1")
	out, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range out.KeyPairs {
		got[awssdk.ToString(k.KeyName)] = awssdk.ToString(k.KeyFingerprint)
	}
	for name, fp := range want {
		if got[name] != fp {
			t.Errorf("key %s: fingerprint %q, want %q", name, got[name], fp)
		}
	}
	byFP, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: awssdk.String("fingerprint"), Values: []string{want["laptop"]}}}})
	if err != nil || len(byFP.KeyPairs) != 1 {
		t.Errorf("filter by EC2 fingerprint: %+v, %v", byFP, err)
	}
	// A fingerprint is not a key name.
	_, err = c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{want["laptop"]}})
	wantCode(t, err, "InvalidKeyPair.NotFound", 400)
	clkIn := &ec2.RunInstancesInput{ImageId: awssdk.String(catalogAMI(t, srv, jammy)), InstanceType: types.InstanceTypeT3Micro, MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1), KeyName: awssdk.String(want[ec2sim.ImportedRSAKeyName])}
	_, err = c.RunInstances(ctx, clkIn)
	wantCode(t, err, "InvalidKeyPair.NotFound", 400)

	// The simple world keeps the model's MD5 of the blob, unless told.
	for _, s := range []simcloud.Switch{simcloud.Auto, simcloud.On} {
		srv := ec2sim.StartWith(t, simcloud.Options{World: simcloud.WorldSimple}, ec2sim.Fingerprints(s))
		out, err := sdk(t, srv, "us-east-1").DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"laptop"}})
		if err != nil {
			t.Fatal(err)
		}
		fp := awssdk.ToString(out.KeyPairs[0].KeyFingerprint)
		if ec2Form := !strings.Contains(fp, ":"); ec2Form != (s == simcloud.On) {
			t.Errorf("simple world, Fingerprints(%v): %q", s, fp)
		}
	}
}

func TestAMIsPendingThenFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, clk := realistic(t, func(o *simcloud.Options) { o.ConsistencyDelay, o.SnapshotJitter, o.BootJitter = -1, -1, -1 })
	c := sdk(t, srv, "us-east-1")
	out, err := run(t, c, catalogAMI(t, srv, jammy), "t3.micro", "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateSnapshot, Kind: simcloud.FaultSnapshotFailed})
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: out.Instances[0].InstanceId, Name: awssdk.String("will-fail")})
	if err != nil {
		t.Fatal(err)
	}
	state := func() (types.ImageState, *types.StateReason) {
		d, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{awssdk.ToString(img.ImageId)}})
		if err != nil {
			t.Fatal(err)
		}
		return d.Images[0].State, d.Images[0].StateReason
	}
	clk.Advance(4 * time.Minute) // an AMI takes minutes
	if st, _ := state(); st != types.ImageStatePending {
		t.Errorf("after 4 minutes: %s, want pending", st)
	}
	clk.Advance(time.Minute)
	if st, reason := state(); st != types.ImageStateFailed || reason == nil || awssdk.ToString(reason.Code) == "" {
		t.Errorf("after 5 minutes: %s (%+v), want failed with a reason", st, reason)
	}
	snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil || len(snaps.Snapshots) != 1 || snaps.Snapshots[0].State != types.SnapshotStateError {
		t.Errorf("EBS snapshot behind a failed AMI: %+v, %v; want state error", snaps, err)
	}
}

func TestRunningWithoutPublicIP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, clk := realistic(t, func(o *simcloud.Options) {
		o.LateIPFraction, o.LateIPDelay, o.ConsistencyDelay, o.BootJitter = 1, 20*time.Second, -1, -1
	})
	c := sdk(t, srv, "us-east-1")
	out, err := run(t, c, catalogAMI(t, srv, jammy), "t3.micro", "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{awssdk.ToString(out.Instances[0].InstanceId)}})
	if err != nil {
		t.Fatal(err)
	}
	if in := d.Reservations[0].Instances[0]; in.State.Name != types.InstanceStateNameRunning || in.PublicIpAddress != nil {
		t.Errorf("at boot's end: %s with IP %v; want running without one", in.State.Name, awssdk.ToString(in.PublicIpAddress))
	}
	clk.Advance(20 * time.Second)
	d, _ = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{awssdk.ToString(out.Instances[0].InstanceId)}})
	if d.Reservations[0].Instances[0].PublicIpAddress == nil {
		t.Error("no public IP 20 s after running")
	}
}

func TestListingLagLongerThanGetLag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, clk := realistic(t, nil)
	c := sdk(t, srv, "us-east-1")
	out, err := run(t, c, catalogAMI(t, srv, jammy), "t3.micro", "", tagOf("managed-by", "spuff"))
	if err != nil {
		t.Fatal(err)
	}
	id := awssdk.ToString(out.Instances[0].InstanceId)
	filter := []types.Filter{{Name: awssdk.String("tag:managed-by"), Values: []string{"spuff"}}}
	steps := []struct {
		after       time.Duration
		get, listed bool
	}{{0, false, false}, {2 * time.Second, true, false}, {3 * time.Second, true, true}}
	for _, s := range steps {
		clk.Advance(s.after)
		_, gerr := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		l, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: filter})
		if err != nil {
			t.Fatal(err)
		}
		if (gerr == nil) != s.get || (len(l.Reservations) == 1) != s.listed {
			t.Errorf("+%v: found by ID %v, listed %v; want %v, %v", s.after, gerr == nil, len(l.Reservations) == 1, s.get, s.listed)
		}
	}
}
