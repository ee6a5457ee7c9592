package ec2sim_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/ec2query"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// EC2 has no OpenAPI description: the reference for what the dialect
// answers is aws-sdk-go-v2's own ec2query deserializers. validate replays
// every recorded answer through the real SDK operation of its action and
// checks that
//   - the SDK decodes it without error (timestamps, numbers, booleans);
//   - every non-empty leaf element of the XML landed in a field of the
//     SDK's output (a misnamed element, or a list without its <item>
//     wrappers, is silently dropped by the SDK: the counts then differ);
//   - an error answer has the EC2 error shape (Response/Errors/Error with
//     Code and Message, and a RequestID) and the status EC2 gives its code.

// exchange is one recorded API call.
type exchange struct {
	action string
	status int
	body   []byte
}

// recorder wraps a handler and keeps every answer it writes.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	got  []exchange
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	cw := &captureWriter{ResponseWriter: w, status: http.StatusOK}
	rec.next.ServeHTTP(cw, r) // a lost answer panics through: nothing to record
	rec.mu.Lock()
	rec.got = append(rec.got, exchange{action: form.Get("Action"), status: cw.status, body: cw.buf.Bytes()})
	rec.mu.Unlock()
}

func (rec *recorder) exchanges() []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]exchange(nil), rec.got...)
}

type captureWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (c *captureWriter) WriteHeader(s int) { c.status = s; c.ResponseWriter.WriteHeader(s) }
func (c *captureWriter) Write(b []byte) (int, error) {
	c.buf.Write(b)
	return c.ResponseWriter.Write(b)
}

// startRecorded serves a new cloud with every exchange recorded.
func startRecorded(t *testing.T, opts simcloud.Options, hopts ...ec2sim.HandlerOption) (*simcloud.Server, *recorder) {
	t.Helper()
	c := ec2sim.NewCloud(opts)
	rec := &recorder{next: ec2sim.Handler(c, hopts...)}
	srv := simcloud.NewServer(c, rec)
	t.Cleanup(srv.Close)
	return srv, rec
}

// statusOf is the HTTP status EC2 answers an error code with.
func statusOf(code string) int {
	switch code {
	case "AuthFailure":
		return http.StatusUnauthorized
	case "UnauthorizedOperation":
		return http.StatusForbidden
	case "RequestLimitExceeded", "Unavailable":
		return http.StatusServiceUnavailable
	case "InternalError", "InsufficientInstanceCapacity":
		return http.StatusInternalServerError
	case "DryRunOperation":
		return http.StatusPreconditionFailed
	}
	return http.StatusBadRequest
}

// cannedClient answers every request with one recorded answer.
type cannedClient struct{ ex exchange }

func (c cannedClient) Do(*http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: c.ex.status,
		Header:     http.Header{"Content-Type": {"text/xml;charset=UTF-8"}},
		Body:       io.NopCloser(bytes.NewReader(c.ex.body)),
	}, nil
}

// replay decodes ex with the SDK operation of its action.
func replay(ex exchange) (any, error) {
	c := ec2.New(ec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: awssdk.String("http://ec2sim.invalid"),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDREPLAY", "secret", ""),
		Retryer:      awssdk.NopRetryer{},
		HTTPClient:   cannedClient{ex},
	})
	ctx := context.Background()
	switch ex.action {
	case "RunInstances":
		return c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: awssdk.String("ami-1"), MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1)})
	case "DescribeInstances":
		return c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	case "TerminateInstances":
		return c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-1"}})
	case "CreateImage":
		return c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: awssdk.String("i-1"), Name: awssdk.String("n")})
	case "DescribeImages":
		return c.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	case "DeregisterImage":
		return c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: awssdk.String("ami-1")})
	case "DeleteSnapshot":
		return c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String("snap-1")})
	case "DescribeSnapshots":
		return c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{})
	case "CreateTags":
		return c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"i-1"}, Tags: []types.Tag{{Key: awssdk.String("k")}}})
	case "DescribeKeyPairs":
		return c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	}
	return nil, fmt.Errorf("no replay for action %q", ex.action)
}

// ignoredLeaves are root-level elements the SDK does not keep: the
// request ID goes to the metadata, and some actions' <return> has no field.
var ignoredLeaves = map[string]bool{"requestId": true}

