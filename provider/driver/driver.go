// Package driver is the contract a spuff cloud driver implements, and the
// few helpers a driver author needs. Users of spuff never import it: they
// use package provider, whose one implementation of provider.Provider runs
// every rule over a Driver — validation, ownership labels, the exactly-once
// create protocol, retries, pacing under the account's rate limit, waiting,
// snapshot waiting and cleanup, destroy idempotency, cancellation and error
// wrapping — so that a driver is translation between its SDK and the types
// of this package, and nothing else (as gocloud.dev's blob/driver and
// database/sql/driver are to their portable packages).
//
// A driver registers an Opener with provider.Register in its init function.
// provider.Open builds the Settings (the caller's credentials, endpoint and
// an HTTP client paced under the account's rate limit), calls Open, and
// wraps the Driver it returns.
//
// # What a Driver method does
//
// Each method makes the SDK calls of one step, once: no retry (the portable
// layer retries what is safe to repeat), no waiting (it waits), no
// validation beyond the cloud's own rules (CheckRequest, CheckID). Errors
// are *Error values of the right Kind (FromStatus, Invalid, NotFound,
// Lost), wrapping the SDK's error, or the raw error of a request that got no
// answer; the portable layer adds the provider, the operation and the
// resource. An error found before any request was sent must be an *Error
// of its kind (KindInvalidConfig, say): an error of no kind from a call
// that changes something counts as "the change may have been made".
//
// Optional interfaces (Snapshotter, Orphaner, Cataloger) are detected by
// type assertion, like database/sql/driver's; a Driver without one makes
// the portable layer answer ErrNotSupported.
//
// Conformance: providertest.Run checks every rule against a Driver served
// by a simulated cloud; a new driver passes it before it is done.
package driver

import (
	"context"
	"net/http"
	"net/netip"
	"time"
)

// Opener builds a Driver. Drivers register one with provider.Register.
type Opener interface {
	// Open builds the driver from s. It must not make network calls that
	// can hang (it may check settings); credentials found missing give an
	// *Error of KindAuthentication naming the environment variable to set.
	Open(ctx context.Context, s *Settings) (Driver, error)
}

// OpenerFunc adapts a function to an Opener.
type OpenerFunc func(ctx context.Context, s *Settings) (Driver, error)

// Open calls f.
func (f OpenerFunc) Open(ctx context.Context, s *Settings) (Driver, error) { return f(ctx, s) }

// Driver is one cloud account seen through its SDK. Implementations are
// safe for concurrent use.
type Driver interface {
	// Info describes the cloud's fixed properties. It is called once,
	// after Open.
	Info() Info

	// CheckRequest checks r against the cloud's own rules beyond the
	// common ones (which the portable layer checked): no network. A
	// violation is an *Error of KindInvalidConfig naming its field
	// (Invalid).
	CheckRequest(r *Request) error

	// CheckID reports whether id can be the ID of a resource
	// ("instance" or "snapshot") of this cloud, by its format alone: no
	// network. It returns nil or an *Error whose Message says what an ID
	// looks like.
	CheckID(resource, id string) error

	// Prepare resolves what creating r needs to read from the cloud: an
	// image ID for the size's architecture, SSH key IDs, a server type.
	// Reads only; the portable layer retries it and calls it once per
	// create call, so every attempt of one call sends the same
	// parameters. Its result is handed to Create as CreateInput.Plan. A
	// reference that does not resolve is an *Error of KindInvalidConfig
	// naming the field.
	Prepare(ctx context.Context, r *Request) (any, error)

	// Create asks the cloud for one machine, once. in.Labels are every
	// label the machine must carry (the ownership label and the request's
	// key among them), set at creation; in.Token is the create call's
	// idempotency token, which a cloud with native idempotency
	// (Info.NativeIdempotency) is given. A machine name taken on a cloud
	// with unique names is an *Error of KindConflict.
	Create(ctx context.Context, in *CreateInput) (*Instance, error)

	// Get returns the machine, or an *Error of KindNotFound. A machine
	// being destroyed is returned with StateDestroying, a terminated
	// one (EC2) with StateGone.
	Get(ctx context.Context, id string) (*Instance, error)

	// List returns one page of the machines matching q, and the token of
	// the next page ("" after the last). It may return machines that do
	// not match q (the portable layer filters), but never leaves out one
	// the cloud lists that does. page is "" for the first page.
	List(ctx context.Context, q Query, page string) ([]*Instance, string, error)

	// Delete asks the cloud to destroy the machine. An *Error of
	// KindNotFound means it is already gone.
	Delete(ctx context.Context, id string) error

	// Keys returns the account's SSH keys.
	Keys(ctx context.Context) ([]*Key, error)

	// As sets target to the driver's SDK client when target is a pointer
	// to its type, and reports whether it did.
	As(target any) bool
}

