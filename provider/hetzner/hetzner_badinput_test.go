package hetzner_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/hetzner"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
)

// badRequests are the invalid requests of this cloud's own rules, which
// the conformance suite checks next to providertest.CommonBadRequests: each
// is refused before any API call, naming its field.
func badRequests() []providertest.BadRequest {
	return []providertest.BadRequest{
		{Name: "user data over 32 KiB", Edit: func(r *provider.InstanceRequest) { r.UserData = strings.Repeat("x", hetzner.MaxUserDataBytes+1) }, Field: "UserData"},
		{Name: "user data not UTF-8", Edit: func(r *provider.InstanceRequest) { r.UserData = "#!/bin/sh\n\xff\xfe" }, Field: "UserData"},
		{Name: "snapshot ID not a number", Edit: func(r *provider.InstanceRequest) { r.Image = provider.SnapshotImage("snap-1") }, Field: "Image"},
		{Name: "snapshot ID zero", Edit: func(r *provider.InstanceRequest) { r.Image = provider.SnapshotImage("0") }, Field: "Image"},
	}
}

// TestBadSnapshotNameMakesNoCall: a snapshot name the driver cannot send
// (too long for a description, not UTF-8) is refused before any API call,
// naming the field. (An empty name gets a generated one.)
func TestBadSnapshotNameMakesNoCall(t *testing.T) {
	t.Parallel()
	srv := hcloudsim.Start(t, providertest.Options())
	p, err := hetzner.Open(context.Background(), fastConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{strings.Repeat("n", hetzner.MaxSnapshotName+1), "nightly \xff"} {
		var perr *provider.Error
		if _, err := p.CreateSnapshot(ctx, "123", name); !errors.Is(err, provider.ErrInvalidConfig) || !errors.As(err, &perr) || perr.Field != "name" {
			t.Errorf("CreateSnapshot named %q: %v, want ErrInvalidConfig naming the field name", name, err)
		}
	}
	if n := srv.Cloud.TotalCalls(); n != 0 {
		t.Errorf("invalid requests made %d API calls, want 0: %v", n, srv.Cloud.Stats().Calls)
	}
}

// FuzzCreateInstance feeds CreateInstance arbitrary requests, with no
// network (see providertest.FuzzCreateInstance).
func FuzzCreateInstance(f *testing.F) {
	f.Add("dev-1", "fsn1", "cx22", "ubuntu:24.04", "#cloud-config\n", "env", "dev", "123")
	f.Add("", "", "", "", "", "", "", "")
	f.Add("dev_box", "fsn1", "cax11", "snapshot:abc", "\xff", "managed-by", "x", "")
	f.Add("a.b.c", "nbg1", "cpx11", "custom:ubuntu-22.04", strings.Repeat("u", 40000), "a b", "", "laptop")
	f.Add("x", "r", "s", "debian:12.", "", "k", "v:w", "3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa")
	providertest.FuzzCreateInstance(f, func(cfg provider.Config) (provider.Provider, error) {
		return hetzner.Open(context.Background(), cfg)
	})
}
