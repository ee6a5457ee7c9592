package aws

import (
	"context"
	"encoding/base64"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/spuffgo/spuff/provider/driver"
)

var _ driver.ConsoleReader = (*drv)(nil)

// ConsoleOutput reads the instance's serial console with GetConsoleOutput
// (the latest output), decoded: cloud-init prints the machine's SSH host
// key fingerprints there, which provider.ConsoleHostKeys verifies a login
// against.
func (d *drv) ConsoleOutput(ctx context.Context, id string) (string, error) {
	regions := d.regionsFor(id)
	if len(regions) == 0 {
		return "", noRegion()
	}
	var last error
	for _, region := range regions {
		out, err := d.client(region).GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: awssdk.String(id), Latest: awssdk.Bool(true)}, d.callOpt)
		if err = classify(err); isNotFound(err) {
			last = err
			continue
		}
		if err != nil {
			return "", err
		}
		raw, derr := base64.StdEncoding.DecodeString(awssdk.ToString(out.Output))
		if derr != nil {
			return "", driver.Lost("the console output is not base64", derr)
		}
		return string(raw), nil
	}
	return "", last
}
