package provider_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/provider/internal/memdriver"
)

// fastMem opens mem with timeouts of milliseconds.
func fastMem(t *testing.T, mem *memdriver.Driver) provider.Provider {
	t.Helper()
	p, err := provider.OpenDriver(context.Background(), "mem", mem.Opener(), provider.Config{
		Timeouts: provider.ProviderTimeouts{Lookup: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond},
		Retry:    provider.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noRoom is the cloud's refusal for capacity.
func noRoom() error {
	return &driver.Error{Kind: driver.KindCapacity, Status: 412, Code: "resource_unavailable", Message: "error during placement"}
}

// full refuses the placements named "region/size" for capacity.
func full(places ...string) func(in *driver.CreateInput) error {
	return func(in *driver.CreateInput) error {
		for _, p := range places {
			if p == in.Request.Region+"/"+in.Request.Size {
				return noRoom()
			}
		}
		return nil
	}
}

func failoverReq(name string) provider.InstanceRequest {
	return provider.InstanceRequest{Name: name, Image: provider.Ubuntu("24.04"), Labels: map[string]string{"team": "ci"}}
}

func TestCreateWithFailover(t *testing.T) {
	t.Parallel()
	quota := &driver.Error{Kind: driver.KindQuotaExceeded, Status: 403, Code: "resource_limit_exceeded", Message: "server limit reached"}
	tests := []struct {
		name       string
		refuse     func(in *driver.CreateInput) error
		wantRegion string // "" for an error
		wantKind   provider.Kind
		wantTried  int // placements tried (Attempts of the error)
		untried    int
		creates    int
	}{
		{"first has room", nil, "fsn1", 0, 0, 0, 1},
		{"first full, second has room", full("fsn1/cx22"), "nbg1", 0, 0, 0, 2},
		{"every placement full", full("fsn1/cx22", "nbg1/cx22", "hel1/cx22"), "", provider.KindCapacity, 3, 0, 3},
		{"a quota stops the failover", func(*driver.CreateInput) error { return quota }, "", provider.KindQuotaExceeded, 1, 2, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := memdriver.New()
			mem.Refuse = tc.refuse
			p := fastMem(t, mem)
			inst, err := provider.CreateWithFailover(context.Background(), failoverReq("web-1"), provider.Grid(p, []string{"fsn1", "nbg1", "hel1"}, []string{"cx22"}))
			if got := mem.Creates(); got != tc.creates {
				t.Errorf("%d creates reached the cloud, want %d (each placement once)", got, tc.creates)
			}
			if tc.wantRegion != "" {
				if err != nil {
					t.Fatalf("CreateWithFailover: %v", err)
				}
				if inst.Region != tc.wantRegion || inst.Size != "cx22" || inst.Labels["team"] != "ci" {
					t.Errorf("made %s/%s %v, want %s/cx22 with the request's labels", inst.Region, inst.Size, inst.Labels, tc.wantRegion)
				}
				if n := len(mem.Live()); n != 1 {
					t.Errorf("%d machines, want 1", n)
				}
				return
			}
			var ferr *provider.FailoverError
			if !errors.As(err, &ferr) {
				t.Fatalf("err = %v, want a *FailoverError", err)
			}
			if provider.KindOf(err) != tc.wantKind || len(ferr.Attempts) != tc.wantTried || ferr.Untried != tc.untried {
				t.Errorf("kind %v, %d tried, %d untried; want %v, %d, %d", provider.KindOf(err), len(ferr.Attempts), ferr.Untried, tc.wantKind, tc.wantTried, tc.untried)
			}
			for _, a := range ferr.Attempts {
				if !strings.Contains(err.Error(), a.Placement.String()) {
					t.Errorf("the error does not name the placement %s:\n%s", a.Placement, err)
				}
			}
			if len(mem.Live()) != 0 {
				t.Errorf("a failed failover left %d machines", len(mem.Live()))
			}
		})
	}
}

func TestCreateWithFailoverErrorText(t *testing.T) {
	t.Parallel()
	mem := memdriver.New()
	mem.Refuse = full("fsn1/cx22", "nbg1/cx22")
	p := fastMem(t, mem)
	_, err := provider.CreateWithFailover(context.Background(), failoverReq("web-1"), provider.Grid(p, []string{"fsn1", "nbg1"}, []string{"cx22"}))
	want := `spuff: CreateWithFailover "web-1": no placement had room (2 tried)
  1. mem fsn1 cx22: no capacity [HTTP 412 resource_unavailable]: error during placement
  2. mem nbg1 cx22: no capacity [HTTP 412 resource_unavailable]: error during placement`
	if err == nil || err.Error() != want {
		t.Errorf("error text:\n%v\nwant:\n%s", err, want)
	}
	if !errors.Is(err, provider.ErrCapacity) || provider.IsRetryable(err) {
		t.Errorf("errors.Is(ErrCapacity) = %v, IsRetryable = %v; want true, false", errors.Is(err, provider.ErrCapacity), provider.IsRetryable(err))
	}
}

func TestCreateWithFailoverValidatesFirst(t *testing.T) {
	t.Parallel()
	mem := memdriver.New()
	p := fastMem(t, mem)
	req := failoverReq("web-1")
	tests := []struct {
		name       string
		req        provider.InstanceRequest
		placements []provider.Placement
		field      string
	}{
		{"no placement", req, nil, "placements"},
		{"no provider", req, []provider.Placement{{Region: "fsn1", Size: "cx22"}}, "Placements[0].Provider"},
		{"a bad size", req, []provider.Placement{{p, "fsn1", "cx22"}, {p, "nbg1", "cx 22"}}, "Placements[1].Size"},
		{"no region", req, []provider.Placement{{p, "", "cx22"}}, "Placements[0].Region"},
		{"a repeat", req, []provider.Placement{{p, "fsn1", "cx22"}, {p, "fsn1", "cx22"}}, "Placements[1]"},
		{"a bad name", failoverReq("web_1"), []provider.Placement{{p, "fsn1", "cx22"}}, "Name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := provider.CreateWithFailover(context.Background(), tc.req, tc.placements)
			requireInvalid(t, err, tc.field)
		})
	}
	if mem.Calls() != 0 {
		t.Errorf("invalid failovers made %d calls", mem.Calls())
	}
}

// A lost answer at the first placement, then a refusal for capacity of
// the repeat: the machine the lost answer made is found and adopted, never
// doubled at the second placement.
func TestCreateWithFailoverLostAnswerThenCapacity(t *testing.T) {
	t.Parallel()
	for _, hidden := range []time.Duration{0, 200 * time.Millisecond} {
		mem := memdriver.New()
		mem.NativeIdempotency = true // the create is repeated (EC2)
		mem.Hidden = hidden
		mem.LoseCreate = 1
		calls := 0
		mem.Refuse = func(*driver.CreateInput) error {
			calls++
			if calls == 2 {
				return noRoom() // the repeat is refused, although the first made the machine
			}
			return nil
		}
		p := fastMem(t, mem)
		places := provider.Grid(p, []string{"fsn1", "nbg1"}, []string{"cx22"})
		ctx := context.Background()
		inst, err := provider.CreateWithFailover(ctx, failoverReq("web-1"), places)
		if hidden > 0 {
			// Not listed yet: the outcome stays unknown, and the
			// failover stops rather than make a second machine.
			if !errors.Is(err, provider.ErrOutcomeUnknown) || errors.Is(err, provider.ErrCapacity) {
				t.Fatalf("hidden machine: err = %v, want ErrOutcomeUnknown (and not ErrCapacity)", err)
			}
			if live := mem.Live(); len(live) != 1 || live[0].Region != "fsn1" {
				t.Fatalf("machines %v, want the one in fsn1", live)
			}
			time.Sleep(hidden) // the listing catches up
			inst, err = provider.CreateWithFailover(ctx, failoverReq("web-1"), places)
		}
		if err != nil {
			t.Fatalf("hidden %v: %v", hidden, err)
		}
		if live := mem.Live(); len(live) != 1 || inst.ID != live[0].ID || inst.Region != "fsn1" {
			t.Errorf("hidden %v: made %v, machines %v; want exactly the one in fsn1", hidden, inst, live)
		}
	}
}

// A failover repeated after an earlier one made the machine at another
// placement adopts it: the conflict of its name is the same request.
func TestCreateWithFailoverAdoptsSibling(t *testing.T) {
	t.Parallel()
	for _, unique := range []bool{false, true} {
		mem := memdriver.New()
		mem.UniqueNames = unique
		mem.Refuse = full("fsn1/cx22")
		p := fastMem(t, mem)
		places := provider.Grid(p, []string{"fsn1", "nbg1"}, []string{"cx22"})
		first, err := provider.CreateWithFailover(context.Background(), failoverReq("web-1"), places)
		if err != nil {
			t.Fatal(err)
		}
		mem.Refuse = nil // fsn1 has room again
		again, err := provider.CreateWithFailover(context.Background(), failoverReq("web-1"), places)
		if err != nil {
			t.Fatalf("unique names %v: repeat: %v", unique, err)
		}
		if again.ID != first.ID || len(mem.Live()) != 1 {
			t.Errorf("unique names %v: repeat returned %s (first %s), %d machines; want the same one", unique, again.ID, first.ID, len(mem.Live()))
		}
		// Another request of the same name is still a conflict.
		other := failoverReq("web-1")
		other.Labels = map[string]string{"team": "prod"}
		_, err = provider.CreateWithFailover(context.Background(), other, places)
		if !errors.Is(err, provider.ErrConflict) {
			t.Errorf("unique names %v: another request of the name: %v, want ErrConflict", unique, err)
		}
	}
}

func TestCreateWithFailoverConcurrent(t *testing.T) {
	t.Parallel()
	mem := memdriver.New()
	mem.Refuse = full("fsn1/cx22")
	p := fastMem(t, mem)
	places := provider.Grid(p, []string{"fsn1", "nbg1", "hel1"}, []string{"cx22"})
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			inst, err := provider.CreateWithFailover(context.Background(), failoverReq("web-1"), places)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = inst.ID
		})
	}
	wg.Wait()
	if n := len(mem.Live()); n != 1 {
		t.Fatalf("%d machines after 8 concurrent identical failovers, want 1", n)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Errorf("calls got %v, want one machine", ids)
			break
		}
	}
}

