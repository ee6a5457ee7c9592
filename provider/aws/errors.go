package aws

import (
	"context"
	"errors"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/spuffgo/spuff/provider/driver"
)

// classify turns an error of an EC2 call into a *driver.Error: by EC2's
// error code above all (EC2 answers most errors with 400, throttling with
// 503 RequestLimitExceeded and a shortage of capacity with 500
// InsufficientInstanceCapacity), else by HTTP status. A request that got no
// answer, or whose context ended, is returned as it is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var de *driver.Error
	if errors.As(err, &de) {
		return err
	}
	status := 0
	requestID := ""
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
		requestID = re.ServiceRequestID()
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		var dse *smithy.DeserializationError
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return err
		case errors.As(err, &dse):
			// A garbled or cut-off answer: as good as a lost one.
			return driver.Lost("the EC2 answer could not be read", err)
		case status != 0:
			return driver.FromStatus(status, nil, "", err)
		case strings.Contains(err.Error(), "get identity"), strings.Contains(err.Error(), "failed to retrieve credentials"):
			return &driver.Error{Kind: driver.KindAuthentication, Field: "Config.AccessKeyID", Message: missingCredentials, Err: err}
		}
		return err
	}
	code := ae.ErrorCode()
	msg := ae.ErrorMessage()
	if requestID != "" {
		msg += " (request ID " + requestID + ")"
	}
	// The SDK's text repeats the code and message after the operation.
	e := driver.FromStatus(status, nil, msg, driver.Quiet(err))
	e.Code = code
	if k := kindForCode(code, ae.ErrorMessage()); k != driver.KindUnknown {
		e.Kind = k
	}
	switch e.Kind {
	case driver.KindInvalidConfig:
		e.Field = fieldOf(code, ae.ErrorMessage())
	case driver.KindCapacity:
		e.Field = "Size"
	case driver.KindRateLimit:
		e.RetryAfter = 0 // EC2 sends no Retry-After: the pacer's backoff decides
	}
	if code == "InvalidSnapshot.InUse" {
		// The AMI being deregistered still holds it for a moment.
		e.Retry = true
	}
	return e
}

// kindForCode maps EC2's error codes to portable kinds; KindUnknown leaves
// the kind the HTTP status gave.
func kindForCode(code, msg string) driver.Kind {
	switch code {
	case "":
		return driver.KindUnknown
	case "AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"ExpiredToken", "IncompleteSignature", "MissingAuthenticationToken", "OptInRequired",
		"Blocked", "PendingVerification", "AccessDenied", "AccessDeniedException", "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
		"UnrecognizedClientException":
		return driver.KindAuthentication
	case "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequestsException":
		return driver.KindRateLimit
	case "InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacity",
		"InsufficientReservedInstanceCapacity", "InsufficientCapacityOnHost":
		return driver.KindCapacity
	case "Unsupported":
		// "Your requested instance type (…) is not supported in your
		// requested Availability Zone (…)": that zone has no room for the
		// type, another placement may.
		if strings.Contains(strings.ToLower(msg), "availability zone") {
			return driver.KindCapacity
		}
		return driver.KindNotSupported
	case "IdempotentParameterMismatch", "InvalidAMIName.Duplicate":
		return driver.KindConflict
	case "InternalError", "InternalFailure", "Unavailable", "ServiceUnavailable",
		"IncorrectInstanceState", "IncorrectState", "InvalidSnapshot.InUse", "DependencyViolation",
		"InvalidAMIID.Unavailable":
		return driver.KindAPI
	case "InvalidParameterValue", "InvalidParameter", "InvalidParameterCombination", "MissingParameter",
		"UnknownParameter", "InvalidAction", "NoSuchVersion", "InvalidBlockDeviceMapping", "TagLimitExceeded",
		"UnsupportedOperation", "InvalidInstanceType", "InvalidUserData.Malformed":
		return driver.KindInvalidConfig
	}
	switch {
	case strings.HasSuffix(code, ".NotFound"):
		return driver.KindNotFound
	case strings.HasSuffix(code, ".Malformed"):
		return driver.KindInvalidConfig
	case strings.HasSuffix(code, "LimitExceeded"), strings.HasSuffix(code, "QuotaExceeded"):
		// InstanceLimitExceeded, VcpuLimitExceeded, ResourceLimitExceeded,
		// SnapshotLimitExceeded, AMIQuotaExceeded… (RequestLimitExceeded
		// and TagLimitExceeded are matched above).
		return driver.KindQuotaExceeded
	}
	return driver.KindUnknown
}

// fieldOf names the request field an invalid-parameter error is about, by
// its code and message, or "".
func fieldOf(code, msg string) string {
	switch {
	case strings.HasPrefix(code, "InvalidAMIID."), strings.HasPrefix(code, "InvalidAMIName."):
		if strings.HasPrefix(code, "InvalidAMIName.") {
			return "name"
		}
		return "Image"
	case strings.HasPrefix(code, "InvalidKeyPair."):
		return "SSHKeys"
	case strings.HasPrefix(code, "InvalidUserData."):
		return "UserData"
	case code == "InvalidInstanceType":
		return "Size"
	case code == "TagLimitExceeded":
		return "Labels"
	}
	m := strings.ToLower(msg)
	for _, f := range []struct{ word, field string }{
		{"instancetype", "Size"}, {"instance type", "Size"},
		{"region", "Region"}, {"availability zone", "Region"},
		{"user data", "UserData"}, {"userdata", "UserData"},
		{"key pair", "SSHKeys"}, {"keyname", "SSHKeys"},
		{"architecture", "Image"}, {"image", "Image"}, {"ami", "Image"},
		{"tag", "Labels"},
	} {
		if strings.Contains(m, f.word) {
			return f.field
		}
	}
	return ""
}

// createError refines the error of RunInstances: a reference of the
// request that does not resolve (the AMI, the key pair, a subnet or
// security group of the options) is invalid config naming it, not a
// missing resource of the call.
func createError(err error) error {
	var e *driver.Error
	if !errors.As(err, &e) || e.Kind != driver.KindNotFound {
		return err
	}
	field := ""
	switch {
	case strings.HasPrefix(e.Code, "InvalidAMIID."):
		field = "Image"
	case strings.HasPrefix(e.Code, "InvalidKeyPair."):
		field = "SSHKeys"
	case strings.HasPrefix(e.Code, "InvalidSubnetID."), strings.HasPrefix(e.Code, "InvalidSubnet."):
		field = "WithSubnet"
	case strings.HasPrefix(e.Code, "InvalidGroup."), strings.HasPrefix(e.Code, "InvalidSecurityGroupID."):
		field = "WithSecurityGroups"
	default:
		return err
	}
	cp := *e
	cp.Kind, cp.Field = driver.KindInvalidConfig, field
	return &cp
}

// isNotFound reports whether a classified error says the resource does not
// exist.
func isNotFound(err error) bool { return driver.KindOf(err) == driver.KindNotFound }
