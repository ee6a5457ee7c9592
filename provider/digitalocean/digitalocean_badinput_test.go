package digitalocean_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/digitalocean"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// badRequests are invalid requests and the field each error must name.
// Every one is refused before any API call.
func badRequests() []struct {
	name  string
	edit  func(*provider.InstanceRequest)
	field string
} {
	manyLabels := map[string]string{}
	for i := range provider.MaxLabels + 1 {
		manyLabels[fmt.Sprintf("k%d", i)] = "v"
	}
	return []struct {
		name  string
		edit  func(*provider.InstanceRequest)
		field string
	}{
		{"zero request", func(r *provider.InstanceRequest) { *r = provider.InstanceRequest{} }, "Name"},
		{"empty name", func(r *provider.InstanceRequest) { r.Name = "" }, "Name"},
		{"name too long", func(r *provider.InstanceRequest) { r.Name = strings.Repeat("a", 64) }, "Name"},
		{"name with underscore", func(r *provider.InstanceRequest) { r.Name = "dev_box" }, "Name"},
		{"name with space", func(r *provider.InstanceRequest) { r.Name = "dev box" }, "Name"},
		{"name starting with a dash", func(r *provider.InstanceRequest) { r.Name = "-dev" }, "Name"},
		{"name ending with a dot", func(r *provider.InstanceRequest) { r.Name = "dev." }, "Name"},
		{"name not ASCII", func(r *provider.InstanceRequest) { r.Name = "dév" }, "Name"},
		{"empty region", func(r *provider.InstanceRequest) { r.Region = "" }, "Region"},
		{"region with a slash", func(r *provider.InstanceRequest) { r.Region = "nyc3/x" }, "Region"},
		{"empty size", func(r *provider.InstanceRequest) { r.Size = "" }, "Size"},
		{"size too long", func(r *provider.InstanceRequest) { r.Size = strings.Repeat("s", 65) }, "Size"},
		{"no image", func(r *provider.InstanceRequest) { r.Image = provider.ImageSpec{} }, "Image"},
		{"unknown image kind", func(r *provider.InstanceRequest) { r.Image = provider.ImageSpec{Kind: 42, Value: "x"} }, "Image"},
		{"ubuntu not a version", func(r *provider.InstanceRequest) { r.Image = provider.Ubuntu("latest") }, "Image"},
		{"debian empty", func(r *provider.InstanceRequest) { r.Image = provider.Debian("") }, "Image"},
		{"custom with a space", func(r *provider.InstanceRequest) { r.Image = provider.CustomImage("my image") }, "Image"},
		{"label key empty", func(r *provider.InstanceRequest) { r.Labels = map[string]string{"": "v"} }, `Labels[""]`},
		{"label key with a space", func(r *provider.InstanceRequest) { r.Labels = map[string]string{"a b": "v"} }, `Labels["a b"]`},
		{"label key too long", func(r *provider.InstanceRequest) { r.Labels = map[string]string{strings.Repeat("k", 64): "v"} }, fmt.Sprintf("Labels[%q]", strings.Repeat("k", 64))},
		{"label value with a colon", func(r *provider.InstanceRequest) { r.Labels = map[string]string{"env": "a:b"} }, `Labels["env"]`},
		{"label value too long", func(r *provider.InstanceRequest) { r.Labels = map[string]string{"env": strings.Repeat("v", 64)} }, `Labels["env"]`},
		{"ownership label", func(r *provider.InstanceRequest) { r.Labels = map[string]string{provider.OwnerLabel: "me"} }, `Labels["managed-by"]`},
		{"too many labels", func(r *provider.InstanceRequest) { r.Labels = manyLabels }, "Labels"},
		{"empty SSH key", func(r *provider.InstanceRequest) { r.SSHKeys = []string{""} }, "SSHKeys[0]"},
		{"SSH key twice", func(r *provider.InstanceRequest) { r.SSHKeys = []string{"123", "123"} }, "SSHKeys[1]"},
		{"SSH key with a newline", func(r *provider.InstanceRequest) { r.SSHKeys = []string{"a\nb"} }, "SSHKeys[0]"},
		// DigitalOcean's own rules.
		{"user data over 64 KiB", func(r *provider.InstanceRequest) { r.UserData = strings.Repeat("x", digitalocean.MaxUserDataBytes+1) }, "UserData"},
		{"user data not UTF-8", func(r *provider.InstanceRequest) { r.UserData = "#!/bin/sh\n\xff\xfe" }, "UserData"},
		{"snapshot ID not a number", func(r *provider.InstanceRequest) { r.Image = provider.SnapshotImage("snap-1") }, "Image"},
	}
}

