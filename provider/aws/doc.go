// Package aws is spuff's Amazon EC2 driver, built on
// aws-sdk-go-v2/service/ec2. It registers itself as "aws":
//
//	import _ "github.com/spuffgo/spuff/provider/aws"
//
//	p, err := provider.Open(ctx, "aws", provider.Config{Region: "eu-west-1"})
//
// or, with an EC2 client of your own, New(client, cfg).
//
// # Credentials and regions
//
// Config.AccessKeyID, SecretAccessKey and SessionToken give static
// credentials. Without them the AWS default chain is used
// (aws-sdk-go-v2/config: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
// AWS_PROFILE with the shared config and credentials files, SSO, web
// identity, container and instance metadata); it reads the process
// environment itself. The default region is Config.Region, else AWS_REGION
// or AWS_DEFAULT_REGION, else the shared config's. EC2 is regional: a
// request's Region picks the region the instance is launched in, with one
// client per region, made once and cached. ListInstances and ListSnapshots
// cover the default region, those added with WithRegions, and every region
// this Provider has launched in; GetInstance, DestroyInstance and
// DeleteSnapshot look an ID up in the region the Provider made it in, else
// in those regions. Config.Endpoint, when set, is every client's base
// endpoint (simulated clouds, proxies, LocalStack).
//
// # Instances
//
// CreateInstance calls RunInstances with a ClientToken derived from the
// request (owner, name, region, type and image spec), so that a create
// retried by the driver or by the caller returns the instance the first one
// made instead of launching a second (if that instance has been terminated
// since, a new token is chained off its ID). Tags — Name, managed-by=<owner>
// and the request's labels — are set on the instance and its volumes at
// launch through TagSpecifications. User data is sent base64-encoded; EC2
// takes at most 16 KB of it before encoding, checked before any call, as is
// the single key pair EC2 installs: a request may name at most one SSH key
// (a key pair name, key pair ID or fingerprint). A label may not be called
// "Name": that tag holds the instance name.
//
// A terminated instance is gone: GetInstance returns ErrNotFound,
// ListInstances omits it (it lists the states pending, running, stopping,
// stopped and shutting-down) and DestroyInstance of it succeeds. EC2 is
// eventually consistent: right after RunInstances an instance may answer
// InvalidInstanceID.NotFound for a few seconds. For an instance this
// Provider launched less than a minute ago, GetInstance, DestroyInstance
// and WaitReady take that for "not visible yet" and wait, so a destroy right
// after a create is never lost. WaitReady waits for the state running and a
// public IPv4 address (the SDK's InstanceRunning waiter does not check the
// address).
//
// Options: WithSubnet, WithSecurityGroups, WithInstanceProfile,
// WithVolumeSize, WithRegions, WithNoReboot.
//
// # Images
//
// provider.Ubuntu("24.04") and provider.Debian("12") resolve, at create
// time, to the newest available official AMI of the instance type's
// architecture (arm64 for Graviton families such as t4g, m7g, c7gn, x2gd,
// otherwise x86_64; see Architecture): DescribeImages by owner — Canonical
// 099720109477, Debian 136693071363 — and name pattern (see ImageQuery),
// with Debian's backports images left out. The result is cached per region
// for an hour. CustomImage and SnapshotImage take an AMI ID.
//
// # Snapshots
//
// A snapshot is an AMI made by CreateImage, tagged Name and
// managed-by=<owner> together with the EBS snapshots behind it, and
// CreateSnapshot returns once it is available. AMI names are 3 to 128
// letters, digits, spaces and ( ) [ ] . / - ' @ _ (no ':'). DeleteSnapshot
// deregisters the AMI and deletes every EBS snapshot behind it, which would
// otherwise stay billed.
//
// # Retries and pacing
//
// The SDK's own retryer is off on purpose (aws.NopRetryer, one attempt
// per call, set on the client and on every call, so also on a client given
// to New): retries are made once, by provider.Policy, which retries only
// calls that are safe to repeat (RunInstances is, thanks to its client
// token), backs off with jitter and pauses the whole account after
// throttling. Were both to retry, attempts would multiply (3 × 5) and the
// SDK's retries would bypass the account's shared pacing. Every call is
// paced under EC2's request token bucket (100 requests, refilled at 20 per
// second), shared by all Providers of the same credentials, around the
// SDK's own HTTP client (or Config.HTTPClient), so AWS_CA_BUNDLE and the
// like keep working. Answers are read up to 32 MiB.
//
// # Errors
//
// Errors are *provider.Error values classified by EC2's error code:
// AuthFailure and UnauthorizedOperation are KindAuthentication;
// RequestLimitExceeded (HTTP 503) is KindRateLimit; *.NotFound codes are
// KindNotFound (or KindInvalidConfig naming the field, for a create's AMI or
// key pair); InstanceLimitExceeded, VcpuLimitExceeded and
// ResourceLimitExceeded are KindQuotaExceeded; InvalidParameterValue,
// *.Malformed, IdempotentParameterMismatch and the like are
// KindInvalidConfig; InternalError and Unavailable are KindAPI with their
// 5xx status, retryable. Error.Code holds EC2's code, and the SDK's error
// (smithy.APIError, *awshttp.ResponseError) stays reachable with errors.As.
//
// # As
//
// Provider.As sets a **ec2.Client to the default region's client.
package aws
