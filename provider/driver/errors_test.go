package driver_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider/driver"
)

func TestKindForStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   driver.Kind
	}{
		{0, driver.KindUnknown},
		{200, driver.KindUnknown},
		{204, driver.KindUnknown},
		{301, driver.KindUnknown},
		{400, driver.KindInvalidConfig},
		{401, driver.KindAuthentication},
		{403, driver.KindAuthentication},
		{404, driver.KindNotFound},
		{409, driver.KindAPI},
		{422, driver.KindInvalidConfig},
		{429, driver.KindRateLimit},
		{500, driver.KindAPI},
		{502, driver.KindAPI},
		{503, driver.KindAPI},
		{599, driver.KindAPI},
	}
	for _, tt := range tests {
		if got := driver.KindForStatus(tt.status); got != tt.want {
			t.Errorf("KindForStatus(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"   ", 0},
		{"5", 5 * time.Second},
		{" 5 ", 5 * time.Second},
		{"120", 2 * time.Minute},
		{"1.5", 1500 * time.Millisecond},
		{"0.25", 250 * time.Millisecond},
		{"0", 0},
		{"-3", 0},
		{"86400", 24 * time.Hour},
		{"86401", 0},
		{"1e30", 0},
		{"NaN", 0},
		{"nan", 0},
		{"Inf", 0},
		{"-Inf", 0},
		{"soon", 0},
		{"5s", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(2 * time.Hour).Format(http.TimeFormat), 2 * time.Hour},
		{now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Format(http.TimeFormat), 0},
		{"Sun, 99 Jun 2025 12:00:00 GMT", 0},
	}
	for _, tt := range tests {
		if got := driver.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestAccountKeyHidesCredential(t *testing.T) {
	t.Parallel()
	const cred = "dop_v1_VERYSECRET"
	k := driver.AccountKey("https://api.digitalocean.com", cred)
	if strings.Contains(k, cred) || strings.Contains(k, "VERYSECRET") {
		t.Errorf("AccountKey %q contains the credential", k)
	}
	if k == driver.AccountKey("https://api.digitalocean.com", cred+"x") {
		t.Error("different credentials give the same key")
	}
	if k != driver.AccountKey("https://api.digitalocean.com", cred) {
		t.Error("AccountKey is not deterministic")
	}
}

func TestQuietAddsNothingToText(t *testing.T) {
	t.Parallel()
	sdk := &sdkErr{"POST http://127.0.0.1:4242/v2/droplets: 422 size is not available"}
	e := &driver.Error{Kind: driver.KindInvalidConfig, Status: 422, Message: "size is not available", Err: driver.Quiet(sdk)}
	if got := e.Error(); strings.Contains(got, "127.0.0.1") || strings.Count(got, "size is not available") != 1 {
		t.Errorf("Error() = %q, want the message once and no URL", got)
	}
	var pe *sdkErr
	if !errorsAs(e, &pe) {
		t.Error("the SDK error is not reachable")
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// sdkErr stands in for an SDK's error, whose text repeats the message
// after the request's URL (as godo's does).
type sdkErr struct{ text string }

func (e *sdkErr) Error() string { return e.text }