func validate(ex exchange) error {
	if ex.status >= 300 {
		var shape struct {
			XMLName xml.Name
		}
		if err := xml.Unmarshal(ex.body, &shape); err != nil {
			return fmt.Errorf("%s: error answer is not XML: %v", ex.action, err)
		}
		if shape.XMLName.Local != "Response" {
			return fmt.Errorf("%s: error answer's root is <%s>, want <Response>", ex.action, shape.XMLName.Local)
		}
		ec, err := ec2query.GetErrorResponseComponents(bytes.NewReader(ex.body))
		if err != nil {
			return fmt.Errorf("%s: %v", ex.action, err)
		}
		if ec.Code == "" || ec.Message == "" || ec.RequestID == "" {
			return fmt.Errorf("%s: error answer lacks Code, Message or RequestID: %+v", ex.action, ec)
		}
		if want := statusOf(ec.Code); ex.status != want && !(ec.Code == "InternalError" && ex.status == http.StatusBadGateway) {
			return fmt.Errorf("%s: error %s answered with HTTP %d, EC2 uses %d", ex.action, ec.Code, ex.status, want)
		}
		return nil
	}
	if !regexp.MustCompile(`<requestId>[^<]+</requestId>`).Match(ex.body) {
		return fmt.Errorf("%s: the answer has no requestId", ex.action)
	}
	out, err := replay(ex)
	if err != nil {
		return fmt.Errorf("%s: the SDK cannot decode the answer: %v\n%s", ex.action, err, ex.body)
	}
	leaves, err := xmlLeaves(ex.body)
	if err != nil {
		return fmt.Errorf("%s: %v", ex.action, err)
	}
	fields := countFields(reflect.ValueOf(out))
	if !hasField(out, "Return") {
		leaves = leaves[:0:0]
		all, _ := xmlLeaves(ex.body)
		for _, l := range all {
			if l != "return" {
				leaves = append(leaves, l)
			}
		}
	}
	if len(leaves) != fields {
		return fmt.Errorf("%s: the answer has %d non-empty leaf elements but the SDK kept %d fields: some element is misnamed or a list lacks <item> wrappers\nleaves: %v\n%s",
			ex.action, len(leaves), fields, leaves, ex.body)
	}
	return nil
}

func hasField(out any, name string) bool {
	v := reflect.ValueOf(out)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	_, ok := v.Type().FieldByName(name)
	return ok
}

// xmlLeaves lists the names of the elements with text and no child
// element, root-level ignored ones left out.
func xmlLeaves(body []byte) ([]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	type frame struct {
		name     string
		children bool
		text     strings.Builder
	}
	var stack []*frame
	var out []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("answer is not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if n := len(stack); n > 0 {
				stack[n-1].children = true
			}
			stack = append(stack, &frame{name: t.Name.Local})
		case xml.CharData:
			if n := len(stack); n > 0 {
				stack[n-1].text.Write(t)
			}
		case xml.EndElement:
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !f.children && strings.TrimSpace(f.text.String()) != "" && !(len(stack) == 1 && ignoredLeaves[f.name]) {
				out = append(out, f.name)
			}
		}
	}
}

// countFields counts the set leaves of an SDK output: non-nil pointers to
// scalars and times, non-empty strings and enums, through structs and
// slices; the result metadata is skipped.
func countFields(v reflect.Value) int {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return 0
		}
		if v.Type() == reflect.TypeOf(&time.Time{}) {
			return 1
		}
		e := v.Elem()
		if e.Kind() == reflect.String {
			if e.String() == "" {
				return 0
			}
			return 1
		}
		if e.Kind() != reflect.Struct && e.Kind() != reflect.Slice {
			return 1
		}
		return countFields(e)
	case reflect.Struct:
		n := 0
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Name == "ResultMetadata" {
				continue
			}
			n += countFields(v.Field(i))
		}
		return n
	case reflect.Slice:
		n := 0
		for i := 0; i < v.Len(); i++ {
			n += countFields(v.Index(i))
		}
		return n
	case reflect.String:
		if v.String() == "" {
			return 0
		}
		return 1
	}
	return 0
}

// checkAll validates every exchange rec saw and returns the actions seen.
func checkAll(t *testing.T, rec *recorder) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, ex := range rec.exchanges() {
		seen[ex.action]++
		if err := validate(ex); err != nil {
			t.Errorf("invalid EC2 answer (HTTP %d): %v", ex.status, err)
		}
	}
	return seen
}

