package provider_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
)

const testToken = "hcloud-TOPSECRET-0123456789"

func TestSecretFormatting(t *testing.T) {
	t.Parallel()
	s := provider.Secret(testToken)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10s", "%-12v", "%d", "%T"} {
		got := fmt.Sprintf(verb, s)
		if strings.Contains(got, testToken) || strings.Contains(got, fmt.Sprintf("%x", testToken)) ||
			strings.Contains(got, fmt.Sprintf("%X", testToken)) {
			t.Errorf("Sprintf(%s) = %q leaks the secret", verb, got)
		}
	}
	if got := fmt.Sprint(s); got != "[redacted]" {
		t.Errorf("Sprint = %q, want [redacted]", got)
	}
	if got := fmt.Sprintf("%#v", s); got != `"[redacted]"` {
		t.Errorf("%%#v = %q", got)
	}
	if got := s.String(); got != "[redacted]" {
		t.Errorf("String = %q", got)
	}
	if got := string(s); got != testToken {
		t.Errorf("string(s) = %q, want the real value", got)
	}
	if got := provider.Secret("").String(); got != "" {
		t.Errorf("empty secret String = %q, want empty", got)
	}
}

func configWithSecrets() provider.Config {
	return provider.Config{
		Token:           testToken,
		AccessKeyID:     "AKIAEXAMPLE",
		SecretAccessKey: testToken + "-aws",
		SessionToken:    testToken + "-session",
		Region:          "eu-central-1",
		Endpoint:        "http://127.0.0.1:1",
		HTTPClient:      &http.Client{Timeout: time.Second},
		Timeouts:        provider.ProviderTimeouts{PollInterval: time.Second},
		Logger:          slog.New(slog.DiscardHandler),
		Owner:           "ci",
		WaitPolicy:      provider.FixedWait(time.Second),
		Pacer:           provider.NewPacer(),
		Getenv:          func(string) string { return "" },
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	cfg := configWithSecrets()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{cfg, &cfg} {
			got := fmt.Sprintf(verb, v)
			if strings.Contains(got, "TOPSECRET") {
				t.Errorf("Sprintf(%s, %T) leaks a secret: %s", verb, v, got)
			}
		}
	}
	if got := fmt.Sprintf("%+v", cfg); !strings.Contains(got, "Token:[redacted]") || !strings.Contains(got, "AKIAEXAMPLE") {
		t.Errorf("%%+v = %s; want a redacted token and the (public) key ID", got)
	}
}

func TestConfigJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(configWithSecrets())
	if err != nil {
		t.Fatalf("json.Marshal(Config): %v", err)
	}
	if bytes.Contains(b, []byte("TOPSECRET")) {
		t.Errorf("JSON leaks a secret: %s", b)
	}
	if !bytes.Contains(b, []byte(`"Token":"[redacted]"`)) {
		t.Errorf("JSON = %s; want a redacted token", b)
	}
}

func TestConfigSlog(t *testing.T) {
	t.Parallel()
	cfg := configWithSecrets()
	for _, mk := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(mk(&buf))
		log.Info("opening", "token", cfg.Token, "config", cfg, "configptr", &cfg, slog.Any("secret", cfg.SecretAccessKey))
		out := buf.String()
		if strings.Contains(out, "TOPSECRET") {
			t.Errorf("log leaks a secret: %s", out)
		}
		if !strings.Contains(out, "[redacted]") || strings.Contains(out, "!ERROR") {
			t.Errorf("log output = %s; want redacted values and no marshal error", out)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, owner := range []string{"", "spuff", "team_a", "a"} {
		cfg := provider.Config{Owner: owner}
		if err := cfg.Validate(); err != nil {
			t.Errorf("Owner %q: %v", owner, err)
		}
	}
	for _, owner := range []string{"bad owner", "-x", "x.y", strings.Repeat("o", 64)} {
		cfg := provider.Config{Owner: owner}
		requireInvalid(t, cfg.Validate(), "Config.Owner")
	}
}

func TestProviderTimeoutsWithDefaults(t *testing.T) {
	t.Parallel()
	def := provider.DefaultTimeouts()
	want := provider.ProviderTimeouts{
		InstanceReady:  5 * time.Minute,
		ActionComplete: 10 * time.Minute,
		PollInterval:   5 * time.Second,
		HTTPRequest:    30 * time.Second,
		SSHConnect:     5 * time.Minute,
		CloudInit:      10 * time.Minute,
		Lookup:         10 * time.Second,
	}
	if def != want {
		t.Fatalf("DefaultTimeouts = %+v, want %+v", def, want)
	}
	tests := []struct {
		name string
		in   provider.ProviderTimeouts
		want provider.ProviderTimeouts
	}{
		{"zero", provider.ProviderTimeouts{}, want},
		{"negative", provider.ProviderTimeouts{InstanceReady: -1, ActionComplete: -time.Hour, PollInterval: -1, HTTPRequest: -1, SSHConnect: -1, CloudInit: -1, Lookup: -1}, want},
		{"all set", provider.ProviderTimeouts{1, 2, 3, 4, 5, 6, 7}, provider.ProviderTimeouts{1, 2, 3, 4, 5, 6, 7}},
		{"some set", provider.ProviderTimeouts{PollInterval: 100 * time.Millisecond, CloudInit: time.Hour},
			provider.ProviderTimeouts{
				InstanceReady: want.InstanceReady, ActionComplete: want.ActionComplete, PollInterval: 100 * time.Millisecond,
				HTTPRequest: want.HTTPRequest, SSHConnect: want.SSHConnect, CloudInit: time.Hour, Lookup: want.Lookup,
			}},
	}
	for _, tt := range tests {
		if got := tt.in.WithDefaults(); got != tt.want {
			t.Errorf("%s: WithDefaults = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
