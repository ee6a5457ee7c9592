package hetzner

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider/driver"
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
	"description": "name",
}

// classify turns the error of an hcloud-go call into a *driver.Error: by
// Hetzner's error code where the answer has one, else by HTTP status. A
// request that got no answer is returned as it is.
func classify(resp *hcloud.Response, err error) error {
	if err == nil {
		return nil
	}
	var hcErr hcloud.Error
	if errors.As(err, &hcErr) {
		if resp == nil {
			resp = hcErr.Response()
		}
		status, header := answer(resp)
		// hcloud.Error's text is the message and code: not repeated.
		e := &driver.Error{Kind: kindOf(hcErr, status), Status: status, Code: string(hcErr.Code), Err: err}
		switch hcErr.Code {
		case hcloud.ErrorCodeRateLimitExceeded:
			e.RetryAfter = retryAfter(header, time.Now())
		case hcloud.ErrorCodeInvalidInput, hcloud.ErrorCodeJSONError, hcloud.ErrorCodeUniquenessError:
			e.Field = field(hcErr.Details)
		case hcloud.ErrorCodeConflict, hcloud.ErrorCodeLocked, hcloud.ErrorCodeRobotUnavailable:
			// Refused without being done; hcloud-go documents them as
			// "retry".
			e.Retry = true
		}
		return e
	}
	status, header := answer(resp)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case status >= 400:
		// An error status without Hetzner's error body (a proxy's page),
		// or with one that does not parse.
		return driver.FromStatus(status, header, "", err)
	case errors.As(err, &syntax) || errors.As(err, &typ):
		// A success whose body does not parse is as good as lost: the
		// change may have been made.
		return driver.Lost("unreadable API answer", err)
	}
	return err
}

// answer returns the status and headers of resp, if it has an answer.
func answer(resp *hcloud.Response) (int, http.Header) {
	if resp == nil || resp.Response == nil {
		return 0, nil
	}
	return resp.StatusCode, resp.Header
}

// kindOf maps Hetzner's error code (then the HTTP status) to a Kind.
func kindOf(e hcloud.Error, status int) driver.Kind {
	switch e.Code {
	case hcloud.ErrorCodeUnauthorized, hcloud.ErrorCodeForbidden:
		return driver.KindAuthentication
	case hcloud.ErrorCodeNotFound:
		return driver.KindNotFound
	case hcloud.ErrorCodeRateLimitExceeded:
		return driver.KindRateLimit
	case hcloud.ErrorCodeResourceLimitExceeded:
		return driver.KindQuotaExceeded
	case hcloud.ErrorCodeInvalidInput, hcloud.ErrorCodeJSONError:
		return driver.KindInvalidConfig
	case hcloud.ErrorCodeUniquenessError:
		return driver.KindConflict
	case hcloud.ErrorCodeResourceUnavailable, hcloud.ErrorCodePlacementError:
		// "server location disabled", "error during placement": no room
		// for this server type here now.
		return driver.KindCapacity
	case hcloud.ErrorUnsupportedError:
		return driver.KindNotSupported
	case hcloud.ErrorCodeConflict, hcloud.ErrorCodeLocked, hcloud.ErrorCodeProtected,
		hcloud.ErrorCodeMaintenance, hcloud.ErrorCodeResourceLocked:
		return driver.KindAPI // some of them 403s, which are not about credentials
	}
	if strings.Contains(strings.ToLower(e.Message), "location disabled") {
		return driver.KindCapacity
	}
	if k := driver.KindForStatus(status); k != driver.KindUnknown {
		return k
	}
	return driver.KindAPI
}

// field names the request field of an invalid_input error's details, or "".
func field(details any) string {
	d, ok := details.(hcloud.ErrorDetailsInvalidInput)
	if !ok || len(d.Fields) == 0 {
		return ""
	}
	if f := fieldNames[d.Fields[0].Name]; f != "" {
		return f
	}
	return d.Fields[0].Name
}

// retryAfter is how long a 429 asks to wait: Retry-After when the answer
// has one (Hetzner's do not), else, when RateLimit-Remaining is 0, the
// time the bucket takes to return one request — RateLimit-Reset is when
// it is full again, and it refills evenly (Hetzner returns one request a
// second).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if d := driver.ParseRetryAfter(h.Get("Retry-After"), now); d > 0 {
		return d
	}
	if h.Get("RateLimit-Remaining") != "0" {
		return 0 // budget is left: a 429 for another reason, which the pacer sees
	}
	reset, err := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64)
	if err != nil {
		return 0
	}
	d := time.Unix(reset, 0).Sub(now)
	if d <= 0 {
		return 0
	}
	if limit, err := strconv.Atoi(h.Get("RateLimit-Limit")); err == nil && limit > 0 {
		d /= time.Duration(limit)
	}
	return min(max(d, 10*time.Millisecond), time.Minute)
}
