package digitalocean

import (
	"errors"
	"github.com/digitalocean/godo"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
)

func TestImageSlugs(t *testing.T) {
	for _, tc := range []struct {
		spec       provider.ImageSpec
		slug       string
		id         int
		wantErrMsg bool
	}{
		{spec: provider.Ubuntu("24.04"), slug: "ubuntu-24-04-x64"},
		{spec: provider.Ubuntu("22.04"), slug: "ubuntu-22-04-x64"},
		{spec: provider.Debian("12"), slug: "debian-12-x64"},
		{spec: provider.CustomImage("rockylinux-9-x64"), slug: "rockylinux-9-x64"},
		{spec: provider.CustomImage("123456"), id: 123456},
		{spec: provider.SnapshotImage("98765"), id: 98765},
		{spec: provider.SnapshotImage("ami-0abc"), wantErrMsg: true},
	} {
		got, err := image(driver.Image{Kind: tc.spec.Kind.String(), Value: tc.spec.Value})
		if tc.wantErrMsg {
			if err == nil {
				t.Errorf("%s: no error", tc.spec)
			}
			continue
		}
		if err != nil || got.Slug != tc.slug || got.ID != tc.id {
			t.Errorf("%s = %+v, %v; want slug %q id %d", tc.spec, got, err, tc.slug, tc.id)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	h.Set("Retry-After", "3")
	if d := retryAfter(h, now); d != 3*time.Second {
		t.Errorf("Retry-After 3: %v", d)
	}
	h = http.Header{}
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", strconv.FormatInt(now.Unix()+42, 10))
	if d := retryAfter(h, now); d != 42*time.Second {
		t.Errorf("no request left, reset in 42s: %v", d)
	}
	h.Set("RateLimit-Remaining", "17")
	if d := retryAfter(h, now); d != 0 {
		t.Errorf("requests left: %v, want 0 (the per-minute window said no)", d)
	}
}

func TestQuotaWording(t *testing.T) {
	for msg, want := range map[string]bool{
		"creating this/these droplet(s) will exceed your droplet limit": true,
		"You have reached the snapshot limit for your account":          true,
		"Region is not available":                                       false,
		"limit must be a number":                                        false,
	} {
		if got := isQuota(msg); got != want {
			t.Errorf("isQuota(%q) = %v", msg, got)
		}
	}
}

func TestTagsLabels(t *testing.T) {
	tags := tags(map[string]string{"managed-by": "spuff", "env": "prod", "flag": ""})
	if len(tags) != 3 || tags[0] != "env:prod" || tags[1] != "flag" || tags[2] != "managed-by:spuff" {
		t.Errorf("tags = %v", tags)
	}
	l := labels(tags)
	if len(l) != 3 || l["env"] != "prod" || l["flag"] != "" || l["managed-by"] != "spuff" {
		t.Errorf("labels = %v", l)
	}
	if !isFingerprint("3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45") || isFingerprint("laptop") || isFingerprint("a:b") {
		t.Errorf("isFingerprint")
	}
}

func TestSnapshotNameMarker(t *testing.T) {
	ls := map[string]string{"managed-by": "spuff", "spuff-key": "0123abcd"}
	name, got := unmarked(marked("nightly build", ls))
	if name != "nightly build" || len(got) != 2 || got["managed-by"] != "spuff" || got["spuff-key"] != "0123abcd" {
		t.Errorf("unmarked(marked) = %q, %v", name, got)
	}
	if name, got := unmarked("plain [name]"); name != "plain [name]" || got != nil {
		t.Errorf("unmarked(plain) = %q, %v", name, got)
	}
}

func TestSelectiveTag(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"managed-by": "spuff", "spuff-key": "k1"}, "spuff-key:k1"},
		{map[string]string{"managed-by": "spuff"}, "managed-by:spuff"},
		{nil, ""},
	} {
		if got := selectiveTag(tc.labels); got != tc.want {
			t.Errorf("selectiveTag(%v) = %q, want %q", tc.labels, got, tc.want)
		}
	}
}

// A DigitalOcean 422 names the field its message is about, and its text
// says the message once, without godo's request URL.
func TestUnprocessableNamesTheField(t *testing.T) {
	for msg, field := range map[string]string{
		"You specified an invalid size for Droplet creation.":  "Size",
		"Region is not available":                              "Region",
		"You specified an invalid image for Droplet creation.": "Image",
		"ssh_keys: you specified an invalid SSH key ID":        "SSHKeys",
		"Something else went wrong":                            "",
	} {
		u, _ := url.Parse("http://127.0.0.1:41234/v2/droplets")
		er := &godo.ErrorResponse{Response: &http.Response{StatusCode: 422, Request: &http.Request{Method: "POST", URL: u}}, Message: msg}
		err := classify(er)
		var de *driver.Error
		if !errors.As(err, &de) || de.Field != field {
			t.Errorf("%q: field %q, want %q", msg, de.Field, field)
		}
		if text := err.Error(); strings.Contains(text, "127.0.0.1") || strings.Count(text, msg) != 1 {
			t.Errorf("%q: text %q, want the message once and no URL", msg, text)
		}
		var got *godo.ErrorResponse
		if !errors.As(err, &got) {
			t.Errorf("%q: the godo error is not reachable", msg)
		}
	}
}
