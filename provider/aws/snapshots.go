package aws

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/spuffgo/spuff/provider/driver"
)

// amiVisibleAfter is how long after CreateImage EC2 may still answer
// InvalidAMIID.NotFound for the new AMI (eventual consistency): a poll
// within it reads the AMI as still pending.
const amiVisibleAfter = time.Minute

// CheckSnapshot checks an AMI name: 3 to 128 letters, digits, spaces and
// ( ) [ ] . / - ' @ _ (no ':').
func (d *drv) CheckSnapshot(name string) error {
	if len(name) < 3 || len(name) > 128 {
		return driver.Invalid("name", fmt.Sprintf("AMI names are 3 to 128 characters; %q has %d", name, len(name)))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("()[] ./-'@_", c) >= 0 {
			continue
		}
		return driver.Invalid("name", fmt.Sprintf("AMI names take letters, digits, spaces and ( ) [ ] . / - ' @ _; %q contains %q", name, rune(c)))
	}
	return nil
}

// StartSnapshot makes an AMI of the instance with CreateImage, the AMI and
// the EBS snapshots behind it tagged with Name and in.Labels at creation.
// AMI names are unique per region: a taken name is KindConflict.
func (d *drv) StartSnapshot(ctx context.Context, in *driver.SnapshotInput) (*driver.Snapshot, error) {
	region, err := d.regionOf(ctx, in.InstanceID)
	if err != nil {
		return nil, err
	}
	ts := tags(in.Name, in.Labels)
	out, err := d.client(region).CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId:  awssdk.String(in.InstanceID),
		Name:        awssdk.String(in.Name),
		Description: awssdk.String("spuff snapshot of " + in.InstanceID),
		NoReboot:    awssdk.Bool(d.opts.noReboot),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: ts},
			{ResourceType: types.ResourceTypeSnapshot, Tags: ts},
		},
	}, d.callOpt)
	if err != nil {
		return nil, classify(err)
	}
	id := awssdk.ToString(out.ImageId)
	if id == "" {
		return nil, driver.Lost("the CreateImage answer has no image ID", nil)
	}
	d.place(id, region)
	return &driver.Snapshot{ID: id, InstanceID: in.InstanceID, Name: in.Name, State: driver.SnapshotPending,
		Labels: maps.Clone(in.Labels), CreatedAt: time.Now()}, nil
}

// regionOf returns the region of an instance: where this driver made it,
// else the first covered region that has it.
func (d *drv) regionOf(ctx context.Context, id string) (string, error) {
	regions := d.regionsFor(id)
	switch len(regions) {
	case 0:
		return "", noRegion()
	case 1:
		return regions[0], nil
	}
	in, err := d.Get(ctx, id)
	if err != nil {
		return "", err
	}
	return in.Region, nil
}

// PollSnapshot reads the AMI's state: pending, available, or failed with
// EC2's reason. An AMI this driver made less than a minute ago that EC2
// does not show yet is still pending.
func (d *drv) PollSnapshot(ctx context.Context, s *driver.Snapshot) (*driver.Snapshot, error) {
	var last error
	for _, region := range d.regionsFor(s.ID) {
		m, err := d.describeImage(ctx, region, s.ID)
		if err == nil {
			return snapshotOf(m), nil
		}
		if !isNotFound(err) {
			return nil, err
		}
		last = err
	}
	if d.madeLately(s.ID, amiVisibleAfter) {
		return s, nil
	}
	if last == nil {
		return nil, noRegion()
	}
	return nil, last
}

// madeLately reports whether this driver made id less than d ago.
func (d *drv) madeLately(id string, within time.Duration) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	pl, ok := d.placed[id]
	return ok && time.Since(pl.at) < within
}

