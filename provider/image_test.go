package provider_test

import (
	"encoding/json"
	"flag"
	"strings"
	"testing"

	"github.com/spuffgo/spuff/provider"
)

func TestParseImageSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   provider.ImageSpec
		string string // String() of the result; in when empty
	}{
		{in: "ubuntu:24.04", want: provider.Ubuntu("24.04")},
		{in: "ubuntu:22.04", want: provider.Ubuntu("22.04")},
		{in: "debian:12", want: provider.Debian("12")},
		{in: "debian:11.7", want: provider.Debian("11.7")},
		{in: "custom:ami-0abc", want: provider.CustomImage("ami-0abc")},
		{in: "custom:ubuntu-24-04-x64", want: provider.CustomImage("ubuntu-24-04-x64")},
		{in: "custom:a:b", want: provider.CustomImage("a:b")},
		{in: "snapshot:123", want: provider.SnapshotImage("123")},
		{in: "snapshot:ami-0123456789abcdef0", want: provider.SnapshotImage("ami-0123456789abcdef0")},
		{in: "UBUNTU:24.04", want: provider.Ubuntu("24.04"), string: "ubuntu:24.04"},
		{in: "Snapshot:9", want: provider.SnapshotImage("9"), string: "snapshot:9"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := provider.ParseImageSpec(tt.in)
			if err != nil {
				t.Fatalf("ParseImageSpec(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseImageSpec(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			wantString := tt.string
			if wantString == "" {
				wantString = tt.in
			}
			if s := got.String(); s != wantString {
				t.Errorf("String() = %q, want %q", s, wantString)
			}
			again, err := provider.ParseImageSpec(got.String())
			if err != nil || again != got {
				t.Errorf("round trip: ParseImageSpec(%q) = %#v, %v; want %#v", got.String(), again, err, got)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if got.IsZero() {
				t.Error("IsZero() = true for a parsed spec")
			}
		})
	}
}

func TestParseImageSpecRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		mention  string // the error text must contain it
	}{
		{name: "empty", in: "", mention: "kind:value"},
		{name: "no colon", in: "ubuntu-24.04", mention: "kind:value"},
		{name: "unknown kind", in: "fedora:40", mention: "fedora"},
		{name: "empty kind", in: ":24.04", mention: "unknown image kind"},
		{name: "empty value", in: "ubuntu:", mention: "needs a value"},
		{name: "empty custom value", in: "custom:", mention: "needs a value"},
		{name: "empty snapshot value", in: "snapshot:", mention: "needs a value"},
		{name: "leading space in value", in: "ubuntu: 24.04", mention: "whitespace"},
		{name: "trailing space", in: "custom:ami-1 ", mention: "whitespace"},
		{name: "tab in value", in: "snapshot:1\t2", mention: "whitespace"},
		{name: "space before kind", in: " ubuntu:24.04", mention: "unknown image kind"},
		{name: "control character", in: "custom:a\x01b", mention: "control"},
		{name: "non-numeric ubuntu", in: "ubuntu:noble", mention: "not a version number"},
		{name: "non-numeric debian", in: "debian:bookworm", mention: "not a version number"},
		{name: "ubuntu version with letter", in: "ubuntu:24.04a", mention: "not a version number"},
		{name: "ubuntu version only a dot", in: "ubuntu:.", mention: "not a version number"},
		{name: "debian empty version part", in: "debian:1..2", mention: "not a version number"},
		{name: "ubuntu trailing dot", in: "ubuntu:24.", mention: "not a version number"},
		{name: "oversized value", in: "custom:" + strings.Repeat("a", 256), mention: "255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := provider.ParseImageSpec(tt.in)
			requireInvalid(t, err, "Image")
			if !got.IsZero() {
				t.Errorf("ParseImageSpec(%q) returned %#v with its error, want the zero spec", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error text is %d bytes long; long input must be truncated", len(err.Error()))
			}
		})
	}
}

func TestImageSpecZero(t *testing.T) {
	t.Parallel()
	var zero provider.ImageSpec
	if !zero.IsZero() || zero.String() != "" {
		t.Errorf("zero spec: IsZero=%v String=%q", zero.IsZero(), zero.String())
	}
	requireInvalid(t, zero.Validate(), "Image")
	if provider.ImageNone.String() != "" || provider.ImageUbuntu.String() != "ubuntu" ||
		provider.ImageSnapshot.String() != "snapshot" || provider.ImageKind(9).String() != "ImageKind(9)" {
		t.Error("ImageKind.String gives unexpected names")
	}
}

func TestImageSpecText(t *testing.T) {
	t.Parallel()
	for _, spec := range []provider.ImageSpec{
		provider.Ubuntu("24.04"), provider.Debian("12"), provider.CustomImage("ami-0abc"), provider.SnapshotImage("77"), {},
	} {
		text, err := spec.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText(%#v): %v", spec, err)
		}
		var back provider.ImageSpec
		if err := back.UnmarshalText(text); err != nil {
			t.Fatalf("UnmarshalText(%q): %v", text, err)
		}
		if back != spec {
			t.Errorf("text round trip of %#v gave %#v", spec, back)
		}
	}

	// UnmarshalText of bad text fails and leaves the value alone.
	spec := provider.Debian("12")
	requireInvalid(t, spec.UnmarshalText([]byte("fedora:40")), "Image")
	if spec != provider.Debian("12") {
		t.Errorf("failed UnmarshalText changed the spec to %#v", spec)
	}
	// Empty text gives the zero spec.
	if err := spec.UnmarshalText(nil); err != nil || !spec.IsZero() {
		t.Errorf("UnmarshalText(nil) = %v, spec %#v; want nil, zero", err, spec)
	}
}

func TestImageSpecJSONAndFlag(t *testing.T) {
	t.Parallel()
	type config struct {
		Image provider.ImageSpec `json:"image"`
	}
	b, err := json.Marshal(config{Image: provider.Ubuntu("24.04")})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"image":"ubuntu:24.04"}` {
		t.Errorf("json.Marshal = %s", b)
	}
	var c config
	if err := json.Unmarshal([]byte(`{"image":"snapshot:42"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Image != provider.SnapshotImage("42") {
		t.Errorf("json.Unmarshal gave %#v", c.Image)
	}
	if err := json.Unmarshal([]byte(`{"image":"nope"}`), &c); err == nil {
		t.Error("json.Unmarshal accepted a bad image")
	}

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var spec provider.ImageSpec
	fs.TextVar(&spec, "image", provider.Ubuntu("24.04"), "image to boot")
	if spec != provider.Ubuntu("24.04") {
		t.Errorf("flag default = %#v", spec)
	}
	if err := fs.Parse([]string{"-image", "debian:12"}); err != nil {
		t.Fatal(err)
	}
	if spec != provider.Debian("12") {
		t.Errorf("flag value = %#v", spec)
	}
}
