package provider_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/provider/internal/memdriver"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/spuffgo/spuff/provider"
)

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("did not panic, want a panic mentioning %q", want)
		}
		if !strings.Contains(fmt.Sprint(r), want) {
			t.Fatalf("panic %q does not mention %q", r, want)
		}
	}()
	f()
}

func TestRegistryRegisterPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		regName string
		factory driver.Opener
		want    string
	}{
		{"empty name", "", toyFactory("x"), "empty"},
		{"nil factory", "nilfac", nil, "nil"},
		{"duplicate", "toy", toyFactory("toy"), "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := provider.NewRegistry()
			r.Register("toy", toyFactory("toy"))
			mustPanic(t, tt.want, func() { r.Register(tt.regName, tt.factory) })
			if got := r.Names(); !slices.Equal(got, []string{"toy"}) {
				t.Errorf("after the panic Names = %v, want [toy]", got)
			}
		})
	}
}

func TestRegistryNamesSorted(t *testing.T) {
	t.Parallel()
	r := provider.NewRegistry()
	if got := r.Names(); len(got) != 0 {
		t.Errorf("new registry Names = %v", got)
	}
	for _, n := range []string{"hetzner", "aws", "digitalocean", "b", "a"} {
		r.Register(n, toyFactory(n))
	}
	if got, want := r.Names(), []string{"a", "aws", "b", "digitalocean", "hetzner"}; !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	// Names returns a copy the caller may change.
	names := r.Names()
	names[0] = "zzz"
	if r.Names()[0] != "a" {
		t.Error("changing the slice Names returned changed the registry")
	}
}

func TestRegistryOpen(t *testing.T) {
	t.Parallel()
	r := provider.NewRegistry()
	o := toyFactory("toy")
	r.Register("toy", o)
	cfg := provider.Config{Token: "t", Owner: "team"}
	p, err := r.Open(context.Background(), "toy", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "toy" {
		t.Errorf("Name = %q", p.Name())
	}
	if got := o.settings(); got == nil || got.Token != "t" || got.HTTPClient == nil {
		t.Errorf("the driver got settings %v", got)
	}
	// The zero Registry is usable too.
	var zero provider.Registry
	zero.Register("toy", toyFactory("toy"))
	if _, err := zero.Open(context.Background(), "toy", provider.Config{}); err != nil {
		t.Errorf("zero Registry Open: %v", err)
	}
}

func TestRegistryUnknownName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		registered []string
		open       string
		mentions   []string
	}{
		{"empty registry", nil, "hetzner", []string{`"hetzner"`, "none", "forgotten import", "github.com/spuffgo/spuff/provider/hetzner"}},
		{"lists registered", []string{"toy", "aws"}, "digitalocean", []string{"aws, toy", "forgotten import", "provider/digitalocean"}},
		{"alias hints the package", []string{"toy"}, "hcloud", []string{"provider/hetzner"}},
		{"unknown driver", []string{"toy"}, "linode", []string{`"linode"`, "toy", "import _"}},
		{"case matters", []string{"aws"}, "AWS", []string{"aws", "provider/aws"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := provider.NewRegistry()
			for _, n := range tt.registered {
				r.Register(n, toyFactory(n))
			}
			p, err := r.Open(context.Background(), tt.open, provider.Config{})
			if p != nil {
				t.Errorf("Open returned a provider with an error")
			}
			if !errors.Is(err, provider.ErrUnknownProvider) {
				t.Fatalf("errors.Is(%v, ErrUnknownProvider) = false", err)
			}
			var perr *provider.Error
			if !errors.As(err, &perr) || perr.Kind != provider.KindUnknownProvider {
				t.Fatalf("errors.As: %#v", perr)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if provider.IsRetryable(err) {
				t.Error("an unknown provider is retryable")
			}
		})
	}
}

func TestRegistriesAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := provider.NewRegistry(), provider.NewRegistry()
	a.Register("only-a", toyFactory("only-a"))
	b.Register("only-b", toyFactory("only-b"))
	if _, err := b.Open(context.Background(), "only-a", provider.Config{}); !errors.Is(err, provider.ErrUnknownProvider) {
		t.Errorf("registry b opened a's provider: %v", err)
	}
	if got := a.Names(); !slices.Equal(got, []string{"only-a"}) {
		t.Errorf("a.Names = %v", got)
	}
	// Neither leaks into the default registry.
	if slices.Contains(provider.Names(), "only-a") || slices.Contains(provider.Names(), "only-b") {
		t.Errorf("default registry sees isolated registrations: %v", provider.Names())
	}
	// The same name can be registered in both.
	a.Register("same", toyFactory("same"))
	b.Register("same", toyFactory("same"))
}