// Snapshotter is implemented by a Driver whose cloud makes snapshots.
type Snapshotter interface {
	// CheckSnapshot checks a snapshot name against the cloud's rules: no
	// network. A violation is an *Error of KindInvalidConfig naming the
	// field "name".
	CheckSnapshot(name string) error

	// StartSnapshot asks the cloud to snapshot a machine, once, and
	// returns at once with the snapshot as far as it is known (pending).
	// The snapshot carries in.Labels as early as the cloud allows: at
	// creation where it can (Hetzner, EC2), else in a form ListSnapshots
	// still finds (DigitalOcean: in its name until it can be tagged). A
	// snapshot name taken on a cloud that keeps names unique (EC2's AMI
	// names) is an *Error of KindConflict.
	StartSnapshot(ctx context.Context, in *SnapshotInput) (*Snapshot, error)

	// PollSnapshot reads how far a snapshot StartSnapshot or
	// ListSnapshots returned has got, and does what the cloud needs once
	// it is made (DigitalOcean: find the image its action made, tag it).
	// Safe to repeat. A snapshot that failed is returned with
	// SnapshotFailed and the cloud's reason in Message.
	PollSnapshot(ctx context.Context, s *Snapshot) (*Snapshot, error)

	// ListSnapshots is List for snapshots: one page of those matching q,
	// pending ones included where the cloud lists them.
	ListSnapshots(ctx context.Context, q Query, page string) ([]*Snapshot, string, error)

	// DeleteSnapshot deletes the snapshot and the storage behind it (the
	// EBS snapshots of an AMI). An *Error of KindNotFound means it is
	// already gone.
	DeleteSnapshot(ctx context.Context, id string) error
}

// Orphaner is implemented by a Driver whose cloud can leave storage
// behind a deleted snapshot (EC2: the EBS snapshots of a deregistered
// AMI, billed until deleted).
type Orphaner interface {
	// Orphans lists the storage carrying all of labels whose snapshot is
	// gone.
	Orphans(ctx context.Context, labels map[string]string) ([]*Snapshot, error)
	// DeleteOrphan deletes it; an *Error of KindNotFound means it is
	// already gone.
	DeleteOrphan(ctx context.Context, id string) error
}

// Info is what the portable layer needs to know of a cloud.
type Info struct {
	// Name is the provider's registered name ("digitalocean").
	Name string
	// Account identifies the account the driver acts for, for the rate
	// limit budget every Provider of the same account shares: build it
	// with AccountKey (never the credential itself).
	Account string
	// RateLimits are the cloud's published limits per account.
	RateLimits []RateLimit
	// RequestClass, if set, names the rate-limit class of an API request
	// (EC2: the action's bucket; DigitalOcean: "keys" for its key
	// listing), for RateLimits with a Class.
	RequestClass func(req *http.Request) string

	// NativeIdempotency reports that the cloud deduplicates creates by
	// CreateInput.Token (EC2's ClientToken): repeating Create with the
	// same token and parameters makes no second machine.
	NativeIdempotency bool
	// UniqueNames reports that the cloud refuses a second machine of the
	// same name (Hetzner): Create then fails with KindConflict, and a
	// machine of that name is found by List with Query.Name whoever owns
	// it.
	UniqueNames bool

	// ExpectedBoot is the cloud's typical time from create to running
	// with a public IP, the prior the wait schedule starts from.
	ExpectedBoot time.Duration
	// ExpectedSnapshot is the typical time a snapshot takes.
	ExpectedSnapshot time.Duration

	// IPv6 reports that machines get a public IPv6 address.
	IPv6 bool
	// SSHKeys reports that Keys works and Request.SSHKeys are installed.
	SSHKeys bool
	// UserData reports that Request.UserData reaches the machine.
	UserData bool
	// MaxUserDataBytes is the largest user data the cloud accepts, 0 for
	// no limit of its own.
	MaxUserDataBytes int
	// UserDataUTF8 requires user data to be valid UTF-8 (clouds that
	// carry it in JSON).
	UserDataUTF8 bool
	// MaxLabelValue is the longest label value the cloud takes, 0 for the
	// portable limit.
	MaxLabelValue int
}

