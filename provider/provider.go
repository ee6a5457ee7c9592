package provider

import (
	"context"
	"maps"
	"net/netip"
	"time"
)

// Provider creates, watches, snapshots and destroys machines on one cloud
// account. Every network method takes a context first and returns promptly
// once it is cancelled. Implementations are safe for concurrent use.
//
// Errors returned by a Provider are *Error values (or wrap one), so callers
// classify them with errors.Is against the sentinels of this package
// (ErrNotFound, ErrRateLimit, ...) or with errors.As.
type Provider interface {
	// Name returns the name the provider is registered under, such as
	// "digitalocean".
	Name() string

	// Capabilities reports what this provider can do. Methods behind a
	// capability that is false return an error matching ErrNotSupported.
	Capabilities() Capabilities

	// CreateInstance validates req before any network call, creates the
	// machine labelled as managed by spuff plus req.Labels, and returns it,
	// possibly still booting. Retrying a create with the same request never
	// leaves two machines, and a machine of the same name with other
	// settings is an ErrConflict naming it in Error.Existing, never adopted
	// nor touched. If the create fails after this call made a machine, the
	// error names it in Error.Leftover (see the package's exactly-once
	// protocol).
	CreateInstance(ctx context.Context, req InstanceRequest) (*Instance, error)

	// DestroyInstance asks the cloud to destroy the instance and returns
	// once it accepted: the machine may be shown for a while after, with
	// StatusDestroying. Destroying an instance that is already gone
	// succeeds; an ID that is not of the cloud's format is an error
	// matching ErrInvalidConfig naming the field "id".
	DestroyInstance(ctx context.Context, id string) error

	// GetInstance returns the instance with the given ID (with
	// StatusDestroying while it is being destroyed), or an error matching
	// ErrNotFound (also for an ID not of the cloud's format).
	GetInstance(ctx context.Context, id string) (*Instance, error)

	// ListInstances returns every live instance managed by spuff on this
	// account (all pages), and only those: machines being destroyed are
	// left out.
	ListInstances(ctx context.Context) ([]*Instance, error)

	// WaitReady returns the instance once it is running and has a public IP.
	// It is bounded by ProviderTimeouts.InstanceReady and ctx; on timeout the
	// error matches ErrTimeout and names the last state seen.
	WaitReady(ctx context.Context, id string) (*Instance, error)

	// CreateSnapshot snapshots the instance, waits until the snapshot is
	// usable, and returns it with its real ID, labelled as managed.
	// Repeating it (after a timeout, say) resumes the snapshot of the same
	// instance and name rather than making a second. A snapshot still being
	// made when the wait ends is left labelled as managed and named in
	// Error.Leftover; one that failed is deleted. An instance ID not of the
	// cloud's format matches ErrInvalidConfig.
	CreateSnapshot(ctx context.Context, instanceID, name string, opts ...SnapshotOption) (*Snapshot, error)

	// ListSnapshots returns the snapshots managed by spuff, and only those,
	// with their Status (being made, available or failed).
	ListSnapshots(ctx context.Context) ([]*Snapshot, error)

	// DeleteSnapshot deletes the snapshot and any storage behind it.
	// Deleting a snapshot that is already gone succeeds; an ID not of the
	// cloud's format matches ErrInvalidConfig.
	DeleteSnapshot(ctx context.Context, id string) error

	// ListSSHKeys returns the SSH keys registered on the account.
	ListSSHKeys(ctx context.Context) ([]*SSHKey, error)

	// As is the escape hatch to the driver's SDK: when target is a
	// pointer to the driver's client type (**godo.Client,
	// **hcloud.Client, **ec2.Client), it sets it and reports true. A
	// *Stats target gets the Provider's call counts.
	As(target any) bool
}

// Capabilities reports what a Provider supports.
type Capabilities struct {
	// Snapshots reports whether CreateSnapshot, ListSnapshots and
	// DeleteSnapshot work, and whether an ImageSpec of kind ImageSnapshot can
	// be restored.
	Snapshots bool
	// SSHKeys reports whether ListSSHKeys works and InstanceRequest.SSHKeys
	// are installed.
	SSHKeys bool
	// UserData reports whether InstanceRequest.UserData reaches the machine.
	UserData bool
	// IPv6 reports whether instances get a public IPv6 address.
	IPv6 bool
	// MaxUserDataBytes is the largest user data the cloud accepts, or 0 if
	// unknown.
	MaxUserDataBytes int
}

// Status is the portable lifecycle state of an instance. The cloud's own
// state is kept in Instance.RawStatus.
type Status int

// The portable instance states, as in the original spuff.
const (
	// StatusUnknown is a state that maps to none of the others (for example
	// EC2's "stopping"); Instance.RawStatus has the cloud's word for it.
	StatusUnknown Status = iota
	// StatusNew is a machine being created or booting.
	StatusNew
	// StatusActive is a running machine.
	StatusActive
	// StatusOff is a powered-off machine.
	StatusOff
	// StatusArchive is a stopped or archived machine.
	StatusArchive
	// StatusDestroying is a machine being destroyed: the cloud accepted
	// its deletion and still shows it for a while (EC2's shutting-down,
	// Hetzner's deleting). It is no longer live: ListInstances leaves it
	// out, and a create never adopts it.
	StatusDestroying
)

