package ec2sim

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// maxUserData is EC2's user data limit: 16 KB in raw form, before base64.
const maxUserData = 16384

// Defaults of the simulated account's network.
const (
	defaultVPC     = "vpc-0a1b2c3d4e5f60718"
	defaultSubnet  = "subnet-0a1b2c3d4e5f60718"
	defaultGroupID = "sg-0a1b2c3d4e5f60718"
)

// keyCreateTime is when the account's key pairs were imported.
var keyCreateTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

type handler struct {
	cloud           *simcloud.Cloud
	cfg             handlerConfig
	ec2Fingerprints bool
	seq             atomic.Uint64
}

// apiError is an EC2 error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

func invalidValue(format string, args ...any) *apiError {
	return badRequest("InvalidParameterValue", format, args...)
}

func missing(param string) *apiError {
	return badRequest("MissingParameter", "The request must contain the parameter %s", param)
}

// dialect renders the model's admission errors (credentials, throttling,
// injected faults) as EC2 does.
type dialect struct{}

func (dialect) WriteError(w http.ResponseWriter, r *http.Request, err *simcloud.Error) {
	if err.Code == simcloud.CodeCapacity || err.Code == simcloud.CodeRegionDisabled {
		_, region := credential(r)
		writeError(w, insufficientCapacity(r.Form.Get("InstanceType"), region+"a"))
		return
	}
	writeError(w, modelError(err, "", ""))
}

// RateHeaders writes nothing: EC2 sends no rate-limit headers.
func (dialect) RateHeaders(http.Header, []simcloud.WindowState) {}

