package provider_test

import (
	"context"
	"errors"
	"testing"

	"github.com/spuffgo/spuff/provider"
)

// toyProvider is a minimal in-memory Provider used by the registry tests and
// examples. Only Name and Capabilities do anything.
type toyProvider struct {
	name string
	cfg  provider.Config
}

var _ provider.Provider = (*toyProvider)(nil)

func (p *toyProvider) Name() string { return p.name }
func (p *toyProvider) Capabilities() provider.Capabilities {
	return provider.Capabilities{SSHKeys: true}
}
func (p *toyProvider) CreateInstance(ctx context.Context, req provider.InstanceRequest) (*provider.Instance, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return &provider.Instance{ID: "1", Name: req.Name, Status: provider.StatusNew}, nil
}
func (p *toyProvider) DestroyInstance(context.Context, string) error { return nil }
func (p *toyProvider) GetInstance(_ context.Context, id string) (*provider.Instance, error) {
	return nil, &provider.Error{Kind: provider.KindNotFound, Provider: p.name, Op: "GetInstance", Resource: "instance", ID: id}
}
func (p *toyProvider) ListInstances(context.Context) ([]*provider.Instance, error) { return nil, nil }
func (p *toyProvider) WaitReady(_ context.Context, id string) (*provider.Instance, error) {
	return nil, provider.ErrNotSupported
}
func (p *toyProvider) CreateSnapshot(context.Context, string, string) (*provider.Snapshot, error) {
	return nil, provider.ErrNotSupported
}
func (p *toyProvider) ListSnapshots(context.Context) ([]*provider.Snapshot, error) {
	return nil, provider.ErrNotSupported
}
func (p *toyProvider) DeleteSnapshot(context.Context, string) error { return provider.ErrNotSupported }
func (p *toyProvider) ListSSHKeys(context.Context) ([]*provider.SSHKey, error) {
	return []*provider.SSHKey{{ID: "1", Name: "me"}}, nil
}

// toyFactory returns a Factory building a toyProvider named name.
func toyFactory(name string) provider.Factory {
	return func(_ context.Context, cfg provider.Config) (provider.Provider, error) {
		return &toyProvider{name: name, cfg: cfg}, nil
	}
}

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
