package aws

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/spuffgo/spuff/provider"
)

var (
	instanceIDRe = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
	amiIDRe      = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	// regionRe matches AWS region names: us-east-1, us-gov-west-1,
	// ap-southeast-4, eu-central-2.
	regionRe = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// instanceTypeRe matches instance types: t3.micro, m7g.large,
	// u-6tb1.metal, m7i-flex.large.
	instanceTypeRe = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9-]+$`)
	// gravitonRe matches the families of Graviton (arm64) instance types:
	// a letter run, a generation digit, then "g" (t4g, m6gd, c7gn, im4gn,
	// is4gen, x2gd, g5g, hpc7g...).
	gravitonRe = regexp.MustCompile(`^[a-z]+[0-9]+g[a-z]*$`)
)

// liveStates are the instance states ListInstances reports: every state
// but terminated.
var liveStates = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// Architecture returns the CPU architecture of an instance type as EC2
// names it: "arm64" for the Graviton families (a1, t4g, m6g, m7g, c7gn,
// r8g, x2gd, im4gn, is4gen, g5g, ...), "x86_64" for the rest.
func Architecture(instanceType string) string {
	family, _, _ := strings.Cut(instanceType, ".")
	if family == "a1" || gravitonRe.MatchString(family) {
		return "arm64"
	}
	return "x86_64"
}

// limits are EC2's rules beyond the common ones, checked before any call.
func (p *Provider) limits() provider.Limits {
	return provider.Limits{
		MaxUserDataBytes: MaxUserDataBytes,
		Check: func(req *provider.InstanceRequest) error {
			if !regionRe.MatchString(req.Region) {
				return provider.InvalidField("Region", fmt.Sprintf("%q is not an AWS region name (e.g. us-east-1)", req.Region))
			}
			if !instanceTypeRe.MatchString(req.Size) {
				return provider.InvalidField("Size", fmt.Sprintf("%q is not an EC2 instance type (e.g. t3.micro)", req.Size))
			}
			if len(req.SSHKeys) > 1 {
				return provider.InvalidField("SSHKeys", fmt.Sprintf("EC2 installs one key pair per instance; %d are named", len(req.SSHKeys)))
			}
			if _, ok := req.Labels["Name"]; ok {
				return provider.InvalidField(`Labels["Name"]`, "the tag Name holds the instance name on EC2; use InstanceRequest.Name")
			}
			switch req.Image.Kind {
			case provider.ImageCustom, provider.ImageSnapshot:
				if !amiIDRe.MatchString(req.Image.Value) {
					return provider.InvalidField("Image", fmt.Sprintf("%q is not an AMI ID (ami-…)", req.Image.Value))
				}
			}
			return nil
		},
	}
}

// clientToken derives RunInstances' idempotency token from the request,
// so that a retried create, by us or by the caller, launches no second
// machine. prev chains a new token when the instance an older one made was
// terminated (EC2 returns a terminated instance for a reused token).
func (p *Provider) clientToken(req *provider.InstanceRequest, prev string) string {
	h := sha256.New()
	for _, s := range []string{"spuff/ec2/v1", p.owner, req.Name, req.Region, req.Size, req.Image.String(), prev} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "spuff-" + hex.EncodeToString(h.Sum(nil))[:58] // EC2 takes at most 64 ASCII characters
}

// tags are the EC2 tags of an instance made for req.
func (p *Provider) tags(req *provider.InstanceRequest) []types.Tag {
	ts := []types.Tag{
		{Key: awssdk.String("Name"), Value: awssdk.String(req.Name)},
		{Key: awssdk.String(provider.OwnerLabel), Value: awssdk.String(p.owner)},
	}
	for k, v := range req.Labels {
		ts = append(ts, types.Tag{Key: awssdk.String(k), Value: awssdk.String(v)})
	}
	return ts
}

// CreateInstance launches one instance with RunInstances. The request is
// validated first (EC2's 16 KB user data limit and its single key pair
// included). The ClientToken is derived from the request, so the call is
// retried safely and a caller retrying the same request gets the same
// instance. Tags (Name, the ownership label and the labels) are set on the
// instance and its volumes at launch.
func (p *Provider) CreateInstance(ctx context.Context, req provider.InstanceRequest) (*provider.Instance, error) {
	const op = "CreateInstance"
	if err := req.ValidateWith(p.limits()); err != nil {
		return nil, provider.Classify(Name, op, 0, nil, err)
	}
	ami, root, err := p.resolveImage(ctx, req.Region, req.Size, req.Image)
	if err != nil {
		return nil, err
	}
	keyName, err := p.keyName(ctx, req.Region, req.SSHKeys)
	if err != nil {
		return nil, err
	}
	tags := p.tags(&req)
	in := &ec2.RunInstancesInput{
		ImageId:      awssdk.String(ami),
		InstanceType: types.InstanceType(req.Size),
		MinCount:     awssdk.Int32(1),
		MaxCount:     awssdk.Int32(1),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		},
	}
	if keyName != "" {
		in.KeyName = awssdk.String(keyName)
	}
	if req.UserData != "" {
		in.UserData = awssdk.String(base64.StdEncoding.EncodeToString([]byte(req.UserData)))
	}
	if p.opts.subnet != "" {
		in.SubnetId = awssdk.String(p.opts.subnet)
	}
	if len(p.opts.securityGroups) > 0 {
		in.SecurityGroupIds = p.opts.securityGroups
	}
	if pr := p.opts.instanceProfile; pr != "" {
		if strings.HasPrefix(pr, "arn:") {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: awssdk.String(pr)}
		} else {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: awssdk.String(pr)}
		}
	}
	if p.opts.volumeSize > 0 {
		if root == "" {
			if root, err = p.rootDevice(ctx, req.Region, ami); err != nil {
				return nil, err
			}
		}
		in.BlockDeviceMappings = []types.BlockDeviceMapping{{
			DeviceName: awssdk.String(root),
			Ebs:        &types.EbsBlockDevice{VolumeSize: awssdk.Int32(p.opts.volumeSize), DeleteOnTermination: awssdk.Bool(true)},
		}}
	}

	prev := ""
	for range 16 {
		in.ClientToken = awssdk.String(p.clientToken(&req, prev))
		inst, err := p.runInstance(ctx, req.Region, in)
		if err != nil && provider.OutcomeUnknown(err) {
			inst, err = p.lostLaunch(ctx, req.Region, awssdk.ToString(in.ClientToken), err)
		}
		if err != nil {
			return nil, refineCreateError(err)
		}
		if inst.State != nil && (inst.State.Name == types.InstanceStateNameTerminated || inst.State.Name == types.InstanceStateNameShuttingDown) {
			// The token made an instance that was destroyed since:
			// chain a new token off it.
			prev = awssdk.ToString(inst.InstanceId)
			continue
		}
		id := awssdk.ToString(inst.InstanceId)
		p.place(id, req.Region)
		if inst.State != nil && inst.State.Name == types.InstanceStateNamePending {
			p.policy.Created("instance", id) // WaitReady first polls near ExpectedBoot
		}
		p.policy.Log.Debug("spuff: launched", "provider", Name, "id", id, "region", req.Region, "image", ami)
		return p.instance(req.Region, inst), nil
	}
	return nil, &provider.Error{Kind: provider.KindAPI, Provider: Name, Op: op, Resource: "instance",
		Message: "every client token derived for this request names a terminated instance"}
}

// runInstance calls RunInstances (safe to repeat thanks to the client
// token). IdempotentParameterMismatch means the token was used with other
// parameters (an Ubuntu AMI published since the first attempt): the
// instance it made is looked up by its client token.
func (p *Provider) runInstance(ctx context.Context, region string, in *ec2.RunInstancesInput) (*types.Instance, error) {
	const op = "CreateInstance"
	var out *ec2.RunInstancesOutput
	err := p.call(ctx, op, region, func(ctx context.Context, c *ec2.Client) (err error) {
		out, err = c.RunInstances(ctx, in, p.callOpt)
		return err
	})
	if err == nil {
		if len(out.Instances) == 0 {
			// A success answer without the instance: as good as lost.
			return nil, &provider.Error{Kind: provider.KindNetwork, Provider: Name, Op: op, Message: "the RunInstances answer has no instance"}
		}
		return &out.Instances[0], nil
	}
	if codeOf(err) != "IdempotentParameterMismatch" {
		return nil, err
	}
	found, lerr := p.byClientToken(ctx, region, awssdk.ToString(in.ClientToken))
	if lerr != nil || found == nil {
		return nil, err
	}
	return found, nil
}

// byClientToken returns the instance RunInstances made with the client
// token, or nil, retrying transient errors.
func (p *Provider) byClientToken(ctx context.Context, region, token string) (*types.Instance, error) {
	var found *types.Instance
	err := p.call(ctx, "CreateInstance", region, func(ctx context.Context, c *ec2.Client) error {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{{Name: awssdk.String("client-token"), Values: []string{token}}},
		}, p.callOpt)
		if err != nil {
			return err
		}
		for _, r := range out.Reservations {
			for i := range r.Instances {
				found = &r.Instances[i]
			}
		}
		return nil
	})
	return found, err
}

// lostLaunch handles a RunInstances whose last attempt's outcome is
// unknown: it looks the instance up by its client token once more, on a
// context that outlives the caller's. An instance found is returned when
// the caller still waits, else its ID goes in the error.
func (p *Provider) lostLaunch(ctx context.Context, region, token string, err error) (*types.Instance, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.policy.Timeouts.HTTPRequest)
	defer cancel()
	found, lerr := p.byClientToken(lctx, region, token)
	switch {
	case lerr == nil && found != nil && ctx.Err() == nil:
		p.policy.Log.Debug("spuff: adopting the instance a launch with a lost answer made", "provider", Name, "id", awssdk.ToString(found.InstanceId))
		return found, nil
	case lerr == nil && found != nil:
		return nil, withID(err, "instance", awssdk.ToString(found.InstanceId), "the instance was launched: DestroyInstance it, or CreateInstance with the same request returns it")
	}
	return nil, withID(err, "", "", "the instance may have been launched: CreateInstance with the same request returns it rather than launching a second")
}

// refineCreateError names the request field a RunInstances error is about.
func refineCreateError(err error) error {
	code := codeOf(err)
	switch {
	case strings.HasPrefix(code, "InvalidAMIID."):
		return invalidAs(err, "Image")
	case strings.HasPrefix(code, "InvalidKeyPair."):
		return invalidAs(err, "SSHKeys")
	case code == "InvalidParameterValue":
		msg := strings.ToLower(err.Error())
		switch {
		case strings.Contains(msg, "instancetype"), strings.Contains(msg, "instance type"):
			return invalidAs(err, "Size")
		case strings.Contains(msg, "region"), strings.Contains(msg, "availability zone"):
			return invalidAs(err, "Region")
		case strings.Contains(msg, "user data"):
			return invalidAs(err, "UserData")
		case strings.Contains(msg, "architecture"):
			return invalidAs(err, "Image")
		}
	}
	return err
}

// keyName resolves the SSH key a request names to a key pair name: a name
// is used as is, a key pair ID ("key-…") or fingerprint is looked up.
func (p *Provider) keyName(ctx context.Context, region string, refs []string) (string, error) {
	if len(refs) == 0 {
		return "", nil
	}
	ref := refs[0]
	if !strings.HasPrefix(ref, "key-") && !strings.Contains(ref, ":") {
		return ref, nil
	}
	keys, err := p.listKeys(ctx, region)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if awssdk.ToString(k.KeyPairId) == ref || awssdk.ToString(k.KeyFingerprint) == ref {
			return awssdk.ToString(k.KeyName), nil
		}
	}
	return "", &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: "CreateInstance", Field: "SSHKeys[0]",
		Message: fmt.Sprintf("no key pair %q in %s", ref, region)}
}

// instance maps an EC2 instance of region to a provider.Instance.
func (p *Provider) instance(region string, in *types.Instance) *provider.Instance {
	out := &provider.Instance{
		ID:     awssdk.ToString(in.InstanceId),
		Region: region,
		Size:   string(in.InstanceType),
		Labels: map[string]string{},
	}
	for _, t := range in.Tags {
		k, v := awssdk.ToString(t.Key), awssdk.ToString(t.Value)
		switch {
		case k == "Name":
			out.Name = v
		case k == provider.OwnerLabel, strings.HasPrefix(k, "aws:"):
		default:
			out.Labels[k] = v
		}
	}
	if in.State != nil {
		out.RawStatus = string(in.State.Name)
		out.Status = status(in.State.Name)
	}
	if a, err := netip.ParseAddr(awssdk.ToString(in.PublicIpAddress)); err == nil {
		out.PublicIPv4 = a
	}
	if a, err := netip.ParseAddr(awssdk.ToString(in.Ipv6Address)); err == nil {
		out.PublicIPv6 = a
	}
	if in.LaunchTime != nil {
		out.CreatedAt = *in.LaunchTime
	}
	return out
}

func status(s types.InstanceStateName) provider.Status {
	switch s {
	case types.InstanceStateNamePending:
		return provider.StatusNew
	case types.InstanceStateNameRunning:
		return provider.StatusActive
	case types.InstanceStateNameStopped:
		return provider.StatusOff
	}
	return provider.StatusUnknown // stopping, shutting-down, terminated
}

func gone(in *types.Instance) bool {
	return in.State != nil && in.State.Name == types.InstanceStateNameTerminated
}

// describe looks id up once in region, with no retry (for polls). A
// missing instance gives an error matching ErrNotFound.
func (p *Provider) describe(ctx context.Context, op, region, id string) (*types.Instance, error) {
	out, err := p.client(region).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, p.callOpt)
	if err != nil {
		return nil, classify(op, err)
	}
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if awssdk.ToString(r.Instances[i].InstanceId) == id {
				return &r.Instances[i], nil
			}
		}
	}
	return nil, notFound(op, "instance", id, "not in "+region, nil)
}

// find looks id up in every region it may be in, retrying transient
// errors. A terminated instance is returned as found (see gone).
func (p *Provider) find(ctx context.Context, op, id string) (*types.Instance, string, error) {
	regions := p.regionsFor(id)
	if len(regions) == 0 {
		return nil, "", noRegion(op)
	}
	var lastErr error
	for _, r := range regions {
		var in *types.Instance
		err := p.policy.Call(ctx, op, func(ctx context.Context) (err error) {
			in, err = p.describe(ctx, op, r, id)
			return err
		})
		if !isNotFound(err) {
			return in, r, err
		}
		lastErr = err
	}
	return nil, "", notFound(op, "instance", id, "", lastErr)
}

// GetInstance returns the instance, or an error matching ErrNotFound when
// it does not exist or is terminated. Right after this Provider launched
// it, while EC2 may not show it yet, it waits for it to become visible.
func (p *Provider) GetInstance(ctx context.Context, id string) (*provider.Instance, error) {
	const op = "GetInstance"
	if !instanceIDRe.MatchString(id) {
		return nil, notFound(op, "instance", id, "not an EC2 instance ID (i-…)", nil)
	}
	in, region, err := p.find(ctx, op, id)
	if isNotFound(err) {
		if left, ok := p.fresh(id); ok {
			err = p.whileInvisible(ctx, op, id, left, func(ctx context.Context) error {
				var e error
				in, region, e = p.find(ctx, op, id)
				return e
			})
		}
	}
	if err != nil {
		return nil, err
	}
	if gone(in) {
		return nil, notFound(op, "instance", id, "terminated", nil)
	}
	return p.instance(region, in), nil
}

// whileInvisible repeats fn while it fails with not-found, for at most
// left (the rest of the consistency window): EC2 may not show a resource
// for a while after making it. It returns fn's last error.
func (p *Provider) whileInvisible(ctx context.Context, op, id string, left time.Duration, fn func(ctx context.Context) error) error {
	var last error
	werr := p.fast.WaitFor(ctx, op, "instance", id, left, func(ctx context.Context) (bool, string, error) {
		last = fn(ctx)
		if isNotFound(last) {
			return false, "not yet visible", nil
		}
		return last == nil, "", last
	})
	if werr != nil && last != nil && isNotFound(last) && !errors.Is(werr, context.Canceled) {
		return last
	}
	if werr != nil {
		return werr
	}
	return last
}

// DestroyInstance terminates the instance. An instance that is already
// terminated or does not exist is success; one this Provider launched
// within the consistency window is waited for, so that a destroy right
// after a create is never lost.
func (p *Provider) DestroyInstance(ctx context.Context, id string) error {
	const op = "DestroyInstance"
	if !instanceIDRe.MatchString(id) {
		return &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Resource: "instance", ID: id, Field: "id",
			Message: "not an EC2 instance ID (i-…)"}
	}
	regions := p.regionsFor(id)
	if len(regions) == 0 {
		return noRegion(op)
	}
	terminate := func(ctx context.Context) error {
		for _, r := range regions {
			err := p.call(ctx, op, r, func(ctx context.Context, c *ec2.Client) error {
				_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}, p.callOpt)
				return err
			})
			if !isNotFound(err) {
				return err
			}
		}
		return notFound(op, "instance", id, "", nil)
	}
	err := terminate(ctx)
	if isNotFound(err) {
		if left, ok := p.fresh(id); ok {
			err = p.whileInvisible(ctx, op, id, left, terminate)
		}
	}
	if isNotFound(err) {
		return nil // already gone
	}
	if err == nil {
		p.policy.Log.Debug("spuff: terminated", "provider", Name, "id", id)
	}
	return err
}

// ListInstances returns the instances tagged managed-by=<owner> that are
// not terminated, in every region the Provider covers, reading pages of
// 1000 (DescribeInstances' largest).
func (p *Provider) ListInstances(ctx context.Context) ([]*provider.Instance, error) {
	const op = "ListInstances"
	regions := p.regions()
	if len(regions) == 0 {
		return nil, noRegion(op)
	}
	var out []*provider.Instance
	seen := map[string]bool{}
	for _, r := range regions {
		in := &ec2.DescribeInstancesInput{
			Filters: []types.Filter{
				{Name: awssdk.String("tag:" + provider.OwnerLabel), Values: []string{p.owner}},
				{Name: awssdk.String("instance-state-name"), Values: liveStates},
			},
			MaxResults: awssdk.Int32(listPageSize),
		}
		for {
			var page *ec2.DescribeInstancesOutput
			err := p.call(ctx, op, r, func(ctx context.Context, c *ec2.Client) (err error) {
				page, err = c.DescribeInstances(ctx, in, p.callOpt)
				return err
			})
			if err != nil {
				return nil, err
			}
			for _, res := range page.Reservations {
				for i := range res.Instances {
					inst := &res.Instances[i]
					id := awssdk.ToString(inst.InstanceId)
					if gone(inst) || seen[id] {
						continue
					}
					seen[id] = true
					out = append(out, p.instance(r, inst))
				}
			}
			if awssdk.ToString(page.NextToken) == "" {
				break
			}
			in.NextToken = page.NextToken
		}
	}
	return out, nil
}

// WaitReady polls until the instance is running with a public IP. Unlike
// the SDK's InstanceRunning waiter it waits for the address too, and it
// rides over InvalidInstanceID.NotFound while EC2 does not show an
// instance this Provider just launched.
func (p *Provider) WaitReady(ctx context.Context, id string) (*provider.Instance, error) {
	const op = "WaitReady"
	if !instanceIDRe.MatchString(id) {
		return nil, notFound(op, "instance", id, "not an EC2 instance ID (i-…)", nil)
	}
	regions := p.regionsFor(id)
	if len(regions) == 0 {
		return nil, noRegion(op)
	}
	var ready *provider.Instance
	err := p.policy.WaitFor(ctx, op, "instance", id, p.policy.Timeouts.InstanceReady, func(ctx context.Context) (bool, string, error) {
		var (
			in     *types.Instance
			region string
			err    error
		)
		for _, r := range regions {
			in, err = p.describe(ctx, op, r, id)
			if !isNotFound(err) {
				region = r
				break
			}
		}
		switch {
		case isNotFound(err):
			if _, fresh := p.fresh(id); fresh {
				return false, "not yet visible", nil
			}
			return false, "not found", err
		case err != nil:
			return false, "", err
		}
		inst := p.instance(region, in)
		switch {
		case inst.Ready():
			ready = inst
			return true, "running", nil
		case in.State != nil && (in.State.Name == types.InstanceStateNameTerminated || in.State.Name == types.InstanceStateNameShuttingDown):
			return false, inst.RawStatus, notFound(op, "instance", id, "the instance is "+inst.RawStatus, nil)
		case inst.Status == provider.StatusActive:
			return false, "running without public IP", nil
		}
		return false, inst.RawStatus, nil
	})
	if err != nil {
		return nil, err
	}
	return ready, nil
}
