package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/spuffgo/spuff/provider/driver"
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
)

// liveStates are the instance states List asks for: every state but
// terminated.
var liveStates = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// nameTag is the tag that holds an instance's or AMI's name.
const nameTag = "Name"

// CheckID checks the format of an instance ID ("i-" and 8 or 17 hex
// digits) or a snapshot's AMI ID ("ami-…").
func (d *drv) CheckID(resource, id string) error {
	if resource == "snapshot" {
		if !amiIDRe.MatchString(id) {
			return driver.Errorf(driver.KindInvalidConfig, "not an AMI ID (ami- and 8 or 17 hexadecimal digits)")
		}
		return nil
	}
	if !instanceIDRe.MatchString(id) {
		return driver.Errorf(driver.KindInvalidConfig, "not an EC2 instance ID (i- and 8 or 17 hexadecimal digits)")
	}
	return nil
}

// CheckRequest checks EC2's rules beyond the common ones: a region name, an
// instance type, at most one key pair (EC2 installs one), no label called
// Name (that tag holds the instance name), and an AMI ID for a custom image
// or snapshot. (Label keys never start with EC2's reserved "aws:": the
// common rules take no colon in them.)
func (d *drv) CheckRequest(r *driver.Request) error {
	if !regionRe.MatchString(r.Region) {
		return driver.Invalid("Region", fmt.Sprintf("%q is not an AWS region name (e.g. us-east-1)", r.Region))
	}
	if !instanceTypeRe.MatchString(r.Size) {
		return driver.Invalid("Size", fmt.Sprintf("%q is not an EC2 instance type (e.g. t3.micro)", r.Size))
	}
	if len(r.SSHKeys) > 1 {
		return driver.Invalid("SSHKeys", fmt.Sprintf("EC2 installs one key pair per instance; %d are named", len(r.SSHKeys)))
	}
	if _, ok := r.Labels[nameTag]; ok {
		return driver.Invalid(`Labels["Name"]`, "the tag Name holds the instance name on EC2; use InstanceRequest.Name")
	}
	switch r.Image.Kind {
	case driver.ImageCustom, driver.ImageSnapshot:
		if !amiIDRe.MatchString(r.Image.Value) {
			return driver.Invalid("Image", fmt.Sprintf("%q is not an AMI ID (ami-…)", r.Image.Value))
		}
	}
	if !r.ExpiresAt.IsZero() {
		if n := len(withExpiry(r.UserData, r.ExpiresAt)); n > MaxUserDataBytes {
			return driver.Invalid("UserData", fmt.Sprintf("with the TTL's expiry script the user data is %d bytes; EC2 takes %d", n, MaxUserDataBytes))
		}
	}
	return nil
}

// plan is what a create call resolved once, for every attempt.
type plan struct {
	ami     string
	root    string // the AMI's root device, when a volume size is set
	keyName string
}

// Prepare resolves the AMI (the newest official one of the instance
// type's architecture for Ubuntu and Debian), its root device when
// WithVolumeSize is set, and the key pair name.
func (d *drv) Prepare(ctx context.Context, r *driver.Request) (any, error) {
	ami, root, err := d.resolveImage(ctx, r.Region, r.Size, r.Image)
	if err != nil {
		return nil, err
	}
	if d.opts.volumeSize > 0 && root == "" {
		if root, err = d.rootDevice(ctx, r.Region, ami); err != nil {
			return nil, err
		}
	}
	key, err := d.keyName(ctx, r.Region, r.SSHKeys)
	if err != nil {
		return nil, err
	}
	return &plan{ami: ami, root: root, keyName: key}, nil
}

// tags returns the EC2 tags of a resource named name with labels, sorted.
func tags(name string, labels map[string]string) []types.Tag {
	ts := []types.Tag{{Key: awssdk.String(nameTag), Value: awssdk.String(name)}}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		ts = append(ts, types.Tag{Key: awssdk.String(k), Value: awssdk.String(labels[k])})
	}
	return ts
}

// labelsOf returns the labels of EC2 tags: every tag but Name and EC2's
// own (aws:…).
func labelsOf(ts []types.Tag) (name string, labels map[string]string) {
	labels = make(map[string]string, len(ts))
	for _, t := range ts {
		k, v := awssdk.ToString(t.Key), awssdk.ToString(t.Value)
		switch {
		case k == nameTag:
			name = v
		case strings.HasPrefix(k, "aws:"):
		default:
			labels[k] = v
		}
	}
	return name, labels
}