// TestValidatorCanFail proves the validator flags the mistakes it is there
// to catch, before any test relies on it passing.
func TestValidatorCanFail(t *testing.T) {
	t.Parallel()
	good := `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><instancesSet><item><instanceId>i-1</instanceId><launchTime>2025-01-02T03:04:05.000Z</launchTime><instanceState><code>16</code><name>running</name></instanceState></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`
	if err := validate(exchange{action: "DescribeInstances", status: 200, body: []byte(good)}); err != nil {
		t.Fatalf("a well-formed answer is flagged: %v", err)
	}
	bad := map[string]exchange{
		"list without <item> wrappers": {action: "DescribeInstances", status: 200, body: []byte(strings.Replace(good, "<instancesSet><item>", "<instancesSet><instance>", 1))},
		"misnamed element":             {action: "DescribeInstances", status: 200, body: []byte(strings.Replace(good, "instanceId>", "instanceIdentifier>", 2))},
		"invalid launchTime":           {action: "DescribeInstances", status: 200, body: []byte(strings.Replace(good, "2025-01-02T03:04:05.000Z", "yesterday", 1))},
		"no request ID":                {action: "DescribeInstances", status: 200, body: []byte(strings.Replace(good, "<requestId>r</requestId>", "", 1))},
		"throttling as 400":            {action: "DescribeInstances", status: 400, body: []byte(`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>slow down</Message></Error></Errors><RequestID>x</RequestID></Response>`)},
		"error without request ID":     {action: "RunInstances", status: 400, body: []byte(`<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>m</Message></Error></Errors></Response>`)},
		"error in another shape":       {action: "RunInstances", status: 400, body: []byte(`<ErrorResponse><Error><Code>InvalidParameterValue</Code><Message>m</Message></Error><RequestId>x</RequestId></ErrorResponse>`)},
	}
	for name, ex := range bad {
		if err := validate(ex); err == nil {
			t.Errorf("%s: not flagged", name)
		}
	}
}

// TestAnswersDecodeWithTheSDK drives a whole session, errors included,
// with the real SDK and validates every answer. It runs in the simple
// world, whose exact boot and instant visibility let it walk the session on
// the fake clock; TestRealisticAnswersDecode validates the realistic
// world's answers.
func TestAnswersDecodeWithTheSDK(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv, rec := startRecorded(t, simcloud.Options{World: simcloud.WorldSimple, BootDelay: 20 * time.Millisecond, SnapshotDelay: 20 * time.Millisecond, Now: clk.Now})
	c := sdk(t, srv, "us-east-1")
	ctx := context.Background()

	ubuntu := newest(t, c, ec2sim.CanonicalOwner, "ubuntu/images/hvm-ssd*/ubuntu-*-24.04-amd64-server-*", "x86_64")
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: awssdk.String(ubuntu), InstanceType: types.InstanceTypeT3Micro, MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1),
		ClientToken: awssdk.String("tok-1"), KeyName: awssdk.String("laptop"), UserData: awssdk.String("IyEvYmluL3No"),
		SubnetId: awssdk.String("subnet-0123"), SecurityGroupIds: []string{"sg-1", "sg-2"},
		IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: awssdk.String("dev")},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{tagOf("Name", "box"), tagOf("managed-by", "spuff")}},
			{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{tagOf("managed-by", "spuff")}},
		},
	})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	id := awssdk.ToString(run.Instances[0].InstanceId)
	clk.Advance(20 * time.Millisecond)
	runningNow(t, c, id)
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: awssdk.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{tagOf("env", "dev")}}); err != nil {
		t.Fatal(err)
	}
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: awssdk.String(id), Name: awssdk.String("box (2025) v1"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{tagOf("managed-by", "spuff")}}, {ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{tagOf("managed-by", "spuff")}}}})
	if err != nil {
		t.Fatal(err)
	}
	ami := awssdk.ToString(img.ImageId)
	if _, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{ec2sim.DebianOwner}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{IncludePublicKey: awssdk.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: awssdk.String(ami), DeleteAssociatedSnapshots: awssdk.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	// The terminated instance, still visible.
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	// Errors.
	for _, f := range []func() error{
		func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0000000000000dead"}})
			return err
		},
		func() error {
			_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String("snap-0000000000000dead")})
			return err
		},
		func() error {
			_, err := sdkAs(t, srv, "us-east-1", "AKIDWRONG").DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		},
	} {
		if f() == nil {
			t.Error("an erroneous call succeeded")
		}
	}
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultRateLimit})
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListImages, Kind: simcloud.FaultUnavailable})
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListVolumes, Kind: simcloud.FaultInternal})
	c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{})

	seen := checkAll(t, rec)
	for _, a := range []string{"RunInstances", "DescribeInstances", "TerminateInstances", "CreateImage", "DescribeImages",
		"DeregisterImage", "DeleteSnapshot", "DescribeSnapshots", "CreateTags", "DescribeKeyPairs"} {
		if seen[a] == 0 {
			t.Errorf("the session never called %s: its answers are not validated", a)
		}
	}
	t.Logf("validated %d answers: %v", len(rec.exchanges()), seen)
}

