package provider

import (
	"fmt"
	"strings"
	"unicode"
)

// ImageKind says how an ImageSpec names its image.
type ImageKind int

// The kinds of ImageSpec.
const (
	// ImageNone is the zero ImageSpec: no image chosen.
	ImageNone ImageKind = iota
	// ImageUbuntu is an official Ubuntu release by version ("24.04").
	ImageUbuntu
	// ImageDebian is an official Debian release by version ("12").
	ImageDebian
	// ImageCustom is a provider-specific image ID or slug ("ami-0abc",
	// "ubuntu-24-04-x64", "12345").
	ImageCustom
	// ImageSnapshot restores a snapshot made by CreateSnapshot, by its ID.
	ImageSnapshot
)

var imageKindNames = [...]string{"", "ubuntu", "debian", "custom", "snapshot"}

// String returns the kind's name as used by ParseImageSpec ("ubuntu").
func (k ImageKind) String() string {
	if k < 0 || int(k) >= len(imageKindNames) {
		return fmt.Sprintf("ImageKind(%d)", int(k))
	}
	return imageKindNames[k]
}

// ImageSpec names the image a machine boots from, portably. Build one with
// Ubuntu, Debian, CustomImage or SnapshotImage, or parse one with
// ParseImageSpec. Each driver maps it to its cloud: slugs on DigitalOcean,
// names on Hetzner, the newest official AMI on AWS.
type ImageSpec struct {
	// Kind says how Value is to be read.
	Kind ImageKind
	// Value is the version, image ID or snapshot ID.
	Value string
}

// Ubuntu returns the spec of an official Ubuntu release, such as "24.04".
func Ubuntu(version string) ImageSpec { return ImageSpec{Kind: ImageUbuntu, Value: version} }

// Debian returns the spec of an official Debian release, such as "12".
func Debian(version string) ImageSpec { return ImageSpec{Kind: ImageDebian, Value: version} }

// CustomImage returns the spec of a provider-specific image ID or slug.
func CustomImage(id string) ImageSpec { return ImageSpec{Kind: ImageCustom, Value: id} }

// SnapshotImage returns the spec that restores the snapshot with the given ID.
func SnapshotImage(id string) ImageSpec { return ImageSpec{Kind: ImageSnapshot, Value: id} }

// IsZero reports whether no image is chosen.
func (s ImageSpec) IsZero() bool { return s.Kind == ImageNone && s.Value == "" }

// String returns the spec in the form ParseImageSpec reads: "ubuntu:24.04",
// "debian:12", "custom:ami-0abc", "snapshot:123". The zero spec gives "".
func (s ImageSpec) String() string {
	if s.IsZero() {
		return ""
	}
	return s.Kind.String() + ":" + s.Value
}

// Validate checks that the spec has a known kind and a well-formed value. A
// failure is an *Error of KindInvalidConfig naming the field "Image".
func (s ImageSpec) Validate() error {
	if s.Kind <= ImageNone || s.Kind > ImageSnapshot {
		if s.IsZero() {
			return invalid("Image", "no image given (use e.g. ubuntu:24.04)")
		}
		return invalid("Image", fmt.Sprintf("unknown image kind %d", int(s.Kind)))
	}
	v := s.Value
	switch {
	case v == "":
		return invalid("Image", s.Kind.String()+" image needs a value (e.g. "+imageExample(s.Kind)+")")
	case len(v) > 255:
		return invalid("Image", "image value longer than 255 bytes")
	}
	for _, r := range v {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return invalid("Image", fmt.Sprintf("image value %q contains whitespace or control characters", v))
		}
	}
	if (s.Kind == ImageUbuntu || s.Kind == ImageDebian) && !isVersion(v) {
		return invalid("Image", fmt.Sprintf("%s version %q is not a version number (e.g. %s)", s.Kind, v, imageExample(s.Kind)))
	}
	return nil
}

// isVersion reports whether v is dot-separated runs of digits ("24.04", "12").
func isVersion(v string) bool {
	for part := range strings.SplitSeq(v, ".") {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

func imageExample(k ImageKind) string {
	switch k {
	case ImageUbuntu:
		return "ubuntu:24.04"
	case ImageDebian:
		return "debian:12"
	case ImageSnapshot:
		return "snapshot:123"
	}
	return "custom:ami-0abc"
}

// ParseImageSpec parses "ubuntu:24.04", "debian:12", "custom:<id>" or
// "snapshot:<id>". The kind is case-insensitive. Its result's String gives s
// back (with the kind in lower case). A failure is an *Error of
// KindInvalidConfig naming the field "Image".
func ParseImageSpec(s string) (ImageSpec, error) {
	kind, value, ok := strings.Cut(s, ":")
	if !ok {
		return ImageSpec{}, invalid("Image", fmt.Sprintf("image %q is not of the form kind:value (ubuntu:24.04, debian:12, custom:<id>, snapshot:<id>)", truncate(s, 64)))
	}
	var spec ImageSpec
	switch strings.ToLower(kind) {
	case "ubuntu":
		spec = Ubuntu(value)
	case "debian":
		spec = Debian(value)
	case "custom":
		spec = CustomImage(value)
	case "snapshot":
		spec = SnapshotImage(value)
	default:
		return ImageSpec{}, invalid("Image", fmt.Sprintf("unknown image kind %q (want ubuntu, debian, custom or snapshot)", truncate(kind, 32)))
	}
	if err := spec.Validate(); err != nil {
		return ImageSpec{}, err
	}
	return spec, nil
}

// MarshalText implements encoding.TextMarshaler with the String form.
func (s ImageSpec) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseImageSpec, so
// an ImageSpec works with flag.TextVar and encoding/json. Empty text gives the
// zero spec.
func (s *ImageSpec) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*s = ImageSpec{}
		return nil
	}
	spec, err := ParseImageSpec(string(text))
	if err != nil {
		return err
	}
	*s = spec
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