// Create launches one instance with RunInstances, in.Token as its
// ClientToken (EC2 makes no second instance for a repeated token and
// parameters), its tags set at launch on the instance and its volumes. A
// machine with an expiry is launched with the shutdown behaviour
// "terminate".
func (d *drv) Create(ctx context.Context, in *driver.CreateInput) (*driver.Instance, error) {
	r, p := in.Request, in.Plan.(*plan)
	ts := tags(r.Name, in.Labels)
	run := &ec2.RunInstancesInput{
		ImageId:      awssdk.String(p.ami),
		InstanceType: types.InstanceType(r.Size),
		MinCount:     awssdk.Int32(1),
		MaxCount:     awssdk.Int32(1),
		ClientToken:  awssdk.String(in.Token),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: ts},
			{ResourceType: types.ResourceTypeVolume, Tags: ts},
		},
	}
	if p.keyName != "" {
		run.KeyName = awssdk.String(p.keyName)
	}
	userData := r.UserData
	if !r.ExpiresAt.IsZero() {
		userData = withExpiry(userData, r.ExpiresAt)
	}
	if userData != "" {
		run.UserData = awssdk.String(base64.StdEncoding.EncodeToString([]byte(userData)))
	}
	if d.opts.subnet != "" {
		run.SubnetId = awssdk.String(d.opts.subnet)
	}
	if len(d.opts.securityGroups) > 0 {
		run.SecurityGroupIds = d.opts.securityGroups
	}
	if pr := d.opts.instanceProfile; pr != "" {
		if strings.HasPrefix(pr, "arn:") {
			run.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: awssdk.String(pr)}
		} else {
			run.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: awssdk.String(pr)}
		}
	}
	if !r.ExpiresAt.IsZero() {
		// A machine that expires ends itself (see withExpiry): a
		// power-off from inside terminates it, with no credential needed.
		run.InstanceInitiatedShutdownBehavior = types.ShutdownBehaviorTerminate
	}
	if d.opts.volumeSize > 0 {
		run.BlockDeviceMappings = []types.BlockDeviceMapping{{
			DeviceName: awssdk.String(p.root),
			Ebs:        &types.EbsBlockDevice{VolumeSize: awssdk.Int32(d.opts.volumeSize), DeleteOnTermination: awssdk.Bool(true)},
		}}
	}
	out, err := d.client(r.Region).RunInstances(ctx, run, d.callOpt)
	if err != nil {
		return nil, createError(classify(err))
	}
	if len(out.Instances) == 0 {
		return nil, driver.Lost("the RunInstances answer has no instance", nil)
	}
	inst := instanceOf(r.Region, &out.Instances[0])
	d.place(inst.ID, r.Region)
	d.log.Debug("spuff: launched", "provider", Name, "id", inst.ID, "region", r.Region, "image", p.ami)
	return inst, nil
}

// Get describes the instance in the region it was made in, else in every
// covered region. A terminated one is returned with StateGone.
func (d *drv) Get(ctx context.Context, id string) (*driver.Instance, error) {
	regions := d.regionsFor(id)
	if len(regions) == 0 {
		return nil, noRegion()
	}
	var last error
	for _, region := range regions {
		in, err := d.describe(ctx, region, id)
		if !isNotFound(err) {
			return in, err
		}
		last = err
	}
	return nil, last
}

// describe looks id up in region. The instance-id filter repeats the ID:
// it keeps the call in EC2's larger request bucket (an unfiltered,
// unpaginated DescribeInstances draws on the smaller one).
func (d *drv) describe(ctx context.Context, region, id string) (*driver.Instance, error) {
	out, err := d.client(region).DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		InstanceIds: []string{id},
		Filters:     []types.Filter{{Name: awssdk.String("instance-id"), Values: []string{id}}},
	}, d.callOpt)
	if err != nil {
		return nil, classify(err)
	}
	for _, res := range out.Reservations {
		for i := range res.Instances {
			if awssdk.ToString(res.Instances[i].InstanceId) == id {
				return instanceOf(region, &res.Instances[i]), nil
			}
		}
	}
	return nil, driver.NotFound("no instance " + id + " in " + region)
}

