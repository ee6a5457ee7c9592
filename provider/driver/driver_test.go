package driver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spuffgo/spuff/provider/driver"
)

func TestSettingsTokenFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HCLOUD_TOKEN": "", "HETZNER_TOKEN": "from-env"}
	s := &driver.Settings{Getenv: func(k string) string { return env[k] }}
	if got := s.TokenFromEnv("HCLOUD_TOKEN", "HETZNER_TOKEN"); got != "from-env" {
		t.Errorf("TokenFromEnv = %q, want the first non-empty variable", got)
	}
	if got := s.TokenFromEnv("NOPE"); got != "" {
		t.Errorf("TokenFromEnv(NOPE) = %q", got)
	}
	s.Token = "explicit-SECRET"
	if got := s.TokenFromEnv("HETZNER_TOKEN"); got != "explicit-SECRET" {
		t.Errorf("TokenFromEnv with Token set = %q", got)
	}
	if got := s.Env("HETZNER_TOKEN"); got != "from-env" {
		t.Errorf("Env = %q", got)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, s); strings.Contains(out, "SECRET") {
			t.Errorf("%s of Settings shows the token: %s", f, out)
		}
	}
}
