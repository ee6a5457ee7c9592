package provider_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/provider/internal/memdriver"
)

// TestFailoverTrace: every placement tried is reported as it is tried,
// with the error that moved the failover on, and the placement that made
// the machine with none; a failover that made nothing reports each
// refusal.
func TestFailoverTrace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := memdriver.New()
	mem.Refuse = func(in *driver.CreateInput) error {
		if in.Request.Region == "fsn1" || in.Request.Size == "cx22" {
			return &driver.Error{Kind: driver.KindCapacity, Status: 412, Code: "resource_unavailable", Message: "error during placement"}
		}
		return nil
	}
	p, err := provider.OpenDriver(ctx, "hetzner", mem.Opener(), provider.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []provider.Attempt
	tctx := provider.WithFailoverTrace(ctx, &provider.FailoverTrace{Tried: func(a provider.Attempt) {
		mu.Lock()
		seen = append(seen, a)
		mu.Unlock()
	}})
	inst, err := provider.CreateWithFailover(tctx, provider.InstanceRequest{Name: "traced", Image: provider.Ubuntu("24.04")},
		provider.Grid(p, []string{"fsn1", "nbg1"}, []string{"cx22", "cpx11"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hetzner fsn1 cx22", "hetzner fsn1 cpx11", "hetzner nbg1 cx22", "hetzner nbg1 cpx11"}
	if len(seen) != len(want) {
		t.Fatalf("traced %d attempts (%v), want %d", len(seen), seen, len(want))
	}
	for i, a := range seen {
		if a.Placement.String() != want[i] {
			t.Errorf("attempt %d was %s, want %s", i+1, a.Placement, want[i])
		}
		if last := i == len(seen)-1; last != (a.Err == nil) || !last && !errors.Is(a.Err, provider.ErrCapacity) {
			t.Errorf("attempt %d (%s): error %v", i+1, a.Placement, a.Err)
		}
	}
	if inst.Region != "nbg1" || inst.Size != "cpx11" {
		t.Errorf("made %s %s, want nbg1 cpx11", inst.Region, inst.Size)
	}

	seen = nil
	_, err = provider.CreateWithFailover(tctx, provider.InstanceRequest{Name: "full", Image: provider.Ubuntu("24.04")},
		provider.Grid(p, []string{"fsn1"}, []string{"cx22", "cpx11"}))
	var ferr *provider.FailoverError
	if !errors.As(err, &ferr) || len(seen) != 2 || len(ferr.Attempts) != 2 {
		t.Fatalf("err %v; traced %v", err, seen)
	}
	for i, a := range seen {
		if a.Err != ferr.Attempts[i].Err {
			t.Errorf("attempt %d traced %v, the error lists %v", i+1, a.Err, ferr.Attempts[i].Err)
		}
	}
	// Without a trace, nothing is reported (and nothing breaks).
	if _, err := provider.CreateWithFailover(ctx, provider.InstanceRequest{Name: "untraced", Image: provider.Ubuntu("24.04")},
		provider.Grid(p, []string{"nbg1"}, []string{"cpx11"})); err != nil {
		t.Fatal(err)
	}
}