// List reads one page of the instances matching q that are not
// terminated, in every covered region, 1000 a page (DescribeInstances'
// largest): the filters tag:KEY for q's labels, tag:Name for q.Name, and
// instance-state-name. The page token is the region and EC2's NextToken.
func (d *drv) List(ctx context.Context, q driver.Query, page string) ([]*driver.Instance, string, error) {
	regions := d.regions()
	region, token, err := pageOf(regions, page)
	if err != nil {
		return nil, "", err
	}
	filters := tagFilters(q)
	filters = append(filters, types.Filter{Name: awssdk.String("instance-state-name"), Values: liveStates})
	in := &ec2.DescribeInstancesInput{Filters: filters, MaxResults: awssdk.Int32(listPageSize)}
	if token != "" {
		in.NextToken = awssdk.String(token)
	}
	out, err := d.client(region).DescribeInstances(ctx, in, d.callOpt)
	if err != nil {
		return nil, "", classify(err)
	}
	var list []*driver.Instance
	for _, res := range out.Reservations {
		for i := range res.Instances {
			list = append(list, instanceOf(region, &res.Instances[i]))
		}
	}
	return list, nextPage(regions, region, awssdk.ToString(out.NextToken)), nil
}

// labelFilters returns the filters tag:KEY=VALUE of labels, sorted.
func labelFilters(labels map[string]string) []types.Filter {
	var fs []types.Filter
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fs = append(fs, types.Filter{Name: awssdk.String("tag:" + k), Values: []string{labels[k]}})
	}
	return fs
}

// tagFilters returns the DescribeInstances filters of q: tag:KEY for each
// label, tag:Name for the name.
func tagFilters(q driver.Query) []types.Filter {
	fs := labelFilters(q.Labels)
	if q.Name != "" {
		fs = append(fs, types.Filter{Name: awssdk.String("tag:" + nameTag), Values: []string{q.Name}})
	}
	return fs
}

// pageSep separates the region from EC2's token in a page token.
const pageSep = "|"

// pageOf returns the region and EC2 token a page token names: "" is the
// first region's first page.
func pageOf(regions []string, page string) (region, token string, err error) {
	if len(regions) == 0 {
		return "", "", noRegion()
	}
	if page == "" {
		return regions[0], "", nil
	}
	region, token, _ = strings.Cut(page, pageSep)
	if !slices.Contains(regions, region) {
		return "", "", driver.Invalid("page", fmt.Sprintf("page token of a region (%q) this Provider does not cover", region))
	}
	return region, token, nil
}

// nextPage returns the token of the page after one of region whose EC2
// NextToken is next: the same region's next page, else the next region's
// first, else "" after the last.
func nextPage(regions []string, region, next string) string {
	if next != "" {
		return region + pageSep + next
	}
	i := slices.Index(regions, region)
	if i < 0 || i+1 >= len(regions) {
		return ""
	}
	return regions[i+1] + pageSep
}

// Delete terminates the instance, in the region it was made in, else in
// the first covered region that has it. A missing one is KindNotFound.
func (d *drv) Delete(ctx context.Context, id string) error {
	regions := d.regionsFor(id)
	if len(regions) == 0 {
		return noRegion()
	}
	var last error
	for _, region := range regions {
		_, err := d.client(region).TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}, d.callOpt)
		if err = classify(err); !isNotFound(err) {
			if err == nil {
				d.log.Debug("spuff: terminated", "provider", Name, "id", id, "region", region)
			}
			return err
		}
		last = err
	}
	return last
}

// instanceOf maps an EC2 instance of region.
func instanceOf(region string, in *types.Instance) *driver.Instance {
	out := &driver.Instance{ID: awssdk.ToString(in.InstanceId), Region: region, Size: string(in.InstanceType)}
	out.Name, out.Labels = labelsOf(in.Tags)
	if in.State != nil {
		out.RawState = string(in.State.Name)
		out.State = stateOf(in.State.Name)
	}
	if a, err := netip.ParseAddr(awssdk.ToString(in.PublicIpAddress)); err == nil {
		out.IPv4 = a
	}
	if a, err := netip.ParseAddr(awssdk.ToString(in.Ipv6Address)); err == nil {
		out.IPv6 = a
	}
	if in.LaunchTime != nil {
		out.CreatedAt = *in.LaunchTime
	}
	return out
}

// stateOf maps EC2's instance states.
func stateOf(s types.InstanceStateName) driver.State {
	switch s {
	case types.InstanceStateNamePending:
		return driver.StatePending
	case types.InstanceStateNameRunning:
		return driver.StateRunning
	case types.InstanceStateNameStopping:
		return driver.StateOff
	case types.InstanceStateNameStopped:
		return driver.StateStopped
	case types.InstanceStateNameShuttingDown:
		return driver.StateDestroying
	case types.InstanceStateNameTerminated:
		return driver.StateGone
	}
	return driver.StateUnknown
}
