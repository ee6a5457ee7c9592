package digitalocean_test

import (
	"context"
	"strings"
	"testing"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/digitalocean"
	"github.com/spuffgo/spuff/providertest"
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
