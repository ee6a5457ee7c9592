package aws

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		op         string
		unfiltered bool
		want       string
	}{
		{"DescribeInstances", false, classRead},
		{"DescribeInstances", true, classReadUnfiltered},
		{"DescribeSnapshots", true, classReadUnfiltered},
		{"DescribeImages", true, classRead}, // not of the unfiltered set
		{"DescribeKeyPairs", false, classRead},
		{"GetConsoleOutput", false, classRead},
		{"RunInstances", false, "RunInstances"},
		{"TerminateInstances", false, "TerminateInstances"},
		{"CreateTags", false, "CreateTags"},
		{"CreateImage", false, classMutate},
		{"", false, classMutate},
	} {
		if got := classOf(tc.op, tc.unfiltered); got != tc.want {
			t.Errorf("classOf(%q, %v) = %q, want %q", tc.op, tc.unfiltered, got, tc.want)
		}
	}
	classes := map[string]bool{}
	for _, l := range RateLimits {
		classes[l.Class] = true
		if l.Class == "" {
			t.Errorf("a rate limit without a class: %+v", l)
		}
	}
	for _, c := range []string{classRead, classReadUnfiltered, classMutate} {
		if !classes[c] {
			t.Errorf("no rate limit for class %q", c)
		}
	}
	for op := range ownBucket {
		if !classes[op] {
			t.Errorf("no rate limit for %s's own class", op)
		}
	}
	// EC2's numbers: RunInstances 5 refilled at 2/s; reads 100 at 20/s.
	for _, l := range RateLimits {
		if l.Class == "RunInstances" && l.Requests == 5 && l.Per != 2500*time.Millisecond ||
			l.Class == classRead && (l.Requests != 100 || l.Per != 5*time.Second) {
			t.Errorf("rate limit %+v is not EC2's", l)
		}
	}
}

// classRecorder is a transport that records the class and operation name
// of each request, as the paced transport sees them.
type classRecorder struct {
	mu   sync.Mutex
	seen map[string]map[string]bool // operation -> classes
	next http.RoundTripper
}