var statusNames = [...]string{"unknown", "new", "active", "off", "archive", "destroying"}

// String returns the lower-case name of the status ("active").
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return "unknown"
	}
	return statusNames[s]
}

// Instance is a machine as the provider last saw it.
type Instance struct {
	// ID is the cloud's identifier of the machine.
	ID string
	// Name is the machine's name (hostname).
	Name string
	// PublicIPv4 is the public IPv4 address; the zero Addr when none is
	// assigned yet.
	PublicIPv4 netip.Addr
	// PublicIPv6 is the public IPv6 address; the zero Addr when none.
	PublicIPv6 netip.Addr
	// Status is the portable state.
	Status Status
	// RawStatus is the cloud's own word for the state ("running", "new").
	RawStatus string
	// Region is the region, location or availability zone.
	Region string
	// Size is the size slug, server type or instance type.
	Size string
	// Labels are the caller's labels, without the ownership label.
	Labels map[string]string
	// CreatedAt is when the cloud created the machine.
	CreatedAt time.Time
	// ExpiresAt is when the machine expires (InstanceRequest.TTL after it
	// was made); zero for none.
	ExpiresAt time.Time
}

// Expired reports whether the instance has an expiry that is past at now.
func (i *Instance) Expired(now time.Time) bool {
	return i != nil && !i.ExpiresAt.IsZero() && !now.Before(i.ExpiresAt)
}

// Ready reports whether the instance is running and reachable: active, with
// a public IPv4 or IPv6 address.
func (i *Instance) Ready() bool {
	return i != nil && i.Status == StatusActive && (i.PublicIPv4.IsValid() || i.PublicIPv6.IsValid())
}

// IP returns the address to connect to: the public IPv4 address when there
// is one, else the public IPv6 address, else the zero Addr.
func (i *Instance) IP() netip.Addr {
	if i == nil {
		return netip.Addr{}
	}
	if i.PublicIPv4.IsValid() {
		return i.PublicIPv4
	}
	return i.PublicIPv6
}

// Clone returns a deep copy of the instance.
func (i *Instance) Clone() *Instance {
	if i == nil {
		return nil
	}
	c := *i
	c.Labels = maps.Clone(i.Labels)
	return &c
}

// Snapshot is a saved machine image made by CreateSnapshot.
type Snapshot struct {
	// ID is the cloud's identifier, usable in an ImageSpec of kind
	// ImageSnapshot.
	ID string
	// Name is the name given at creation.
	Name string
	// CreatedAt is when the snapshot was made; zero when the cloud does not
	// say.
	CreatedAt time.Time
	// SizeGB is the stored size in gigabytes; 0 when the cloud does not say.
	SizeGB float64
	// Labels are the caller-visible labels, without the ownership label.
	Labels map[string]string
	// Status says whether the snapshot is usable yet.
	Status SnapshotStatus
	// ExpiresAt is when the snapshot expires (SnapshotTTL); zero for none.
	ExpiresAt time.Time
}

// A SnapshotOption tunes CreateSnapshot.
type SnapshotOption func(*snapshotOptions)

type snapshotOptions struct {
	ttl time.Duration
}

// SnapshotTTL gives the snapshot an expiry (as InstanceRequest.TTL), which
// Reap acts on. 0 means none.
func SnapshotTTL(d time.Duration) SnapshotOption {
	return func(o *snapshotOptions) { o.ttl = d }
}

// Clone returns a deep copy of the snapshot.
func (s *Snapshot) Clone() *Snapshot {
	if s == nil {
		return nil
	}
	c := *s
	c.Labels = maps.Clone(s.Labels)
	return &c
}

// SnapshotStatus says how far a snapshot has got.
type SnapshotStatus int

// The states of a snapshot.
const (
	// SnapshotAvailable is a usable snapshot.
	SnapshotAvailable SnapshotStatus = iota
	// SnapshotPending is a snapshot still being made.
	SnapshotPending
	// SnapshotFailed is a snapshot the cloud failed to make.
	SnapshotFailed
)

var snapshotStatusNames = [...]string{"available", "pending", "failed"}

// String returns the lower-case name of the status ("available").
func (s SnapshotStatus) String() string {
	if s < 0 || int(s) >= len(snapshotStatusNames) {
		return "unknown"
	}
	return snapshotStatusNames[s]
}

// SSHKey is a public key registered on the cloud account.
type SSHKey struct {
	// ID is the cloud's identifier (a number on DigitalOcean and Hetzner, the
	// key pair name on AWS).
	ID string
	// Name is the key's display name.
	Name string
	// Fingerprint is the key's fingerprint as the cloud reports it.
	Fingerprint string
	// PublicKey is the public key in OpenSSH format, when the cloud returns it.
	PublicKey string
}
