package provider_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/provider/internal/memdriver"

	"github.com/spuffgo/spuff/provider"
)

// toyOpener opens an in-memory driver and records the settings it got.
type toyOpener struct {
	mu  sync.Mutex
	got *driver.Settings
}

func (o *toyOpener) Open(_ context.Context, s *driver.Settings) (driver.Driver, error) {
	o.mu.Lock()
	o.got = s
	o.mu.Unlock()
	return memdriver.New(), nil
}

func (o *toyOpener) settings() *driver.Settings {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.got
}

// toyFactory returns an Opener of an in-memory driver.
func toyFactory(string) *toyOpener { return &toyOpener{} }

// requireInvalid fails t unless err is an invalid-config *Error naming field.
func requireInvalid(t *testing.T, err error, field string) *provider.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want invalid config for field %q", field)
	}
	if !errors.Is(err, provider.ErrInvalidConfig) {
		t.Fatalf("errors.Is(%v, ErrInvalidConfig) = false", err)
	}
	var perr *provider.Error
	if !errors.As(err, &perr) {
		t.Fatalf("errors.As(%v, *provider.Error) = false", err)
	}
	if perr.Kind != provider.KindInvalidConfig {
		t.Errorf("Kind = %v, want %v", perr.Kind, provider.KindInvalidConfig)
	}
	if perr.Field != field {
		t.Errorf("Field = %q, want %q (err: %v)", perr.Field, field, err)
	}
	return perr
}
