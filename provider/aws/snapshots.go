package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/spuffgo/spuff/provider"
)

// checkAMIName reports whether name is a valid AMI name: 3 to 128 letters,
// digits, spaces and ( ) [ ] . / - ' @ _ — no ':'.
func checkAMIName(name string) error {
	if len(name) < 3 || len(name) > 128 {
		return provider.InvalidField("name", fmt.Sprintf("AMI names are 3 to 128 characters; %q has %d", name, len(name)))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("()[] ./-'@_", c) >= 0 {
			continue
		}
		return provider.InvalidField("name", fmt.Sprintf("AMI names take letters, digits, spaces and ( ) [ ] . / - ' @ _; %q contains %q", name, rune(c)))
	}
	return nil
}

// CreateSnapshot makes an AMI of the instance with CreateImage (one EBS
// snapshot per volume behind it), tags the AMI and its snapshots with Name
// and the ownership label, and waits until the AMI is available. The AMI
// name is the idempotency key: a retried CreateSnapshot adopts the AMI of
// that name made from the same instance instead of making a second one. If
// the wait fails, the error carries the AMI's ID (Error.ID) so that it can
// be deleted.
func (p *Provider) CreateSnapshot(ctx context.Context, instanceID, name string) (*provider.Snapshot, error) {
	const op = "CreateSnapshot"
	if err := checkAMIName(name); err != nil {
		return nil, provider.Classify(Name, op, 0, nil, err)
	}
	if !instanceIDRe.MatchString(instanceID) {
		return nil, provider.MalformedID(Name, op, "instance", instanceID, "not an EC2 instance ID (i-…)", false)
	}
	region, err := p.regionOf(ctx, op, instanceID)
	if err != nil {
		return nil, err
	}
	tags := []types.Tag{
		{Key: awssdk.String("Name"), Value: awssdk.String(name)},
		{Key: awssdk.String(provider.OwnerLabel), Value: awssdk.String(p.owner)},
	}
	in := &ec2.CreateImageInput{
		InstanceId:  awssdk.String(instanceID),
		Name:        awssdk.String(name),
		Description: awssdk.String("spuff snapshot of " + instanceID),
		NoReboot:    awssdk.Bool(p.opts.noReboot),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: tags},
			{ResourceType: types.ResourceTypeSnapshot, Tags: tags},
		},
	}
	var ami string
	attempt := 0
	unknown := false // an attempt may have made the AMI
	err = p.call(ctx, op, region, func(ctx context.Context, c *ec2.Client) error {
		attempt++
		if attempt > 1 {
			// The previous attempt may have made the AMI and lost the answer.
			id, err := p.imageNamed(ctx, c, name, instanceID)
			if err != nil || id != "" {
				ami = id
				return err
			}
		}
		out, err := c.CreateImage(ctx, in, p.callOpt)
		if err == nil && awssdk.ToString(out.ImageId) == "" {
			// A success answer without the AMI: as good as lost.
			unknown = true
			return &provider.Error{Kind: provider.KindNetwork, Provider: Name, Op: op, Message: "the CreateImage answer has no image ID"}
		}
		if err == nil {
			ami = awssdk.ToString(out.ImageId)
			return nil
		}
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InvalidAMIName.Duplicate" {
			id, lerr := p.imageNamed(ctx, c, name, instanceID)
			if lerr == nil && id != "" {
				ami = id
				return nil
			}
			return invalidAs(classify(op, err), "name")
		}
		unknown = unknown || provider.OutcomeUnknown(classify(op, err))
		return err
	})
	if err != nil && unknown {
		// An attempt whose answer was lost may have made the AMI, and
		// the lookups since failed: look once more, so that it is not
		// left behind unnamed.
		id := p.lostImage(ctx, op, region, name, instanceID)
		switch {
		case id != "" && ctx.Err() == nil:
			ami, err = id, nil // go on with it
		case id != "":
			return nil, withID(err, "snapshot", id, "the AMI was made: DeleteSnapshot it, or CreateSnapshot with the same name adopts it")
		default:
			return nil, withID(err, "", "", "the AMI may have been made: CreateSnapshot with the same name adopts it")
		}
	}
	if err != nil {
		return nil, err
	}
	p.place(ami, region)

	var snap *provider.Snapshot
	werr := p.policy.WaitFor(ctx, op, "snapshot", ami, p.policy.Timeouts.ActionComplete, func(ctx context.Context) (bool, string, error) {
		m, err := p.describeImage(ctx, op, region, ami)
		if isNotFound(err) {
			if _, fresh := p.fresh(ami); fresh {
				return false, "not yet visible", nil
			}
			return false, "not found", err
		}
		if err != nil {
			return false, "", err
		}
		switch m.State {
		case types.ImageStateAvailable:
			snap = p.snapshot(m)
			return true, "available", nil
		case types.ImageStatePending:
			return false, "pending", nil
		}
		msg := "the AMI is " + string(m.State)
		if m.StateReason != nil {
			msg += ": " + awssdk.ToString(m.StateReason.Message)
		}
		return false, string(m.State), &provider.Error{Kind: provider.KindAPI, Provider: Name, Op: op, Resource: "snapshot", ID: ami, Message: msg}
	})
	if werr != nil {
		var perr *provider.Error
		if errors.As(werr, &perr) && perr.ID == "" {
			perr.ID, perr.Resource = ami, "snapshot"
		}
		return nil, werr
	}
	p.policy.Log.Debug("spuff: snapshot ready", "provider", Name, "id", ami, "instance", instanceID)
	return snap, nil
}

