// Package simcloud is the model behind spuff's simulated clouds: accounts,
// machines that boot after a delay and get public IPs, snapshots that take
// time, SSH keys, labels, per-account rate limits, and faults injected on
// demand. The cloud dialects (providertest/dosim, hcloudsim, ec2sim) serve
// one Cloud over HTTP in each provider's real wire format, so the official
// SDKs run against it unmodified.
//
// A Cloud holds no global state: every test makes its own. It is
// deterministic given Options.Seed (fault draws, boot jitter), and
// inspectable: API calls per operation, live resources, duplicates and
// faults injected, so tests can assert on them.
package simcloud

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
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

// RateLimit is one window of an account's rate limit: Requests per Per,
// as a token bucket that starts full and refills continuously.
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// Options configure a Cloud. The zero value gives a fast cloud for tests:
// machines boot in 100 ms, snapshots take 100 ms, no rate limit, no quota.
type Options struct {
	// Seed makes fault draws and boot jitter reproducible.
	Seed uint64
	// BootDelay is the time from create to active; default 100 ms.
	BootDelay time.Duration
	// BootJitter spreads boot times by ±this fraction; default 0.
	BootJitter float64
	// IPFraction is the fraction of BootDelay after which the public IP is
	// assigned; default 0.7 (the IP shows up shortly before "active").
	IPFraction float64
	// SnapshotDelay is the time a snapshot takes to become usable; default
	// 100 ms.
	SnapshotDelay time.Duration
	// ConsistencyDelay makes every new instance invisible to reads for this
	// long after create (EC2's eventual consistency); default 0.
	ConsistencyDelay time.Duration
	// Retention keeps deleted instances visible (as terminated) for this
	// long, as EC2 does; dialects that want it use LookupInstance. Default 0.
	Retention time.Duration
	// RateLimits are per-account windows; none means unlimited.
	RateLimits []RateLimit
	// MaxInstances is the account's machine quota; 0 means unlimited.
	MaxInstances int
	// MaxSnapshots is the account's snapshot quota; 0 means unlimited.
	MaxSnapshots int
	// UniqueNames makes creates with the name of a live instance fail with
	// CodeConflict (Hetzner's rule).
	UniqueNames bool
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
	IPv4        netip.Addr        `json:"ipv4"`
	IPv6        netip.Addr        `json:"ipv6"`
	CreatedAt   time.Time         `json:"created_at"`
	IPAt        time.Time         `json:"ip_at"`
	ReadyAt     time.Time         `json:"ready_at"`
	VisibleAt   time.Time         `json:"visible_at"`
	DeletedAt   time.Time         `json:"deleted_at,omitzero"`
	Extra       map[string]string `json:"extra,omitempty"` // dialect-specific attributes (subnet, profile)
}

// State is the instance's state at now: "new", "active" or "deleted".
func (i *Instance) State(now time.Time) string {
	switch {
	case !i.DeletedAt.IsZero() && !now.Before(i.DeletedAt):
		return "deleted"
	case now.Before(i.ReadyAt):
		return "new"
	}
	return "active"
}

// PublicIPv4 is the instance's public IPv4 at now, or the zero Addr before
// it is assigned.
func (i *Instance) PublicIPv4(now time.Time) netip.Addr {
	if now.Before(i.IPAt) || i.State(now) == "deleted" {
		return netip.Addr{}
	}
	return i.IPv4
}

// PublicIPv6 is like PublicIPv4 for IPv6.
func (i *Instance) PublicIPv6(now time.Time) netip.Addr {
	if now.Before(i.IPAt) || i.State(now) == "deleted" {
		return netip.Addr{}
	}
	return i.IPv6
}

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
	DeletedAt    time.Time         `json:"deleted_at,omitzero"`
}

// Available reports whether the image is usable at now.
func (m *Image) Available(now time.Time) bool {
	return !now.Before(m.ReadyAt) && m.DeletedAt.IsZero()
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
	DeletedAt time.Time         `json:"deleted_at,omitzero"`
}