func TestCreateWithFailoverCancelled(t *testing.T) {
	t.Parallel()
	mem := memdriver.New()
	p := fastMem(t, mem)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := provider.CreateWithFailover(ctx, failoverReq("web-1"), provider.Grid(p, []string{"fsn1", "nbg1"}, []string{"cx22"}))
	if err == nil || len(mem.Live()) != 0 {
		t.Fatalf("cancelled failover: err %v, %d machines", err, len(mem.Live()))
	}
	var ferr *provider.FailoverError
	if errors.As(err, &ferr) && len(ferr.Attempts) > 1 {
		t.Errorf("a cancelled failover went on to %d placements", len(ferr.Attempts))
	}
}

// A plain CreateInstance whose lost answer is followed by a refusal for
// capacity is not ErrCapacity while the machine may exist: a caller's own
// failover on ErrCapacity must not make a second machine.
func TestCreateInstanceCapacityAfterLostAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		hidden time.Duration
		want   error // nil: the machine is adopted
	}{
		{"listed: adopted", 0, nil},
		{"not listed yet: outcome unknown", time.Hour, provider.ErrOutcomeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := memdriver.New()
			mem.UniqueNames = true // the create is repeated (Hetzner)
			mem.Hidden = tc.hidden
			mem.LoseCreate = 1
			n := 0
			mem.Refuse = func(*driver.CreateInput) error {
				if n++; n == 2 {
					return noRoom()
				}
				return nil
			}
			p := fastMem(t, mem)
			req := failoverReq("web-1")
			req.Region, req.Size = "fsn1", "cx22"
			inst, err := p.CreateInstance(context.Background(), req)
			if tc.want == nil {
				if err != nil || len(mem.Live()) != 1 || inst.ID != mem.Live()[0].ID {
					t.Fatalf("got %v, %v; want the machine the lost answer made", inst, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || errors.Is(err, provider.ErrCapacity) {
				t.Fatalf("err = %v; want %v and not ErrCapacity", err, tc.want)
			}
			if !strings.Contains(err.Error(), "refused for capacity") {
				t.Errorf("the error does not say what the cloud answered: %v", err)
			}
		})
	}
}

// Two placements whose earlier creates may each have made the machine
// cannot be tried without risking two: the failover makes none.
func TestCreateWithFailoverTwoUnsure(t *testing.T) {
	t.Parallel()
	mem := memdriver.New()
	mem.Hidden = time.Hour // nothing is listed: every lost answer stays unknown
	p := fastMem(t, mem)
	ctx := context.Background()
	for _, region := range []string{"fsn1", "nbg1"} {
		mem.LoseCreate = 1
		req := failoverReq("web-1")
		req.Region, req.Size = region, "cx22"
		if _, err := p.CreateInstance(ctx, req); !errors.Is(err, provider.ErrOutcomeUnknown) {
			t.Fatalf("lost create in %s: %v, want ErrOutcomeUnknown", region, err)
		}
	}
	creates := mem.Creates()
	_, err := provider.CreateWithFailover(ctx, failoverReq("web-1"), provider.Grid(p, []string{"fsn1", "nbg1", "hel1"}, []string{"cx22"}))
	if !errors.Is(err, provider.ErrOutcomeUnknown) || mem.Creates() != creates {
		t.Fatalf("failover over two unsure placements: %v, %d more creates; want ErrOutcomeUnknown and none", err, mem.Creates()-creates)
	}
	if !strings.Contains(err.Error(), "fsn1") || !strings.Contains(err.Error(), "nbg1") {
		t.Errorf("the error does not name the unsure placements: %v", err)
	}
}
