package apispec

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// DigitalOceanSpec is the DigitalOcean API v2 description, relative to
// testdata/: the bundled file, whose operations are inlined (the split
// root file puts them behind $refs that kin-openapi loads as empty
// operations, so nothing would be checked).
const DigitalOceanSpec = "digitalocean/DigitalOcean-public.v2.bundled.yaml"

// DigitalOcean returns the DigitalOcean API description with one reading
// made explicit. The description wraps nullable schemas in allOf next to a
// schema that only adds a description, as in a droplet's
// next_backup_window: allOf [droplet_next_backup_window (nullable), {}].
// OpenAPI 3.0 does not carry nullable through allOf, so a strict validator
// rejects the null the real API sends when backups are off; here such a
// wrapper is nullable. Nothing else is relaxed.
func DigitalOcean(t testing.TB) *Spec {
	t.Helper()
	return Require(t, DigitalOceanSpec, Options{Fix: nullableAllOf})
}

// nullableAllOf marks nullable every schema that is an allOf of a nullable
// schema and schemas that constrain nothing (annotations only).
func nullableAllOf(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(s *openapi3.Schema)
	walkRef := func(r *openapi3.SchemaRef) {
		if r != nil && r.Value != nil {
			walk(r.Value)
		}
	}
	walk = func(s *openapi3.Schema) {
		if seen[s] {
			return
		}
		seen[s] = true
		if len(s.AllOf) > 0 && s.Type == nil && len(s.Properties) == 0 {
			nullable, rest := false, true
			for _, r := range s.AllOf {
				switch v := r.Value; {
				case v == nil:
					rest = false
				case v.Nullable:
					nullable = true
				case !annotationOnly(v):
					rest = false
				}
			}
			if nullable && rest {
				s.Nullable = true
			}
		}
		for _, r := range s.AllOf {
			walkRef(r)
		}
		for _, r := range s.AnyOf {
			walkRef(r)
		}
		for _, r := range s.OneOf {
			walkRef(r)
		}
		walkRef(s.Not)
		walkRef(s.Items)
		for _, r := range s.Properties {
			walkRef(r)
		}
		if s.AdditionalProperties.Schema != nil {
			walkRef(s.AdditionalProperties.Schema)
		}
	}
	for _, r := range doc.Components.Schemas {
		walkRef(r)
	}
	for _, r := range doc.Components.Responses {
		if r.Value != nil {
			for _, mt := range r.Value.Content {
				walkRef(mt.Schema)
			}
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.Responses != nil {
				for _, r := range op.Responses.Map() {
					if r.Value != nil {
						for _, mt := range r.Value.Content {
							walkRef(mt.Schema)
						}
					}
				}
			}
		}
	}
}

// annotationOnly reports whether a schema constrains nothing: no type,
// properties, composition, enum or bounds (a description, an example).
func annotationOnly(s *openapi3.Schema) bool {
	return s.Type == nil && len(s.Properties) == 0 && len(s.AllOf) == 0 && len(s.AnyOf) == 0 &&
		len(s.OneOf) == 0 && s.Not == nil && s.Items == nil && len(s.Enum) == 0 && len(s.Required) == 0 &&
		s.Format == "" && s.Pattern == "" && s.Min == nil && s.Max == nil && s.MinLength == 0 && s.MaxLength == nil
}