// SSHKey is an SSH public key of the account.
type SSHKey struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	PublicKey   string `json:"public_key"`
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
	CodeNotFound     Code = "not_found"
	CodeInvalid      Code = "invalid"
	CodeQuota        Code = "quota"
	CodeConflict     Code = "conflict"        // a unique name is taken
	CodeIdempotency  Code = "idempotency"     // client token reused with other parameters
	CodeUnauthorized Code = "unauthorized"    // unknown credential
	CodeRateLimited  Code = "rate_limited"    // rate limit or throttling fault
	CodeInternal     Code = "internal"        // 500
	CodeBadGateway   Code = "bad_gateway"     // 502
	CodeUnavailable  Code = "unavailable"     // 503
	CodeIncorrect    Code = "incorrect_state" // operation not valid in the resource's state
	CodeDependency   Code = "dependency_violation"
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

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func errf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Cloud is a simulated cloud. Safe for concurrent use.
type Cloud struct {
	mu   sync.Mutex
	opts Options
	now  func() time.Time
	rng  *rand.Rand

	nextID    int64
	instances map[int64]*Instance
	order     []int64 // instance IDs in creation order (ascending)
	images    map[int64]*Image
	imgOrder  []int64
	volumes   map[int64]*VolumeSnapshot
	keys      map[int64]*SSHKey
	actions   map[int64]*Action
	tokens    map[string]bool
	byClient  map[string]int64 // client token -> instance ID
	ipSeq     uint32

	limiters map[string]*limiter
	faults   map[Op][]*Fault
	random   randomFaults
	// randomConsistency is a consistency fault drawn for the create being
	// admitted, consumed by CreateInstance.
	randomConsistency bool

	calls          map[Op]int
	faultsInjected map[FaultKind]int
	rateLimited    int
	created        int
	duplicates     int
}

// New returns a Cloud with the given options.
func New(opts Options) *Cloud {
	if opts.BootDelay <= 0 {
		opts.BootDelay = 100 * time.Millisecond
	}
	if opts.SnapshotDelay <= 0 {
		opts.SnapshotDelay = 100 * time.Millisecond
	}
	if opts.IPFraction <= 0 || opts.IPFraction > 1 {
		opts.IPFraction = 0.7
	}
	c := &Cloud{
		opts:           opts,
		now:            opts.Now,
		rng:            rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)),
		nextID:         100000,
		instances:      make(map[int64]*Instance),
		images:         make(map[int64]*Image),
		volumes:        make(map[int64]*VolumeSnapshot),
		keys:           make(map[int64]*SSHKey),
		actions:        make(map[int64]*Action),
		tokens:         make(map[string]bool),
		byClient:       make(map[string]int64),
		limiters:       make(map[string]*limiter),
		faults:         make(map[Op][]*Fault),
		calls:          make(map[Op]int),
		faultsInjected: make(map[FaultKind]int),
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
		c.addKeyLocked(name, fakePublicKey(opts.Seed+uint64(i)))
	}
	return c
}

// Now returns the cloud's current time.
func (c *Cloud) Now() time.Time { return c.now() }

// Options returns the options the cloud was made with (defaults filled in).
func (c *Cloud) Options() Options { return c.opts }

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

// InstanceSpec is what a dialect asks the model to create.
type InstanceSpec struct {
	Name        string
	Region      string
	Size        string
	ImageID     int64
	UserData    string
	Labels      map[string]string
	SSHKeyIDs   []int64
	ClientToken string // idempotency token (EC2); empty for none
	Extra       map[string]string
}

