package digitalocean_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/digitalocean"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/dosim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// badRequests are the invalid requests of this cloud's own rules, which
// the conformance suite checks next to providertest.CommonBadRequests: each
// is refused before any API call, naming its field.
func badRequests() []providertest.BadRequest {
	return []providertest.BadRequest{
		{Name: "user data over 64 KiB", Edit: func(r *provider.InstanceRequest) { r.UserData = strings.Repeat("x", digitalocean.MaxUserDataBytes+1) }, Field: "UserData"},
		{Name: "user data not UTF-8", Edit: func(r *provider.InstanceRequest) { r.UserData = "#!/bin/sh\n\xff\xfe" }, Field: "UserData"},
		{Name: "snapshot ID not a number", Edit: func(r *provider.InstanceRequest) { r.Image = provider.SnapshotImage("snap-1") }, Field: "Image"},
	}
}

// TestBadInputMakesNoCall: malformed IDs and snapshot names give an
// invalid-config error before any API call (invalid requests are the
// conformance suite's: see badRequests).
func TestBadInputMakesNoCall(t *testing.T) {
	t.Parallel()
	srv := dosim.Start(t, simcloud.Options{})
	p, err := digitalocean.Open(context.Background(), fast(config(srv)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
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

// FuzzCreateInstance feeds CreateInstance arbitrary requests, with no
// network (see providertest.FuzzCreateInstance).
func FuzzCreateInstance(f *testing.F) {
	f.Add("dev-1", "nyc3", "s-1vcpu-1gb", "ubuntu:24.04", "#cloud-config\n", "env", "dev", "123")
	f.Add("", "", "", "", "", "", "", "")
	f.Add("dev_box", "nyc3", "s-1vcpu-1gb", "snapshot:abc", "\xff", "managed-by", "x", "")
	f.Add("a.b.c", "sfo3", "c-2", "custom:fedora-40-x64", strings.Repeat("u", 70000), "a b", "", "3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa")
	f.Add("x", "r", "s", "debian:12.", "", "k", "v:w", "laptop")
	providertest.FuzzCreateInstance(f, func(cfg provider.Config) (provider.Provider, error) {
		return digitalocean.Open(context.Background(), cfg)
	})
}