// TestRealisticAnswersDecode validates the answers of the realistic world's
// new shapes: a reservation of several instances, shutting-down and
// terminated instances, a failed AMI and its EBS snapshot in error, EC2's
// key fingerprints, InsufficientInstanceCapacity and RequestLimitExceeded
// without Retry-After.
func TestRealisticAnswersDecode(t *testing.T) {
	t.Parallel()
	clk := newClock()
	opts := simcloud.Realistic(1)
	opts.Now = clk.Now
	srv, rec := startRecorded(t, opts)
	c := sdk(t, srv, "us-east-1")
	ctx := context.Background()
	ami := newest(t, c, ec2sim.CanonicalOwner, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*", "x86_64")
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: awssdk.String(ami), InstanceType: types.InstanceTypeT3Micro,
		MinCount: awssdk.Int32(2), MaxCount: awssdk.Int32(3), ClientToken: awssdk.String("fleet"), KeyName: awssdk.String(ec2sim.CreatedRSAKeyName),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{tagOf("Name", "fleet"), tagOf("managed-by", "spuff")}}}})
	if err != nil || len(out.Instances) != 3 {
		t.Fatalf("RunInstances: %v", err)
	}
	id := awssdk.ToString(out.Instances[0].InstanceId)
	clk.Advance(time.Minute)
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: awssdk.String("tag:managed-by"), Values: []string{"spuff"}}}}); err != nil {
		t.Fatal(err)
	}
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateSnapshot, Kind: simcloud.FaultSnapshotFailed})
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: awssdk.String(id), Name: awssdk.String("failing")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); err != nil { // shutting-down
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	for _, f := range []func() error{
		func() error { // terminated
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
			return err
		},
		func() error { // failed AMI
			_, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{awssdk.ToString(img.ImageId)}})
			return err
		},
		func() error { // EBS snapshot in error
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
			return err
		},
		func() error {
			_, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
			return err
		},
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	srv.Cloud.SetCapacity("us-east-1", "", 0)
	if _, err := run(t, c, ami, "t3.micro", ""); err == nil {
		t.Error("a launch without capacity succeeded")
	}
	for range 60 {
		if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
			break
		}
	}
	seen := checkAll(t, rec)
	t.Logf("validated %d answers: %v", len(rec.exchanges()), seen)
	var capacity, throttled bool
	for _, ex := range rec.exchanges() {
		capacity = capacity || bytes.Contains(ex.body, []byte("<Code>InsufficientInstanceCapacity</Code>"))
		throttled = throttled || bytes.Contains(ex.body, []byte("<Code>RequestLimitExceeded</Code>"))
	}
	if !capacity || !throttled {
		t.Errorf("the session saw capacity %v, throttling %v; want both validated", capacity, throttled)
	}
}

// TestDriverAnswers validates every answer of a session the EC2 driver
// drives: create with image resolution, wait, list, snapshot, delete, in
// the realistic world at 1/1000 of real time (eventual consistency,
// listing lag, a shutting-down window, per-action buckets).
func TestDriverAnswers(t *testing.T) {
	srv, rec := startRecorded(t, simcloud.Realistic(0.001))
	cfg := provider.Config{Endpoint: srv.URL, AccessKeyID: srv.Cloud.Token(), SecretAccessKey: "x", Region: "us-east-1",
		WaitPolicy: provider.FixedWait(10 * time.Millisecond)}
	ctx := context.Background()
	p, err := aws.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := p.CreateInstance(ctx, provider.InstanceRequest{Name: "drv", Region: "us-east-1", Size: "t4g.micro",
		Image: provider.Debian("12"), UserData: "#!/bin/sh\n", SSHKeys: []string{"laptop"}, Labels: map[string]string{"env": "dev"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitReady(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListInstances(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := p.CreateSnapshot(ctx, inst.ID, "drv-snap")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListSnapshots(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListSSHKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyInstance(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	seen := checkAll(t, rec)
	t.Logf("validated %d answers of the driver: %v", len(rec.exchanges()), seen)
}
