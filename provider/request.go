package provider

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// OwnerLabel is the label key that marks an instance or snapshot as managed
// by spuff. Its value is Config.Owner ("spuff" by default). ListInstances and
// ListSnapshots return only resources that carry it; callers cannot set it
// through InstanceRequest.Labels.
const OwnerLabel = "managed-by"

// reservedPrefix starts the keys of the labels spuff sets besides the
// ownership label (the request key, the expiry).
const reservedPrefix = "spuff-"

// DefaultOwner is the ownership label value used when Config.Owner is empty.
const DefaultOwner = "spuff"

// Limits common to the three clouds, enforced by InstanceRequest.Validate.
const (
	// MaxNameLength is the longest instance name: one DNS label (RFC 1123),
	// which Hetzner requires.
	MaxNameLength = 63
	// MaxLabelKeyLength and MaxLabelValueLength bound label keys and values.
	MaxLabelKeyLength   = 63
	MaxLabelValueLength = 63
	// MaxLabels is the most labels a request may carry (AWS allows 50 tags;
	// the ownership and Name tags take two of them).
	MaxLabels = 40
)

// InstanceRequest describes the machine CreateInstance makes.
type InstanceRequest struct {
	// Name is the machine's name and hostname: 1 to 63 letters, digits,
	// hyphens and dots, each dot-separated part starting and ending with a
	// letter or digit. Required. A retried create with the same Name never
	// makes a second machine.
	Name string
	// Region is the region or location ("nyc3", "fsn1", "eu-west-1"). Required.
	Region string
	// Size is the size slug, server type or instance type ("s-1vcpu-1gb",
	// "cx22", "t3.micro"). Required.
	Size string
	// Image is the image to boot. Required.
	Image ImageSpec
	// UserData is the cloud-init script passed to the machine, if any. It
	// never appears in errors or logs.
	UserData string
	// Labels are the caller's labels, set on the machine next to the
	// ownership label. Keys are 1 to 63 letters, digits, '-' and '_',
	// starting and ending with a letter or digit; values are the same or
	// empty. The key OwnerLabel is reserved.
	Labels map[string]string
	// SSHKeys names the account SSH keys to install (IDs, names or
	// fingerprints as SSHKey reports them).
	SSHKeys []string
	// TTL is how long the machine may live: it is created carrying its
	// expiry (the label spuff-expires, Unix seconds), which any process can
	// read (Instance.ExpiresAt) and Reap acts on. 0 means no expiry;
	// otherwise 1 minute to 366 days. On EC2 the machine also terminates
	// itself at expiry (see package aws); on DigitalOcean and Hetzner, where
	// a machine cannot do that without credentials, only a reaper destroys
	// it.
	TTL time.Duration
}

// The bounds of a TTL.
const (
	MinTTL = time.Minute
	MaxTTL = 366 * 24 * time.Hour
)

// expiresLabel carries a machine's or snapshot's expiry, Unix seconds.
const expiresLabel = reservedPrefix + "expires"

// checkTTL checks a TTL (0: none).
func checkTTL(field string, ttl time.Duration) error {
	if ttl != 0 && (ttl < MinTTL || ttl > MaxTTL) {
		return invalid(field, fmt.Sprintf("TTL %s is out of bounds: 0 for none, or %s to %s", ttl, MinTTL, "366 days"))
	}
	return nil
}

// Validate checks req against the rules every cloud shares and returns the
// first violation as an *Error of KindInvalidConfig whose Field names the
// offending field. It makes no network call. CreateInstance checks these
// rules and the cloud's own (user data size, region and size formats)
// before any call.
func (req *InstanceRequest) Validate() error { return req.validate(rules{}) }

// rules are a cloud's constraints beyond the common ones.
type rules struct {
	maxUserData  int  // 0: no limit of its own
	userDataUTF8 bool // user data travels in JSON
	maxLabel     int  // longest label value, 0: MaxLabelValueLength
}

