package aws

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/spuffgo/spuff/provider"
)

// classify turns an error of an EC2 call into a *provider.Error, by HTTP
// status and, above all, by EC2's error code: EC2 answers most errors with
// 400 and throttling with 503 RequestLimitExceeded.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var perr *provider.Error
	if errors.As(err, &perr) {
		return err
	}
	var (
		status int
		header http.Header
	)
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
		if re.Response != nil {
			header = re.Response.Header
		}
	}
	out := provider.Classify(Name, op, status, header, err)
	if !errors.As(out, &perr) {
		return out
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		perr.Code = ae.ErrorCode()
		if k := kindForCode(perr.Code); k != provider.KindUnknown {
			perr.Kind = k
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return perr
	}
	var de *smithy.DeserializationError
	switch {
	case perr.Code == "" && errors.As(err, &de):
		// A garbled or cut-off answer: for a call that is safe to repeat,
		// as good as a lost one.
		perr.Kind = provider.KindNetwork
		perr.Message = "the answer could not be read"
	case perr.Code == "" && status == 0 && strings.Contains(err.Error(), "get identity"):
		perr.Kind = provider.KindAuthentication
		perr.Message = "no usable AWS credentials: set Config.AccessKeyID and Config.SecretAccessKey, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
	}
	if perr.Kind == provider.KindRateLimit && perr.RetryAfter == 0 && header != nil {
		perr.RetryAfter = provider.ParseRetryAfter(header.Get("Retry-After"), time.Now())
	}
	return perr
}

// kindForCode maps EC2's error codes to portable kinds; KindUnknown leaves
// the kind the HTTP status gave.
func kindForCode(code string) provider.Kind {
	switch code {
	case "":
		return provider.KindUnknown
	case "AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"ExpiredToken", "IncompleteSignature", "MissingAuthenticationToken", "OptInRequired",
		"Blocked", "PendingVerification", "AccessDenied", "AccessDeniedException":
		return provider.KindAuthentication
	case "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequestsException":
		return provider.KindRateLimit
	case "InstanceLimitExceeded", "ResourceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded",
		"SnapshotLimitExceeded", "VolumeLimitExceeded", "AddressLimitExceeded", "AMIQuotaExceeded":
		return provider.KindQuotaExceeded
	case "InternalError", "InternalFailure", "Unavailable", "ServiceUnavailable",
		"InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacity",
		"IncorrectInstanceState", "IncorrectState", "InvalidSnapshot.InUse", "DependencyViolation",
		"InvalidAMIID.Unavailable":
		return provider.KindAPI
	case "InvalidParameterValue", "InvalidParameter", "InvalidParameterCombination", "MissingParameter",
		"UnknownParameter", "InvalidAction", "NoSuchVersion", "IdempotentParameterMismatch",
		"InvalidBlockDeviceMapping", "TagLimitExceeded", "Unsupported", "UnsupportedOperation",
		"InvalidAMIName.Malformed", "InvalidAMIName.Duplicate":
		return provider.KindInvalidConfig
	}
	switch {
	case strings.HasSuffix(code, ".NotFound"):
		return provider.KindNotFound
	case strings.HasSuffix(code, ".Malformed"):
		return provider.KindInvalidConfig
	}
	return provider.KindUnknown
}

// codeOf returns the EC2 error code in err's chain, or "".
func codeOf(err error) string {
	var perr *provider.Error
	if errors.As(err, &perr) && perr.Code != "" {
		return perr.Code
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool { return errors.Is(err, provider.ErrNotFound) }

// notFound is the error of a resource that does not exist (or is
// terminated).
func notFound(op, resource, id, msg string, cause error) *provider.Error {
	return &provider.Error{Kind: provider.KindNotFound, Provider: Name, Op: op, Resource: resource, ID: id, Message: msg, Err: cause}
}

// invalidAs turns err into an invalid-config error about field, keeping
// its code and cause.
func invalidAs(err error, field string) error {
	var perr *provider.Error
	if !errors.As(err, &perr) {
		return err
	}
	cp := *perr
	cp.Kind = provider.KindInvalidConfig
	cp.Field = field
	return &cp
}

// withID adds to err what the caller must know of a resource the failed
// call may have left: its ID when known, and a note.
func withID(err error, resource, id, note string) error {
	var perr *provider.Error
	if !errors.As(err, &perr) {
		return err
	}
	if id != "" {
		perr.Resource, perr.ID = resource, id
	}
	perr.Message = strings.TrimPrefix(perr.Message+"; "+note, "; ")
	return err
}
