package providertest

import (
	"fmt"
	"strings"

	"github.com/spuffgo/spuff/provider"
)

// BadRequest is an invalid request: Edit turns a valid request into one
// the driver must refuse before any API call, with an invalid-config error
// whose Field is Field.
type BadRequest struct {
	Name  string
	Edit  func(*provider.InstanceRequest)
	Field string
}

// CommonBadRequests returns the invalid requests every driver refuses: the
// rules of InstanceRequest.Validate, which hold on every cloud. The suite
// runs them together with Harness.BadRequests, a driver's own.
func CommonBadRequests() []BadRequest {
	manyLabels := map[string]string{}
	for i := range provider.MaxLabels + 1 {
		manyLabels[fmt.Sprintf("k%d", i)] = "v"
	}
	long := strings.Repeat("k", provider.MaxLabelKeyLength+1)
	labels := func(l map[string]string) func(*provider.InstanceRequest) {
		return func(r *provider.InstanceRequest) { r.Labels = l }
	}
	return []BadRequest{
		{"zero request", func(r *provider.InstanceRequest) { *r = provider.InstanceRequest{} }, "Name"},
		{"empty name", func(r *provider.InstanceRequest) { r.Name = "" }, "Name"},
		{"name too long", func(r *provider.InstanceRequest) { r.Name = strings.Repeat("a", provider.MaxNameLength+1) }, "Name"},
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
		{"ubuntu without version", func(r *provider.InstanceRequest) { r.Image = provider.Ubuntu("") }, "Image"},
		{"ubuntu not a version", func(r *provider.InstanceRequest) { r.Image = provider.Ubuntu("latest") }, "Image"},
		{"debian empty", func(r *provider.InstanceRequest) { r.Image = provider.Debian("") }, "Image"},
		{"custom with a space", func(r *provider.InstanceRequest) { r.Image = provider.CustomImage("my image") }, "Image"},
		{"label key empty", labels(map[string]string{"": "v"}), `Labels[""]`},
		{"label key with a space", labels(map[string]string{"a b": "v"}), `Labels["a b"]`},
		{"label key with a colon", labels(map[string]string{"a:b": "c"}), `Labels["a:b"]`},
		{"label key too long", labels(map[string]string{long: "v"}), fmt.Sprintf("Labels[%q]", long)},
		{"label value with a colon", labels(map[string]string{"env": "a:b"}), `Labels["env"]`},
		{"label value with a space", labels(map[string]string{"k": "a b"}), `Labels["k"]`},
		{"label value too long", labels(map[string]string{"env": strings.Repeat("v", provider.MaxLabelValueLength+1)}), `Labels["env"]`},
		{"ownership label", labels(map[string]string{provider.OwnerLabel: "me"}), `Labels["managed-by"]`},
		{"too many labels", labels(manyLabels), "Labels"},
		{"empty SSH key", func(r *provider.InstanceRequest) { r.SSHKeys = []string{""} }, "SSHKeys[0]"},
		{"SSH key twice", func(r *provider.InstanceRequest) { r.SSHKeys = []string{"123", "123"} }, "SSHKeys[1]"},
		{"SSH key with a newline", func(r *provider.InstanceRequest) { r.SSHKeys = []string{"a\nb"} }, "SSHKeys[0]"},
	}
}