// ListSnapshots reads one page of the account's AMIs (DescribeImages,
// owner self) matching q — the filters tag:KEY for its labels and name for
// its name — in every covered region, 1000 a page; the page token is the
// region and EC2's NextToken. q.InstanceID is not needed: an AMI carries
// its labels from CreateImage on, so no job in progress goes unlabelled.
func (d *drv) ListSnapshots(ctx context.Context, q driver.Query, page string) ([]*driver.Snapshot, string, error) {
	regions := d.regions()
	region, token, err := pageOf(regions, page)
	if err != nil {
		return nil, "", err
	}
	filters := labelFilters(q.Labels)
	if q.Name != "" {
		filters = append(filters, types.Filter{Name: awssdk.String("name"), Values: []string{q.Name}})
	}
	in := &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: filters, MaxResults: awssdk.Int32(listPageSize)}
	if token != "" {
		in.NextToken = awssdk.String(token)
	}
	out, err := d.client(region).DescribeImages(ctx, in, d.callOpt)
	if err != nil {
		return nil, "", classify(err)
	}
	list := make([]*driver.Snapshot, 0, len(out.Images))
	for i := range out.Images {
		list = append(list, snapshotOf(&out.Images[i]))
	}
	return list, nextPage(regions, region, awssdk.ToString(out.NextToken)), nil
}

// snapshotOf maps an AMI; its size is the sum of its EBS volumes'.
func snapshotOf(m *types.Image) *driver.Snapshot {
	s := &driver.Snapshot{ID: awssdk.ToString(m.ImageId), InstanceID: awssdk.ToString(m.SourceInstanceId)}
	var name string
	name, s.Labels = labelsOf(m.Tags)
	s.Name = awssdk.ToString(m.Name)
	if s.Name == "" {
		s.Name = name
	}
	if t, err := time.Parse(time.RFC3339, awssdk.ToString(m.CreationDate)); err == nil {
		s.CreatedAt = t
	}
	for _, b := range m.BlockDeviceMappings {
		if b.Ebs != nil {
			s.SizeGB += float64(awssdk.ToInt32(b.Ebs.VolumeSize))
		}
	}
	switch m.State {
	case types.ImageStateAvailable:
		s.State = driver.SnapshotAvailable
	case types.ImageStatePending, types.ImageStateTransient, types.ImageStateDisabled:
		s.State = driver.SnapshotPending
	default: // failed, invalid, error, deregistered
		s.State = driver.SnapshotFailed
		s.Message = "the AMI is " + string(m.State)
		if m.StateReason != nil && awssdk.ToString(m.StateReason.Message) != "" {
			s.Message += ": " + awssdk.ToString(m.StateReason.Message)
		}
	}
	return s
}

// DeleteSnapshot deregisters the AMI and deletes every EBS snapshot behind
// it, which would otherwise stay billed: it reads the AMI's block device
// mappings, deregisters it with DeleteAssociatedSnapshots, and deletes
// with DeleteSnapshot whatever snapshot EC2 did not report deleted
// (endpoints that ignore the flag). An AMI that is gone is KindNotFound,
// unless EBS snapshots a half-finished earlier delete left behind are
// found by their description ("Created by CreateImage(…) for ami-…"):
// those are deleted too. Every step is safe to repeat.
func (d *drv) DeleteSnapshot(ctx context.Context, id string) error {
	regions := d.regionsFor(id)
	if len(regions) == 0 {
		return noRegion()
	}
	var last error
	for _, region := range regions {
		m, err := d.describeImage(ctx, region, id)
		if isNotFound(err) {
			last = err
			orphans, err := d.orphanSnapshots(ctx, region, id)
			if err != nil {
				return err
			}
			if len(orphans) > 0 {
				return d.deleteEBSSnapshots(ctx, region, orphans)
			}
			continue
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
		out, err := d.client(region).DeregisterImage(ctx, &ec2.DeregisterImageInput{
			ImageId: awssdk.String(id), DeleteAssociatedSnapshots: awssdk.Bool(true),
		}, d.callOpt)
		if err = classify(err); err != nil && !isNotFound(err) {
			return err
		}
		var deleted []string
		if out != nil {
			for _, r := range out.DeleteSnapshotResults {
				if r.ReturnCode == types.SnapshotReturnCodesSuccess {
					deleted = append(deleted, awssdk.ToString(r.SnapshotId))
				}
			}
		}
		left := slices.DeleteFunc(snaps, func(s string) bool { return slices.Contains(deleted, s) })
		d.log.Debug("spuff: deregistered", "provider", Name, "id", id, "snapshots", len(snaps), "left", len(left))
		return d.deleteEBSSnapshots(ctx, region, left)
	}
	return last
}

// orphanSnapshots finds the account's EBS snapshots made for the AMI ami,
// every page.
func (d *drv) orphanSnapshots(ctx context.Context, region, ami string) ([]string, error) {
	var ids []string
	pg := ec2.NewDescribeSnapshotsPaginator(d.client(region), &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []types.Filter{{Name: awssdk.String("description"), Values: []string{"*" + ami + "*"}}},
	})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx, d.callOpt)
		if err != nil {
			return nil, classify(err)
		}
		for _, s := range out.Snapshots {
			ids = append(ids, awssdk.ToString(s.SnapshotId))
		}
	}
	return ids, nil
}

