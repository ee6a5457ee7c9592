// Package simcloud is the model behind spuff's simulated clouds: accounts,
// machines that boot after a delay and get public IPs, snapshots that take
// time, SSH keys, labels, per-account rate limits, capacity, and faults
// injected on demand. The cloud dialects (providertest/dosim, hcloudsim,
// ec2sim) serve one Cloud over HTTP in each provider's real wire format, so
// the official SDKs run against it unmodified.
//
// # Worlds and time
//
// Every behaviour is an Options field whose zero value is the World's
// default. The simple world (today's default, see DefaultWorld) is fast and
// forgiving; the realistic world (Realistic, or Options.World) is the
// clouds as they behave in production, each number taken from the cloud's
// documentation or, where none is published, marked as an estimate. Every
// duration is cloud time, multiplied by Options.TimeScale into wall-clock
// time, so a test runs a realistic world at 1/100 of real time and every
// delay, window and rate keeps its proportion.
//
// A Cloud holds no global state: every test makes its own. It is
// deterministic given Options.Seed (fault draws, boot jitter, late IPs,
// failing snapshots), and inspectable: API calls per operation, live
// resources, duplicates and faults injected, so tests can assert on them.
package simcloud

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Op names an API operation, for counting calls and targeting faults.
// Dialects map their routes to these.
type Op string

// The operations every dialect maps its routes to.
const (
	OpCreateInstance Op = "CreateInstance"
	OpGetInstance    Op = "GetInstance"
	OpListInstances  Op = "ListInstances"
	OpDeleteInstance Op = "DeleteInstance"
	OpCreateSnapshot Op = "CreateSnapshot"
	OpGetImage       Op = "GetImage"
	OpListImages     Op = "ListImages"
	OpDeleteImage    Op = "DeleteImage"
	OpDeleteVolume   Op = "DeleteVolumeSnapshot"
	OpListVolumes    Op = "ListVolumeSnapshots"
	OpGetAction      Op = "GetAction"
	OpListSSHKeys    Op = "ListSSHKeys"
	OpTag            Op = "Tag"
	OpCatalog        Op = "Catalog" // regions, sizes, server types, locations
	OpOther          Op = "Other"
)

// Size is an entry of the size catalogue.
type Size struct {
	// Arch is "x86_64" or "arm64".
	Arch string
	// VCPUs, MemoryMB and DiskGB describe the size.
	VCPUs    int
	MemoryMB int
	DiskGB   int
}

// Capacity bounds how many machines a placement holds at once (live or
// being destroyed): past it, creates there fail with CodeCapacity, as real
// clouds refuse when a region runs out of a size.
type Capacity struct {
	// Region and Size name the placement; empty matches any.
	Region, Size string
	// Max is the number of machines the placement holds; 0 holds none.
	Max int
}

func (p Capacity) matches(region, size string) bool {
	return (p.Region == "" || p.Region == region) && (p.Size == "" || p.Size == size)
}

