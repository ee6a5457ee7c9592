package hetzner

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider"
)

// fieldNames maps the API's request fields to InstanceRequest's.
var fieldNames = map[string]string{
	"name":        "Name",
	"server_type": "Size",
	"location":    "Region",
	"datacenter":  "Region",
	"image":       "Image",
	"user_data":   "UserData",
	"labels":      "Labels",
	"ssh_keys":    "SSHKeys",
}

// classify turns an error of an hcloud-go call into a *provider.Error. The
// Hetzner error code decides the kind where there is one; then the HTTP
// status; then the transport error.
func classify(op string, resp *hcloud.Response, err error) error {
	if err == nil {
		return nil
	}
	var status int
	var header http.Header
	if resp != nil && resp.Response != nil {
		status, header = resp.StatusCode, resp.Header
	}
	var perr *provider.Error
	if errors.As(err, &perr) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return provider.Classify(Name, op, 0, nil, err)
	}
	var hcErr hcloud.Error
	if errors.As(err, &hcErr) {
		// The message is the wrapped hcloud.Error's: not repeated here.
		e := &provider.Error{Provider: Name, Op: op, Status: status, Code: string(hcErr.Code), Err: err}
		switch hcErr.Code {
		case hcloud.ErrorCodeUnauthorized, hcloud.ErrorCodeForbidden:
			e.Kind = provider.KindAuthentication
		case hcloud.ErrorCodeNotFound:
			e.Kind = provider.KindNotFound
		case hcloud.ErrorCodeRateLimitExceeded:
			e.Kind = provider.KindRateLimit
			e.RetryAfter = retryAfter(header, time.Now())
		case hcloud.ErrorCodeResourceLimitExceeded:
			e.Kind = provider.KindQuotaExceeded
		case hcloud.ErrorCodeInvalidInput, hcloud.ErrorCodeJSONError, hcloud.ErrorCodeUniquenessError:
			e.Kind = provider.KindInvalidConfig
			if d, ok := hcErr.Details.(hcloud.ErrorDetailsInvalidInput); ok && len(d.Fields) > 0 {
				e.Field = fieldNames[d.Fields[0].Name]
				if e.Field == "" {
					e.Field = d.Fields[0].Name
				}
			}
		default:
			e.Kind = provider.KindForStatus(status)
			if e.Kind == provider.KindUnknown {
				e.Kind = provider.KindAPI
			}
		}
		return e
	}
	if errors.Is(err, hcloud.ErrStatusCode) && status != 0 {
		// An error status without a JSON error body (a proxy's page).
		return provider.Classify(Name, op, status, header, err)
	}
	var tooLarge *provider.BodyTooLargeError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return &provider.Error{Kind: provider.KindNetwork, Provider: Name, Op: op, Status: status, Message: "response body too large", Err: err}
	case status != 0 && (errors.As(err, &syntax) || errors.As(err, &typ)):
		// An answer that does not parse is as good as lost: the call may
		// have been made (a create, a snapshot), and a call that is safe
		// to repeat may be retried.
		return &provider.Error{Kind: provider.KindNetwork, Provider: Name, Op: op, Status: status,
			Message: "malformed response body", Err: err}
	}
	return provider.Classify(Name, op, 0, nil, err)
}

// retryAfter is how long to wait after a 429: the Retry-After header when
// the answer has one (Hetzner's does not), else the time the bucket takes to
// return one request, derived from RateLimit-Limit, -Remaining and -Reset
// (Hetzner returns one request a second).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if d := provider.ParseRetryAfter(h.Get("Retry-After"), now); d > 0 {
		return d
	}
	limit, err1 := strconv.Atoi(h.Get("RateLimit-Limit"))
	rem, err2 := strconv.Atoi(h.Get("RateLimit-Remaining"))
	reset, err3 := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || limit <= rem {
		return 0
	}
	untilFull := time.Unix(reset, 0).Sub(now)
	if untilFull <= 0 {
		return 0
	}
	d := untilFull / time.Duration(limit-rem)
	return min(max(d, 10*time.Millisecond), time.Minute)
}

// notFound is the error of a missing instance or snapshot.
func notFound(op, resource, id string) error {
	return &provider.Error{Kind: provider.KindNotFound, Provider: Name, Op: op, Resource: resource, ID: id,
		Message: resource + " does not exist"}
}
