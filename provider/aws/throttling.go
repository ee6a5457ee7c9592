package aws

import (
	"context"
	"net/http"
	"strings"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"

	"github.com/spuffgo/spuff/provider"
)

// The rate-limit classes of EC2's request buckets (EC2 developer guide,
// "Request throttling"), as requestClass names them. The actions with a
// bucket of their own are classes of their own name ("RunInstances").
const (
	// classRead is the non-mutating actions (Describe*, List*, Get*,
	// Search*) called with a filter or pagination: the class the portable
	// layer plans its waits' polls under.
	classRead = "read"
	// classReadUnfiltered is DescribeInstances, DescribeSnapshots and the
	// other actions of that set called with neither a filter nor
	// pagination, which draw on a smaller bucket.
	classReadUnfiltered = "read-unfiltered"
	// classMutate is every mutating action without a bucket of its own.
	classMutate = "mutate"
)

// bucketPer returns the period in which a bucket of size tokens refilled
// at rate tokens a second refills completely: the Per of its RateLimit.
func bucketPer(size int, rate float64) time.Duration {
	return time.Duration(float64(size) / rate * float64(time.Second))
}

// RateLimits are EC2's default request token buckets per account and
// region (EC2 developer guide, "Request throttling"), one class each:
// non-mutating actions with a filter or pagination 100 tokens refilled at
// 20 a second; DescribeInstances and the like unfiltered and unpaginated
// 50 at 10; mutating actions 50 at 5; RunInstances 5 at 2 and
// StartInstances 5 at 2; TerminateInstances 100 at 5; CreateTags and
// DeleteTags 100 at 10; DeregisterImage and DeleteSnapshot 100 at 5. The
// resource buckets of RunInstances and StartInstances (1,000 instances
// at 2 a second) and of TerminateInstances and StopInstances (1,000 at 20)
// are windows of the same class: the driver launches and terminates one
// instance a call, so one token a call is exact. Other actions of EC2's
// "uncategorized" table are paced as mutating or non-mutating ones.
//
// Providers of the same account share one budget whatever the region:
// EC2's buckets are per region, so this is conservative for a Provider
// that covers several.
var RateLimits = []provider.RateLimit{
	{Requests: 100, Per: bucketPer(100, 20), Class: classRead},
	{Requests: 50, Per: bucketPer(50, 10), Class: classReadUnfiltered},
	{Requests: 50, Per: bucketPer(50, 5), Class: classMutate},
	{Requests: 5, Per: bucketPer(5, 2), Class: "RunInstances"},
	{Requests: 1000, Per: bucketPer(1000, 2), Class: "RunInstances"},
	{Requests: 5, Per: bucketPer(5, 2), Class: "StartInstances"},
	{Requests: 1000, Per: bucketPer(1000, 2), Class: "StartInstances"},
	{Requests: 50, Per: bucketPer(50, 5), Class: "StopInstances"},
	{Requests: 1000, Per: bucketPer(1000, 20), Class: "StopInstances"},
	{Requests: 100, Per: bucketPer(100, 5), Class: "TerminateInstances"},
	{Requests: 1000, Per: bucketPer(1000, 20), Class: "TerminateInstances"},
	{Requests: 100, Per: bucketPer(100, 10), Class: "CreateTags"},
	{Requests: 100, Per: bucketPer(100, 10), Class: "DeleteTags"},
	{Requests: 100, Per: bucketPer(100, 5), Class: "DeregisterImage"},
	{Requests: 100, Per: bucketPer(100, 5), Class: "DeleteSnapshot"},
}

// ownBucket reports the actions with a class of their own in RateLimits.
var ownBucket = map[string]bool{
	"RunInstances": true, "StartInstances": true, "StopInstances": true, "TerminateInstances": true,
	"CreateTags": true, "DeleteTags": true, "DeregisterImage": true, "DeleteSnapshot": true,
}

// requestClass names the rate-limit class of an EC2 request: the
// operation name the SDK puts on the request's context, and whether the
// call was unfiltered and unpaginated (set by the class middleware from
// the call's input).
func requestClass(r *http.Request) string {
	ctx := r.Context()
	unfiltered, _ := middleware.GetStackValue(ctx, unfilteredKey{}).(bool)
	return classOf(awsmiddleware.GetOperationName(ctx), unfiltered)
}

// classOf is the class of the action op.
func classOf(op string, unfiltered bool) string {
	switch {
	case ownBucket[op]:
		return op
	case unfiltered && unfilteredSet[op]:
		return classReadUnfiltered
	case strings.HasPrefix(op, "Describe"), strings.HasPrefix(op, "List"),
		strings.HasPrefix(op, "Get"), strings.HasPrefix(op, "Search"):
		return classRead
	}
	return classMutate // an unknown action takes the smaller bucket
}

// unfilteredSet are the actions whose unfiltered, unpaginated calls draw on
// the smaller bucket.
var unfilteredSet = map[string]bool{
	"DescribeInstances": true, "DescribeInstanceStatus": true, "DescribeNetworkInterfaces": true,
	"DescribeSecurityGroups": true, "DescribeSnapshots": true, "DescribeSpotInstanceRequests": true,
	"DescribeVolumes": true,
}

// unfilteredKey marks, among a call's stack values, a call of the
// unfiltered set with neither a filter nor pagination.
type unfilteredKey struct{}

const classMiddlewareID = "spuff.rateClass"

// addClassMiddleware adds to a call's stack the middleware that reads its
// input for requestClass (once, whether the client or the call adds it).
func addClassMiddleware(stack *middleware.Stack) error {
	if _, ok := stack.Initialize.Get(classMiddlewareID); ok {
		return nil
	}
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc(classMiddlewareID,
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if unfilteredCall(in.Parameters) {
				ctx = middleware.WithStackValue(ctx, unfilteredKey{}, true)
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// unfilteredCall reports whether in is the input of a call of the
// unfiltered set with neither a filter nor pagination.
func unfilteredCall(in any) bool {
	switch v := in.(type) {
	case *ec2.DescribeInstancesInput:
		return len(v.Filters) == 0 && v.MaxResults == nil && v.NextToken == nil
	case *ec2.DescribeInstanceStatusInput:
		return len(v.Filters) == 0 && v.MaxResults == nil && v.NextToken == nil
	case *ec2.DescribeNetworkInterfacesInput:
		return len(v.Filters) == 0 && v.MaxResults == nil && v.NextToken == nil
	case *ec2.DescribeSecurityGroupsInput:
		return len(v.Filters) == 0 && v.MaxResults == nil && v.NextToken == nil
	case *ec2.DescribeSnapshotsInput:
		return len(v.Filters) == 0 && v.MaxResults == nil && v.NextToken == nil
	case *ec2.DescribeSpotInstanceRequestsInput:
		return len(v.Filters) == 0 && v.MaxResults == nil && v.NextToken == nil
	case *ec2.DescribeVolumesInput:
		return len(v.Filters) == 0 && v.MaxResults == nil && v.NextToken == nil
	}
	return false
}
