package hetzner

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider/driver"
)

func TestSelector(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{"managed-by": "spuff"}, "managed-by==spuff"},
		{map[string]string{"spuff-key": "k1", "managed-by": "spuff"}, "managed-by==spuff,spuff-key==k1"},
		{map[string]string{"flag": ""}, "flag"},
	} {
		if got := selector(tc.labels); got != tc.want {
			t.Errorf("selector(%v) = %q, want %q", tc.labels, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := func(limit, remaining string, reset time.Duration) http.Header {
		return http.Header{"Ratelimit-Limit": {limit}, "Ratelimit-Remaining": {remaining}, "Ratelimit-Reset": {strconv.FormatInt(now.Add(reset).Unix(), 10)}}
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"empty bucket, an hour to full", h("3600", "0", time.Hour), time.Second},
		{"empty bucket of 100, 50 s to full", h("100", "0", 50*time.Second), 500 * time.Millisecond},
		{"budget left", h("3600", "12", time.Minute), 0},
		{"reset past", h("3600", "0", -time.Second), 0},
		{"no limit header", http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {strconv.FormatInt(now.Add(5*time.Second).Unix(), 10)}}, 5 * time.Second},
		{"Retry-After wins", http.Header{"Retry-After": {"3"}, "Ratelimit-Remaining": {"0"}}, 3 * time.Second},
		{"no headers", nil, 0},
	} {
		if got := retryAfter(tc.h, now); got != tc.want {
			t.Errorf("%s: retryAfter = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStates(t *testing.T) {
	for s, want := range map[hcloud.ServerStatus]driver.State{
		"running": driver.StateRunning, "initializing": driver.StatePending, "starting": driver.StatePending,
		"rebuilding": driver.StatePending, "migrating": driver.StatePending, "off": driver.StateOff,
		"stopping": driver.StateOff, "deleting": driver.StateDestroying, "unknown": driver.StateUnknown,
	} {
		if got := state(s); got != want {
			t.Errorf("state(%s) = %v, want %v", s, got, want)
		}
	}
	for st, want := range map[hcloud.ImageStatus]driver.SnapshotState{
		"available": driver.SnapshotAvailable, "creating": driver.SnapshotPending, "unavailable": driver.SnapshotFailed, "": driver.SnapshotPending,
	} {
		s := snapshotOf(&hcloud.Image{ID: 7, Status: st})
		if s.State != want || s.Labels == nil {
			t.Errorf("snapshot of an image %q: state %v, labels %v; want %v and non-nil labels", st, s.State, s.Labels, want)
		}
	}
}

func TestClassifyCodes(t *testing.T) {
	for _, tc := range []struct {
		code   hcloud.ErrorCode
		status int
		want   driver.Kind
	}{
		{"unauthorized", 401, driver.KindAuthentication},
		{"forbidden", 403, driver.KindAuthentication},
		{"not_found", 404, driver.KindNotFound},
		{"rate_limit_exceeded", 429, driver.KindRateLimit},
		{"resource_limit_exceeded", 403, driver.KindQuotaExceeded},
		{"invalid_input", 400, driver.KindInvalidConfig},
		{"uniqueness_error", 409, driver.KindConflict},
		{"conflict", 409, driver.KindAPI},
		{"locked", 423, driver.KindAPI},
		{"resource_unavailable", 412, driver.KindCapacity},
		{"placement_error", 412, driver.KindCapacity},
		{"protected", 403, driver.KindAPI}, // delete protection, not credentials
		{"server_error", 500, driver.KindAPI},
		{"some_new_code", 422, driver.KindInvalidConfig}, // by status
	} {
		if got := kindOf(hcloud.Error{Code: tc.code}, tc.status); got != tc.want {
			t.Errorf("kindOf(%s, %d) = %v, want %v", tc.code, tc.status, got, tc.want)
		}
	}
}
