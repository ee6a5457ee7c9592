package ec2sim_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// sdk returns a real EC2 client for region on srv, with the SDK's retries
// off so that every error is seen.
func sdk(t *testing.T, srv *simcloud.Server, region string) *ec2.Client {
	return sdkAs(t, srv, region, srv.Cloud.Token())
}

func sdkAs(t *testing.T, srv *simcloud.Server, region, akid string) *ec2.Client {
	t.Helper()
	return ec2.New(ec2.Options{
		Region:       region,
		BaseEndpoint: awssdk.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(akid, "secret", ""),
		Retryer:      awssdk.NopRetryer{},
		HTTPClient:   sdkHTTP{srv.Client()},
	})
}

// sdkHTTP hides the request body's WriteTo from net/http: smithy-go closes
// the body when Do returns and its WriteTo then answers io.EOF, which
// net/http, still checking the body for extra bytes, takes for a write
// error that closes the connection under a large answer being read.
type sdkHTTP struct{ c *http.Client }

func (h sdkHTTP) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body = struct{ io.ReadCloser }{req.Body}
	}
	return h.c.Do(req)
}

func tagOf(k, v string) types.Tag { return types.Tag{Key: awssdk.String(k), Value: awssdk.String(v)} }

// apiErr returns the EC2 error code and HTTP status of err.
func apiErr(err error) (string, int) {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	code, status := "", 0
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

func wantCode(t *testing.T, err error, code string, status int) {
	t.Helper()
	gotCode, gotStatus := apiErr(err)
	if gotCode != code || gotStatus != status {
		t.Errorf("error = %v (code %q, HTTP %d), want %s with HTTP %d", err, gotCode, gotStatus, code, status)
	}
}

// newest returns the newest available AMI of owner whose name matches
// pattern, for arch.
func newest(t *testing.T, c *ec2.Client, owner, pattern, arch string) string {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners: []string{owner},
		Filters: []types.Filter{
			{Name: awssdk.String("name"), Values: []string{pattern}},
			{Name: awssdk.String("architecture"), Values: []string{arch}},
			{Name: awssdk.String("state"), Values: []string{"available"}},
		},
	})
	if err != nil {
		t.Fatalf("DescribeImages: %v", err)
	}
	best, bestDate := "", ""
	for _, m := range out.Images {
		if d := awssdk.ToString(m.CreationDate); d > bestDate {
			best, bestDate = awssdk.ToString(m.ImageId), d
		}
	}
	if best == "" {
		t.Fatalf("no image %s for %s", pattern, arch)
	}
	return best
}

// runningNow describes id and checks it is running with a public IP.
func runningNow(t *testing.T, c *ec2.Client, id string) types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) != 1 {
		t.Fatalf("describing %s: %v", id, err)
	}
	in := out.Reservations[0].Instances[0]
	if in.State.Name != types.InstanceStateNameRunning || in.PublicIpAddress == nil {
		t.Fatalf("instance %s is %s with IP %v, want running with one", id, in.State.Name, awssdk.ToString(in.PublicIpAddress))
	}
	return in
}

func run(t *testing.T, c *ec2.Client, ami, itype, token string, tags ...types.Tag) (*ec2.RunInstancesOutput, error) {
	t.Helper()
	in := &ec2.RunInstancesInput{ImageId: awssdk.String(ami), InstanceType: types.InstanceType(itype), MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1)}
	if token != "" {
		in.ClientToken = awssdk.String(token)
	}
	if len(tags) > 0 {
		in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}}
	}
	return c.RunInstances(context.Background(), in)
}

func catalogAMI(t *testing.T, srv *simcloud.Server, name string) string {
	t.Helper()
	id := ec2sim.FindImage(srv.Cloud, name)
	if id == 0 {
		t.Fatalf("no catalogue image %s", name)
	}
	return ec2sim.ImageID(id)
}

const jammy = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20250110"