func (c *classRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	op := awsmiddleware.GetOperationName(req.Context())
	c.mu.Lock()
	if c.seen[op] == nil {
		c.seen[op] = map[string]bool{}
	}
	c.seen[op][requestClass(req)] = true
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

// TestRequestClassOnTheWire: the operation name, and the class middleware's
// mark, are on the context of the request the HTTP client sees, for every
// call of a session.
func TestRequestClassOnTheWire(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, func() simcloud.Options {
		o := providertest.Options()
		o.BootDelay, o.SnapshotDelay = 2*time.Second, 2*time.Second
		return o
	}())
	rec := &classRecorder{seen: map[string]map[string]bool{}, next: http.DefaultTransport}
	cfg := providertest.FastConfig(provider.Config{Endpoint: srv.URL, AccessKeyID: srv.Cloud.Token(), SecretAccessKey: "x",
		Region: "us-east-1", HTTPClient: &http.Client{Transport: rec}})
	ctx := context.Background()
	p, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := p.CreateInstance(ctx, provider.InstanceRequest{Name: "cls", Region: "us-east-1", Size: "t3.micro", Image: provider.Ubuntu("24.04")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitReady(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	snap, err := p.CreateSnapshot(ctx, inst.ID, "cls-snap")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListSSHKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyInstance(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	var c *ec2.Client
	p.As(&c)
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"RunInstances": "RunInstances", "TerminateInstances": "TerminateInstances", "DescribeImages": classRead,
		"DescribeKeyPairs": classRead, "CreateImage": classMutate, "DeregisterImage": "DeregisterImage",
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for op, class := range want {
		if got := rec.seen[op]; len(got) != 1 || !got[class] {
			t.Errorf("%s went out as class %v, want %q", op, got, class)
		}
	}
	// The driver's own DescribeInstances calls are filtered; the caller's
	// bare one is the unfiltered kind.
	if got := rec.seen["DescribeInstances"]; len(got) != 2 || !got[classRead] || !got[classReadUnfiltered] {
		t.Errorf("DescribeInstances went out as %v, want %q (the driver's) and %q (the bare call)", got, classRead, classReadUnfiltered)
	}
	if len(rec.seen[""]) != 0 {
		t.Errorf("requests without an operation name: %v", rec.seen[""])
	}
}

func TestFingerprints(t *testing.T) {
	md5 := "3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"
	sha1 := "1f:51:ae:28:bf:89:e9:d8:1f:25:5d:37:2d:7d:b8:ca:9f:f5:f1:6f"
	sha256 := "TKF8yrjyoH4LOx0w4Z9YUd8Skqmg0i9+NRJr7FqZ/Dw="
	for ref, want := range map[string]bool{
		md5: true, sha1: true, sha256: true, sha256[:43]: true, "SHA256:" + sha256[:43]: true,
		"laptop": false, "key-0123456789abcdef0": false, md5[:20]: false, "TKF8yrjyoH4LOx0w4Z9YUd8Skqmg0i9": false,
		"3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa:00": false,
	} {
		if got := isFingerprint(ref); got != want {
			t.Errorf("isFingerprint(%q) = %v", ref, got)
		}
	}
	if normalFingerprint(sha256) != normalFingerprint("SHA256:"+sha256[:43]) || normalFingerprint(md5) != normalFingerprint(toUpper(md5)) {
		t.Error("one fingerprint in two spellings does not compare equal")
	}
	if !keyPairIDRe.MatchString("key-0123456789abcdef0") || keyPairIDRe.MatchString("key-xyz") {
		t.Error("keyPairIDRe")
	}
}

func toUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// apiErr builds the error the SDK returns for an EC2 error answer.
func apiErr(status int, code, msg string) error {
	return &smithy.OperationError{ServiceID: "EC2", OperationName: "RunInstances", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err: &smithy.GenericAPIError{Code: code, Message: msg}},
		RequestID: "req-1",
	}}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status    int
		code, msg string
		kind      driver.Kind
		field     string
	}{
		{401, "AuthFailure", "AWS was not able to validate the provided access credentials", driver.KindAuthentication, ""},
		{403, "UnauthorizedOperation", "You are not authorized", driver.KindAuthentication, ""},
		{400, "InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist", driver.KindNotFound, ""},
		{400, "InvalidAMIID.NotFound", "The image id '[ami-1]' does not exist", driver.KindNotFound, ""},
		{503, "RequestLimitExceeded", "Request limit exceeded.", driver.KindRateLimit, ""},
		{400, "InstanceLimitExceeded", "You have requested more instances than your current instance limit", driver.KindQuotaExceeded, ""},
		{400, "VcpuLimitExceeded", "You have requested more vCPU capacity", driver.KindQuotaExceeded, ""},
		{400, "AMIQuotaExceeded", "AMI quota", driver.KindQuotaExceeded, ""},
		{500, "InsufficientInstanceCapacity", "We currently do not have sufficient t3.micro capacity", driver.KindCapacity, "Size"},
		{500, "InsufficientHostCapacity", "no host capacity", driver.KindCapacity, "Size"},
		{400, "Unsupported", "Your requested instance type (t3.micro) is not supported in your requested Availability Zone (us-east-1e)", driver.KindCapacity, "Size"},
		{400, "Unsupported", "The requested configuration is currently not supported.", driver.KindNotSupported, ""},
		{400, "IdempotentParameterMismatch", "The client token you have provided is associated with a resource that is already deleted", driver.KindConflict, ""},
		{400, "InvalidAMIName.Duplicate", "AMI name x is already in use by AMI ami-1", driver.KindConflict, ""},
		{400, "InvalidParameterValue", "Invalid value 'cx22' for InstanceType.", driver.KindInvalidConfig, "Size"},
		{400, "InvalidParameterValue", "The region 'zz-nowhere-9' does not exist", driver.KindInvalidConfig, "Region"},
		{400, "InvalidParameterValue", "User data is limited to 16384 bytes", driver.KindInvalidConfig, "UserData"},
		{400, "InvalidAMIID.Malformed", "Invalid id", driver.KindInvalidConfig, "Image"},
		{400, "InvalidKeyPair.Format", "Key is not in valid OpenSSH public key format", driver.KindUnknown, "SSHKeys"},
		{500, "InternalError", "An internal error has occurred", driver.KindAPI, ""},
		{503, "Unavailable", "The service is unavailable", driver.KindAPI, ""},
	} {
		err := classify(apiErr(tc.status, tc.code, tc.msg))
		var e *driver.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: %T %v is not a *driver.Error", tc.code, err, err)
			continue
		}
		want := tc.kind
		if want == driver.KindUnknown {
			want = driver.KindForStatus(tc.status)
		}
		if e.Kind != want || e.Field != tc.field || e.Code != tc.code || e.Status != tc.status || e.RetryAfter != 0 {
			t.Errorf("%s (%d): kind %v field %q code %q status %d retry-after %v; want %v %q", tc.code, tc.status, e.Kind, e.Field, e.Code, e.Status, e.RetryAfter, want, tc.field)
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			t.Errorf("%s: the SDK's error is not reachable", tc.code)
		}
	}
	for code, field := range map[string]string{"InvalidAMIID.NotFound": "Image", "InvalidKeyPair.NotFound": "SSHKeys",
		"InvalidSubnetID.NotFound": "WithSubnet", "InvalidGroup.NotFound": "WithSecurityGroups"} {
		err := createError(classify(apiErr(400, code, "does not exist")))
		if driver.KindOf(err) != driver.KindInvalidConfig {
			t.Errorf("RunInstances %s: %v, want invalid config", code, err)
		}
		var e *driver.Error
		if errors.As(err, &e) && e.Field != field {
			t.Errorf("RunInstances %s: field %q, want %q", code, e.Field, field)
		}
	}
	if err := classify(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancellation: %v", err)
	}
}