// CreateInstance creates a machine. With a ClientToken already used, it
// returns the instance created then (and created=false), or CodeIdempotency
// if the parameters differ. It fails with CodeInvalid for an unknown
// region, size or image, CodeQuota past MaxInstances, and CodeConflict for a
// taken name under UniqueNames.
func (c *Cloud) CreateInstance(spec InstanceSpec) (inst Instance, created bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if spec.ClientToken != "" {
		if id, ok := c.byClient[spec.ClientToken]; ok {
			prev := c.instances[id]
			if prev.Name != spec.Name || prev.Size != spec.Size || prev.ImageID != spec.ImageID || prev.Region != spec.Region {
				return Instance{}, false, errf(CodeIdempotency, "client token %q was used with different parameters", spec.ClientToken)
			}
			return prev.clone(), false, nil
		}
	}
	if spec.Name == "" {
		return Instance{}, false, &Error{Code: CodeInvalid, Field: "name", Message: "name is required"}
	}
	if len(c.opts.Regions) > 0 && !slices.Contains(c.opts.Regions, spec.Region) {
		return Instance{}, false, &Error{Code: CodeInvalid, Field: "region", Message: fmt.Sprintf("region %q does not exist", spec.Region)}
	}
	arch := "x86_64"
	if len(c.opts.Sizes) > 0 {
		sz, ok := c.opts.Sizes[spec.Size]
		if !ok {
			return Instance{}, false, &Error{Code: CodeInvalid, Field: "size", Message: fmt.Sprintf("size %q does not exist", spec.Size)}
		}
		arch = sz.Arch
	}
	img, ok := c.images[spec.ImageID]
	if !ok || !img.DeletedAt.IsZero() {
		return Instance{}, false, &Error{Code: CodeInvalid, Field: "image", Message: fmt.Sprintf("image %d does not exist", spec.ImageID)}
	}
	if !img.Available(now) {
		return Instance{}, false, &Error{Code: CodeIncorrect, Field: "image", Message: fmt.Sprintf("image %d is not available yet", spec.ImageID)}
	}
	if img.Arch != "" && img.Arch != arch {
		return Instance{}, false, &Error{Code: CodeInvalid, Field: "image", Message: fmt.Sprintf("image %d is for %s, size %s is %s", spec.ImageID, img.Arch, spec.Size, arch)}
	}
	for _, k := range spec.SSHKeyIDs {
		if _, ok := c.keys[k]; !ok {
			return Instance{}, false, &Error{Code: CodeInvalid, Field: "ssh_keys", Message: fmt.Sprintf("SSH key %d does not exist", k)}
		}
	}
	live, dup := 0, false
	for _, id := range c.order {
		in := c.instances[id]
		if in.State(now) == "deleted" {
			continue
		}
		live++
		if in.Name == spec.Name {
			if c.opts.UniqueNames {
				return Instance{}, false, &Error{Code: CodeConflict, Field: "name", ExistingID: in.ID, Message: fmt.Sprintf("name %q is already used", spec.Name)}
			}
			// Two live machines of one name and one owner: one request
			// made twice. (A machine of the same name that someone else
			// owns is no duplicate where names are not unique.)
			dup = dup || in.Labels["managed-by"] == spec.Labels["managed-by"]
		}
	}
	if c.opts.MaxInstances > 0 && live >= c.opts.MaxInstances {
		return Instance{}, false, errf(CodeQuota, "instance limit of %d reached", c.opts.MaxInstances)
	}
	if dup {
		c.duplicates++
	}
	boot := c.opts.BootDelay
	if j := c.opts.BootJitter; j > 0 {
		boot = time.Duration(float64(boot) * (1 + j*(2*c.rng.Float64()-1)))
	}
	c.ipSeq++
	in := &Instance{
		ID:          c.id(),
		Name:        spec.Name,
		Region:      spec.Region,
		Size:        spec.Size,
		Arch:        arch,
		ImageID:     spec.ImageID,
		UserData:    spec.UserData,
		Labels:      maps.Clone(spec.Labels),
		SSHKeyIDs:   slices.Clone(spec.SSHKeyIDs),
		ClientToken: spec.ClientToken,
		IPv4:        ipv4(c.ipSeq),
		IPv6:        ipv6(c.ipSeq),
		CreatedAt:   now,
		IPAt:        now.Add(time.Duration(float64(boot) * c.opts.IPFraction)),
		ReadyAt:     now.Add(boot),
		VisibleAt:   now.Add(c.opts.ConsistencyDelay),
		Extra:       maps.Clone(spec.Extra),
	}
	if d := c.pendingConsistencyLocked(); d > 0 {
		in.VisibleAt = now.Add(d)
	}
	c.instances[in.ID] = in
	c.order = append(c.order, in.ID)
	if spec.ClientToken != "" {
		c.byClient[spec.ClientToken] = in.ID
	}
	c.created++
	c.addActionLocked("create", in.ID, "instance", now, in.ReadyAt)
	return in.clone(), true, nil
}

