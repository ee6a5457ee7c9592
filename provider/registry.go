package provider

import (
	"context"
	"fmt"
	"github.com/spuffgo/spuff/provider/driver"
	"sort"
	"strings"
	"sync"
)

// Registry maps provider names to drivers. The zero value is empty and
// ready to use. Most programs use the default registry through Register,
// Open and Names; tests make their own with NewRegistry.
type Registry struct {
	mu      sync.RWMutex
	openers map[string]driver.Opener
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register makes the driver o opens available under name. It panics if
// name is empty, o is nil, or name is already registered, as database/sql's
// Register does: these are programming errors found at init.
func (r *Registry) Register(name string, o driver.Opener) {
	if name == "" {
		panic("spuff: Register with an empty provider name")
	}
	if o == nil {
		panic("spuff: Register driver is nil for provider " + name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.openers[name]; dup {
		panic("spuff: Register called twice for provider " + name)
	}
	if r.openers == nil {
		r.openers = make(map[string]driver.Opener)
	}
	r.openers[name] = o
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.openers))
	for n := range r.openers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open builds the provider registered under name. An unknown name gives an
// error matching ErrUnknownProvider that lists the registered names and
// reminds of the blank import that registers a driver.
func (r *Registry) Open(ctx context.Context, name string, cfg Config) (Provider, error) {
	r.mu.RLock()
	o := r.openers[name]
	r.mu.RUnlock()
	if o == nil {
		return nil, r.unknown(name)
	}
	return OpenDriver(ctx, name, o, cfg)
}

func (r *Registry) unknown(name string) error {
	names := r.Names()
	msg := fmt.Sprintf("no provider %q is registered", name)
	if len(names) == 0 {
		msg += " (none are)"
	} else {
		msg += " (registered: " + strings.Join(names, ", ") + ")"
	}
	msg += fmt.Sprintf("; forgotten import? add: import _ \"github.com/spuffgo/spuff/provider/%s\"", importHint(name))
	return &Error{Kind: KindUnknownProvider, Op: "Open", ID: name, Message: msg}
}

// importHint guesses the driver's package from a provider name.
func importHint(name string) string {
	switch strings.ToLower(name) {
	case "do", "digitalocean", "digital-ocean":
		return "digitalocean"
	case "hcloud", "hetzner", "hetzner-cloud":
		return "hetzner"
	case "aws", "ec2", "amazon":
		return "aws"
	}
	return "<driver>"
}

var defaultRegistry Registry

// Register makes a provider available under name in the default registry.
// Drivers call it from init, so a blank import enables them:
//
//	import _ "github.com/spuffgo/spuff/provider/hetzner"
//
// It panics if name is empty or already registered, or o is nil.
func Register(name string, o driver.Opener) { defaultRegistry.Register(name, o) }

// Open builds the provider registered under name in the default registry.
func Open(ctx context.Context, name string, cfg Config) (Provider, error) {
	return defaultRegistry.Open(ctx, name, cfg)
}

// Names returns the names registered in the default registry, sorted.
func Names() []string { return defaultRegistry.Names() }