// TestBadInputMakesNoCall: every invalid request gives an invalid-config
// error naming the field, made before any API call; so do malformed IDs
// and snapshot names.
func TestBadInputMakesNoCall(t *testing.T) {
	t.Parallel()
	srv := dosim.Start(t, simcloud.Options{})
	p, err := digitalocean.Open(context.Background(), fast(config(srv)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range badRequests() {
		req := request("valid-1")
		c.edit(&req)
		inst, err := p.CreateInstance(ctx, req)
		var perr *provider.Error
		switch {
		case inst != nil:
			t.Errorf("%s: CreateInstance returned %v", c.name, inst)
		case !errors.Is(err, provider.ErrInvalidConfig) || !errors.As(err, &perr):
			t.Errorf("%s: %v, want an invalid-config *provider.Error", c.name, err)
		case perr.Field != c.field || perr.Provider != digitalocean.Name || perr.Op != "CreateInstance":
			t.Errorf("%s: field %q, provider %q, op %q; want field %q of digitalocean's CreateInstance (%v)", c.name, perr.Field, perr.Provider, perr.Op, c.field, err)
		}
	}
	for _, id := range []string{"", "0", "-1", "abc", "1.5", "12345678901234567890"} {
		if err := p.DestroyInstance(ctx, id); !errors.Is(err, provider.ErrInvalidConfig) {
			t.Errorf("DestroyInstance(%q): %v, want ErrInvalidConfig", id, err)
		}
		if err := p.DeleteSnapshot(ctx, id); !errors.Is(err, provider.ErrInvalidConfig) {
			t.Errorf("DeleteSnapshot(%q): %v, want ErrInvalidConfig", id, err)
		}
		if _, err := p.CreateSnapshot(ctx, id, "snap"); !errors.Is(err, provider.ErrInvalidConfig) {
			t.Errorf("CreateSnapshot(%q): %v, want ErrInvalidConfig", id, err)
		}
		if _, err := p.GetInstance(ctx, id); !errors.Is(err, provider.ErrNotFound) {
			t.Errorf("GetInstance(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := p.WaitReady(ctx, id); !errors.Is(err, provider.ErrNotFound) {
			t.Errorf("WaitReady(%q): %v, want ErrNotFound", id, err)
		}
	}
	if n := srv.Cloud.TotalCalls(); n != 0 {
		t.Errorf("invalid requests made %d API calls, want 0: %v", n, srv.Cloud.Stats().Calls)
	}
}

// noNetwork is a transport that counts the requests a test made and
// fails them all: a fuzz test needs no network.
type noNetwork struct{ n atomic.Int64 }

func (nn *noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	nn.n.Add(1)
	return nil, errors.New("no network in this test")
}

// FuzzCreateInstance feeds CreateInstance arbitrary requests, with no
// network: it must never panic, and a request it refuses before any call
// is refused with an invalid-config error naming a field.
func FuzzCreateInstance(f *testing.F) {
	f.Add("dev-1", "nyc3", "s-1vcpu-1gb", "ubuntu:24.04", "#cloud-config\n", "env", "dev", "123")
	f.Add("", "", "", "", "", "", "", "")
	f.Add("dev_box", "nyc3", "s-1vcpu-1gb", "snapshot:abc", "\xff", "managed-by", "x", "")
	f.Add("a.b.c", "sfo3", "c-2", "custom:fedora-40-x64", strings.Repeat("u", 70000), "a b", "", "3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa")
	f.Add("x", "r", "s", "debian:12.", "", "k", "v:w", "laptop")
	nn := &noNetwork{}
	p, err := digitalocean.Open(context.Background(), provider.Config{
		Token: "fuzz", Endpoint: "http://no-network.invalid", HTTPClient: &http.Client{Transport: nn},
		Retry: provider.RetryPolicy{MaxAttempts: 1}, Pacer: provider.NewPacer(),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, region, size, image, userData, labelKey, labelValue, sshKey string) {
		spec, _ := provider.ParseImageSpec(image)
		req := provider.InstanceRequest{
			Name: name, Region: region, Size: size, Image: spec, UserData: userData,
			Labels: map[string]string{labelKey: labelValue}, SSHKeys: []string{sshKey},
		}
		before := nn.n.Load()
		inst, err := p.CreateInstance(context.Background(), req)
		calls := nn.n.Load() - before
		if inst != nil || err == nil {
			t.Fatalf("CreateInstance with no network returned %v, %v", inst, err)
		}
		var perr *provider.Error
		if !errors.As(err, &perr) {
			t.Fatalf("CreateInstance error %T %v is not a *provider.Error", err, err)
		}
		if calls == 0 && (perr.Kind != provider.KindInvalidConfig || perr.Field == "") {
			t.Fatalf("refused before any call with %v (kind %s, field %q), want invalid config naming a field", err, perr.Kind, perr.Field)
		}
		if calls > 0 && req.Validate() != nil {
			t.Fatalf("a request that fails Validate (%v) made %d calls", req.Validate(), calls)
		}
		if userData != "" && len(userData) > 8 && strings.Contains(err.Error(), userData) {
			t.Fatalf("the error quotes the user data: %v", err)
		}
	})
}
