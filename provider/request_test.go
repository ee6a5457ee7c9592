package provider_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spuffgo/spuff/provider"
)

// secretUserData is a marker that must never appear in any error text.
const secretUserData = "#cloud-config\npassword: hunter2-SECRET-USERDATA\n"

func validRequest() provider.InstanceRequest {
	return provider.InstanceRequest{
		Name:     "dev-1",
		Region:   "fsn1",
		Size:     "cx22",
		Image:    provider.Ubuntu("24.04"),
		UserData: secretUserData,
		Labels:   map[string]string{"env": "dev", "team_a": "x-1", "empty": ""},
		SSHKeys:  []string{"123", "my key", "aa:bb:cc"},
	}
}

func noLimits(l provider.Limits) bool {
	return l.MaxUserDataBytes == 0 && !l.UserDataUTF8
}

func manyLabels(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func TestValidateAcceptsValidRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(r *provider.InstanceRequest)
		limits provider.Limits
	}{
		{name: "full request"},
		{name: "minimal request", mutate: func(r *provider.InstanceRequest) {
			r.UserData, r.Labels, r.SSHKeys = "", nil, nil
		}},
		{name: "63 character name", mutate: func(r *provider.InstanceRequest) { r.Name = strings.Repeat("a", 63) }},
		{name: "single character name", mutate: func(r *provider.InstanceRequest) { r.Name = "a" }},
		{name: "dotted name", mutate: func(r *provider.InstanceRequest) { r.Name = "web-1.dev.example" }},
		{name: "upper case and digits", mutate: func(r *provider.InstanceRequest) { r.Name = "Dev42" }},
		{name: "numeric name", mutate: func(r *provider.InstanceRequest) { r.Name = "123" }},
		{name: "aws style region and size", mutate: func(r *provider.InstanceRequest) {
			r.Region, r.Size = "eu-west-1", "t3.micro"
		}},
		{name: "size with underscore", mutate: func(r *provider.InstanceRequest) { r.Size = "s_1vcpu" }},
		{name: "debian image", mutate: func(r *provider.InstanceRequest) { r.Image = provider.Debian("12") }},
		{name: "custom image", mutate: func(r *provider.InstanceRequest) { r.Image = provider.CustomImage("ami-0abc") }},
		{name: "snapshot image", mutate: func(r *provider.InstanceRequest) { r.Image = provider.SnapshotImage("123") }},
		{name: "40 labels", mutate: func(r *provider.InstanceRequest) { r.Labels = manyLabels(provider.MaxLabels) }},
		{name: "63 character label key and value", mutate: func(r *provider.InstanceRequest) {
			r.Labels = map[string]string{strings.Repeat("k", 63): strings.Repeat("v", 63)}
		}},
		{name: "user data at the limit", limits: provider.Limits{MaxUserDataBytes: len(secretUserData)}},
		{name: "utf-8 user data", limits: provider.Limits{UserDataUTF8: true}, mutate: func(r *provider.InstanceRequest) {
			r.UserData = "echo héllo ✓"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := validRequest()
			if tt.mutate != nil {
				tt.mutate(&req)
			}
			if err := req.ValidateWith(tt.limits); err != nil {
				t.Fatalf("ValidateWith: %v", err)
			}
			if !noLimits(tt.limits) {
				return
			}
			if err := req.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(r *provider.InstanceRequest)
		limits provider.Limits
		field  string
	}{
		// Name.
		{name: "empty name", mutate: func(r *provider.InstanceRequest) { r.Name = "" }, field: "Name"},
		{name: "64 character name", mutate: func(r *provider.InstanceRequest) { r.Name = strings.Repeat("a", 64) }, field: "Name"},
		{name: "oversized name", mutate: func(r *provider.InstanceRequest) { r.Name = strings.Repeat("a", 1000) }, field: "Name"},
		{name: "underscore in name", mutate: func(r *provider.InstanceRequest) { r.Name = "dev_1" }, field: "Name"},
		{name: "leading hyphen", mutate: func(r *provider.InstanceRequest) { r.Name = "-dev" }, field: "Name"},
		{name: "trailing hyphen", mutate: func(r *provider.InstanceRequest) { r.Name = "dev-" }, field: "Name"},
		{name: "hyphen at part start", mutate: func(r *provider.InstanceRequest) { r.Name = "dev.-x" }, field: "Name"},
		{name: "empty dot part", mutate: func(r *provider.InstanceRequest) { r.Name = "dev..x" }, field: "Name"},
		{name: "leading dot", mutate: func(r *provider.InstanceRequest) { r.Name = ".dev" }, field: "Name"},
		{name: "trailing dot", mutate: func(r *provider.InstanceRequest) { r.Name = "dev." }, field: "Name"},
		{name: "lone dot", mutate: func(r *provider.InstanceRequest) { r.Name = "." }, field: "Name"},
		{name: "space in name", mutate: func(r *provider.InstanceRequest) { r.Name = "dev 1" }, field: "Name"},
		{name: "slash in name", mutate: func(r *provider.InstanceRequest) { r.Name = "dev/1" }, field: "Name"},
		{name: "non-ascii name", mutate: func(r *provider.InstanceRequest) { r.Name = "dév" }, field: "Name"},
		{name: "newline in name", mutate: func(r *provider.InstanceRequest) { r.Name = "dev\n" }, field: "Name"},
		// Region and size.
		{name: "missing region", mutate: func(r *provider.InstanceRequest) { r.Region = "" }, field: "Region"},
		{name: "region with space", mutate: func(r *provider.InstanceRequest) { r.Region = "fsn 1" }, field: "Region"},
		{name: "oversized region", mutate: func(r *provider.InstanceRequest) { r.Region = strings.Repeat("r", 65) }, field: "Region"},
		{name: "missing size", mutate: func(r *provider.InstanceRequest) { r.Size = "" }, field: "Size"},
		{name: "size with slash", mutate: func(r *provider.InstanceRequest) { r.Size = "cx/22" }, field: "Size"},
		// Image.
		{name: "missing image", mutate: func(r *provider.InstanceRequest) { r.Image = provider.ImageSpec{} }, field: "Image"},
		{name: "image without value", mutate: func(r *provider.InstanceRequest) { r.Image = provider.Ubuntu("") }, field: "Image"},
		{name: "image of unknown kind", mutate: func(r *provider.InstanceRequest) {
			r.Image = provider.ImageSpec{Kind: provider.ImageKind(42), Value: "x"}
		}, field: "Image"},
		{name: "image with whitespace", mutate: func(r *provider.InstanceRequest) { r.Image = provider.CustomImage("ami 1") }, field: "Image"},
		{name: "non-numeric ubuntu", mutate: func(r *provider.InstanceRequest) { r.Image = provider.Ubuntu("noble") }, field: "Image"},
		{name: "ubuntu version of dots", mutate: func(r *provider.InstanceRequest) { r.Image = provider.Ubuntu(".") }, field: "Image"},
		// User data.
		{name: "user data over the limit", limits: provider.Limits{MaxUserDataBytes: len(secretUserData) - 1}, field: "UserData"},
		{name: "non-utf-8 user data", limits: provider.Limits{UserDataUTF8: true}, mutate: func(r *provider.InstanceRequest) {
			r.UserData = secretUserData + "\xff\xfe"
		}, field: "UserData"},
		// Labels.
		{name: "reserved owner label", mutate: func(r *provider.InstanceRequest) {
			r.Labels = map[string]string{provider.OwnerLabel: "me"}
		}, field: `Labels["managed-by"]`},
		{name: "empty label key", mutate: func(r *provider.InstanceRequest) { r.Labels = map[string]string{"": "x"} }, field: `Labels[""]`},
		{name: "label key with dot", mutate: func(r *provider.InstanceRequest) { r.Labels = map[string]string{"a.b": "x"} }, field: `Labels["a.b"]`},
		{name: "label key with slash", mutate: func(r *provider.InstanceRequest) {
			r.Labels = map[string]string{"example.com/x": "x"}
		}, field: `Labels["example.com/x"]`},
		{name: "label key with space", mutate: func(r *provider.InstanceRequest) { r.Labels = map[string]string{"a b": "x"} }, field: `Labels["a b"]`},
		{name: "label key leading hyphen", mutate: func(r *provider.InstanceRequest) { r.Labels = map[string]string{"-a": "x"} }, field: `Labels["-a"]`},
		{name: "label key trailing underscore", mutate: func(r *provider.InstanceRequest) { r.Labels = map[string]string{"a_": "x"} }, field: `Labels["a_"]`},
		{name: "64 character label key", mutate: func(r *provider.InstanceRequest) {
			r.Labels = map[string]string{strings.Repeat("k", 64): "x"}
		}, field: fmt.Sprintf("Labels[%q]", strings.Repeat("k", 64))},
		{name: "label value with dot", mutate: func(r *provider.InstanceRequest) { r.Labels = map[string]string{"env": "v1.2"} }, field: `Labels["env"]`},
		{name: "label value with slash", mutate: func(r *provider.InstanceRequest) { r.Labels = map[string]string{"env": "a/b"} }, field: `Labels["env"]`},
		{name: "label value leading hyphen", mutate: func(r *provider.InstanceRequest) { r.Labels = map[string]string{"env": "-dev"} }, field: `Labels["env"]`},
		{name: "64 character label value", mutate: func(r *provider.InstanceRequest) {
			r.Labels = map[string]string{"env": strings.Repeat("v", 64)}
		}, field: `Labels["env"]`},
		{name: "too many labels", mutate: func(r *provider.InstanceRequest) { r.Labels = manyLabels(provider.MaxLabels + 1) }, field: "Labels"},
		// SSH keys.
		{name: "empty ssh key", mutate: func(r *provider.InstanceRequest) { r.SSHKeys = []string{"1", ""} }, field: "SSHKeys[1]"},
		{name: "duplicate ssh key", mutate: func(r *provider.InstanceRequest) { r.SSHKeys = []string{"a", "b", "a"} }, field: "SSHKeys[2]"},
		{name: "ssh key with control char", mutate: func(r *provider.InstanceRequest) { r.SSHKeys = []string{"a\x00"} }, field: "SSHKeys[0]"},
		{name: "oversized ssh key", mutate: func(r *provider.InstanceRequest) { r.SSHKeys = []string{strings.Repeat("k", 256)} }, field: "SSHKeys[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := validRequest()
			if tt.mutate != nil {
				tt.mutate(&req)
			}
			err := req.ValidateWith(tt.limits)
			perr := requireInvalid(t, err, tt.field)
			if perr.Message == "" {
				t.Errorf("error has no message: %v", err)
			}
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", perr.Message)} {
				if strings.Contains(text, "hunter2") || strings.Contains(text, "cloud-config") {
					t.Errorf("error text leaks user data: %s", text)
				}
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error text %q does not name the field %q", err, tt.field)
			}
			if noLimits(tt.limits) {
				// Validate applies the same common rules.
				requireInvalid(t, req.Validate(), tt.field)
			}
		})
	}
}

func TestValidateNilRequest(t *testing.T) {
	t.Parallel()
	var req *provider.InstanceRequest
	requireInvalid(t, req.Validate(), "InstanceRequest")
}

// The same invalid request reports the same violation every time, even with
// several bad labels (map order is random).
func TestValidateLabelsDeterministic(t *testing.T) {
	t.Parallel()
	req := validRequest()
	req.Labels = map[string]string{"z.z": "1", "a.a": "1", "m.m": "1", "b b": "1"}
	for range 50 {
		requireInvalid(t, req.Validate(), `Labels["a.a"]`)
	}
}

// A name with a character no cloud takes names that character, whole, not
// the first byte of its UTF-8 encoding.
func TestValidateNamesTheCharacter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, char string }{
		{"café", `'é'`}, {"dev-😀", `'😀'`}, {"a_b", `'_'`}, {"ünïcode", `'ü'`},
	} {
		req := validRequest()
		req.Name = tc.name
		err := req.Validate()
		requireInvalid(t, err, "Name")
		if !strings.Contains(err.Error(), tc.char) || strings.Contains(err.Error(), `\x`) {
			t.Errorf("name %q: %v, want it to name the character %s", tc.name, err, tc.char)
		}
	}
}
