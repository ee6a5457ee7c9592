// Package memdriver is an in-memory driver.Driver: machines that exist as
// soon as they are made and run at once, snapshots that are usable at
// once, and hooks to lose an answer or hide a machine from listings. It
// shows how small the driver contract is, and lets package provider's
// tests drive the portable layer's protocol without a simulated cloud.
package memdriver

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/spuffgo/spuff/provider/driver"
)

// Driver is the in-memory driver. The zero value is not usable: use New.
type Driver struct {
	mu        sync.Mutex
	seq       int
	machines  map[string]*driver.Instance
	snapshots map[string]*driver.Snapshot
	creates   int
	calls     int
	catalogs  int

	// LoseCreate, when > 0, makes that many next Creates make their
	// machine and then fail as a lost answer.
	LoseCreate int
	// FailCreate, when set, is returned by the next Create, which makes
	// nothing.
	FailCreate error
	// Refuse, when set, is asked by every Create before anything else
	// (with the driver's lock held: it must not call the driver); an
	// error it returns is Create's, and nothing is made. Tests refuse a
	// placement for capacity with it.
	Refuse func(in *driver.CreateInput) error
	// Catalogue, when set, is what Catalog returns (see catalog.go).
	Catalogue *driver.Catalog
	// Hidden makes machines absent from List for this long after their
	// creation (a listing that lags).
	Hidden time.Duration
	// UniqueNames and NativeIdempotency are reported in Info (and
	// honoured: a second live machine of a name is a conflict; a repeated
	// token returns the machine it made).
	UniqueNames, NativeIdempotency bool

	tokens map[string]string // token -> machine ID
}

// New returns an empty in-memory cloud.
func New() *Driver {
	return &Driver{machines: map[string]*driver.Instance{}, snapshots: map[string]*driver.Snapshot{}, tokens: map[string]string{}}
}

// Opener opens d itself.
func (d *Driver) Opener() driver.Opener {
	return driver.OpenerFunc(func(context.Context, *driver.Settings) (driver.Driver, error) { return d, nil })
}

var (
	_ driver.Driver      = (*Driver)(nil)
	_ driver.Snapshotter = (*Driver)(nil)
)

// Info reports a fast cloud.
func (d *Driver) Info() driver.Info {
	return driver.Info{Name: "mem", Account: fmt.Sprintf("mem-%p", d), ExpectedBoot: time.Millisecond,
		ExpectedSnapshot: time.Millisecond, UniqueNames: d.UniqueNames, NativeIdempotency: d.NativeIdempotency,
		SSHKeys: true, UserData: true}
}

// Creates returns how many Create calls reached the cloud.
func (d *Driver) Creates() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.creates
}

// Calls returns how many calls of any kind reached the cloud.
func (d *Driver) Calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// Live returns the machines that are not destroyed.
func (d *Driver) Live() []driver.Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []driver.Instance
	for _, m := range d.machines {
		if m.State != driver.StateGone {
			out = append(out, *m)
		}
	}
	return out
}

// Add puts a machine in the cloud as someone else made it.
func (d *Driver) Add(in driver.Instance) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	in.ID = strconv.Itoa(d.seq)
	in.Labels = maps.Clone(in.Labels)
	if in.CreatedAt.IsZero() {
		in.CreatedAt = time.Now()
	}
	d.machines[in.ID] = &in
	return in.ID
}

// CheckRequest accepts everything.
func (d *Driver) CheckRequest(*driver.Request) error { return nil }

// CheckID accepts positive numbers.
func (d *Driver) CheckID(_, id string) error {
	if n, err := strconv.Atoi(id); err != nil || n < 1 {
		return driver.Errorf(driver.KindInvalidConfig, "an ID is a positive number")
	}
	return nil
}

// Prepare resolves nothing.
func (d *Driver) Prepare(context.Context, *driver.Request) (any, error) { return nil, nil }