// ipv4 returns the n-th address of 198.18.0.0/15, the range reserved for
// benchmarks (RFC 2544): public-looking, never routed.
func ipv4(n uint32) netip.Addr {
	v := uint32(198)<<24 | uint32(18)<<16 | (n+1)&0x1ffff
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// ipv6 returns the n-th /64 of 2001:db8::/32 (documentation range), ::1.
func ipv6(n uint32) netip.Addr {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	binary.BigEndian.PutUint32(b[4:8], n)
	b[15] = 1
	return netip.AddrFrom16(b)
}

// AddInstances creates n instances directly, without admission, faults or
// quota (for seeding large accounts). spec(i) describes the i-th; an
// ImageID of 0 takes the first image. Instances are ready at once.
func (c *Cloud) AddInstances(n int, spec func(i int) InstanceSpec) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var first int64
	if len(c.imgOrder) > 0 {
		first = c.imgOrder[0]
	}
	ids := make([]int64, 0, n)
	for i := range n {
		s := spec(i)
		if s.ImageID == 0 {
			s.ImageID = first
		}
		arch := "x86_64"
		if sz, ok := c.opts.Sizes[s.Size]; ok {
			arch = sz.Arch
		}
		c.ipSeq++
		in := &Instance{
			ID: c.id(), Name: s.Name, Region: s.Region, Size: s.Size, Arch: arch, ImageID: s.ImageID,
			UserData: s.UserData, Labels: maps.Clone(s.Labels), SSHKeyIDs: slices.Clone(s.SSHKeyIDs),
			IPv4: ipv4(c.ipSeq), IPv6: ipv6(c.ipSeq), CreatedAt: now, IPAt: now, ReadyAt: now, VisibleAt: now,
			Extra: maps.Clone(s.Extra),
		}
		c.instances[in.ID] = in
		c.order = append(c.order, in.ID)
		ids = append(ids, in.ID)
	}
	return ids
}

// GetInstance returns a live, visible instance, or CodeNotFound.
func (c *Cloud) GetInstance(id int64) (Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	in, ok := c.instances[id]
	if !ok || in.State(now) == "deleted" || now.Before(in.VisibleAt) {
		return Instance{}, errf(CodeNotFound, "instance %d not found", id)
	}
	return in.clone(), nil
}

// LookupInstance returns a visible instance, live or deleted within
// Options.Retention (EC2 shows terminated instances for a while), or
// CodeNotFound.
func (c *Cloud) LookupInstance(id int64) (Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	in, ok := c.instances[id]
	if !ok || now.Before(in.VisibleAt) || c.expiredLocked(in, now) {
		return Instance{}, errf(CodeNotFound, "instance %d not found", id)
	}
	return in.clone(), nil
}

func (c *Cloud) expiredLocked(in *Instance, now time.Time) bool {
	return !in.DeletedAt.IsZero() && now.Sub(in.DeletedAt) >= c.opts.Retention
}