func (req *InstanceRequest) validate(l rules) error {
	if req == nil {
		return invalid("InstanceRequest", "request is nil")
	}
	if err := checkName(req.Name); err != nil {
		return err
	}
	if err := checkToken("Region", req.Region); err != nil {
		return err
	}
	if err := checkToken("Size", req.Size); err != nil {
		return err
	}
	if err := req.Image.Validate(); err != nil {
		return err
	}
	if l.maxUserData > 0 && len(req.UserData) > l.maxUserData {
		return invalid("UserData", fmt.Sprintf("user data is %d bytes; the limit is %d", len(req.UserData), l.maxUserData))
	}
	if l.userDataUTF8 && !utf8.ValidString(req.UserData) {
		return invalid("UserData", "user data is not valid UTF-8")
	}
	if err := checkLabels(req.Labels, l.maxLabel); err != nil {
		return err
	}
	if err := checkTTL("TTL", req.TTL); err != nil {
		return err
	}
	seen := make(map[string]bool, len(req.SSHKeys))
	for i, k := range req.SSHKeys {
		field := "SSHKeys[" + strconv.Itoa(i) + "]"
		if k == "" {
			return invalid(field, "empty SSH key reference")
		}
		if len(k) > 255 || !printableASCII(k) {
			return invalid(field, "SSH key reference must be at most 255 printable ASCII characters")
		}
		if seen[k] {
			return invalid(field, fmt.Sprintf("SSH key %q named twice", k))
		}
		seen[k] = true
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return invalid("Name", "name is required")
	case len(name) > MaxNameLength:
		return invalid("Name", fmt.Sprintf("name is %d bytes; the limit is %d", len(name), MaxNameLength))
	}
	for _, r := range name {
		if r >= utf8.RuneSelf || !isAlnum(byte(r)) && r != '-' && r != '.' {
			return invalid("Name", fmt.Sprintf("name %q contains %q; use letters, digits, '-' and '.'", name, r))
		}
	}
	for part := range strings.SplitSeq(name, ".") {
		if part == "" || !isAlnum(part[0]) || !isAlnum(part[len(part)-1]) {
			return invalid("Name", fmt.Sprintf("name %q: each dot-separated part must start and end with a letter or digit", name))
		}
	}
	return nil
}

// checkToken checks a region or size: required, short, and made of the
// characters cloud identifiers use.
func checkToken(field, v string) error {
	if v == "" {
		return invalid(field, field+" is required")
	}
	if len(v) > 64 {
		return invalid(field, fmt.Sprintf("%s is %d characters; the limit is 64", field, len(v)))
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !isAlnum(c) && c != '-' && c != '.' && c != '_' {
			return invalid(field, fmt.Sprintf("%s %q contains %q", field, v, rune(c)))
		}
	}
	return nil
}

func checkLabels(labels map[string]string, maxValue int) error {
	if maxValue <= 0 || maxValue > MaxLabelValueLength {
		maxValue = MaxLabelValueLength
	}
	if len(labels) > MaxLabels {
		return invalid("Labels", fmt.Sprintf("%d labels; the limit is %d", len(labels), MaxLabels))
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same violation every time
	for _, k := range keys {
		field := fmt.Sprintf("Labels[%q]", k)
		if k == OwnerLabel || strings.HasPrefix(k, reservedPrefix) {
			return invalid(field, "the label "+OwnerLabel+" and labels starting with "+reservedPrefix+" are reserved for spuff's own")
		}
		if k == "" || len(k) > MaxLabelKeyLength || !labelWord(k) {
			return invalid(field, fmt.Sprintf("label key must be 1 to %d letters, digits, '-' or '_', starting and ending with a letter or digit", MaxLabelKeyLength))
		}
		v := labels[k]
		if v != "" && (len(v) > maxValue || !labelWord(v)) {
			return invalid(field, fmt.Sprintf("label value must be empty or 1 to %d letters, digits, '-' or '_', starting and ending with a letter or digit", maxValue))
		}
	}
	return nil
}

func labelWord(s string) bool {
	if !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