func TestRegistryFactoryError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		err   error
		kind  provider.Kind
		field string
	}{
		{"plain error", errors.New("no token"), provider.KindUnknown, ""},
		{"invalid field", driver.Invalid("Config.Token", "token is required"), provider.KindInvalidConfig, "Config.Token"},
		{"sentinel", fmt.Errorf("credentials: %w", provider.ErrAuthentication), provider.KindAuthentication, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := provider.NewRegistry()
			r.Register("broken", driver.OpenerFunc(func(context.Context, *driver.Settings) (driver.Driver, error) { return nil, tt.err }))
			p, err := r.Open(context.Background(), "broken", provider.Config{})
			if p != nil || err == nil {
				t.Fatalf("Open = %v, %v; want an error", p, err)
			}
			var perr *provider.Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not a *provider.Error", err)
			}
			if perr.Kind != tt.kind || perr.Field != tt.field {
				t.Errorf("Kind, Field = %v, %q; want %v, %q", perr.Kind, perr.Field, tt.kind, tt.field)
			}
			if perr.Provider != "broken" || perr.Op != "Open" {
				t.Errorf("Provider, Op = %q, %q; want broken, Open", perr.Provider, perr.Op)
			}
			var de *driver.Error
			if !errors.Is(err, tt.err) && !errors.As(tt.err, &de) {
				t.Error("the factory's error is not reachable")
			}
		})
	}
}

func TestRegistryOpenValidatesConfig(t *testing.T) {
	t.Parallel()
	r := provider.NewRegistry()
	called := false
	r.Register("toy", driver.OpenerFunc(func(context.Context, *driver.Settings) (driver.Driver, error) {
		called = true
		return memdriver.New(), nil
	}))
	_, err := r.Open(context.Background(), "toy", provider.Config{Owner: "not a label!"})
	perr := requireInvalid(t, err, "Config.Owner")
	if perr.Provider != "toy" {
		t.Errorf("Provider = %q", perr.Provider)
	}
	if called {
		t.Error("the factory ran with an invalid config")
	}
}

func TestRegistryPassesContext(t *testing.T) {
	t.Parallel()
	r := provider.NewRegistry()
	type key struct{}
	r.Register("toy", driver.OpenerFunc(func(ctx context.Context, _ *driver.Settings) (driver.Driver, error) {
		if ctx.Value(key{}) != "v" {
			return nil, errors.New("context not passed")
		}
		return memdriver.New(), ctx.Err()
	}))
	ctx := context.WithValue(context.Background(), key{}, "v")
	if _, err := r.Open(ctx, "toy", provider.Config{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Open(ctx, "toy", provider.Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	r := provider.NewRegistry()
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			name := fmt.Sprintf("p%d", i)
			r.Register(name, toyFactory(name))
			for range 20 {
				_ = r.Names()
				_, _ = r.Open(context.Background(), name, provider.Config{})
			}
		}()
	}
	for range 8 {
		<-done
	}
	if got := len(r.Names()); got != 8 {
		t.Errorf("%d names registered, want 8", got)
	}
}

// registerDefault registers the test's provider in the process-wide default
// registry once, so that the test can run again under -count.
var registerDefault sync.Once

// The package-level functions use the default registry. The name is unique
// to this test so that no other test depends on it.
func TestDefaultRegistry(t *testing.T) {
	t.Parallel()
	const name = "spuff-provider-test-default-registry"
	registerDefault.Do(func() { provider.Register(name, toyFactory(name)) })
	if !slices.Contains(provider.Names(), name) {
		t.Fatalf("Names() = %v lacks %q", provider.Names(), name)
	}
	if !slices.IsSorted(provider.Names()) {
		t.Errorf("Names() = %v is not sorted", provider.Names())
	}
	p, err := provider.Open(context.Background(), name, provider.Config{})
	if err != nil || p.Name() != name {
		t.Fatalf("Open = %v, %v", p, err)
	}
	mustPanic(t, "twice", func() { provider.Register(name, toyFactory(name)) })
	_, err = provider.Open(context.Background(), "no-such-provider", provider.Config{})
	if !errors.Is(err, provider.ErrUnknownProvider) || !strings.Contains(err.Error(), name) {
		t.Errorf("Open(unknown) = %v", err)
	}
}
