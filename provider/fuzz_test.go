package provider_test

import (
	"errors"
	"testing"

	"github.com/spuffgo/spuff/provider"
)

// FuzzParseImageSpec checks the round trip: whatever ParseImageSpec
// accepts, it accepts again in its String form and gives the same spec.
func FuzzParseImageSpec(f *testing.F) {
	for _, s := range []string{
		"ubuntu:24.04", "debian:12", "custom:ami-0abc", "snapshot:123", "UBUNTU:22.04",
		"custom:a:b", "", ":", "ubuntu:", "ubuntu:.", "fedora:40", "custom: x", "snapshot:\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := provider.ParseImageSpec(s)
		if err != nil {
			if !errors.Is(err, provider.ErrInvalidConfig) {
				t.Fatalf("ParseImageSpec(%q) error %v is not ErrInvalidConfig", s, err)
			}
			if !spec.IsZero() {
				t.Fatalf("ParseImageSpec(%q) returned %#v with an error", s, spec)
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("ParseImageSpec(%q) = %#v, which fails Validate: %v", s, spec, err)
		}
		again, err := provider.ParseImageSpec(spec.String())
		if err != nil {
			t.Fatalf("ParseImageSpec(%q) = %#v, but its String %q does not parse: %v", s, spec, spec.String(), err)
		}
		if again != spec {
			t.Fatalf("round trip of %q: %#v then %#v", s, spec, again)
		}
		text, _ := spec.MarshalText()
		var back provider.ImageSpec
		if err := back.UnmarshalText(text); err != nil || back != spec {
			t.Fatalf("text round trip of %#v: %#v, %v", spec, back, err)
		}
	})
}

// FuzzValidate checks that validation never panics and that every failure
// is an invalid-config error naming a field.
func FuzzValidate(f *testing.F) {
	f.Add("dev-1", "fsn1", "cx22", "ubuntu:24.04", "#cloud-config\n", "env", "dev", "123", 0, false)
	f.Add("", "", "", "", "", "", "", "", 10, true)
	f.Add("a..b", "eu-west-1", "t3.micro", "custom:ami-1", "\xff\xfe", "managed-by", "x", "", 1, true)
	f.Add("-x", "r", "s", "snapshot:1", "data", "a.b", "-v", "k k", -1, false)
	f.Fuzz(func(t *testing.T, name, region, size, image, userData, labelKey, labelValue, sshKey string, maxUserData int, utf8 bool) {
		spec, _ := provider.ParseImageSpec(image)
		req := provider.InstanceRequest{
			Name: name, Region: region, Size: size, Image: spec, UserData: userData,
			Labels:  map[string]string{labelKey: labelValue},
			SSHKeys: []string{sshKey, sshKey + "2"},
		}
		err := req.ValidateWith(provider.Limits{MaxUserDataBytes: maxUserData, UserDataUTF8: utf8})
		if err == nil {
			return
		}
		var perr *provider.Error
		if !errors.Is(err, provider.ErrInvalidConfig) || !errors.As(err, &perr) || perr.Field == "" {
			t.Fatalf("ValidateWith error %v is not an invalid-config *Error naming a field", err)
		}
		_ = err.Error()
		_ = req.Validate()
	})
}