func TestIDs(t *testing.T) {
	t.Parallel()
	if got := ec2sim.InstanceID(0x186a1); got != "i-000000000000186a1" {
		t.Errorf("InstanceID = %q", got)
	}
	for _, s := range []string{"i-000000000000186a1", "ami-000000000000186a1", "snap-000000000000186a1", "i-0186a1ab"} {
		n, err := ec2sim.ModelID(s)
		if err != nil || (n != 0x186a1 && n != 0x0186a1ab) {
			t.Errorf("ModelID(%q) = %d, %v", s, n, err)
		}
	}
	for _, s := range []string{"", "i-", "i-xyz", "i-00000000000000000000", "vpc-1", "ami-12345"} {
		if _, err := ec2sim.ModelID(s); err == nil {
			t.Errorf("ModelID(%q) succeeded", s)
		}
	}
}

// TestClientTokenIdempotency runs in the simple world: the instance is
// found at once and terminated without a shutting-down window, and the
// token compares name, type, image and region only
// (TestRealisticIdempotency has EC2's strict tokens, kept for a day).
func TestClientTokenIdempotency(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, simcloud.Options{World: simcloud.WorldSimple})
	c := sdk(t, srv, "us-east-1")
	ami := catalogAMI(t, srv, jammy)
	a, err := run(t, c, ami, "t3.micro", "tok-A", tagOf("Name", "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := run(t, c, ami, "t3.micro", "tok-A", tagOf("Name", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if awssdk.ToString(a.ReservationId) != awssdk.ToString(b.ReservationId) || awssdk.ToString(a.Instances[0].InstanceId) != awssdk.ToString(b.Instances[0].InstanceId) {
		t.Errorf("the same client token gave reservations %s and %s", awssdk.ToString(a.ReservationId), awssdk.ToString(b.ReservationId))
	}
	if got := awssdk.ToString(b.Instances[0].ClientToken); got != "tok-A" {
		t.Errorf("clientToken = %q", got)
	}
	if n := srv.Cloud.Stats().Created; n != 1 {
		t.Errorf("%d instances created, want 1", n)
	}
	_, err = run(t, c, ami, "t3.small", "tok-A", tagOf("Name", "a"))
	wantCode(t, err, "IdempotentParameterMismatch", 400)
	_, err = run(t, c, ami, "t3.micro", strings.Repeat("x", 65))
	wantCode(t, err, "InvalidParameterValue", 400)

	// The token of a terminated instance still returns it, as in EC2.
	id := awssdk.ToString(a.Instances[0].InstanceId)
	if _, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	again, err := run(t, c, ami, "t3.micro", "tok-A", tagOf("Name", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if st := again.Instances[0].State.Name; st != types.InstanceStateNameTerminated {
		t.Errorf("reused token of a terminated instance: state %s, want terminated", st)
	}
}

// TestRunInstancesChecks runs in the simple world: its one request bucket
// takes the dozen RunInstances (the realistic RunInstances bucket holds 5,
// TestRealisticThrottling's), and the launched instance is read back at
// once (no eventual consistency).
func TestRunInstancesChecks(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, simcloud.Options{World: simcloud.WorldSimple})
	c := sdk(t, srv, "us-east-1")
	ctx := context.Background()
	ami := catalogAMI(t, srv, jammy)
	arm := catalogAMI(t, srv, "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20250108")
	base := func() *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: awssdk.String(ami), InstanceType: types.InstanceTypeT3Micro, MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1)}
	}
	cases := []struct {
		name   string
		edit   func(*ec2.RunInstancesInput)
		code   string
		status int
	}{
		{"missing AMI", func(in *ec2.RunInstancesInput) { in.ImageId = awssdk.String("ami-0000000000000dead") }, "InvalidAMIID.NotFound", 400},
		{"malformed AMI", func(in *ec2.RunInstancesInput) { in.ImageId = awssdk.String("ubuntu") }, "InvalidAMIID.Malformed", 400},
		{"architecture mismatch", func(in *ec2.RunInstancesInput) { in.ImageId = awssdk.String(arm) }, "InvalidParameterValue", 400},
		{"unknown type", func(in *ec2.RunInstancesInput) { in.InstanceType = "z9.huge" }, "InvalidParameterValue", 400},
		{"missing key pair", func(in *ec2.RunInstancesInput) { in.KeyName = awssdk.String("nope") }, "InvalidKeyPair.NotFound", 400},
		{"user data not base64", func(in *ec2.RunInstancesInput) { in.UserData = awssdk.String("not base64!") }, "InvalidParameterValue", 400},
		{"user data over 16 KB", func(in *ec2.RunInstancesInput) {
			in.UserData = awssdk.String(strings.Repeat("QUFB", 16385/3+1))
		}, "InvalidParameterValue", 400},
		{"reserved tag", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{tagOf("aws:x", "y")}}}
		}, "InvalidParameterValue", 400},
		{"MinCount over MaxCount", func(in *ec2.RunInstancesInput) { in.MinCount = awssdk.Int32(3) }, "InvalidParameterCombination", 400},
		{"MaxCount over 1000", func(in *ec2.RunInstancesInput) { in.MaxCount = awssdk.Int32(1001) }, "InvalidParameterValue", 400},
	}
	for _, tc := range cases {
		in := base()
		tc.edit(in)
		_, err := c.RunInstances(ctx, in)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		wantCode(t, err, tc.code, tc.status)
	}
	// Exactly 16 KB passes, and the model keeps the decoded data.
	in := base()
	raw := strings.Repeat("#", 16384)
	in.UserData = awssdk.String(b64(raw))
	out, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatalf("16384 bytes of user data: %v", err)
	}
	id, _ := ec2sim.ModelID(awssdk.ToString(out.Instances[0].InstanceId))
	if m, _ := srv.Cloud.GetInstance(id); m.UserData != raw {
		t.Errorf("the model keeps %d bytes of user data, want the 16384 decoded", len(m.UserData))
	}
	if _, err := sdk(t, srv, "zz-nowhere-9").DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err == nil {
		t.Error("a region the cloud lacks is accepted")
	} else {
		wantCode(t, err, "InvalidParameterValue", 400)
	}
}