// Request is a validated request for one machine, as the caller made it
// (the portable layer has checked the common rules).
type Request struct {
	// Name, Region and Size are the caller's.
	Name, Region, Size string
	// Image is the image to boot.
	Image Image
	// UserData is the cloud-init script, if any. Never log it.
	UserData string
	// SSHKeys are the caller's key references (IDs, names or
	// fingerprints).
	SSHKeys []string
	// Labels are the caller's labels (without the portable layer's own).
	Labels map[string]string
	// ExpiresAt is when the machine expires (the caller's TTL from now),
	// zero for none. The portable layer labels the machine with it; a
	// driver whose cloud lets a machine end itself without credentials
	// (EC2's instance-initiated shutdown behaviour "terminate") arranges
	// that too.
	ExpiresAt time.Time
}

// Image kinds, as provider.ImageKind spells them.
const (
	ImageUbuntu   = "ubuntu"
	ImageDebian   = "debian"
	ImageCustom   = "custom"
	ImageSnapshot = "snapshot"
)

// Image names an image portably: Kind is ImageUbuntu, ImageDebian,
// ImageCustom or ImageSnapshot, Value the version, image ID or snapshot ID.
type Image struct {
	Kind, Value string
}

// CreateInput is what Create sends.
type CreateInput struct {
	// Request is the validated request.
	Request *Request
	// Plan is what Prepare returned for it.
	Plan any
	// Labels are every label the machine carries.
	Labels map[string]string
	// Token is the create call's idempotency token: at most 64 ASCII
	// letters and digits, the same for every attempt of one call.
	Token string
}

// SnapshotInput is what StartSnapshot sends.
type SnapshotInput struct {
	// InstanceID is the machine to snapshot.
	InstanceID string
	// Name is the snapshot's name.
	Name string
	// Labels are every label the snapshot carries.
	Labels map[string]string
	// Token is the call's idempotency token (as CreateInput.Token).
	Token string
}

// Query selects machines or snapshots.
type Query struct {
	// Name, when set, is the exact name.
	Name string
	// InstanceID, when set, is the machine a snapshot was made from; a
	// snapshot driver then also returns the snapshot jobs in progress on
	// it whose labels the cloud cannot show yet (with no Labels).
	InstanceID string
	// Labels, when set, must all be carried.
	Labels map[string]string
}

// State is a machine's state, as the portable layer reads it.
type State int

// The states of a machine.
const (
	// StateUnknown maps to none of the others (RawState says what).
	StateUnknown State = iota
	// StatePending is being created or booting.
	StatePending
	// StateRunning is running.
	StateRunning
	// StateOff is powered off.
	StateOff
	// StateStopped is stopped or archived.
	StateStopped
	// StateDestroying has been asked to go and is still shown (EC2's
	// shutting-down, Hetzner's deleting, a droplet read just after its
	// DELETE).
	StateDestroying
	// StateGone is destroyed but still shown (EC2's terminated).
	StateGone
)

// Instance is a machine as the cloud shows it.
type Instance struct {
	// ID is the cloud's identifier.
	ID string
	// Name is the machine's name.
	Name string
	// State is the portable state; RawState the cloud's word for it.
	State    State
	RawState string
	// IPv4 and IPv6 are the public addresses, the zero Addr while none.
	IPv4, IPv6 netip.Addr
	// Region and Size are the region (or zone) and size the cloud reports.
	Region, Size string
	// Labels are every label the machine carries, the portable layer's
	// own included.
	Labels map[string]string
	// CreatedAt is when the cloud made it.
	CreatedAt time.Time
}

// SnapshotState is how far a snapshot has got.
type SnapshotState int

// The states of a snapshot.
const (
	// SnapshotPending is being made.
	SnapshotPending SnapshotState = iota
	// SnapshotAvailable is usable.
	SnapshotAvailable
	// SnapshotFailed failed; Snapshot.Message says why.
	SnapshotFailed
)

// Snapshot is a snapshot as the cloud shows it.
type Snapshot struct {
	// ID is the snapshot's identifier, "" while only the job making it is
	// known (a DigitalOcean snapshot action).
	ID string
	// Job is the driver's handle of the job making the snapshot, when the
	// cloud has one apart from the snapshot (a DigitalOcean action ID).
	Job string
	// InstanceID is the machine it was made from, when known.
	InstanceID string
	// Name is its name.
	Name string
	// State is how far it has got; Progress a percentage when the cloud
	// says; Message the cloud's reason for a failure.
	State    SnapshotState
	Progress int
	Message  string
	// Labels are every label it carries.
	Labels map[string]string
	// SizeGB is its stored size, 0 when unknown.
	SizeGB float64
	// CreatedAt is when it was made, zero when unknown.
	CreatedAt time.Time
}

// Key is an SSH key of the account.
type Key struct {
	// ID, Name, Fingerprint and PublicKey are as the cloud reports them.
	ID, Name, Fingerprint, PublicKey string
}