// deleteEBSSnapshots deletes EBS snapshots; a missing one is success. One
// still held by the AMI being deregistered is a retryable error: the
// portable layer repeats the delete, which then finds it as an orphan.
func (d *drv) deleteEBSSnapshots(ctx context.Context, region string, ids []string) error {
	for _, s := range ids {
		_, err := d.client(region).DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String(s)}, d.callOpt)
		if err = classify(err); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// amiInDescription finds the AMI an EBS snapshot CreateImage made names in
// its description ("Created by CreateImage(i-…) for ami-…").
var amiInDescription = regexp.MustCompile(`\bami-[0-9a-f]{8}(?:[0-9a-f]{9})?\b`)

// Orphans lists, in every covered region, the account's EBS snapshots
// carrying all of labels (CreateImage tagged them as it tagged their AMI)
// whose AMI is gone: left by a delete whose DeleteSnapshot failed, or by an
// endpoint that ignored DeleteAssociatedSnapshots. They are listed before
// the AMIs, so that an AMI made meanwhile never makes its snapshots look
// orphaned.
func (d *drv) Orphans(ctx context.Context, labels map[string]string) ([]*driver.Snapshot, error) {
	var out []*driver.Snapshot
	for _, region := range d.regions() {
		var snaps []types.Snapshot
		pg := ec2.NewDescribeSnapshotsPaginator(d.client(region), &ec2.DescribeSnapshotsInput{
			OwnerIds: []string{"self"}, Filters: labelFilters(labels), MaxResults: awssdk.Int32(listPageSize),
		})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx, d.callOpt)
			if err != nil {
				return nil, classify(err)
			}
			snaps = append(snaps, page.Snapshots...)
		}
		if len(snaps) == 0 {
			continue
		}
		amis := map[string]bool{}
		ipg := ec2.NewDescribeImagesPaginator(d.client(region), &ec2.DescribeImagesInput{
			Owners: []string{"self"}, MaxResults: awssdk.Int32(listPageSize),
		})
		for ipg.HasMorePages() {
			page, err := ipg.NextPage(ctx, d.callOpt)
			if err != nil {
				return nil, classify(err)
			}
			for _, m := range page.Images {
				amis[awssdk.ToString(m.ImageId)] = true
			}
		}
		for _, v := range snaps {
			ami := amiInDescription.FindString(awssdk.ToString(v.Description))
			if ami == "" || amis[ami] {
				continue
			}
			id := awssdk.ToString(v.SnapshotId)
			d.place(id, region)
			o := &driver.Snapshot{ID: id, State: driver.SnapshotAvailable, SizeGB: float64(awssdk.ToInt32(v.VolumeSize))}
			o.Name, o.Labels = labelsOf(v.Tags)
			if v.StartTime != nil {
				o.CreatedAt = *v.StartTime
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// DeleteOrphan deletes an EBS snapshot Orphans returned; a missing one is
// KindNotFound, one still held by its AMI's deregistration a retryable
// error.
func (d *drv) DeleteOrphan(ctx context.Context, id string) error {
	var last error
	for _, region := range d.regionsFor(id) {
		_, err := d.client(region).DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String(id)}, d.callOpt)
		if err = classify(err); !isNotFound(err) {
			return err
		}
		last = err
	}
	if last == nil {
		return noRegion()
	}
	return last
}
