package dosim_test

import (
	"os"
	"testing"

	"github.com/spuffgo/spuff/internal/apispec"
)

// TestMain points the API description checks at the copy kept in
// testdata/openapi, unless the environment names another folder.
func TestMain(m *testing.M) {
	if os.Getenv(apispec.EnvDir) == "" {
		os.Setenv(apispec.EnvDir, "testdata/openapi")
	}
	os.Exit(m.Run())
}