func TestDescribeInstances(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, simcloud.Options{RateLimits: []simcloud.RateLimit{}})
	c := sdk(t, srv, "us-east-1")
	ctx := context.Background()
	srv.Cloud.AddInstances(12, func(i int) simcloud.InstanceSpec {
		l := map[string]string{"managed-by": "spuff"}
		if i%3 == 0 {
			l = map[string]string{"env": "prod"}
		}
		return simcloud.InstanceSpec{Name: "n", Region: "us-east-1", Size: "t3.micro", Labels: l}
	})
	srv.Cloud.AddInstances(2, func(int) simcloud.InstanceSpec {
		return simcloud.InstanceSpec{Name: "elsewhere", Region: "eu-west-1", Size: "t3.micro", Labels: map[string]string{"managed-by": "spuff"}}
	})
	filter := []types.Filter{
		{Name: awssdk.String("tag:managed-by"), Values: []string{"spuff"}},
		{Name: awssdk.String("instance-state-name"), Values: []string{"pending", "running"}},
	}
	var ids []string
	pages := 0
	pg := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{Filters: filter, MaxResults: awssdk.Int32(5)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				ids = append(ids, awssdk.ToString(in.InstanceId))
			}
		}
	}
	if len(ids) != 8 || pages != 2 {
		t.Errorf("paged filter listing: %d instances in %d pages, want 8 in 2 (the other region's are not listed)", len(ids), pages)
	}
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1], MaxResults: awssdk.Int32(5)})
	wantCode(t, err, "InvalidParameterCombination", 400)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: awssdk.Int32(1001)})
	wantCode(t, err, "InvalidParameterValue", 400)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: awssdk.String("colour"), Values: []string{"red"}}}})
	wantCode(t, err, "InvalidParameterValue", 400)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-nothex"}})
	wantCode(t, err, "InvalidInstanceID.Malformed", 400)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{ids[0], "i-0000000000000dead"}})
	wantCode(t, err, "InvalidInstanceID.NotFound", 400)
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: awssdk.String("tag-key"), Values: []string{"e*"}}}})
	if err != nil {
		t.Fatalf("tag-key filter with a wildcard: %v", err)
	}
	if len(out.Reservations) != 4 {
		t.Errorf("tag-key filter with a wildcard: %d reservations, want 4", len(out.Reservations))
	}
}

