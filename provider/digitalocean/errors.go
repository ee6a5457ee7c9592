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

	"github.com/spuffgo/spuff/provider"
)

// classify turns a godo error into a *provider.Error. godo does not parse
// the "id" of DigitalOcean's error bodies, so the kind comes from the HTTP
// status, refined by the message where DigitalOcean words a quota as a 422
// (or a 403).
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var perr *provider.Error
	if errors.As(err, &perr) {
		return provider.Classify(Name, op, 0, nil, err)
	}
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		status := er.Response.StatusCode
		e := &provider.Error{Kind: provider.KindForStatus(status), Provider: Name, Op: op, Status: status, Message: er.Message, Err: err}
		if e.Kind == provider.KindUnknown {
			e.Kind = provider.KindAPI // an unexpected redirect
		}
		switch {
		case (status == http.StatusUnprocessableEntity || status == http.StatusForbidden) && isQuota(er.Message):
			e.Kind = provider.KindQuotaExceeded
		case status == http.StatusTooManyRequests:
			e.RetryAfter = retryAfter(er.Response.Header, time.Now())
		}
		return e
	}
	var arg *godo.ArgError
	if errors.As(err, &arg) {
		return &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Message: arg.Error(), Err: err}
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooLarge *provider.BodyTooLargeError
	if errors.As(err, &syn) || errors.As(err, &typ) || errors.As(err, &tooLarge) {
		// The answer was garbled on its way: as good as lost.
		return &provider.Error{Kind: provider.KindNetwork, Provider: Name, Op: op, Message: "unreadable API answer", Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return provider.Classify(Name, op, 0, nil, err)
	}
	return provider.Classify(Name, op, 0, nil, err)
}

// isQuota reports whether a 422 or 403 message tells of an account limit
// ("creating this/these droplet(s) will exceed your droplet limit").
func isQuota(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "limit") && (strings.Contains(m, "exceed") || strings.Contains(m, "reached"))
}

// retryAfter is how long a 429 asks to wait: Retry-After, else, when no
// request is left, the time to RateLimit-Reset (Unix seconds).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d := provider.ParseRetryAfter(h.Get("Retry-After"), now); d > 0 {
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
	var e *provider.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// emptyAnswer is the error of a success answer that lacks the resource it
// should carry (an empty body, or an error body with a 2xx status): as
// good as lost, so a call that made something counts as one whose outcome
// is unknown.
func emptyAnswer(op, what string) error {
	return &provider.Error{Kind: provider.KindNetwork, Provider: Name, Op: op, Message: "the API answer has no " + what}
}
