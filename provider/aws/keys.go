package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/spuffgo/spuff/provider/driver"
)

var (
	// keyPairIDRe matches key pair IDs.
	keyPairIDRe = regexp.MustCompile(`^key-([0-9a-f]{8}|[0-9a-f]{17})$`)
	// colonHexRe matches the colon-hex fingerprints EC2 reports for RSA
	// keys: MD5 (16 bytes, imported keys) or SHA-1 (20 bytes, keys EC2
	// made).
	colonHexRe = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){15}((:[0-9a-fA-F]{2}){4})?$`)
)

// Keys returns the key pairs of the default region, else of the first
// covered one (key pairs are regional on EC2): ID is the key pair ID
// ("key-…"), Fingerprint as EC2 reports it.
func (d *drv) Keys(ctx context.Context) ([]*driver.Key, error) {
	regions := d.regions() // the default region first
	if len(regions) == 0 {
		return nil, noRegion()
	}
	keys, err := d.keyPairs(ctx, regions[0])
	if err != nil {
		return nil, err
	}
	out := make([]*driver.Key, 0, len(keys))
	for _, k := range keys {
		id := awssdk.ToString(k.KeyPairId)
		if id == "" {
			id = awssdk.ToString(k.KeyName)
		}
		out = append(out, &driver.Key{ID: id, Name: awssdk.ToString(k.KeyName),
			Fingerprint: awssdk.ToString(k.KeyFingerprint), PublicKey: strings.TrimSpace(awssdk.ToString(k.PublicKey))})
	}
	return out, nil
}

// keyPairs reads the key pairs of region.
func (d *drv) keyPairs(ctx context.Context, region string) ([]types.KeyPairInfo, error) {
	out, err := d.client(region).DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{IncludePublicKey: awssdk.Bool(true)}, d.callOpt)
	if err != nil {
		return nil, classify(err)
	}
	return out.KeyPairs, nil
}

// keyName resolves the SSH key a request names to the key pair name
// RunInstances takes. A name is used as it is (RunInstances refuses a
// missing one); a key pair ID ("key-…") or a fingerprint — colon-hex MD5
// or SHA-1 for RSA keys, base64 SHA-256 for ed25519 keys, with or without
// its "=" padding or an "SHA256:" prefix — is looked up among the region's
// key pairs.
func (d *drv) keyName(ctx context.Context, region string, refs []string) (string, error) {
	if len(refs) == 0 {
		return "", nil
	}
	ref := refs[0]
	if !keyPairIDRe.MatchString(ref) && !isFingerprint(ref) {
		return ref, nil
	}
	keys, err := d.keyPairs(ctx, region)
	if err != nil {
		return "", err
	}
	want := normalFingerprint(ref)
	for _, k := range keys {
		if awssdk.ToString(k.KeyPairId) == ref || awssdk.ToString(k.KeyName) == ref ||
			want != "" && normalFingerprint(awssdk.ToString(k.KeyFingerprint)) == want {
			return awssdk.ToString(k.KeyName), nil
		}
	}
	return "", driver.Invalid("SSHKeys[0]", fmt.Sprintf("no key pair with the ID, fingerprint or name %q in %s", ref, region))
}

// isFingerprint reports whether ref has the shape of a fingerprint EC2
// reports.
func isFingerprint(ref string) bool {
	if colonHexRe.MatchString(ref) {
		return true
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimPrefix(ref, "SHA256:"), "="))
	return err == nil && len(b) == 32
}

// normalFingerprint returns a fingerprint in one spelling for comparison:
// colon-hex in lower case, base64 SHA-256 without prefix or padding; ""
// for what is no fingerprint.
func normalFingerprint(f string) string {
	switch {
	case colonHexRe.MatchString(f):
		return strings.ToLower(f)
	case isFingerprint(f):
		return strings.TrimRight(strings.TrimPrefix(f, "SHA256:"), "=")
	}
	return ""
}