func TestTerminatedInstancesStayVisible(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	// The simple world: terminated at once, no eventual consistency
	// (TestRealisticDestroyWindow has the shutting-down window).
	srv := ec2sim.Start(t, simcloud.Options{World: simcloud.WorldSimple, Now: clock, RateLimits: []simcloud.RateLimit{}})
	c := sdk(t, srv, "us-east-1")
	ctx := context.Background()
	out, err := run(t, c, catalogAMI(t, srv, jammy), "t3.micro", "", tagOf("Name", "x"))
	if err != nil {
		t.Fatal(err)
	}
	id := awssdk.ToString(out.Instances[0].InstanceId)
	if st := out.Instances[0].State.Name; st != types.InstanceStateNamePending {
		t.Errorf("new instance state %s, want pending", st)
	}
	advance(time.Second)
	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if ch := term.TerminatingInstances[0]; ch.PreviousState.Name != types.InstanceStateNameRunning || ch.CurrentState.Name != types.InstanceStateNameShuttingDown {
		t.Errorf("terminate: %s -> %s, want running -> shutting-down", ch.PreviousState.Name, ch.CurrentState.Name)
	}
	d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("describing a terminated instance: %v", err)
	}
	if in := d.Reservations[0].Instances[0]; in.State.Name != types.InstanceStateNameTerminated || in.PublicIpAddress != nil {
		t.Errorf("terminated instance: state %s, IP %v", in.State.Name, awssdk.ToString(in.PublicIpAddress))
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Errorf("terminating a terminated instance: %v", err)
	}
	advance(ec2sim.DefaultRetention)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "InvalidInstanceID.NotFound", 400)
}

func TestEventualConsistency(t *testing.T) {
	t.Parallel()
	srv, clk := realistic(t, nil)
	// The injected window replaces the realistic world's 2 s.
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultConsistency, Delay: 200 * time.Millisecond})
	c := sdk(t, srv, "us-east-1")
	ctx := context.Background()
	out, err := run(t, c, catalogAMI(t, srv, jammy), "t3.micro", "")
	if err != nil {
		t.Fatal(err)
	}
	id := awssdk.ToString(out.Instances[0].InstanceId)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "InvalidInstanceID.NotFound", 400)
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "InvalidInstanceID.NotFound", 400)
	clk.Advance(200 * time.Millisecond)
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Errorf("after the consistency window: %v", err)
	}
}

func TestThrottlingAndAuth(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, simcloud.Options{RateLimits: []simcloud.RateLimit{{Requests: 2, Per: time.Hour}}})
	c := sdk(t, srv, "us-east-1")
	ctx := context.Background()
	for range 2 {
		if _, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	wantCode(t, err, "RequestLimitExceeded", 503)
	_, err = sdkAs(t, srv, "us-east-1", "AKIDUNKNOWN").DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	wantCode(t, err, "AuthFailure", 401)

	// Requests the SDK would not send.
	srv2 := ec2sim.Start(t, simcloud.Options{})
	post := func(form url.Values, auth bool) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv2.URL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth {
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+srv2.Cloud.Token()+"/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00")
		}
		resp, err := srv2.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := new(strings.Builder)
		_, _ = io.Copy(buf, resp.Body)
		return resp.StatusCode, buf.String()
	}
	for _, tc := range []struct {
		form   url.Values
		auth   bool
		status int
		code   string
	}{
		{url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}, false, 401, "AuthFailure"},
		{url.Values{"Action": {"LaunchRocket"}, "Version": {"2016-11-15"}}, true, 400, "InvalidAction"},
		{url.Values{"Action": {"DescribeInstances"}}, true, 400, "MissingParameter"},
		{url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}, "DryRun": {"true"}}, true, 412, "DryRunOperation"},
	} {
		status, body := post(tc.form, tc.auth)
		if status != tc.status || !strings.Contains(body, "<Code>"+tc.code+"</Code>") || !strings.Contains(body, "<RequestID>") {
			t.Errorf("%v: HTTP %d %s, want %d %s", tc.form, status, body, tc.status, tc.code)
		}
	}
}

