package aws

import (
	"context"
	"fmt"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/spuffgo/spuff/provider"
)

// The accounts that publish the official images.
const (
	// CanonicalOwner is Canonical's account, which publishes Ubuntu AMIs.
	CanonicalOwner = "099720109477"
	// DebianOwner is the Debian project's account.
	DebianOwner = "136693071363"
)

// imageTTL is how long a resolved AMI is reused before it is looked up
// again (official images are republished every few weeks).
const imageTTL = time.Hour

type imageKey struct {
	region, spec, arch string
}

type cachedImage struct {
	id, root string
	at       time.Time
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
	a := "amd64"
	if arch == "arm64" {
		a = "arm64"
	}
	switch kind {
	case provider.ImageUbuntu:
		return CanonicalOwner, fmt.Sprintf("ubuntu/images/hvm-ssd*/ubuntu-*-%s-%s-server-*", version, a), true
	case provider.ImageDebian:
		return DebianOwner, fmt.Sprintf("debian-%s-%s-*", version, a), true
	}
	return "", "", false
}

// resolveImage returns the AMI to launch for spec on an instance of the
// given type in region, and its root device name when known. Ubuntu and
// Debian versions resolve to the newest available official AMI of the
// instance type's architecture, cached per region for an hour.
func (p *Provider) resolveImage(ctx context.Context, region, size string, spec provider.ImageSpec) (ami, root string, err error) {
	arch := Architecture(size)
	owner, pattern, ok := ImageQuery(spec.Kind, spec.Value, arch)
	if !ok {
		return spec.Value, "", nil // an AMI ID: custom image or snapshot
	}
	key := imageKey{region: region, spec: spec.String(), arch: arch}
	p.mu.Lock()
	c, hit := p.imageMap[key]
	p.mu.Unlock()
	if hit && time.Since(c.at) < imageTTL {
		return c.id, c.root, nil
	}
	p.fetchMu.Lock()
	defer p.fetchMu.Unlock()
	p.mu.Lock() // a lookup just made may have it
	c, hit = p.imageMap[key]
	p.mu.Unlock()
	if hit && time.Since(c.at) < imageTTL {
		return c.id, c.root, nil
	}
	const op = "CreateInstance"
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
		var out *ec2.DescribeImagesOutput
		err := p.call(ctx, op, region, func(ctx context.Context, c *ec2.Client) (err error) {
			out, err = c.DescribeImages(ctx, in, p.callOpt)
			return err
		})
		if err != nil {
			return "", "", err
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
		return "", "", &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Field: "Image",
			Message: fmt.Sprintf("no available official %s AMI for %s in %s (owner %s, name %s)", spec, arch, region, owner, pattern)}
	}
	c = cachedImage{id: awssdk.ToString(best.ImageId), root: awssdk.ToString(best.RootDeviceName), at: time.Now()}
	p.mu.Lock()
	p.imageMap[key] = c
	p.mu.Unlock()
	p.policy.Log.Debug("spuff: resolved image", "provider", Name, "spec", spec.String(), "arch", arch, "region", region, "ami", c.id, "name", awssdk.ToString(best.Name))
	return c.id, c.root, nil
}

// rootDevice returns the root device name of an AMI.
func (p *Provider) rootDevice(ctx context.Context, region, ami string) (string, error) {
	m, err := p.image(ctx, "CreateInstance", region, ami)
	if err != nil {
		if isNotFound(err) {
			return "", invalidAs(err, "Image")
		}
		return "", err
	}
	if r := awssdk.ToString(m.RootDeviceName); r != "" {
		return r, nil
	}
	return "/dev/xvda", nil
}

// image describes one AMI, retrying transient errors; a missing one gives
// an error matching ErrNotFound.
func (p *Provider) image(ctx context.Context, op, region, ami string) (*types.Image, error) {
	var m *types.Image
	err := p.policy.Call(ctx, op, func(ctx context.Context) (err error) {
		m, err = p.describeImage(ctx, op, region, ami)
		return err
	})
	return m, err
}

// describeImage describes one AMI once, with no retry.
func (p *Provider) describeImage(ctx context.Context, op, region, ami string) (*types.Image, error) {
	out, err := p.client(region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}}, p.callOpt)
	if err != nil {
		return nil, classify(op, err)
	}
	for i := range out.Images {
		if awssdk.ToString(out.Images[i].ImageId) == ami {
			return &out.Images[i], nil
		}
	}
	return nil, notFound(op, "snapshot", ami, "not in "+region, nil)
}