// ListInstances returns the visible instances for which keep returns true
// (nil keeps all), in ID order, skipping offset and returning at most limit
// (0 means all), and the number that matched in all. With retained set,
// deleted instances within Options.Retention are included.
func (c *Cloud) ListInstances(keep func(*Instance) bool, offset, limit int, retained bool) (page []Instance, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, id := range c.order {
		in := c.instances[id]
		if now.Before(in.VisibleAt) {
			continue
		}
		if in.State(now) == "deleted" && (!retained || c.expiredLocked(in, now)) {
			continue
		}
		if keep != nil && !keep(in) {
			continue
		}
		if total >= offset && (limit <= 0 || len(page) < limit) {
			page = append(page, in.clone())
		}
		total++
	}
	return page, total
}

// DeleteInstance deletes an instance. A missing or already deleted instance
// gives CodeNotFound, as the clouds do; drivers make destroy idempotent.
func (c *Cloud) DeleteInstance(id int64) (Action, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	in, ok := c.instances[id]
	if !ok || in.State(now) == "deleted" {
		return Action{}, errf(CodeNotFound, "instance %d not found", id)
	}
	in.DeletedAt = now
	return c.addActionLocked("delete", id, "instance", now, now), nil
}

// SetInstanceLabels replaces (replace=true) or merges labels of a live
// instance.
func (c *Cloud) SetInstanceLabels(id int64, labels map[string]string, replace bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.instances[id]
	if !ok || in.State(c.now()) == "deleted" {
		return errf(CodeNotFound, "instance %d not found", id)
	}
	if replace || in.Labels == nil {
		in.Labels = make(map[string]string, len(labels))
	}
	maps.Copy(in.Labels, labels)
	return nil
}

// RemoveInstanceLabel removes a label key from a live instance.
func (c *Cloud) RemoveInstanceLabel(id int64, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.instances[id]
	if !ok || in.State(c.now()) == "deleted" {
		return errf(CodeNotFound, "instance %d not found", id)
	}
	delete(in.Labels, key)
	return nil
}

// AddImage adds an image to the catalogue (CreatedAt/ReadyAt default to now)
// and returns its ID (assigned when img.ID is 0).
func (c *Cloud) AddImage(img Image) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if img.ID == 0 {
		img.ID = c.id()
	} else if img.ID > c.nextID {
		c.nextID = img.ID
	}
	if img.Kind == "" {
		img.Kind = ImageDistribution
	}
	if img.CreatedAt.IsZero() {
		img.CreatedAt = now
	}
	if img.ReadyAt.IsZero() {
		img.ReadyAt = img.CreatedAt
	}
	cp := img.clone()
	c.images[img.ID] = &cp
	c.imgOrder = append(c.imgOrder, img.ID)
	return img.ID
}

// SnapshotSpec is what a dialect asks the model to snapshot.
type SnapshotSpec struct {
	InstanceID  int64
	Name        string
	Description string
	Labels      map[string]string
	// VolumeSnapshots makes one volume snapshot behind the image (EC2).
	VolumeSnapshots bool
	// VolumeLabels are the volume snapshot's labels; nil means Labels
	// (EC2 tags the AMI and its EBS snapshots separately).
	VolumeLabels map[string]string
}