func TestImagesAndCatalogue(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, simcloud.Realistic(1))
	c := sdk(t, srv, "eu-west-1")
	ctx := context.Background()
	names := func(in *ec2.DescribeImagesInput) []string {
		t.Helper()
		out, err := c.DescribeImages(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var ns []string
		for _, m := range out.Images {
			ns = append(ns, awssdk.ToString(m.Name))
		}
		return ns
	}
	nameFilter := func(owner, pattern string) *ec2.DescribeImagesInput {
		return &ec2.DescribeImagesInput{Owners: []string{owner}, Filters: []types.Filter{{Name: awssdk.String("name"), Values: []string{pattern}}}}
	}
	// * crosses slashes in EC2 name filters.
	if ns := names(nameFilter(ec2sim.CanonicalOwner, "ubuntu/images/hvm-ssd*/ubuntu-*-24.04-arm64-server-*")); len(ns) != 3 {
		t.Errorf("Ubuntu 24.04 arm64 images: %v, want 3", ns)
	}
	// debian-12-* matches the backports decoy, which is newer.
	if ns := names(nameFilter(ec2sim.DebianOwner, "debian-12-*")); !slices.ContainsFunc(ns, func(n string) bool { return strings.Contains(n, "backports") }) {
		t.Errorf("debian-12-* does not match the backports decoy: %v", ns)
	}
	// The impostor is found by name alone, not with Canonical's owner.
	all := names(&ec2.DescribeImagesInput{Filters: []types.Filter{{Name: awssdk.String("name"), Values: []string{"*-24.04-amd64-server-20250501"}}}})
	owned := names(nameFilter(ec2sim.CanonicalOwner, "*-24.04-amd64-server-20250501"))
	if len(all) != 1 || len(owned) != 0 {
		t.Errorf("impostor image: %v by name, %v with Canonical's owner", all, owned)
	}
	pending := names(&ec2.DescribeImagesInput{Owners: []string{ec2sim.CanonicalOwner}, Filters: []types.Filter{{Name: awssdk.String("state"), Values: []string{"pending"}}}})
	if len(pending) != 1 {
		t.Errorf("pending images: %v, want the one decoy", pending)
	}
	// The region's own copy of a public AMI (each region has its own ID).
	_, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: awssdk.String(ec2sim.ImageID(ec2sim.FindImageIn(srv.Cloud, "eu-west-1", jammy)))})
	wantCode(t, err, "UnauthorizedOperation", 403)
	_, err = c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-0000000000000dead"}})
	wantCode(t, err, "InvalidAMIID.NotFound", 400)
}

