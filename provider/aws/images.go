package aws

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
)

// The accounts that publish the official images.
const (
	// CanonicalOwner is Canonical's account, which publishes Ubuntu AMIs.
	CanonicalOwner = "099720109477"
	// DebianOwner is the Debian project's account.
	DebianOwner = "136693071363"
)

// gravitonRe matches the families of Graviton (arm64) instance types: a
// letter run, a generation digit, then "g" (t4g, m6gd, c7gn, im4gn,
// is4gen, x2gd, g5g, hpc7g...).
var gravitonRe = regexp.MustCompile(`^[a-z]+[0-9]+g[a-z]*$`)

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

// ImageQuery returns the owner account and AMI name pattern (with *
// wildcards, as the DescribeImages name filter takes it) of the official
// image of kind (provider.ImageUbuntu or provider.ImageDebian), version and
// architecture ("x86_64" or "arm64"), or ok false for other kinds.
//
// Ubuntu: ubuntu/images/hvm-ssd*/ubuntu-*-24.04-amd64-server-* (gp2 and gp3
// EBS images; not minimal, Pro or instance-store ones). Debian:
// debian-12-amd64-* (backports images, debian-12-backports-*, are
// excluded when the newest is picked).
func ImageQuery(kind provider.ImageKind, version, arch string) (owner, pattern string, ok bool) {
	return imageQuery(kind.String(), version, arch)
}

func imageQuery(kind, version, arch string) (owner, pattern string, ok bool) {
	a := "amd64"
	if arch == "arm64" {
		a = "arm64"
	}
	switch kind {
	case driver.ImageUbuntu:
		return CanonicalOwner, fmt.Sprintf("ubuntu/images/hvm-ssd*/ubuntu-*-%s-%s-server-*", version, a), true
	case driver.ImageDebian:
		return DebianOwner, fmt.Sprintf("debian-%s-%s-*", version, a), true
	}
	return "", "", false
}

type imageKey struct {
	region, kind, version, arch string
}

type resolvedImage struct {
	id, root string
	done     time.Time // when the lookup that found it ended
}

// resolveImage returns the AMI to launch img from on an instance of the
// given type in region, and its root device name when known. Ubuntu and
// Debian versions resolve to the newest available official AMI of the
// instance type's architecture, as EC2 lists it when the create call
// begins: a lookup is shared by the creates made at once (those that begin
// before it ends), never reused by a later one, so that an AMI Canonical
// publishes between two creates is the one the second boots. (Each create
// call resolves its AMI once, in Prepare, and sends it on every attempt:
// a newer AMI never makes a call's retry differ from its first attempt.)
// Custom images and snapshots are AMI IDs already.
func (d *drv) resolveImage(ctx context.Context, region, size string, img driver.Image) (ami, root string, err error) {
	arch := Architecture(size)
	owner, pattern, ok := imageQuery(img.Kind, img.Value, arch)
	if !ok {
		return img.Value, "", nil
	}
	key := imageKey{region: region, kind: img.Kind, version: img.Value, arch: arch}
	begun := time.Now()
	d.fetchMu.Lock()
	defer d.fetchMu.Unlock()
	if c, hit := d.resolvedSince(key, begun); hit { // a lookup that ended while this call waited
		return c.id, c.root, nil
	}
	in := &ec2.DescribeImagesInput{
		Owners: []string{owner},
		Filters: []types.Filter{
			{Name: awssdk.String("name"), Values: []string{pattern}},
			{Name: awssdk.String("architecture"), Values: []string{arch}},
			{Name: awssdk.String("state"), Values: []string{"available"}},
		},
	}
	var best *types.Image
	var bestAt time.Time
	for {
		out, err := d.client(region).DescribeImages(ctx, in, d.callOpt)
		if err != nil {
			return "", "", classify(err)
		}
		for i := range out.Images {
			m := &out.Images[i]
			name := awssdk.ToString(m.Name)
			// The filters ran on EC2's side; check what matters again.
			if awssdk.ToString(m.OwnerId) != owner || string(m.Architecture) != arch || m.State != types.ImageStateAvailable ||
				strings.Contains(name, "backports") {
				continue
			}
			at, err := time.Parse(time.RFC3339, awssdk.ToString(m.CreationDate))
			if err != nil {
				continue
			}
			if best == nil || at.After(bestAt) || at.Equal(bestAt) && name > awssdk.ToString(best.Name) {
				best, bestAt = m, at
			}
		}
		if awssdk.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if best == nil {
		return "", "", driver.Invalid("Image", fmt.Sprintf("no available official %s %s AMI for %s in %s (owner %s, name %s)",
			img.Kind, img.Value, arch, region, owner, pattern))
	}
	c := resolvedImage{id: awssdk.ToString(best.ImageId), root: awssdk.ToString(best.RootDeviceName), done: time.Now()}
	d.mu.Lock()
	d.images[key] = c
	d.mu.Unlock()
	d.log.Debug("spuff: resolved image", "provider", Name, "image", img.Kind+":"+img.Value, "arch", arch, "region", region,
		"ami", c.id, "name", awssdk.ToString(best.Name))
	return c.id, c.root, nil
}

// resolvedSince returns the AMI of key a lookup found that ended after
// begun.
func (d *drv) resolvedSince(key imageKey, begun time.Time) (resolvedImage, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.images[key]
	return c, ok && c.done.After(begun)
}

// rootDevice returns the root device name of an AMI in region. A missing
// AMI is invalid config naming the image.
func (d *drv) rootDevice(ctx context.Context, region, ami string) (string, error) {
	m, err := d.describeImage(ctx, region, ami)
	if isNotFound(err) {
		return "", driver.Invalid("Image", fmt.Sprintf("no AMI %s in %s", ami, region))
	}
	if err != nil {
		return "", err
	}
	if r := awssdk.ToString(m.RootDeviceName); r != "" {
		return r, nil
	}
	return "/dev/xvda", nil
}

// describeImage describes one AMI in region; a missing one is an error of
// KindNotFound.
func (d *drv) describeImage(ctx context.Context, region, ami string) (*types.Image, error) {
	out, err := d.client(region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}}, d.callOpt)
	if err != nil {
		return nil, classify(err)
	}
	for i := range out.Images {
		if awssdk.ToString(out.Images[i].ImageId) == ami {
			return &out.Images[i], nil
		}
	}
	return nil, driver.NotFound("no AMI " + ami + " in " + region)
}