// CreateSnapshot snapshots a live instance. The image is available after
// Options.SnapshotDelay; the returned action completes then.
func (c *Cloud) CreateSnapshot(spec SnapshotSpec) (Image, Action, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	in, ok := c.instances[spec.InstanceID]
	if !ok || in.State(now) == "deleted" || now.Before(in.VisibleAt) {
		return Image{}, Action{}, errf(CodeNotFound, "instance %d not found", spec.InstanceID)
	}
	if c.opts.MaxSnapshots > 0 {
		n := 0
		for _, m := range c.images {
			if m.Kind == ImageSnapshot && m.DeletedAt.IsZero() {
				n++
			}
		}
		if n >= c.opts.MaxSnapshots {
			return Image{}, Action{}, errf(CodeQuota, "snapshot limit of %d reached", c.opts.MaxSnapshots)
		}
	}
	src := c.images[in.ImageID]
	disk := 25
	if sz, ok := c.opts.Sizes[in.Size]; ok && sz.DiskGB > 0 {
		disk = sz.DiskGB
	}
	img := &Image{
		ID:          c.id(),
		Kind:        ImageSnapshot,
		Name:        spec.Name,
		Description: spec.Description,
		Arch:        in.Arch,
		Labels:      maps.Clone(spec.Labels),
		Regions:     []string{in.Region},
		SizeGB:      float64(disk) * 0.08,
		MinDiskGB:   disk,
		Source:      in.ID,
		CreatedAt:   now,
		ReadyAt:     now.Add(c.opts.SnapshotDelay),
	}
	if src != nil {
		img.Distribution, img.Version = src.Distribution, src.Version
	}
	if spec.VolumeSnapshots {
		vl := spec.VolumeLabels
		if vl == nil {
			vl = spec.Labels
		}
		v := &VolumeSnapshot{ID: c.id(), ImageID: img.ID, SizeGB: disk, Labels: maps.Clone(vl), CreatedAt: now, ReadyAt: img.ReadyAt}
		c.volumes[v.ID] = v
		img.VolumeSnaps = []int64{v.ID}
	}
	c.images[img.ID] = img
	c.imgOrder = append(c.imgOrder, img.ID)
	act := c.addActionLocked("snapshot", img.ID, "image", now, img.ReadyAt)
	return img.clone(), act, nil
}

// GetImage returns an image that is not deleted, or CodeNotFound.
func (c *Cloud) GetImage(id int64) (Image, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.images[id]
	if !ok || !m.DeletedAt.IsZero() {
		return Image{}, errf(CodeNotFound, "image %d not found", id)
	}
	return m.clone(), nil
}

// ListImages returns the images (not deleted) for which keep returns true,
// in ID order, paged like ListInstances.
func (c *Cloud) ListImages(keep func(*Image) bool, offset, limit int) (page []Image, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range c.imgOrder {
		m := c.images[id]
		if !m.DeletedAt.IsZero() || (keep != nil && !keep(m)) {
			continue
		}
		if total >= offset && (limit <= 0 || len(page) < limit) {
			page = append(page, m.clone())
		}
		total++
	}
	return page, total
}

// SetImageLabels replaces or merges an image's labels.
func (c *Cloud) SetImageLabels(id int64, labels map[string]string, replace bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.images[id]
	if !ok || !m.DeletedAt.IsZero() {
		return errf(CodeNotFound, "image %d not found", id)
	}
	if replace || m.Labels == nil {
		m.Labels = make(map[string]string, len(labels))
	}
	maps.Copy(m.Labels, labels)
	return nil
}

// DeleteImage deletes a snapshot image; with volumes, the volume snapshots
// behind it too. Catalogue images cannot be deleted (CodeInvalid).
func (c *Cloud) DeleteImage(id int64, volumes bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.images[id]
	if !ok || !m.DeletedAt.IsZero() {
		return errf(CodeNotFound, "image %d not found", id)
	}
	if m.Kind != ImageSnapshot {
		return errf(CodeInvalid, "image %d is a public image", id)
	}
	now := c.now()
	m.DeletedAt = now
	if volumes {
		for _, v := range m.VolumeSnaps {
			if vs := c.volumes[v]; vs != nil && vs.DeletedAt.IsZero() {
				vs.DeletedAt = now
			}
		}
	}
	return nil
}

// GetVolumeSnapshot returns a volume snapshot that is not deleted.
func (c *Cloud) GetVolumeSnapshot(id int64) (VolumeSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.volumes[id]
	if !ok || !v.DeletedAt.IsZero() {
		return VolumeSnapshot{}, errf(CodeNotFound, "snapshot %d not found", id)
	}
	cp := *v
	cp.Labels = maps.Clone(v.Labels)
	return cp, nil
}