func TestImagesAndEBSSnapshots(t *testing.T) {
	t.Parallel()
	for _, ignore := range []bool{false, true} {
		name := "DeleteAssociatedSnapshots"
		var hopts []ec2sim.HandlerOption
		if ignore {
			name, hopts = "endpoint ignores DeleteAssociatedSnapshots", []ec2sim.HandlerOption{ec2sim.IgnoreDeleteAssociatedSnapshots()}
		}
		t.Run(name, func(t *testing.T) {
			// The simple world: CreateImage right after RunInstances
			// finds the instance (no eventual consistency).
			srv := ec2sim.StartWith(t, simcloud.Options{World: simcloud.WorldSimple, BootDelay: 10 * time.Millisecond, SnapshotDelay: 10 * time.Millisecond}, hopts...)
			c := sdk(t, srv, "us-east-1")
			ctx := context.Background()
			out, err := run(t, c, catalogAMI(t, srv, jammy), "t3.micro", "", tagOf("Name", "src"))
			if err != nil {
				t.Fatal(err)
			}
			id := awssdk.ToString(out.Instances[0].InstanceId)
			_, err = c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: awssdk.String(id), Name: awssdk.String("bad:name")})
			wantCode(t, err, "InvalidAMIName.Malformed", 400)
			img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: awssdk.String(id), Name: awssdk.String("snap-1"),
				TagSpecifications: []types.TagSpecification{
					{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{tagOf("managed-by", "spuff"), tagOf("kind", "ami")}},
					{ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{tagOf("managed-by", "spuff"), tagOf("kind", "ebs")}},
				}})
			if err != nil {
				t.Fatal(err)
			}
			ami := awssdk.ToString(img.ImageId)
			_, err = c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: awssdk.String(id), Name: awssdk.String("snap-1")})
			wantCode(t, err, "InvalidAMIName.Duplicate", 400)
			d, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
			if err != nil {
				t.Fatal(err)
			}
			m := d.Images[0]
			snap := awssdk.ToString(m.BlockDeviceMappings[0].Ebs.SnapshotId)
			if awssdk.ToString(m.SourceInstanceId) != id || !strings.HasPrefix(snap, "snap-") {
				t.Errorf("AMI source %s, root snapshot %q", awssdk.ToString(m.SourceInstanceId), snap)
			}
			ds, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
				Filters: []types.Filter{{Name: awssdk.String("description"), Values: []string{"*" + ami + "*"}}}})
			if err != nil || len(ds.Snapshots) != 1 || awssdk.ToString(ds.Snapshots[0].SnapshotId) != snap {
				t.Fatalf("DescribeSnapshots by description: %+v, %v", ds, err)
			}
			if tags := ds.Snapshots[0].Tags; !slices.ContainsFunc(tags, func(tg types.Tag) bool { return awssdk.ToString(tg.Value) == "ebs" }) {
				t.Errorf("EBS snapshot tags %v, want the snapshot's own", tags)
			}
			_, err = c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String(snap)})
			wantCode(t, err, "InvalidSnapshot.InUse", 400)
			dr, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: awssdk.String(ami), DeleteAssociatedSnapshots: awssdk.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			left := len(srv.Cloud.LiveVolumeSnapshots())
			if ignore {
				if len(dr.DeleteSnapshotResults) != 0 || left != 1 {
					t.Errorf("ignored flag: %d results, %d snapshots left; want 0 and 1", len(dr.DeleteSnapshotResults), left)
				}
				if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String(snap)}); err != nil {
					t.Fatalf("DeleteSnapshot after deregistering: %v", err)
				}
			} else if len(dr.DeleteSnapshotResults) != 1 || dr.DeleteSnapshotResults[0].ReturnCode != types.SnapshotReturnCodesSuccess || left != 0 {
				t.Errorf("DeleteAssociatedSnapshots: results %+v, %d snapshots left", dr.DeleteSnapshotResults, left)
			}
			_, err = c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String(snap)})
			wantCode(t, err, "InvalidSnapshot.NotFound", 400)
			_, err = c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: awssdk.String(ami)})
			wantCode(t, err, "InvalidAMIID.NotFound", 400)
			if n := len(srv.Cloud.LiveVolumeSnapshots()); n != 0 {
				t.Errorf("%d EBS snapshots left", n)
			}
		})
	}
}

// TestRegionsAndKeyPairs runs in the simple world: one AMI ID in every
// region (TestRegionalAMIs has the realistic copies), the account's two
// ed25519 keys only, and no eventual consistency, so that an instance not
// found from another region is not found because of its region.
func TestRegionsAndKeyPairs(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, simcloud.Options{World: simcloud.WorldSimple})
	ctx := context.Background()
	eu, us := sdk(t, srv, "eu-west-1"), sdk(t, srv, "us-east-1")
	out, err := run(t, eu, catalogAMI(t, srv, jammy), "t3.micro", "", tagOf("Name", "eu"))
	if err != nil {
		t.Fatal(err)
	}
	id := awssdk.ToString(out.Instances[0].InstanceId)
	if az := awssdk.ToString(out.Instances[0].Placement.AvailabilityZone); az != "eu-west-1a" {
		t.Errorf("availability zone %q", az)
	}
	_, err = us.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, "InvalidInstanceID.NotFound", 400)

	keys, err := us.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{IncludePublicKey: awssdk.Bool(true)})
	if err != nil || len(keys.KeyPairs) != 2 || !strings.HasPrefix(awssdk.ToString(keys.KeyPairs[0].PublicKey), "ssh-ed25519 ") {
		t.Fatalf("DescribeKeyPairs: %+v, %v", keys, err)
	}
	_, err = us.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"nope"}})
	wantCode(t, err, "InvalidKeyPair.NotFound", 400)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
