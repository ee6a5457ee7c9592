package apispec

import (
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// HetznerSpec is the Hetzner Cloud description, relative to testdata/.
const HetznerSpec = "hetzner/hcloud.json"

// Hetzner returns the Hetzner Cloud API description prepared for the
// simulated API: paths matched without the /v1 prefix, and one documented
// difference from the real API fixed. The description types the create
// request's image, server_type and ssh_keys entries as strings ("ID or
// name"), but the real API also takes numeric IDs, and hcloud-go — the
// official SDK — sends them as JSON numbers; both forms are accepted here.
// Nothing else is relaxed. The description also writes its status ranges
// in lower case ("4xx", "5xx"), which OpenAPI spells "4XX" and kin-openapi
// matches only so: they are upper-cased, or no error answer would be
// checked at all ("status is not supported").
func Hetzner(t testing.TB) *Spec {
	t.Helper()
	return Require(t, HetznerSpec, Options{StripPrefix: "/v1", Fix: fixHetzner})
}

func fixHetzner(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.Responses == nil {
				continue
			}
			for code, r := range op.Responses.Map() {
				if up := strings.ToUpper(code); up != code {
					op.Responses.Delete(code)
					op.Responses.Set(up, r)
				}
			}
		}
	}
	ref := doc.Components.Schemas["create_server_request"]
	if ref == nil || ref.Value == nil {
		return
	}
	idOrName := func() *openapi3.SchemaRef {
		return openapi3.NewOneOfSchema(openapi3.NewStringSchema(), openapi3.NewInt64Schema()).NewRef()
	}
	props := ref.Value.Properties
	for _, name := range []string{"image", "server_type"} {
		if props[name] != nil {
			props[name] = idOrName()
		}
	}
	if keys := props["ssh_keys"]; keys != nil && keys.Value != nil && keys.Value.Items != nil {
		cp := *keys.Value
		cp.Items = idOrName()
		props["ssh_keys"] = cp.NewRef()
	}
}