// ListVolumeSnapshots returns the volume snapshots not deleted, in ID order.
func (c *Cloud) ListVolumeSnapshots(keep func(*VolumeSnapshot) bool) []VolumeSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []VolumeSnapshot
	for _, v := range c.volumes {
		if v.DeletedAt.IsZero() && (keep == nil || keep(v)) {
			cp := *v
			cp.Labels = maps.Clone(v.Labels)
			out = append(out, cp)
		}
	}
	slices.SortFunc(out, func(a, b VolumeSnapshot) int { return int(a.ID - b.ID) })
	return out
}

// DeleteVolumeSnapshot deletes a volume snapshot. One still used by a
// registered image gives CodeDependency, as EC2 does.
func (c *Cloud) DeleteVolumeSnapshot(id int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.volumes[id]
	if !ok || !v.DeletedAt.IsZero() {
		return errf(CodeNotFound, "snapshot %d not found", id)
	}
	if m := c.images[v.ImageID]; m != nil && m.DeletedAt.IsZero() {
		return errf(CodeDependency, "snapshot %d is in use by image %d", id, m.ID)
	}
	v.DeletedAt = c.now()
	return nil
}

func (c *Cloud) addActionLocked(typ string, resID int64, resType string, start, done time.Time) Action {
	a := &Action{ID: c.id(), Type: typ, ResourceID: resID, ResourceType: resType, StartedAt: start, DoneAt: done}
	c.actions[a.ID] = a
	return *a
}

// GetAction returns an action, or CodeNotFound.
func (c *Cloud) GetAction(id int64) (Action, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.actions[id]
	if !ok {
		return Action{}, errf(CodeNotFound, "action %d not found", id)
	}
	return *a, nil
}

// ActionsFor returns the actions of a resource, oldest first.
func (c *Cloud) ActionsFor(resourceType string, id int64) []Action {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Action
	for _, a := range c.actions {
		if a.ResourceID == id && a.ResourceType == resourceType {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(a, b Action) int { return int(a.ID - b.ID) })
	return out
}

// AddSSHKey registers a public key and returns it.
func (c *Cloud) AddSSHKey(name, publicKey string) SSHKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addKeyLocked(name, publicKey)
}

func (c *Cloud) addKeyLocked(name, pub string) SSHKey {
	k := &SSHKey{ID: c.id(), Name: name, PublicKey: pub, Fingerprint: fingerprint(pub)}
	c.keys[k.ID] = k
	return *k
}

// SSHKeys returns the account's keys in ID order.
func (c *Cloud) SSHKeys() []SSHKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SSHKey, 0, len(c.keys))
	for _, k := range c.keys {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b SSHKey) int { return int(a.ID - b.ID) })
	return out
}

// FindSSHKey finds a key by ID (decimal), name or fingerprint.
func (c *Cloud) FindSSHKey(ref string) (SSHKey, bool) {
	for _, k := range c.SSHKeys() {
		if fmt.Sprint(k.ID) == ref || k.Name == ref || k.Fingerprint == ref {
			return k, true
		}
	}
	return SSHKey{}, false
}

// fakePublicKey makes a deterministic, well-formed ssh-ed25519 public key.
func fakePublicKey(seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0xed25519))
	blob := []byte{0, 0, 0, 11}
	blob = append(blob, "ssh-ed25519"...)
	blob = append(blob, 0, 0, 0, 32)
	for range 32 {
		blob = append(blob, byte(r.UintN(256)))
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " sim@spuff"
}

// fingerprint is the MD5 fingerprint DigitalOcean and Hetzner show.
func fingerprint(pub string) string {
	f := strings.Fields(pub)
	if len(f) < 2 {
		return ""
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return ""
	}
	sum := md5.Sum(blob)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":")
}