// lostImage looks for the AMI an attempt with a lost answer made, on a
// context that outlives the caller's, retrying transient errors; "" when
// it is not found.
func (p *Provider) lostImage(ctx context.Context, op, region, name, instanceID string) string {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.policy.Timeouts.HTTPRequest)
	defer cancel()
	var id string
	if err := p.call(lctx, op, region, func(ctx context.Context, c *ec2.Client) (err error) {
		id, err = p.imageNamed(ctx, c, name, instanceID)
		return err
	}); err != nil {
		return ""
	}
	return id
}

// regionOf returns the region of an instance: where this Provider
// launched it, else the first region where it is found.
func (p *Provider) regionOf(ctx context.Context, op, id string) (string, error) {
	regions := p.regionsFor(id)
	switch len(regions) {
	case 0:
		return "", noRegion(op)
	case 1:
		return regions[0], nil
	}
	in, region, err := p.find(ctx, op, id)
	if err != nil {
		return "", err
	}
	if gone(in) {
		return "", notFound(op, "instance", id, "terminated", nil)
	}
	return region, nil
}

// imageNamed returns the ID of the account's AMI called name made from
// instanceID and managed by this owner, or "".
func (p *Provider) imageNamed(ctx context.Context, c *ec2.Client, name, instanceID string) (string, error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"self"},
		Filters: []types.Filter{
			{Name: awssdk.String("name"), Values: []string{name}},
			{Name: awssdk.String("tag:" + provider.OwnerLabel), Values: []string{p.owner}},
		},
	}, p.callOpt)
	if err != nil {
		return "", err
	}
	for _, m := range out.Images {
		if awssdk.ToString(m.Name) == name && (m.SourceInstanceId == nil || awssdk.ToString(m.SourceInstanceId) == instanceID) {
			return awssdk.ToString(m.ImageId), nil
		}
	}
	return "", nil
}

