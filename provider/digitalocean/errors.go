package digitalocean

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/provider/driver"
)

// classify turns a godo error into a *driver.Error. godo does not parse
// the "id" of DigitalOcean's error bodies, so the kind comes from the HTTP
// status, refined by the message where DigitalOcean words a quota or a
// capacity shortage as a 422, and the field the message names. A request
// that got no answer is returned as it is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		status := er.Response.StatusCode
		// godo's text repeats the message after the request's URL.
		e := driver.FromStatus(status, er.Response.Header, er.Message, driver.Quiet(err))
		switch {
		case (status == http.StatusUnprocessableEntity || status == http.StatusForbidden) && isQuota(er.Message):
			e.Kind = driver.KindQuotaExceeded
		case status == http.StatusUnprocessableEntity && isCapacity(er.Message):
			e.Kind, e.Field = driver.KindCapacity, "Size"
			if strings.HasPrefix(strings.ToLower(er.Message), "region") {
				e.Field = "Region"
			}
		case e.Kind == driver.KindInvalidConfig:
			e.Field = fieldOf(er.Message)
		case status == http.StatusTooManyRequests:
			e.RetryAfter = retryAfter(er.Response.Header, time.Now())
		}
		return e
	}
	var arg *godo.ArgError
	if errors.As(err, &arg) {
		return &driver.Error{Kind: driver.KindInvalidConfig, Message: arg.Error(), Err: err}
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) {
		return driver.Lost("unreadable API answer", err) // garbled on its way: as good as lost
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return err
}

// isQuota reports whether a 422 or 403 message tells of an account limit
// ("creating this/these droplet(s) will exceed your droplet limit").
func isQuota(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "limit") && (strings.Contains(m, "exceed") || strings.Contains(m, "reached"))
}

// isCapacity reports whether a 422 message tells of a size the region
// cannot give now ("Size is not available in this region"), or of a
// region that takes no droplets now ("Region is not available").
func isCapacity(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "not available in this region") || strings.Contains(m, "unavailable in this region") ||
		strings.Contains(m, "insufficient capacity") || strings.HasPrefix(m, "region is not available")
}

// fieldOf names the request field a 422 message is about, or "".
func fieldOf(msg string) string {
	m := strings.ToLower(msg)
	for _, f := range []struct{ word, field string }{
		{"ssh key", "SSHKeys"}, {"ssh_keys", "SSHKeys"}, {"user data", "UserData"}, {"user_data", "UserData"},
		{"size", "Size"}, {"region", "Region"}, {"image", "Image"}, {"tag", "Labels"}, {"name", "Name"},
	} {
		if strings.Contains(m, f.word) {
			return f.field
		}
	}
	return ""
}

// retryAfter is how long a 429 asks to wait: Retry-After, else, when no
// request is left, the time to RateLimit-Reset (Unix seconds).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d := driver.ParseRetryAfter(h.Get("Retry-After"), now); d > 0 {
		return d
	}
	if h.Get("RateLimit-Remaining") != "0" {
		return 0
	}
	reset, err := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64)
	if err != nil {
		return 0
	}
	if d := time.Unix(reset, 0).Sub(now); d > 0 && d <= time.Hour {
		return d
	}
	return 0
}

// status returns the HTTP status of a classified error, or 0.
func status(err error) int {
	var e *driver.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}