// Options configure a Cloud. Each field's zero value is the default of the
// World; durations are cloud time, scaled by TimeScale. In the simple world
// machines boot in 100 ms, snapshots take 100 ms, destroy is instant, and
// there is no rate limit, quota or capacity bound.
type Options struct {
	// Seed makes fault draws, boot jitter, late IPs and failing snapshots
	// reproducible.
	Seed uint64
	// World picks the defaults of the fields left zero: WorldDefault is
	// DefaultWorld.
	World World
	// TimeScale converts cloud time into wall-clock time: every duration of
	// the options and of faults is multiplied by it, and rates divided.
	// 0 means 1 (real time); tests use 1/100 or less.
	TimeScale float64

	// BootDelay is the time from create to running; default 100 ms, 30 s in
	// the realistic world (each dialect sets its cloud's: an estimate of
	// observed boot times, none is published).
	BootDelay time.Duration
	// BootJitter spreads boot times by ±this fraction; default 0, 0.3 in
	// the realistic world.
	BootJitter float64
	// IPFraction is the fraction of the boot after which the public IP is
	// assigned; default 0.7 (the IP shows up shortly before "running").
	IPFraction float64
	// LateIPFraction is the share of machines that are reported running
	// for a while before their public IP shows (the clouds assign the
	// address asynchronously; none publishes how often it lags); default 0,
	// 0.05 in the realistic world, an estimate. Negative is off.
	LateIPFraction float64
	// LateIPDelay is how long after running such a machine gets its IP;
	// default 10 s in the realistic world (an estimate). Negative is off.
	LateIPDelay time.Duration

	// SnapshotDelay is the time a snapshot takes to become usable; default
	// 100 ms, minutes in the realistic world (each dialect sets its
	// cloud's: EC2's AMIs and DigitalOcean's snapshots take several
	// minutes, Hetzner's about one; estimates).
	SnapshotDelay time.Duration
	// SnapshotJitter spreads snapshot times by ±this fraction; default 0,
	// 0.5 in the realistic world. Negative is off.
	SnapshotJitter float64
	// SnapshotFailRate is the probability that a snapshot stays pending for
	// its delay and then fails (EC2 AMIs go "pending" then "failed"); the
	// dialects' realistic defaults are small. Negative is off.
	SnapshotFailRate float64

	// ConsistencyDelay makes every new instance invisible to reads for this
	// long after create (EC2's eventual consistency: "InvalidInstanceID.
	// NotFound" right after RunInstances); default 0. Negative is off.
	ConsistencyDelay time.Duration
	// ListingDelay keeps a new instance out of listings (not GETs) for this
	// long after create, as list indexes lag behind the resource; default
	// 0. Negative is off.
	ListingDelay time.Duration
	// DestroyDelay is the time from a delete until the instance is gone:
	// meanwhile it is still read and listed, in state "deleting" (EC2
	// "shutting-down", Hetzner "deleting", a DigitalOcean droplet still
	// returned after its DELETE); default 0 (instant), 10 s in the
	// realistic world (each dialect sets its cloud's). Negative is off.
	DestroyDelay time.Duration
	// Retention keeps deleted instances visible (as terminated) for this
	// long after they are gone, as EC2 does for about an hour; dialects
	// that want it use LookupInstance. Default 0.
	Retention time.Duration

	// RateLimits are per-account (and per-scope, see Call) windows; none
	// means unlimited.
	RateLimits []RateLimit
	// Buckets are named token buckets the dialect charges calls to (see
	// Charge): EC2's per-action request buckets and resource buckets.
	Buckets map[string]RateLimit
	// RetryAfter is how 429s carry Retry-After.
	RetryAfter RetryAfterStyle

	// MaxInstances is the account's machine quota; 0 means unlimited.
	MaxInstances int
	// MaxSnapshots is the account's snapshot quota; 0 means unlimited.
	MaxSnapshots int
	// Capacity bounds placements (see Capacity and SetCapacity); a create
	// must fit every entry that matches it. None means endless capacity.
	Capacity []Capacity
	// DisabledRegions take no new machines (CodeRegionDisabled), as
	// Hetzner's "server location disabled".
	DisabledRegions []string

	// UniqueNames makes creates with the name of a live instance fail with
	// CodeConflict (Hetzner's rule).
	UniqueNames bool
	// LockActions makes a machine with a running action (its boot, a
	// snapshot, its delete) refuse deletes and snapshots with CodeLocked,
	// as Hetzner answers "locked" (HTTP 423). Auto is off: the dialect
	// whose cloud does it turns it on in the realistic world.
	LockActions Switch
	// StrictClientTokens makes a reused client token with any other
	// parameter (InstanceSpec.Params: image, type, key, user data, tags,
	// subnet, counts…) fail with CodeIdempotency, as EC2 documents;
	// otherwise only name, size, image and region are compared. Auto is on
	// in the realistic world.
	StrictClientTokens Switch
	// RegionalImages publishes one copy of each catalogue image per region,
	// with an ID of its own, as EC2's AMIs (the dialect reads it). Auto is
	// on in the realistic world.
	RegionalImages Switch

	// Regions and Sizes are the catalogue creates are checked against;
	// empty means anything goes.
	Regions []string
	Sizes   map[string]Size
	// Tokens are the accepted credentials (API tokens, AWS access key IDs).
	// Empty means one random token is made; see Cloud.Token.
	Tokens []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Instance is a simulated machine. Values returned by a Cloud are copies.
type Instance struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Region      string            `json:"region"`
	Size        string            `json:"size"`
	Arch        string            `json:"arch"`
	ImageID     int64             `json:"image_id"`
	UserData    string            `json:"user_data,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	SSHKeyIDs   []int64           `json:"ssh_key_ids,omitempty"`
	ClientToken string            `json:"client_token,omitempty"`
	// Params is the dialect's canonical form of the request that made the
	// instance, compared when its client token is reused.
	Params string `json:"params,omitempty"`
	// Reservation is the ID of the first instance of the call that made it
	// (EC2's reservation); LaunchIndex its place in that call.
	Reservation int64      `json:"reservation,omitempty"`
	LaunchIndex int        `json:"launch_index,omitempty"`
	IPv4        netip.Addr `json:"ipv4"`
	IPv6        netip.Addr `json:"ipv6"`
	CreatedAt   time.Time  `json:"created_at"`
	IPAt        time.Time  `json:"ip_at"`
	ReadyAt     time.Time  `json:"ready_at"`
	VisibleAt   time.Time  `json:"visible_at"`
	// ListedAt is when listings start to show it (Options.ListingDelay).
	ListedAt time.Time `json:"listed_at,omitzero"`
	// BusyUntil is when its last running action ends (Options.LockActions).
	BusyUntil time.Time `json:"busy_until,omitzero"`
	// DeletedAt is when it was deleted; GoneAt when it stops existing
	// (DeletedAt plus Options.DestroyDelay).
	DeletedAt time.Time         `json:"deleted_at,omitzero"`
	GoneAt    time.Time         `json:"gone_at,omitzero"`
	Extra     map[string]string `json:"extra,omitempty"` // dialect-specific attributes (subnet, profile)
}

// The states of an instance, as State reports them.
const (
	StateNew      = "new"      // booting
	StateActive   = "active"   // running
	StateDeleting = "deleting" // deleted, not gone yet (Options.DestroyDelay)
	StateDeleted  = "deleted"  // gone
)

// gone is when the instance stops existing, or the zero time while live.
func (i *Instance) gone() time.Time {
	if i.DeletedAt.IsZero() || i.GoneAt.Before(i.DeletedAt) {
		return i.DeletedAt
	}
	return i.GoneAt
}

// State is the instance's state at now: StateNew, StateActive,
// StateDeleting or StateDeleted.
func (i *Instance) State(now time.Time) string {
	switch {
	case !i.DeletedAt.IsZero() && !now.Before(i.gone()):
		return StateDeleted
	case !i.DeletedAt.IsZero() && !now.Before(i.DeletedAt):
		return StateDeleting
	case now.Before(i.ReadyAt):
		return StateNew
	}
	return StateActive
}

// PublicIPv4 is the instance's public IPv4 at now, or the zero Addr before
// it is assigned and once the instance is gone.
func (i *Instance) PublicIPv4(now time.Time) netip.Addr {
	if now.Before(i.IPAt) || i.State(now) == StateDeleted {
		return netip.Addr{}
	}
	return i.IPv4
}

// PublicIPv6 is like PublicIPv4 for IPv6.
func (i *Instance) PublicIPv6(now time.Time) netip.Addr {
	if now.Before(i.IPAt) || i.State(now) == StateDeleted {
		return netip.Addr{}
	}
	return i.IPv6
}

// Busy reports whether an action is running on the instance at now (its
// boot, a snapshot or its delete).
func (i *Instance) Busy(now time.Time) bool { return now.Before(i.BusyUntil) }

func (i *Instance) clone() Instance {
	c := *i
	c.Labels = maps.Clone(i.Labels)
	c.SSHKeyIDs = slices.Clone(i.SSHKeyIDs)
	c.Extra = maps.Clone(i.Extra)
	return c
}

// ImageKind distinguishes catalogue images from snapshots.
type ImageKind string

// The kinds of Image.
const (
	ImageDistribution ImageKind = "distribution" // an official OS image
	ImageSnapshot     ImageKind = "snapshot"     // made from an instance
)

// Image is a bootable image: an official distribution image of the
// catalogue, or a snapshot of an instance.
type Image struct {
	ID           int64             `json:"id"`
	Kind         ImageKind         `json:"kind"`
	Name         string            `json:"name"`
	Slug         string            `json:"slug,omitempty"`
	Description  string            `json:"description,omitempty"`
	Distribution string            `json:"distribution,omitempty"`
	Version      string            `json:"version,omitempty"`
	Arch         string            `json:"arch,omitempty"`
	Owner        string            `json:"owner,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Regions      []string          `json:"regions,omitempty"`
	SizeGB       float64           `json:"size_gb,omitempty"`
	MinDiskGB    int               `json:"min_disk_gb,omitempty"`
	Source       int64             `json:"source,omitempty"`       // instance a snapshot was made from
	VolumeSnaps  []int64           `json:"volume_snaps,omitempty"` // EBS-like snapshots behind it
	CreatedAt    time.Time         `json:"created_at"`
	ReadyAt      time.Time         `json:"ready_at"`
	// Failed makes the image fail at ReadyAt instead of becoming usable.
	Failed    bool      `json:"failed,omitempty"`
	DeletedAt time.Time `json:"deleted_at,omitzero"`
}