// snapshot maps an AMI to a provider.Snapshot; its size is the sum of its
// EBS volumes'.
func (p *Provider) snapshot(m *types.Image) *provider.Snapshot {
	s := &provider.Snapshot{ID: awssdk.ToString(m.ImageId), Name: awssdk.ToString(m.Name), Labels: map[string]string{}}
	if t, err := time.Parse(time.RFC3339, awssdk.ToString(m.CreationDate)); err == nil {
		s.CreatedAt = t
	}
	for _, b := range m.BlockDeviceMappings {
		if b.Ebs != nil {
			s.SizeGB += float64(awssdk.ToInt32(b.Ebs.VolumeSize))
		}
	}
	for _, t := range m.Tags {
		k := awssdk.ToString(t.Key)
		if k == provider.OwnerLabel || k == "Name" || strings.HasPrefix(k, "aws:") {
			continue
		}
		s.Labels[k] = awssdk.ToString(t.Value)
	}
	return s
}

// ListSnapshots returns the account's AMIs tagged managed-by=<owner>, in
// every region the Provider covers.
func (p *Provider) ListSnapshots(ctx context.Context) ([]*provider.Snapshot, error) {
	const op = "ListSnapshots"
	regions := p.regions()
	if len(regions) == 0 {
		return nil, noRegion(op)
	}
	var out []*provider.Snapshot
	for _, r := range regions {
		in := &ec2.DescribeImagesInput{
			Owners:     []string{"self"},
			Filters:    []types.Filter{{Name: awssdk.String("tag:" + provider.OwnerLabel), Values: []string{p.owner}}},
			MaxResults: awssdk.Int32(listPageSize),
		}
		for {
			var page *ec2.DescribeImagesOutput
			err := p.call(ctx, op, r, func(ctx context.Context, c *ec2.Client) (err error) {
				page, err = c.DescribeImages(ctx, in, p.callOpt)
				return err
			})
			if err != nil {
				return nil, err
			}
			for i := range page.Images {
				out = append(out, p.snapshot(&page.Images[i]))
			}
			if awssdk.ToString(page.NextToken) == "" {
				break
			}
			in.NextToken = page.NextToken
		}
	}
	return out, nil
}

// DeleteSnapshot deregisters the AMI and deletes every EBS snapshot behind
// it, which would otherwise stay billed. It reads the AMI's block device
// mappings first, deregisters it with DeleteAssociatedSnapshots, and
// deletes with DeleteSnapshot whatever snapshot EC2 did not report deleted
// (endpoints that ignore the flag). An AMI already gone is success; EBS
// snapshots a half-finished earlier delete left behind are found by their
// description ("Created by CreateImage(…) for ami-…") and deleted too.
func (p *Provider) DeleteSnapshot(ctx context.Context, id string) error {
	const op = "DeleteSnapshot"
	if !amiIDRe.MatchString(id) {
		return &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Resource: "snapshot", ID: id, Field: "id",
			Message: "not an AMI ID (ami-…)"}
	}
	regions := p.regionsFor(id)
	if len(regions) == 0 {
		return noRegion(op)
	}
	for _, r := range regions {
		m, err := p.image(ctx, op, r, id)
		if isNotFound(err) {
			orphans, err := p.orphanSnapshots(ctx, op, r, id)
			if err != nil {
				return err
			}
			if len(orphans) == 0 {
				continue
			}
			return p.deleteEBSSnapshots(ctx, op, r, orphans)
		}
		if err != nil {
			return err
		}
		var snaps []string
		for _, b := range m.BlockDeviceMappings {
			if b.Ebs != nil && awssdk.ToString(b.Ebs.SnapshotId) != "" {
				snaps = append(snaps, awssdk.ToString(b.Ebs.SnapshotId))
			}
		}
		var deleted []string
		err = p.call(ctx, op, r, func(ctx context.Context, c *ec2.Client) error {
			out, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: awssdk.String(id), DeleteAssociatedSnapshots: awssdk.Bool(true)}, p.callOpt)
			if err != nil {
				return err
			}
			for _, d := range out.DeleteSnapshotResults {
				if d.ReturnCode == types.SnapshotReturnCodesSuccess {
					deleted = append(deleted, awssdk.ToString(d.SnapshotId))
				}
			}
			return nil
		})
		if err != nil && !isNotFound(err) {
			return err
		}
		var left []string
		for _, s := range snaps {
			if !slices.Contains(deleted, s) {
				left = append(left, s)
			}
		}
		p.policy.Log.Debug("spuff: deregistered", "provider", Name, "id", id, "snapshots", len(snaps), "left", len(left))
		return p.deleteEBSSnapshots(ctx, op, r, left)
	}
	return nil
}