// modelError maps a model error about a resource ("instance", "image",
// "snapshot"; id is its EC2 ID) to EC2's code and status.
func modelError(err *simcloud.Error, resource, id string) *apiError {
	switch err.Code {
	case simcloud.CodeUnauthorized:
		return &apiError{http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials"}
	case simcloud.CodeRateLimited:
		return &apiError{http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded."}
	case simcloud.CodeInternal:
		return &apiError{http.StatusInternalServerError, "InternalError", "An internal error has occurred"}
	case simcloud.CodeBadGateway:
		return &apiError{http.StatusBadGateway, "InternalError", "An internal error has occurred (bad gateway)"}
	case simcloud.CodeUnavailable:
		return &apiError{http.StatusServiceUnavailable, "Unavailable", "The service is unavailable. Please try again shortly."}
	case simcloud.CodeNotFound:
		switch resource {
		case "instance":
			return badRequest("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		case "image":
			return badRequest("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		case "snapshot":
			return badRequest("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
		}
		return invalidValue("%s", err.Message)
	case simcloud.CodeQuota:
		if resource == "instance" {
			return badRequest("InstanceLimitExceeded", "You have requested more instances than your current instance limit allows (%s).", err.Message)
		}
		return badRequest("ResourceLimitExceeded", "%s", err.Message)
	case simcloud.CodeIdempotency:
		return badRequest("IdempotentParameterMismatch", "The client token you have provided is associated with a resource that is already deleted or has different parameters. Please use a different client token.")
	case simcloud.CodeIncorrect:
		switch resource {
		case "instance":
			return badRequest("IncorrectInstanceState", "%s", err.Message)
		case "image":
			return badRequest("InvalidAMIID.Unavailable", "%s", err.Message)
		}
		return badRequest("IncorrectState", "%s", err.Message)
	case simcloud.CodeCapacity, simcloud.CodeRegionDisabled:
		return insufficientCapacity("", "")
	case simcloud.CodeLocked:
		return badRequest("IncorrectInstanceState", "%s", err.Message)
	case simcloud.CodeChanged:
		return badRequest("IncorrectState", "%s", err.Message)
	case simcloud.CodeDependency:
		if resource == "snapshot" {
			return badRequest("InvalidSnapshot.InUse", "The snapshot %s is currently in use", id)
		}
		return badRequest("DependencyViolation", "%s", err.Message)
	}
	return invalidValue("%s", err.Message)
}

// insufficientCapacity is EC2's answer when an Availability Zone has no
// room for an instance type (size, or "" when unknown):
// InsufficientInstanceCapacity, HTTP 500 (which the SDKs' retryers take for
// a transient server error), worded as EC2 words it.
func insufficientCapacity(size, az string) *apiError {
	what := "capacity"
	if size != "" {
		what = size + " capacity"
	}
	zone := "the Availability Zone you requested"
	if az != "" {
		zone += " (" + az + ")"
	}
	return &apiError{http.StatusInternalServerError, "InsufficientInstanceCapacity",
		"We currently do not have sufficient " + what + " in " + zone + ". " +
			"Our system will be working on provisioning additional capacity. You can currently get " + what +
			" by not specifying an Availability Zone in your request or choosing a different Availability Zone."}
}

func writeError(w http.ResponseWriter, e *apiError) {
	body, _ := xml.Marshal(errorResponse{
		Errors:    []errXML{{Code: e.code, Message: e.message}},
		RequestID: w.Header().Get("X-Amzn-Requestid"),
	})
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

func writeXML(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalError", "encoding the answer: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// credential returns the access key ID and the region of a SigV4-signed
// request (from the Authorization header or a presigned query), or "".
func credential(r *http.Request) (akid, region string) {
	scope := ""
	if h := r.Header.Get("Authorization"); h != "" {
		if i := strings.Index(h, "Credential="); i >= 0 {
			scope = h[i+len("Credential="):]
			if j := strings.IndexAny(scope, ", "); j >= 0 {
				scope = scope[:j]
			}
		}
	} else {
		scope = r.URL.Query().Get("X-Amz-Credential")
	}
	parts := strings.Split(scope, "/")
	if len(parts) != 5 || parts[3] != "ec2" {
		return "", ""
	}
	return parts[0], parts[2]
}

// ServeHTTP answers one EC2 Query API call.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.seq.Add(1)
	reqID := fmt.Sprintf("5eed%04x-%04x-4%03x-8%03x-%012x", n>>48&0xffff, n>>32&0xffff, n>>20&0xfff, n>>8&0xfff, n)
	w.Header().Set("X-Amzn-Requestid", reqID)
	if isPricing(r) {
		h.servePricing(w, r, reqID) // the Price List API (pricing.go)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeError(w, &apiError{http.StatusMethodNotAllowed, "InvalidHttpRequest", "The EC2 Query API takes GET or POST"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeError(w, badRequest("MalformedQueryString", "The request body could not be parsed: %v", err))
		return
	}
	form := r.Form
	action := form.Get("Action")
	akid, region := credential(r)
	admit := simcloud.Call{Op: opOf(action, form), Credential: akid, Scope: region, Charges: charges(action, form)}
	h.cloud.ServeCall(w, r, dialect{}, admit, func(w http.ResponseWriter) {
		w.Header().Set("X-Amzn-Requestid", reqID)
		c := &call{h: h, w: w, form: form, region: region, now: h.cloud.Now()}
		if e := c.run(action); e != nil {
			writeError(w, e)
		}
	})
}

// opOf maps an action to the model operation it counts as and faults
// target.
func opOf(action string, form url.Values) simcloud.Op {
	switch action {
	case "RunInstances":
		return simcloud.OpCreateInstance
	case "DescribeInstances":
		if form.Has("InstanceId.1") {
			return simcloud.OpGetInstance
		}
		return simcloud.OpListInstances
	case "TerminateInstances":
		return simcloud.OpDeleteInstance
	case "CreateImage":
		return simcloud.OpCreateSnapshot
	case "DescribeImages":
		if form.Has("ImageId.1") {
			return simcloud.OpGetImage
		}
		return simcloud.OpListImages
	case "DeregisterImage":
		return simcloud.OpDeleteImage
	case "DeleteSnapshot":
		return simcloud.OpDeleteVolume
	case "DescribeSnapshots":
		return simcloud.OpListVolumes
	case "CreateTags":
		return simcloud.OpTag
	case "DescribeKeyPairs":
		return simcloud.OpListSSHKeys
	}
	if op, ok := catalogOp(action); ok {
		return op
	}
	return simcloud.OpOther
}

// charges returns the token buckets an action draws from (see Buckets):
// its own bucket of its class's size, and for RunInstances and
// TerminateInstances the resource bucket, charged one token per instance.
func charges(action string, form url.Values) []simcloud.Charge {
	req := func(bucket string) simcloud.Charge { return simcloud.Charge{Bucket: bucket, Key: action} }
	switch action {
	case "RunInstances":
		n, _ := strconv.Atoi(form.Get("MaxCount"))
		return []simcloud.Charge{req(BucketRunInstances), {Bucket: BucketRunInstancesRes, Tokens: max(n, 1)}}
	case "TerminateInstances":
		return []simcloud.Charge{req(BucketTerminateInstances), {Bucket: BucketTerminateInstancesRes, Tokens: max(len(members(form, "InstanceId")), 1)}}
	case "CreateTags":
		return []simcloud.Charge{req(BucketCreateTags)}
	case "DeregisterImage":
		return []simcloud.Charge{req(BucketDeregisterImage)}
	case "DeleteSnapshot":
		return []simcloud.Charge{req(BucketDeleteSnapshot)}
	case "DescribeInstances", "DescribeSnapshots":
		if len(indexes(form, "Filter")) == 0 && !form.Has("MaxResults") && !form.Has("NextToken") {
			return []simcloud.Charge{req(BucketUnfiltered)}
		}
		return []simcloud.Charge{req(BucketNonMutating)}
	case "":
		return nil
	}
	if strings.HasPrefix(action, "Describe") || strings.HasPrefix(action, "Get") || strings.HasPrefix(action, "List") {
		return []simcloud.Charge{req(BucketNonMutating)}
	}
	return []simcloud.Charge{req(BucketMutating)}
}

// call is one admitted API call.
type call struct {
	h      *handler
	w      http.ResponseWriter
	form   url.Values
	region string
	now    time.Time
	// keys are the account's key pairs by model ID, read before any
	// predicate runs under the cloud's lock.
	keys map[int64]simcloud.SSHKey
}

func (c *call) run(action string) *apiError {
	switch v := c.form.Get("Version"); v {
	case apiVersion:
	case "":
		return missing("Version")
	default:
		return badRequest("NoSuchVersion", "An invalid or out-of-range value '%s' was supplied for the parameter Version", v)
	}
	if regions := c.h.cloud.Options().Regions; len(regions) > 0 && !slices.Contains(regions, c.region) {
		return invalidValue("The region '%s' does not exist or is not enabled for this account (regions: %s)", c.region, strings.Join(regions, ", "))
	}
	c.keys = map[int64]simcloud.SSHKey{}
	for _, k := range c.h.cloud.SSHKeys() {
		c.keys[k.ID] = k
	}
	if c.form.Get("DryRun") == "true" {
		return &apiError{http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."}
	}
	switch action {
	case "RunInstances":
		return c.runInstances()
	case "DescribeInstances":
		return c.describeInstances()
	case "TerminateInstances":
		return c.terminateInstances()
	case "CreateImage":
		return c.createImage()
	case "DescribeImages":
		return c.describeImages()
	case "DeregisterImage":
		return c.deregisterImage()
	case "DeleteSnapshot":
		return c.deleteSnapshot()
	case "DescribeSnapshots":
		return c.describeSnapshots()
	case "CreateTags":
		return c.createTags()
	case "DescribeKeyPairs":
		return c.describeKeyPairs()
	case "GetConsoleOutput":
		return c.getConsoleOutput()
	case "":
		return missing("Action")
	}
	if e, ok := c.runCatalog(action); ok {
		return e
	}
	return badRequest("InvalidAction", "The action %s is not valid for this web service.", action)
}

// ---- form decoding ----

// indexes returns the sorted list indexes N of keys prefix.N and
// prefix.N.* in form.
func indexes(form url.Values, prefix string) []int {
	seen := map[int]bool{}
	for k := range form {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(idx); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// members returns the values of the list prefix.1, prefix.2, ...
func members(form url.Values, prefix string) []string {
	var out []string
	for _, n := range indexes(form, prefix) {
		if k := prefix + "." + strconv.Itoa(n); form.Has(k) {
			out = append(out, form.Get(k))
		}
	}
	return out
}

type filter struct {
	name   string
	values []string
}

func filters(form url.Values) []filter {
	var out []filter
	for _, n := range indexes(form, "Filter") {
		p := "Filter." + strconv.Itoa(n)
		out = append(out, filter{name: form.Get(p + ".Name"), values: members(form, p+".Value")})
	}
	return out
}

type tag struct{ key, value string }

// tags reads the list prefix.N.Key / prefix.N.Value and checks it as EC2
// does.
func tags(form url.Values, prefix string) ([]tag, *apiError) {
	var out []tag
	seen := map[string]bool{}
	for _, n := range indexes(form, prefix) {
		p := prefix + "." + strconv.Itoa(n)
		t := tag{key: form.Get(p + ".Key"), value: form.Get(p + ".Value")}
		switch {
		case t.key == "":
			return nil, invalidValue("Tag key cannot be empty")
		case len(t.key) > 128:
			return nil, invalidValue("Tag key exceeds the maximum length of 128 characters")
		case len(t.value) > 256:
			return nil, invalidValue("Tag value exceeds the maximum length of 256 characters")
		case strings.HasPrefix(strings.ToLower(t.key), "aws:"):
			return nil, invalidValue("Tag keys starting with 'aws:' are reserved for internal use")
		case seen[t.key]:
			return nil, invalidValue("Duplicate tag key '%s' specified.", t.key)
		}
		seen[t.key] = true
		out = append(out, t)
	}
	if len(out) > 50 {
		return nil, badRequest("TagLimitExceeded", "The maximum number of tags per resource is 50")
	}
	return out, nil
}

// tagSpecs reads TagSpecification.N and returns the tags per resource
// type, checking the types against allowed.
func tagSpecs(form url.Values, allowed ...string) (map[string][]tag, *apiError) {
	out := map[string][]tag{}
	for _, n := range indexes(form, "TagSpecification") {
		p := "TagSpecification." + strconv.Itoa(n)
		rt := form.Get(p + ".ResourceType")
		if !slices.Contains(allowed, rt) {
			return nil, invalidValue("'%s' is not a valid taggable resource type for this operation.", rt)
		}
		if _, dup := out[rt]; dup {
			return nil, invalidValue("The same resource type may not be specified more than once in tag specifications")
		}
		ts, e := tags(form, p+".Tag")
		if e != nil {
			return nil, e
		}
		out[rt] = ts
	}
	return out, nil
}

func tagMap(ts []tag) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[t.key] = t.value
	}
	return m
}

func tagList(m map[string]string) []tagXML {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]tagXML, 0, len(keys))
	for _, k := range keys {
		out = append(out, tagXML{Key: k, Value: m[k]})
	}
	return out
}

// glob matches s against an EC2 filter value, where * matches any run of
// characters (slashes included), ? one character, and \ escapes.
func glob(pattern, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '\\':
				if px+1 < len(pattern) && sx < len(s) && pattern[px+1] == s[sx] {
					px += 2
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if starPx >= 0 && starSx < len(s) {
			starSx++
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// tagFilter matches the tag filters every resource shares; ok is false
// for a filter name that is not a tag filter.
func tagFilter(f filter, tags map[string]string) (match, ok bool) {
	switch {
	case strings.HasPrefix(f.name, "tag:"):
		v, has := tags[strings.TrimPrefix(f.name, "tag:")]
		return has && anyGlob(f.values, v), true
	case f.name == "tag-key":
		for k := range tags {
			if anyGlob(f.values, k) {
				return true, true
			}
		}
		return false, true
	case f.name == "tag-value":
		for _, v := range tags {
			if anyGlob(f.values, v) {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

// matcher builds the predicate of a filter list; fields returns the
// values of a non-tag filter name for a resource (nil, false for an
// unknown name).
func matcher[T any](fs []filter, tagsOf func(T) map[string]string, field func(T, string) ([]string, bool)) (func(T) bool, *apiError) {
	var zero T
	for _, f := range fs {
		if _, ok := tagFilter(f, nil); ok {
			continue
		}
		if _, ok := field(zero, f.name); !ok {
			return nil, invalidValue("The filter '%s' is invalid", f.name)
		}
	}
	return func(x T) bool {
		for _, f := range fs {
			if m, ok := tagFilter(f, tagsOf(x)); ok {
				if !m {
					return false
				}
				continue
			}
			vals, _ := field(x, f.name)
			hit := false
			for _, v := range vals {
				if anyGlob(f.values, v) {
					hit = true
					break
				}
			}
			if !hit {
				return false
			}
		}
		return true
	}, nil
}

// paging reads MaxResults and NextToken: the page size (0 for all) and the
// model ID after which the page starts. EC2 takes 5 to 1000 results per
// page (min is 5 for most Describe calls).
func paging(form url.Values, ids []string) (limit int, after int64, e *apiError) {
	if s := form.Get("MaxResults"); s != "" {
		if len(ids) > 0 {
			return 0, 0, badRequest("InvalidParameterCombination", "The parameter %s cannot be used with the parameter maxResults", "ids")
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 5 || n > 1000 {
			return 0, 0, invalidValue("Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", s)
		}
		limit = n
	}
	if tok := form.Get("NextToken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		s, ok := strings.CutPrefix(string(raw), "ec2sim-after:")
		n, perr := strconv.ParseInt(s, 10, 64)
		if err != nil || !ok || perr != nil {
			return 0, 0, badRequest("InvalidParameterValue", "Invalid NextToken")
		}
		after = n
	}
	return limit, after, nil
}

func nextToken(lastID int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("ec2sim-after:" + strconv.FormatInt(lastID, 10)))
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// ---- instances ----

var (
	statePending      = stateXML{Code: 0, Name: "pending"}
	stateRunning      = stateXML{Code: 16, Name: "running"}
	stateShuttingDown = stateXML{Code: 32, Name: "shutting-down"}
	stateTerminated   = stateXML{Code: 48, Name: "terminated"}
)

func (c *call) instanceState(in *simcloud.Instance) stateXML {
	switch in.State(c.now) {
	case simcloud.StateNew:
		return statePending
	case simcloud.StateDeleting:
		return stateShuttingDown
	case simcloud.StateDeleted:
		return stateTerminated
	}
	return stateRunning
}

// instanceTags are an instance's EC2 tags: its labels and its Name.
func instanceTags(in *simcloud.Instance) map[string]string {
	m := make(map[string]string, len(in.Labels)+1)
	maps.Copy(m, in.Labels)
	if in.Extra["unnamed"] == "" {
		m["Name"] = in.Name
	}
	return m
}

func (c *call) keyName(in *simcloud.Instance) string {
	if len(in.SSHKeyIDs) == 0 {
		return ""
	}
	return c.keys[in.SSHKeyIDs[0]].Name
}

func (c *call) groups(in *simcloud.Instance) []groupXML {
	sgs := in.Extra["security-groups"]
	if sgs == "" {
		return []groupXML{{GroupID: defaultGroupID, GroupName: "default"}}
	}
	var out []groupXML
	for g := range strings.SplitSeq(sgs, ",") {
		out = append(out, groupXML{GroupID: g, GroupName: g})
	}
	return out
}

func publicDNS(region string, ip netip.Addr) string {
	dashed := strings.ReplaceAll(ip.String(), ".", "-")
	if region == "us-east-1" {
		return "ec2-" + dashed + ".compute-1.amazonaws.com"
	}
	return "ec2-" + dashed + "." + region + ".compute.amazonaws.com"
}

func (c *call) instanceXML(in *simcloud.Instance) instanceXML {
	state := c.instanceState(in)
	launch := timestamp(in.CreatedAt)
	region := in.Region
	if region == "" {
		region = c.region
	}
	root := in.Extra["root-device"]
	if root == "" {
		root = "/dev/sda1"
	}
	x := instanceXML{
		InstanceID:         InstanceID(in.ID),
		ImageID:            ImageID(in.ImageID),
		State:              state,
		AmiLaunchIndex:     int32(in.LaunchIndex),
		KeyName:            c.keyName(in),
		InstanceType:       in.Size,
		LaunchTime:         launch,
		Placement:          placementXML{AvailabilityZone: region + "a", Tenancy: "default"},
		Monitoring:         stateNameXML{State: "disabled"},
		Architecture:       in.Arch,
		RootDeviceType:     "ebs",
		RootDeviceName:     root,
		VirtualizationType: "hvm",
		ClientToken:        in.ClientToken,
		Tags:               tagList(instanceTags(in)),
		Hypervisor:         "xen",
		EbsOptimized:       true,
		EnaSupport:         true,
		PlatformDetails:    "Linux/UNIX",
		UsageOperation:     "RunInstances",
	}
	if x.Architecture == "" {
		x.Architecture = "x86_64"
	}
	if p := in.Extra["iam-profile"]; p != "" {
		arn := p
		if !strings.HasPrefix(p, "arn:") {
			arn = "arn:aws:iam::" + AccountID + ":instance-profile/" + p
		}
		x.IamInstanceProfile = &profileXML{Arn: arn, ID: "AIPAZZSIMULATED0PROFILE"}
	}
	if state == stateTerminated || state == stateShuttingDown {
		x.Reason = "User initiated (" + in.DeletedAt.UTC().Format("2006-01-02 15:04:05 MST") + ")"
		x.StateReason = &reasonXML{Code: "Client.UserInitiatedShutdown", Message: "Client.UserInitiatedShutdown: User initiated shutdown"}
	}
	if state == stateTerminated {
		return x
	}
	private := netip.AddrFrom4([4]byte{172, 31, byte(in.ID >> 8), byte(in.ID)})
	x.PrivateIPAddress = private.String()
	x.PrivateDNSName = "ip-" + strings.ReplaceAll(private.String(), ".", "-") + ".ec2.internal"
	x.SubnetID = defaultSubnet
	if s := in.Extra["subnet"]; s != "" {
		x.SubnetID = s
	}
	x.VpcID = defaultVPC
	x.Groups = c.groups(in)
	if ip := in.PublicIPv4(c.now); ip.IsValid() {
		x.IPAddress = ip.String()
		x.DNSName = publicDNS(region, ip)
	}
	x.BlockDeviceMappings = []instanceBDMXML{{
		DeviceName: root,
		Ebs:        ebsInstanceXML{VolumeID: FormatID(PrefixVolume, in.ID), Status: "attached", AttachTime: launch, DeleteOnTermination: true},
	}}
	return x
}

// reservations groups instances by the RunInstances call that made them,
// in the order of their first instance.
func (c *call) reservations(ins []simcloud.Instance) []reservationXML {
	out := []reservationXML{}
	at := map[int64]int{}
	for i := range ins {
		in := &ins[i]
		rid := in.Reservation
		if rid == 0 {
			rid = in.ID
		}
		x := c.instanceXML(in)
		j, ok := at[rid]
		if !ok {
			j = len(out)
			at[rid] = j
			out = append(out, reservationXML{ReservationID: FormatID(PrefixReservation, rid), OwnerID: AccountID, Groups: x.Groups})
		}
		out[j].Instances = append(out[j].Instances, x)
	}
	return out
}

func (c *call) inRegion(in *simcloud.Instance) bool {
	return in.Region == c.region || in.Region == ""
}

func (c *call) runInstances() *apiError {
	f := c.form
	ref := f.Get("ImageId")
	if ref == "" {
		return missing("ImageId")
	}
	imgID, err := ParseID(PrefixImage, ref)
	if err != nil {
		return badRequest("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", ref)
	}
	img, err := c.h.cloud.GetImage(imgID)
	if err != nil || !c.imageInRegion(&img) {
		return badRequest("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", ref)
	}
	if !img.Available(c.now) {
		return badRequest("InvalidAMIID.Unavailable", "The image id '[%s]' is not available yet", ref)
	}
	size := f.Get("InstanceType")
	if size == "" {
		size = "m1.small" // EC2's default
	}
	if _, ok := c.h.cloud.Options().Sizes[size]; !ok && len(c.h.cloud.Options().Sizes) > 0 {
		return invalidValue("Invalid value '%s' for InstanceType.", size)
	}
	var counts [2]int
	for i, p := range []string{"MinCount", "MaxCount"} {
		v := f.Get(p)
		if v == "" {
			return missing(p)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return invalidValue("Value (%s) for parameter %s is invalid. Expected a number between 1 and 1000.", v, p)
		}
		counts[i] = n
	}
	if counts[0] > counts[1] {
		return badRequest("InvalidParameterCombination", "MinCount (%d) cannot be greater than MaxCount (%d)", counts[0], counts[1])
	}
	token := f.Get("ClientToken")
	if len(token) > 64 || !isASCII(token) {
		return invalidValue("Value (%s) for parameter clientToken is invalid: at most 64 ASCII characters", token)
	}
	var keyIDs []int64
	if name := f.Get("KeyName"); name != "" {
		k, ok := c.findKey(name)
		if !ok {
			return badRequest("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", name)
		}
		keyIDs = []int64{k.ID}
	}
	var userData string
	if ud := f.Get("UserData"); ud != "" {
		raw, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return invalidValue("Invalid BASE64 encoding of user data.")
		}
		if len(raw) > maxUserData {
			return invalidValue("User data is limited to %d bytes (got %d).", maxUserData, len(raw))
		}
		userData = string(raw)
	}
	specs, e := tagSpecs(f, "instance", "volume", "network-interface", "spot-instances-request")
	if e != nil {
		return e
	}
	extra := map[string]string{}
	labels := tagMap(specs["instance"])
	name, named := labels["Name"]
	delete(labels, "Name")
	if !named || name == "" {
		name = "unnamed"
		extra["unnamed"] = "1"
	}
	for _, t := range specs["volume"] {
		extra["volume-tag:"+t.key] = t.value
	}
	if s := f.Get("SubnetId"); s != "" {
		if !strings.HasPrefix(s, "subnet-") {
			return badRequest("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", s)
		}
		extra["subnet"] = s
	}
	if sgs := members(f, "SecurityGroupId"); len(sgs) > 0 {
		for _, g := range sgs {
			if !strings.HasPrefix(g, "sg-") {
				return badRequest("InvalidGroup.NotFound", "The security group '%s' does not exist", g)
			}
		}
		extra["security-groups"] = strings.Join(sgs, ",")
	}
	if p := f.Get("IamInstanceProfile.Arn"); p != "" {
		extra["iam-profile"] = p
	} else if p := f.Get("IamInstanceProfile.Name"); p != "" {
		extra["iam-profile"] = p
	}
	if az := f.Get("Placement.AvailabilityZone"); az != "" && !strings.HasPrefix(az, c.region) {
		return invalidValue("Invalid availability zone: [%s]", az)
	}
	root := rootDevice(&img)
	extra["root-device"] = root
	for _, n := range indexes(f, "BlockDeviceMapping") {
		p := "BlockDeviceMapping." + strconv.Itoa(n)
		dev := f.Get(p + ".DeviceName")
		if dev == "" {
			return missing(p + ".DeviceName")
		}
		if s := f.Get(p + ".Ebs.VolumeSize"); s != "" {
			gb, err := strconv.Atoi(s)
			if err != nil || gb < 1 || gb > 16384 {
				return invalidValue("Volume size %s is out of range (1 to 16384 GiB)", s)
			}
			if dev == root {
				if gb < img.MinDiskGB {
					return badRequest("InvalidBlockDeviceMapping", "Volume of size %dGB is smaller than snapshot, expect size >= %dGB", gb, img.MinDiskGB)
				}
				extra["root-size"] = s
			}
		}
	}
	ins, _, err := c.h.cloud.CreateInstances(simcloud.InstanceSpec{
		Name:        name,
		Region:      c.region,
		Size:        size,
		ImageID:     imgID,
		UserData:    userData,
		Labels:      labels,
		SSHKeyIDs:   keyIDs,
		ClientToken: token,
		Params:      params(f),
		Extra:       extra,
		ShutdownAt:  guestShutdown(f.Get("InstanceInitiatedShutdownBehavior"), userData),
	}, counts[0], counts[1])
	if err != nil {
		var me *simcloud.Error
		if errors.As(err, &me) {
			switch {
			case me.Code == simcloud.CodeInvalid && me.Field == "image":
				return invalidValue("%s", me.Message) // architecture mismatch
			case me.Code == simcloud.CodeCapacity || me.Code == simcloud.CodeRegionDisabled:
				return insufficientCapacity(size, c.region+"a")
			}
			return modelError(me, "instance", "")
		}
		return &apiError{http.StatusInternalServerError, "InternalError", err.Error()}
	}
	writeXML(c.w, runInstancesResponse{Xmlns: xmlns, RequestID: c.requestID(), reservationXML: c.reservations(ins)[0]})
	return nil
}

// params is the canonical form of a RunInstances request, every parameter
// but the client token and the envelope (Action, Version, DryRun): EC2
// answers IdempotentParameterMismatch to a reused token with any of them
// changed (EC2 Developer Guide, "Ensuring idempotency in Amazon EC2 API
// requests").
func params(form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		switch k {
		case "Action", "Version", "ClientToken", "DryRun":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range form[k] {
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
			b.WriteByte('&')
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (c *call) requestID() string { return c.w.Header().Get("X-Amzn-Requestid") }

func (c *call) findKey(name string) (simcloud.SSHKey, bool) {
	for _, k := range c.keys {
		if k.Name == name {
			return k, true
		}
	}
	return simcloud.SSHKey{}, false
}

// lookupInstances finds the instances named by ids in the request's
// region (terminated ones within retention included), or answers
// InvalidInstanceID.Malformed / .NotFound as EC2 does.
func (c *call) lookupInstances(ids []string) ([]simcloud.Instance, *apiError) {
	out := make([]simcloud.Instance, 0, len(ids))
	var missingIDs []string
	for _, ref := range ids {
		id, err := ParseID(PrefixInstance, ref)
		if err != nil {
			return nil, badRequest("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", ref)
		}
		in, err := c.h.cloud.LookupInstance(id)
		if err != nil || !c.inRegion(&in) {
			missingIDs = append(missingIDs, ref)
			continue
		}
		out = append(out, in)
	}
	switch len(missingIDs) {
	case 0:
		return out, nil
	case 1:
		return nil, badRequest("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missingIDs[0])
	}
	return nil, badRequest("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missingIDs, ", "))
}

func (c *call) instanceField(in *simcloud.Instance, name string) ([]string, bool) {
	if in == nil {
		switch name {
		case "instance-state-name", "instance-state-code", "instance-id", "instance-type", "image-id",
			"client-token", "key-name", "availability-zone", "architecture":
			return nil, true
		}
		return nil, false
	}
	switch name {
	case "instance-state-name":
		return []string{c.instanceState(in).Name}, true
	case "instance-state-code":
		return []string{strconv.Itoa(int(c.instanceState(in).Code))}, true
	case "instance-id":
		return []string{InstanceID(in.ID)}, true
	case "instance-type":
		return []string{in.Size}, true
	case "image-id":
		return []string{ImageID(in.ImageID)}, true
	case "client-token":
		return []string{in.ClientToken}, true
	case "key-name":
		return []string{c.keyName(in)}, true
	case "availability-zone":
		return []string{in.Region + "a"}, true
	case "architecture":
		return []string{in.Arch}, true
	}
	return nil, false
}

func (c *call) describeInstances() *apiError {
	ids := members(c.form, "InstanceId")
	limit, after, e := paging(c.form, ids)
	if e != nil {
		return e
	}
	match, e := matcher(filters(c.form), instanceTags, c.instanceField)
	if e != nil {
		return e
	}
	resp := describeInstancesResponse{Xmlns: xmlns, RequestID: c.requestID(), Reservations: []reservationXML{}}
	var page []simcloud.Instance
	if len(ids) > 0 {
		found, e := c.lookupInstances(ids)
		if e != nil {
			return e
		}
		for _, in := range found {
			if match(&in) {
				page = append(page, in)
			}
		}
	} else {
		var total int
		page, total = c.h.cloud.ListInstances(func(in *simcloud.Instance) bool {
			return in.ID > after && c.inRegion(in) && match(in)
		}, 0, limit, true)
		if limit > 0 && total > len(page) {
			resp.NextToken = nextToken(page[len(page)-1].ID)
		}
	}
	resp.Reservations = c.reservations(page)
	writeXML(c.w, resp)
	return nil
}

func (c *call) terminateInstances() *apiError {
	ids := members(c.form, "InstanceId")
	if len(ids) == 0 {
		return missing("InstanceId")
	}
	found, e := c.lookupInstances(ids)
	if e != nil {
		return e
	}
	resp := terminateInstancesResponse{Xmlns: xmlns, RequestID: c.requestID()}
	for _, in := range found {
		prev := c.instanceState(&in)
		cur := prev
		if prev != stateTerminated && prev != stateShuttingDown {
			if _, err := c.h.cloud.DeleteInstance(in.ID); err == nil {
				cur = stateShuttingDown // as EC2 answers, however long the shutdown takes
			}
		}
		resp.Instances = append(resp.Instances, stateChangeXML{InstanceID: InstanceID(in.ID), CurrentState: cur, PreviousState: prev})
	}
	writeXML(c.w, resp)
	return nil
}

// ---- images and snapshots ----

func (c *call) imageInRegion(m *simcloud.Image) bool {
	return len(m.Regions) == 0 || slices.Contains(m.Regions, c.region)
}

func imageOwner(m *simcloud.Image) string {
	if m.Owner != "" {
		return m.Owner
	}
	return AccountID
}

func rootDevice(m *simcloud.Image) string {
	if m.Distribution == "Debian" {
		return "/dev/xvda"
	}
	return "/dev/sda1"
}

// imageState is the AMI's state: "pending" until usable, then "available",
// or "failed" for an AMI whose creation failed.
func (c *call) imageState(m *simcloud.Image) string {
	return m.State(c.now)
}

func (c *call) imageXML(m *simcloud.Image) imageXML {
	owner := imageOwner(m)
	size := int32(m.MinDiskGB)
	if size <= 0 {
		size = 8
	}
	bdm := []bdmXML{{DeviceName: rootDevice(m), Ebs: ebsXML{VolumeSize: size, DeleteOnTermination: true, VolumeType: "gp3"}}}
	if len(m.VolumeSnaps) > 0 {
		bdm[0].Ebs.SnapshotID = SnapshotID(m.VolumeSnaps[0])
		for _, v := range m.VolumeSnaps[1:] {
			bdm = append(bdm, bdmXML{DeviceName: "/dev/sdb", Ebs: ebsXML{SnapshotID: SnapshotID(v), VolumeSize: size, DeleteOnTermination: true, VolumeType: "gp3"}})
		}
	} else {
		// Catalogue AMIs: a snapshot of their publisher, not the account's.
		bdm[0].Ebs.SnapshotID = FormatID(PrefixSnapshot, m.ID|1<<52)
	}
	x := imageXML{
		ImageID:            ImageID(m.ID),
		ImageLocation:      owner + "/" + m.Name,
		ImageState:         c.imageState(m),
		ImageOwnerID:       owner,
		CreationDate:       timestamp(m.CreatedAt),
		IsPublic:           m.Kind == simcloud.ImageDistribution,
		Architecture:       m.Arch,
		ImageType:          "machine",
		Name:               m.Name,
		Description:        m.Description,
		RootDeviceType:     "ebs",
		RootDeviceName:     rootDevice(m),
		BlockDeviceMapping: bdm,
		VirtualizationType: "hvm",
		Tags:               tagList(m.Labels),
		Hypervisor:         "xen",
		EnaSupport:         true,
		PlatformDetails:    "Linux/UNIX",
		UsageOperation:     "RunInstances",
	}
	if x.Architecture == "" {
		x.Architecture = "x86_64"
	}
	if m.Source != 0 {
		x.SourceInstanceID = InstanceID(m.Source)
	}
	if x.ImageState == simcloud.ImageFailed {
		x.StateReason = &reasonXML{Code: "Server.InternalError", Message: "Server.InternalError: Internal error on launch"}
	}
	return x
}

func (c *call) imageField(m *simcloud.Image, name string) ([]string, bool) {
	if m == nil {
		switch name {
		case "name", "architecture", "state", "owner-id", "image-id", "is-public", "image-type",
			"root-device-type", "root-device-name", "virtualization-type", "description", "hypervisor":
			return nil, true
		}
		return nil, false
	}
	switch name {
	case "name":
		return []string{m.Name}, true
	case "architecture":
		return []string{m.Arch}, true
	case "state":
		return []string{c.imageState(m)}, true
	case "owner-id":
		return []string{imageOwner(m)}, true
	case "image-id":
		return []string{ImageID(m.ID)}, true
	case "is-public":
		return []string{strconv.FormatBool(m.Kind == simcloud.ImageDistribution)}, true
	case "image-type":
		return []string{"machine"}, true
	case "root-device-type":
		return []string{"ebs"}, true
	case "root-device-name":
		return []string{rootDevice(m)}, true
	case "virtualization-type":
		return []string{"hvm"}, true
	case "description":
		return []string{m.Description}, true
	case "hypervisor":
		return []string{"xen"}, true
	}
	return nil, false
}

// ownerMatch reports whether m belongs to one of the Owner values
// ("self", "amazon", an account ID); none means any owner.
func ownerMatch(owners []string, m *simcloud.Image) bool {
	if len(owners) == 0 {
		return true
	}
	owner := imageOwner(m)
	for _, o := range owners {
		switch o {
		case "self":
			if owner == AccountID {
				return true
			}
		default:
			if o == owner {
				return true
			}
		}
	}
	return false
}

func (c *call) describeImages() *apiError {
	ids := members(c.form, "ImageId")
	owners := members(c.form, "Owner")
	limit, after, e := paging(c.form, ids)
	if e != nil {
		return e
	}
	match, e := matcher(filters(c.form), func(m *simcloud.Image) map[string]string { return m.Labels }, c.imageField)
	if e != nil {
		return e
	}
	resp := describeImagesResponse{Xmlns: xmlns, RequestID: c.requestID(), Images: []imageXML{}}
	var page []simcloud.Image
	if len(ids) > 0 {
		var missingIDs []string
		for _, ref := range ids {
			id, err := ParseID(PrefixImage, ref)
			if err != nil {
				return badRequest("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", ref)
			}
			m, err := c.h.cloud.GetImage(id)
			if err != nil || !c.imageInRegion(&m) {
				missingIDs = append(missingIDs, ref)
				continue
			}
			if ownerMatch(owners, &m) && match(&m) {
				page = append(page, m)
			}
		}
		if len(missingIDs) > 0 {
			return badRequest("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", strings.Join(missingIDs, ", "))
		}
	} else {
		var total int
		page, total = c.h.cloud.ListImages(func(m *simcloud.Image) bool {
			return m.ID > after && c.imageInRegion(m) && ownerMatch(owners, m) && match(m)
		}, 0, limit)
		if limit > 0 && total > len(page) {
			resp.NextToken = nextToken(page[len(page)-1].ID)
		}
	}
	for i := range page {
		resp.Images = append(resp.Images, c.imageXML(&page[i]))
	}
	writeXML(c.w, resp)
	return nil
}

// amiName reports whether name is a valid AMI name: 3 to 128 letters,
// digits, spaces and ( ) [ ] . / - ' @ _ (no ':').
func amiName(name string) bool {
	if len(name) < 3 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("()[] ./-'@_", ch) >= 0 {
			continue
		}
		return false
	}
	return true
}

func (c *call) createImage() *apiError {
	ref := c.form.Get("InstanceId")
	if ref == "" {
		return missing("InstanceId")
	}
	name := c.form.Get("Name")
	if name == "" {
		return missing("Name")
	}
	if !amiName(name) {
		return badRequest("InvalidAMIName.Malformed", "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '[', ']', ' ', '.', '/', '-', ''', '@' and '_'")
	}
	found, e := c.lookupInstances([]string{ref})
	if e != nil {
		return e
	}
	in := found[0]
	if st := in.State(c.now); st == simcloud.StateDeleted || st == simcloud.StateDeleting {
		return badRequest("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be imaged.", ref)
	}
	dup, _ := c.h.cloud.ListImages(func(m *simcloud.Image) bool {
		return m.Kind == simcloud.ImageSnapshot && m.Name == name && c.imageInRegion(m)
	}, 0, 1)
	if len(dup) > 0 {
		return badRequest("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", name, ImageID(dup[0].ID))
	}
	specs, e := tagSpecs(c.form, "image", "snapshot")
	if e != nil {
		return e
	}
	img, _, err := c.h.cloud.CreateSnapshot(simcloud.SnapshotSpec{
		InstanceID:      in.ID,
		Name:            name,
		Description:     c.form.Get("Description"),
		Labels:          tagMap(specs["image"]),
		VolumeSnapshots: true,
		VolumeLabels:    tagMap(specs["snapshot"]),
	})
	if err != nil {
		var me *simcloud.Error
		if errors.As(err, &me) {
			if me.Code == simcloud.CodeQuota {
				return badRequest("ResourceLimitExceeded", "You have reached your quota of AMIs: %s", me.Message)
			}
			return modelError(me, "instance", ref)
		}
		return &apiError{http.StatusInternalServerError, "InternalError", err.Error()}
	}
	writeXML(c.w, createImageResponse{Xmlns: xmlns, RequestID: c.requestID(), ImageID: ImageID(img.ID)})
	return nil
}

func (c *call) deregisterImage() *apiError {
	ref := c.form.Get("ImageId")
	if ref == "" {
		return missing("ImageId")
	}
	id, err := ParseID(PrefixImage, ref)
	if err != nil {
		return badRequest("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", ref)
	}
	m, err := c.h.cloud.GetImage(id)
	if err != nil || !c.imageInRegion(&m) {
		return badRequest("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", ref)
	}
	if imageOwner(&m) != AccountID {
		return &apiError{http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation: image " + ref + " belongs to another account."}
	}
	withSnaps := c.form.Get("DeleteAssociatedSnapshots") == "true" && !c.h.cfg.ignoreDeleteAssociated
	resp := deregisterImageResponse{Xmlns: xmlns, RequestID: c.requestID(), Return: true}
	if withSnaps {
		for _, v := range m.VolumeSnaps {
			if _, err := c.h.cloud.GetVolumeSnapshot(v); err == nil {
				resp.Results = append(resp.Results, deleteSnapshotResultXML{SnapshotID: SnapshotID(v), ReturnCode: "success"})
			}
		}
	}
	if err := c.h.cloud.DeleteImage(id, withSnaps); err != nil {
		var me *simcloud.Error
		if errors.As(err, &me) {
			return modelError(me, "image", ref)
		}
		return &apiError{http.StatusInternalServerError, "InternalError", err.Error()}
	}
	writeXML(c.w, resp)
	return nil
}

func (c *call) deleteSnapshot() *apiError {
	ref := c.form.Get("SnapshotId")
	if ref == "" {
		return missing("SnapshotId")
	}
	id, err := ParseID(PrefixSnapshot, ref)
	if err != nil {
		return invalidValue("Value (%s) for parameter snapshotId is invalid. Expected: 'snap-...'.", ref)
	}
	if err := c.h.cloud.DeleteVolumeSnapshot(id); err != nil {
		var me *simcloud.Error
		if errors.As(err, &me) {
			if me.Code == simcloud.CodeDependency {
				v, _ := c.h.cloud.GetVolumeSnapshot(id)
				return badRequest("InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", ref, ImageID(v.ImageID))
			}
			return modelError(me, "snapshot", ref)
		}
		return &apiError{http.StatusInternalServerError, "InternalError", err.Error()}
	}
	writeXML(c.w, returnResponse{XMLName: xml.Name{Local: "DeleteSnapshotResponse"}, Xmlns: xmlns, RequestID: c.requestID(), Return: true})
	return nil
}

func (c *call) snapshotDescription(v *simcloud.VolumeSnapshot) (desc, volume string) {
	if m, err := c.h.cloud.GetImage(v.ImageID); err == nil && m.Source != 0 {
		return fmt.Sprintf("Created by CreateImage(%s) for %s", InstanceID(m.Source), ImageID(v.ImageID)), FormatID(PrefixVolume, m.Source)
	}
	return "Created by CreateImage for " + ImageID(v.ImageID), "vol-ffffffff"
}

func (c *call) snapshotField(v *simcloud.VolumeSnapshot, name string) ([]string, bool) {
	if v == nil {
		switch name {
		case "snapshot-id", "status", "description", "owner-id", "volume-size", "volume-id":
			return nil, true
		}
		return nil, false
	}
	switch name {
	case "snapshot-id":
		return []string{SnapshotID(v.ID)}, true
	case "status":
		return []string{c.snapshotStatus(v)}, true
	case "description":
		d, _ := c.snapshotDescription(v)
		return []string{d}, true
	case "volume-id":
		_, vol := c.snapshotDescription(v)
		return []string{vol}, true
	case "owner-id":
		return []string{AccountID}, true
	case "volume-size":
		return []string{strconv.Itoa(v.SizeGB)}, true
	}
	return nil, false
}

func (c *call) snapshotStatus(v *simcloud.VolumeSnapshot) string {
	switch {
	case c.now.Before(v.ReadyAt):
		return "pending"
	case v.Failed:
		return "error"
	}
	return "completed"
}

func (c *call) describeSnapshots() *apiError {
	ids := members(c.form, "SnapshotId")
	owners := members(c.form, "Owner")
	limit, after, e := paging(c.form, ids)
	if e != nil {
		return e
	}
	match, e := matcher(filters(c.form), func(v *simcloud.VolumeSnapshot) map[string]string { return v.Labels }, c.snapshotField)
	if e != nil {
		return e
	}
	own := len(owners) == 0 || slices.Contains(owners, "self") || slices.Contains(owners, AccountID)
	resp := describeSnapshotsResponse{Xmlns: xmlns, RequestID: c.requestID(), Snapshots: []snapshotXML{}}
	var page []simcloud.VolumeSnapshot
	if len(ids) > 0 {
		for _, ref := range ids {
			id, err := ParseID(PrefixSnapshot, ref)
			if err != nil {
				return invalidValue("Value (%s) for parameter snapshotId is invalid. Expected: 'snap-...'.", ref)
			}
			v, err := c.h.cloud.GetVolumeSnapshot(id)
			if err != nil {
				return badRequest("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", ref)
			}
			if own && match(&v) {
				page = append(page, v)
			}
		}
	} else if own {
		// match reads the model: it cannot run under the cloud's lock.
		var all []simcloud.VolumeSnapshot
		for _, v := range c.h.cloud.ListVolumeSnapshots(func(v *simcloud.VolumeSnapshot) bool { return v.ID > after }) {
			if match(&v) {
				all = append(all, v)
			}
		}
		page = all
		if limit > 0 && len(all) > limit {
			page = all[:limit]
			resp.NextToken = nextToken(page[len(page)-1].ID)
		}
	}
	for i := range page {
		v := &page[i]
		desc, vol := c.snapshotDescription(v)
		progress := "100%"
		if c.snapshotStatus(v) == "pending" {
			progress = "0%"
		}
		resp.Snapshots = append(resp.Snapshots, snapshotXML{
			SnapshotID:  SnapshotID(v.ID),
			VolumeID:    vol,
			Status:      c.snapshotStatus(v),
			StartTime:   timestamp(v.CreatedAt),
			Progress:    progress,
			OwnerID:     AccountID,
			VolumeSize:  int32(v.SizeGB),
			Description: desc,
			StorageTier: "standard",
			Tags:        tagList(v.Labels),
		})
	}
	writeXML(c.w, resp)
	return nil
}

func (c *call) createTags() *apiError {
	ids := members(c.form, "ResourceId")
	if len(ids) == 0 {
		return missing("ResourceId")
	}
	ts, e := tags(c.form, "Tag")
	if e != nil {
		return e
	}
	if len(ts) == 0 {
		return missing("Tag")
	}
	m := tagMap(ts)
	for _, ref := range ids {
		switch {
		case strings.HasPrefix(ref, PrefixInstance):
			found, e := c.lookupInstances([]string{ref})
			if e != nil {
				return e
			}
			labels := maps.Clone(m)
			delete(labels, "Name") // the model's name is fixed at launch
			if err := c.h.cloud.SetInstanceLabels(found[0].ID, labels, false); err != nil {
				return badRequest("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", ref)
			}
		case strings.HasPrefix(ref, PrefixImage):
			id, err := ParseID(PrefixImage, ref)
			if err != nil {
				return badRequest("InvalidAMIID.Malformed", "Invalid id: \"%s\"", ref)
			}
			if err := c.h.cloud.SetImageLabels(id, m, false); err != nil {
				return badRequest("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", ref)
			}
		default:
			return badRequest("InvalidID", "The ID '%s' is not valid (the simulated EC2 tags instances and images)", ref)
		}
	}
	writeXML(c.w, returnResponse{XMLName: xml.Name{Local: "CreateTagsResponse"}, Xmlns: xmlns, RequestID: c.requestID(), Return: true})
	return nil
}

func keyType(pub string) string {
	if strings.HasPrefix(pub, "ssh-ed25519") {
		return "ed25519"
	}
	return "rsa"
}

// fingerprint is a key's fingerprint as the dialect reports it (see
// Fingerprints).
func (c *call) fingerprint(k *simcloud.SSHKey) string {
	if c.h.ec2Fingerprints {
		return KeyFingerprint(*k)
	}
	return k.Fingerprint
}

func (c *call) keyField(k *simcloud.SSHKey, name string) ([]string, bool) {
	if k == nil {
		switch name {
		case "key-name", "fingerprint", "key-pair-id", "key-type":
			return nil, true
		}
		return nil, false
	}
	switch name {
	case "key-name":
		return []string{k.Name}, true
	case "fingerprint":
		return []string{c.fingerprint(k)}, true
	case "key-pair-id":
		return []string{FormatID(PrefixKeyPair, k.ID)}, true
	case "key-type":
		return []string{keyType(k.PublicKey)}, true
	}
	return nil, false
}

func (c *call) describeKeyPairs() *apiError {
	names := members(c.form, "KeyName")
	ids := members(c.form, "KeyPairId")
	match, e := matcher(filters(c.form), func(*simcloud.SSHKey) map[string]string { return nil }, c.keyField)
	if e != nil {
		return e
	}
	keys := c.h.cloud.SSHKeys()
	want := func(k *simcloud.SSHKey) bool {
		if len(names) == 0 && len(ids) == 0 {
			return true
		}
		return slices.Contains(names, k.Name) || slices.Contains(ids, FormatID(PrefixKeyPair, k.ID))
	}
	for _, n := range names {
		if !slices.ContainsFunc(keys, func(k simcloud.SSHKey) bool { return k.Name == n }) {
			return badRequest("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", n)
		}
	}
	for _, id := range ids {
		if !slices.ContainsFunc(keys, func(k simcloud.SSHKey) bool { return FormatID(PrefixKeyPair, k.ID) == id }) {
			return badRequest("InvalidKeyPair.NotFound", "The key pair ID '%s' does not exist", id)
		}
	}
	withPublic := c.form.Get("IncludePublicKey") == "true"
	resp := describeKeyPairsResponse{Xmlns: xmlns, RequestID: c.requestID(), Keys: []keyPairXML{}}
	for i := range keys {
		k := &keys[i]
		if !want(k) || !match(k) {
			continue
		}
		x := keyPairXML{
			KeyPairID:      FormatID(PrefixKeyPair, k.ID),
			KeyName:        k.Name,
			KeyFingerprint: c.fingerprint(k),
			KeyType:        keyType(k.PublicKey),
			CreateTime:     timestamp(keyCreateTime),
		}
		if withPublic {
			x.PublicKey = k.PublicKey
		}
		resp.Keys = append(resp.Keys, x)
	}
	writeXML(c.w, resp)
	return nil
}

// guestPoweroff is a guest's command that schedules its own power-off at
// a Unix time ("systemd-run --on-calendar=@1790000000 systemctl poweroff",
// as a user data script may run it).
var guestPoweroff = regexp.MustCompile(`systemd-run\s+--on-calendar[= ]@([0-9]+)\s+\S*systemctl\s+poweroff`)

// guestShutdown is when the guest of a machine launched with the shutdown
// behaviour and user data shuts itself down and EC2 then terminates it:
// the time its user data schedules a power-off for, when the behaviour is
// "terminate" (with "stop", the default, the machine would only stop,
// which the simulation does not model).
func guestShutdown(behaviour, userData string) time.Time {
	if behaviour != "terminate" {
		return time.Time{}
	}
	m := guestPoweroff.FindStringSubmatch(userData)
	if m == nil {
		return time.Time{}
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// getConsoleOutput answers GetConsoleOutput: the instance's serial console
// as cloud-init writes it, host key fingerprints included once it has
// booted, base64-encoded as EC2 sends it.
func (c *call) getConsoleOutput() *apiError {
	id := c.form.Get("InstanceId")
	if id == "" {
		return missing("InstanceId")
	}
	found, e := c.lookupInstances([]string{id})
	if e != nil {
		return e
	}
	out, err := c.h.cloud.ConsoleOutput(found[0].ID)
	if err != nil {
		return badRequest("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}
	writeXML(c.w, consoleOutputResponse{Xmlns: xmlns, RequestID: c.requestID(), InstanceID: id,
		Timestamp: c.now.UTC().Format(time.RFC3339), Output: base64.StdEncoding.EncodeToString([]byte(out))})
	return nil
}

type consoleOutputResponse struct {
	XMLName    xml.Name `xml:"GetConsoleOutputResponse"`
	Xmlns      string   `xml:"xmlns,attr"`
	RequestID  string   `xml:"requestId"`
	InstanceID string   `xml:"instanceId"`
	Timestamp  string   `xml:"timestamp"`
	Output     string   `xml:"output"`
}