// The states of an image, as ImageState reports them.
const (
	ImagePending   = "pending"
	ImageAvailable = "available"
	ImageFailed    = "failed"
)

// State is the image's state at now: ImagePending until ReadyAt, then
// ImageAvailable, or ImageFailed for a snapshot that failed.
func (m *Image) State(now time.Time) string {
	switch {
	case now.Before(m.ReadyAt):
		return ImagePending
	case m.Failed:
		return ImageFailed
	}
	return ImageAvailable
}

// Available reports whether the image is usable at now.
func (m *Image) Available(now time.Time) bool {
	return m.State(now) == ImageAvailable && m.DeletedAt.IsZero()
}

func (m *Image) clone() Image {
	c := *m
	c.Labels = maps.Clone(m.Labels)
	c.Regions = slices.Clone(m.Regions)
	c.VolumeSnaps = slices.Clone(m.VolumeSnaps)
	return c
}

// VolumeSnapshot is a block-storage snapshot behind an image (an EBS
// snapshot behind an AMI). It is billed until deleted.
type VolumeSnapshot struct {
	ID        int64             `json:"id"`
	ImageID   int64             `json:"image_id"`
	SizeGB    int               `json:"size_gb"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	ReadyAt   time.Time         `json:"ready_at"`
	Failed    bool              `json:"failed,omitempty"`
	DeletedAt time.Time         `json:"deleted_at,omitzero"`
}

// SSHKey is an SSH public key of the account.
type SSHKey struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	PublicKey   string `json:"public_key"`
	// PrivateKey is the PEM private key of a key pair the cloud generated
	// (EC2's CreateKeyPair; EC2 fingerprints those differently), empty for
	// an imported public key.
	PrivateKey string `json:"private_key,omitempty"`
}

// Action is an asynchronous operation (create, delete, snapshot), as
// DigitalOcean and Hetzner expose them.
type Action struct {
	ID           int64     `json:"id"`
	Type         string    `json:"type"`
	ResourceID   int64     `json:"resource_id"`
	ResourceType string    `json:"resource_type"`
	StartedAt    time.Time `json:"started_at"`
	DoneAt       time.Time `json:"done_at"`
	Failed       bool      `json:"failed,omitempty"`
}

// Done reports whether the action has finished at now.
func (a *Action) Done(now time.Time) bool { return !now.Before(a.DoneAt) }

// Progress is the action's progress at now, 0 to 100.
func (a *Action) Progress(now time.Time) int {
	if a.Done(now) {
		return 100
	}
	total := a.DoneAt.Sub(a.StartedAt)
	if total <= 0 {
		return 100
	}
	return int(100 * now.Sub(a.StartedAt) / total)
}

// Code classifies a model error; dialects map it to their wire format.
type Code string

// The model's error codes.
const (
	CodeNotFound       Code = "not_found"
	CodeInvalid        Code = "invalid"
	CodeQuota          Code = "quota"
	CodeConflict       Code = "conflict"        // a unique name is taken
	CodeIdempotency    Code = "idempotency"     // client token reused with other parameters
	CodeUnauthorized   Code = "unauthorized"    // unknown credential
	CodeRateLimited    Code = "rate_limited"    // rate limit or throttling fault
	CodeInternal       Code = "internal"        // 500
	CodeBadGateway     Code = "bad_gateway"     // 502
	CodeUnavailable    Code = "unavailable"     // 503
	CodeIncorrect      Code = "incorrect_state" // operation not valid in the resource's state
	CodeDependency     Code = "dependency_violation"
	CodeCapacity       Code = "capacity"        // the placement has no room: not a quota
	CodeRegionDisabled Code = "region_disabled" // the region takes no new machines
	CodeLocked         Code = "locked"          // an action is running on the resource
	CodeChanged        Code = "changed"         // the resource changed during the request
)

// Error is a model error.
type Error struct {
	Code    Code
	Message string
	// Field is the request field at fault, for CodeInvalid.
	Field string
	// ExistingID is the ID of the resource holding a unique name, for
	// CodeConflict.
	ExistingID int64
}

// Error writes the code and the message.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func errf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Cloud is a simulated cloud. Safe for concurrent use.
type Cloud struct {
	mu    sync.Mutex
	opts  Options
	now   func() time.Time
	rng   *rand.Rand
	scale float64

	// The resolved behaviours (opts with the world's defaults).
	lockActions, strictTokens bool
	retryAfter                RetryAfterStyle
	capacity                  []Capacity
	disabled                  map[string]bool

	nextID    int64
	instances map[int64]*Instance
	order     []int64 // instance IDs in creation order (ascending)
	images    map[int64]*Image
	imgOrder  []int64
	volumes   map[int64]*VolumeSnapshot
	keys      map[int64]*SSHKey
	actions   map[int64]*Action
	tokens    map[string]bool
	byClient  map[string]int64 // client token -> first instance ID
	ipSeq     uint32

	limiters      map[string]map[string]*meter // account and scope -> window -> state
	faults        map[Op][]*Fault
	random        randomFaults
	randomPending map[FaultKind]bool // model faults drawn for the call being admitted

	calls          map[Op]int
	faultsInjected map[FaultKind]int
	rateLimited    int
	created        int
	duplicates     int
	refused        int // creates the model refused for capacity
	failedSnaps    int // snapshots made to fail
}

// New returns a Cloud with the given options, the world's defaults filled
// into the fields left zero.
func New(opts Options) *Cloud {
	realistic := opts.IsRealistic()
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	if realistic {
		g := realisticGeneric
		opts.BootDelay = pickDuration(opts.BootDelay, g.boot)
		opts.BootJitter = pickFraction(opts.BootJitter, g.bootJitter)
		opts.LateIPFraction = pickFraction(opts.LateIPFraction, g.lateIP)
		opts.LateIPDelay = pickDuration(opts.LateIPDelay, g.lateIPDelay)
		opts.SnapshotDelay = pickDuration(opts.SnapshotDelay, g.snapshot)
		opts.SnapshotJitter = pickFraction(opts.SnapshotJitter, g.snapJitter)
		opts.DestroyDelay = pickDuration(opts.DestroyDelay, g.destroy)
	}
	if opts.BootDelay <= 0 {
		opts.BootDelay = 100 * time.Millisecond
	}
	if opts.SnapshotDelay <= 0 {
		opts.SnapshotDelay = 100 * time.Millisecond
	}
	if opts.IPFraction <= 0 || opts.IPFraction > 1 {
		opts.IPFraction = 0.7
	}
	for _, p := range []*float64{&opts.BootJitter, &opts.LateIPFraction, &opts.SnapshotJitter, &opts.SnapshotFailRate} {
		*p = max(*p, 0)
	}
	for _, p := range []*time.Duration{&opts.LateIPDelay, &opts.ConsistencyDelay, &opts.ListingDelay, &opts.DestroyDelay, &opts.Retention} {
		*p = max(*p, 0)
	}
	c := &Cloud{
		opts:           opts,
		now:            opts.Now,
		rng:            rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)),
		scale:          opts.TimeScale,
		lockActions:    opts.LockActions.Enabled(false),
		strictTokens:   opts.StrictClientTokens.Enabled(realistic),
		retryAfter:     opts.RetryAfter,
		capacity:       slices.Clone(opts.Capacity),
		disabled:       make(map[string]bool),
		nextID:         100000,
		instances:      make(map[int64]*Instance),
		images:         make(map[int64]*Image),
		volumes:        make(map[int64]*VolumeSnapshot),
		keys:           make(map[int64]*SSHKey),
		actions:        make(map[int64]*Action),
		tokens:         make(map[string]bool),
		byClient:       make(map[string]int64),
		limiters:       make(map[string]map[string]*meter),
		faults:         make(map[Op][]*Fault),
		randomPending:  make(map[FaultKind]bool),
		calls:          make(map[Op]int),
		faultsInjected: make(map[FaultKind]int),
	}
	if c.retryAfter == RetryAfterAuto {
		c.retryAfter = RetryAfterFractional
		if realistic {
			c.retryAfter = RetryAfterWholeSeconds
		}
	}
	for _, r := range opts.DisabledRegions {
		c.disabled[r] = true
	}
	if c.now == nil {
		c.now = time.Now
	}
	for _, t := range opts.Tokens {
		c.tokens[t] = true
	}
	if len(c.opts.Tokens) == 0 {
		c.opts.Tokens = []string{fmt.Sprintf("sim-%016x%016x", c.rng.Uint64(), c.rng.Uint64())}
		c.tokens[c.opts.Tokens[0]] = true
	}
	for i, name := range []string{"laptop", "ci"} {
		c.addKeyLocked(name, fakePublicKey(opts.Seed+uint64(i)), "")
	}
	return c
}

// Now returns the cloud's current time.
func (c *Cloud) Now() time.Time { return c.now() }

// Options returns the options the cloud was made with, the world's
// defaults filled in (durations in cloud time, unscaled; see Scale).
func (c *Cloud) Options() Options { return c.opts }

// RegionalImages reports whether catalogue images are published per region
// (Options.RegionalImages resolved for the world).
func (c *Cloud) RegionalImages() bool {
	return c.opts.RegionalImages.Enabled(c.opts.IsRealistic())
}

// Token returns the account's credential: the first of Options.Tokens, or
// the one generated when none was given. Tokens added with AddToken do not
// change it.
func (c *Cloud) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts.Tokens[0]
}

// AddToken makes another credential valid (another account sharing this
// cloud's resources, with its own rate limit).
func (c *Cloud) AddToken(token string) {
	c.mu.Lock()
	c.tokens[token] = true
	c.mu.Unlock()
}

// Authorized reports whether token is an accepted credential.
func (c *Cloud) Authorized(token string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return token != "" && c.tokens[token]
}

func (c *Cloud) id() int64 {
	c.nextID++
	return c.nextID
}

// jittered spreads d by ±j, drawn from the cloud's generator.
func (c *Cloud) jittered(d time.Duration, j float64) time.Duration {
	if j <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + j*(2*c.rng.Float64()-1)))
}