// orphanSnapshots finds the account's EBS snapshots made for the AMI ami.
func (p *Provider) orphanSnapshots(ctx context.Context, op, region, ami string) ([]string, error) {
	var ids []string
	err := p.call(ctx, op, region, func(ctx context.Context, c *ec2.Client) error {
		ids = ids[:0]
		pg := ec2.NewDescribeSnapshotsPaginator(c, &ec2.DescribeSnapshotsInput{
			OwnerIds: []string{"self"},
			Filters:  []types.Filter{{Name: awssdk.String("description"), Values: []string{"*" + ami + "*"}}},
		})
		for pg.HasMorePages() {
			out, err := pg.NextPage(ctx, p.callOpt)
			if err != nil {
				return err
			}
			for _, s := range out.Snapshots {
				ids = append(ids, awssdk.ToString(s.SnapshotId))
			}
		}
		return nil
	})
	return ids, err
}

// deleteEBSSnapshots deletes EBS snapshots; a missing one is success, one
// still in use by the AMI being deregistered is waited for.
func (p *Provider) deleteEBSSnapshots(ctx context.Context, op, region string, ids []string) error {
	for _, s := range ids {
		del := func(ctx context.Context) error {
			return p.call(ctx, op, region, func(ctx context.Context, c *ec2.Client) error {
				_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String(s)}, p.callOpt)
				return err
			})
		}
		err := del(ctx)
		if codeOf(err) == "InvalidSnapshot.InUse" {
			err = p.fast.WaitFor(ctx, op, "snapshot", s, p.policy.Timeouts.ActionComplete, func(ctx context.Context) (bool, string, error) {
				err := del(ctx)
				if codeOf(err) == "InvalidSnapshot.InUse" {
					return false, "in use", nil
				}
				return err == nil || isNotFound(err), "", ignoreNotFound(err)
			})
		}
		if err = ignoreNotFound(err); err != nil {
			return err
		}
	}
	return nil
}

func ignoreNotFound(err error) error {
	if isNotFound(err) {
		return nil
	}
	return err
}

// ListSSHKeys returns the key pairs of the default region (key pairs are
// regional on EC2). An SSHKey's ID is the key pair's name, which
// InstanceRequest.SSHKeys takes, as it takes key pair IDs and
// fingerprints.
func (p *Provider) ListSSHKeys(ctx context.Context) ([]*provider.SSHKey, error) {
	const op = "ListSSHKeys"
	regions := p.regions()
	if len(regions) == 0 {
		return nil, noRegion(op)
	}
	keys, err := p.listKeys(ctx, regions[0])
	if err != nil {
		return nil, err
	}
	out := make([]*provider.SSHKey, 0, len(keys))
	for _, k := range keys {
		name := awssdk.ToString(k.KeyName)
		out = append(out, &provider.SSHKey{ID: name, Name: name, Fingerprint: awssdk.ToString(k.KeyFingerprint), PublicKey: strings.TrimSpace(awssdk.ToString(k.PublicKey))})
	}
	return out, nil
}

func (p *Provider) listKeys(ctx context.Context, region string) ([]types.KeyPairInfo, error) {
	var keys []types.KeyPairInfo
	err := p.call(ctx, "ListSSHKeys", region, func(ctx context.Context, c *ec2.Client) error {
		out, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{IncludePublicKey: awssdk.Bool(true)}, p.callOpt)
		if err != nil {
			return err
		}
		keys = out.KeyPairs
		return nil
	})
	return keys, err
}