// Create makes a running machine.
func (d *Driver) Create(_ context.Context, in *driver.CreateInput) (*driver.Instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	d.creates++
	if d.Refuse != nil {
		if err := d.Refuse(in); err != nil {
			return nil, err
		}
	}
	if err := d.FailCreate; err != nil {
		d.FailCreate = nil
		return nil, err
	}
	if d.NativeIdempotency {
		if id, ok := d.tokens[in.Token]; ok {
			c := *d.machines[id]
			return &c, nil
		}
	}
	if d.UniqueNames {
		for _, m := range d.machines {
			if m.Name == in.Request.Name && m.State != driver.StateGone {
				return nil, &driver.Error{Kind: driver.KindConflict, Status: 409, Code: "uniqueness_error", Message: "name taken"}
			}
		}
	}
	d.seq++
	m := &driver.Instance{ID: strconv.Itoa(d.seq), Name: in.Request.Name, State: driver.StateRunning, RawState: "running",
		IPv4: netip.AddrFrom4([4]byte{198, 18, 0, byte(d.seq)}), Region: in.Request.Region, Size: in.Request.Size,
		Labels: maps.Clone(in.Labels), CreatedAt: time.Now()}
	d.machines[m.ID] = m
	d.tokens[in.Token] = m.ID
	if d.LoseCreate > 0 {
		d.LoseCreate--
		return nil, driver.Lost("answer lost", nil)
	}
	c := *m
	return &c, nil
}

// Get reads a machine.
func (d *Driver) Get(_ context.Context, id string) (*driver.Instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	m, ok := d.machines[id]
	if !ok || m.State == driver.StateGone {
		return nil, driver.NotFound("no machine " + id)
	}
	c := *m
	c.Labels = maps.Clone(m.Labels)
	return &c, nil
}

// List returns every matching machine in one page.
func (d *Driver) List(_ context.Context, q driver.Query, _ string) ([]*driver.Instance, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	var out []*driver.Instance
	for _, m := range d.machines {
		if m.State == driver.StateGone || time.Since(m.CreatedAt) < d.Hidden || (q.Name != "" && m.Name != q.Name) {
			continue
		}
		c := *m
		c.Labels = maps.Clone(m.Labels)
		out = append(out, &c)
	}
	return out, "", nil
}

// Delete destroys a machine.
func (d *Driver) Delete(_ context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	m, ok := d.machines[id]
	if !ok || m.State == driver.StateGone {
		return driver.NotFound("no machine " + id)
	}
	m.State = driver.StateGone
	return nil
}

// Keys returns one key.
func (d *Driver) Keys(context.Context) ([]*driver.Key, error) {
	return []*driver.Key{{ID: "1", Name: "me", Fingerprint: "SHA256:mem"}}, nil
}

// As reaches the Driver itself.
func (d *Driver) As(target any) bool {
	if t, ok := target.(**Driver); ok {
		*t = d
		return true
	}
	return false
}

// CheckSnapshot accepts any non-empty name.
func (d *Driver) CheckSnapshot(name string) error {
	if name == "" {
		return driver.Invalid("name", "empty")
	}
	return nil
}

// StartSnapshot makes a usable snapshot.
func (d *Driver) StartSnapshot(_ context.Context, in *driver.SnapshotInput) (*driver.Snapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	d.seq++
	s := &driver.Snapshot{ID: strconv.Itoa(d.seq), InstanceID: in.InstanceID, Name: in.Name, State: driver.SnapshotAvailable,
		Labels: maps.Clone(in.Labels), CreatedAt: time.Now()}
	d.snapshots[s.ID] = s
	c := *s
	return &c, nil
}

// PollSnapshot reads a snapshot.
func (d *Driver) PollSnapshot(_ context.Context, s *driver.Snapshot) (*driver.Snapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	m, ok := d.snapshots[s.ID]
	if !ok {
		return nil, driver.NotFound("no snapshot " + s.ID)
	}
	c := *m
	return &c, nil
}

// ListSnapshots returns every snapshot in one page.
func (d *Driver) ListSnapshots(_ context.Context, q driver.Query, _ string) ([]*driver.Snapshot, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	var out []*driver.Snapshot
	for _, s := range d.snapshots {
		if q.Name == "" || s.Name == q.Name {
			c := *s
			out = append(out, &c)
		}
	}
	return out, "", nil
}

// DeleteSnapshot deletes a snapshot.
func (d *Driver) DeleteSnapshot(_ context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if _, ok := d.snapshots[id]; !ok {
		return driver.NotFound("no snapshot " + id)
	}
	delete(d.snapshots, id)
	return nil
}
