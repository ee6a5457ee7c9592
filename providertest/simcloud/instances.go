package simcloud

import (
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
)

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
	// Params is the dialect's canonical form of every request parameter
	// (not the token): under Options.StrictClientTokens a reused token with
	// other Params is CodeIdempotency.
	Params string
	Extra  map[string]string
	// ShutdownAt, if set, is when the guest shuts itself down and the
	// cloud then destroys the machine (EC2's instance-initiated shutdown
	// behaviour "terminate"): from then on it is deleted as by
	// DeleteInstance.
	ShutdownAt time.Time
}

// CreateInstance creates a machine. With a ClientToken already used, it
// returns the instance created then (and created=false), or CodeIdempotency
// if the parameters differ. It fails with CodeInvalid for an unknown
// region, size or image, CodeQuota past MaxInstances, CodeCapacity past a
// placement's Capacity, CodeRegionDisabled in a disabled region, and
// CodeConflict for a taken name under UniqueNames.
func (c *Cloud) CreateInstance(spec InstanceSpec) (inst Instance, created bool, err error) {
	ins, created, err := c.CreateInstances(spec, 1, 1)
	if err != nil {
		return Instance{}, false, err
	}
	return ins[0], created, nil
}

// CreateInstances launches between minCount and maxCount machines of one
// spec in one call, as EC2's RunInstances does: as many as quota and
// capacity allow, failing (CodeQuota, CodeCapacity) when fewer than
// minCount fit. They share a Reservation (the first one's ID) and one
// client token; a reused token returns them all.
func (c *Cloud) CreateInstances(spec InstanceSpec, minCount, maxCount int) (insts []Instance, created bool, err error) {
	minCount = max(minCount, 1)
	maxCount = max(maxCount, minCount)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if spec.ClientToken != "" {
		if id, ok := c.byClient[spec.ClientToken]; ok {
			return c.replayTokenLocked(id, spec, minCount, maxCount)
		}
	}
	arch, err := c.checkSpecLocked(spec, now)
	if err != nil {
		return nil, false, err
	}
	live, dup := 0, false
	for _, id := range c.order {
		in := c.instances[id]
		switch in.State(now) {
		case StateDeleted, StateDeleting:
			continue
		}
		live++
		if in.Name == spec.Name {
			if c.opts.UniqueNames {
				return nil, false, &Error{Code: CodeConflict, Field: "name", ExistingID: in.ID, Message: fmt.Sprintf("name %q is already used", spec.Name)}
			}
			// The ledger counts one request made twice: a second live
			// machine of the name with the same owner and request key
			// (spuff's labels; they change no behaviour here). A machine
			// of the same name that someone else owns, or made for
			// another request, is no duplicate where names are not unique.
			dup = dup || in.Labels["managed-by"] == spec.Labels["managed-by"] && in.Labels["spuff-key"] == spec.Labels["spuff-key"]
		}
	}
	n := maxCount
	if c.opts.MaxInstances > 0 {
		n = min(n, c.opts.MaxInstances-live)
		if n < minCount {
			return nil, false, errf(CodeQuota, "instance limit of %d reached", c.opts.MaxInstances)
		}
	}
	if c.disabled[spec.Region] {
		return nil, false, errf(CodeRegionDisabled, "region %q takes no new machines", spec.Region)
	}
	if room := c.roomLocked(spec.Region, spec.Size, now); room >= 0 {
		n = min(n, room)
		if n < minCount {
			c.refused++
			return nil, false, errf(CodeCapacity, "no capacity for size %q in region %q", spec.Size, spec.Region)
		}
	}
	if dup {
		c.duplicates++
	}
	consistency, _ := c.pendingModelFaultLocked(FaultConsistency)
	var reservation int64
	for i := range n {
		in := c.launchLocked(spec, arch, now, consistency)
		if i == 0 {
			reservation = in.ID
		}
		in.Reservation, in.LaunchIndex = reservation, i
		insts = append(insts, in.clone())
	}
	if spec.ClientToken != "" {
		c.byClient[spec.ClientToken] = reservation
	}
	return insts, true, nil
}

// replayTokenLocked answers a create whose client token was used: the
// instances of that call, or CodeIdempotency when the parameters differ.
func (c *Cloud) replayTokenLocked(first int64, spec InstanceSpec, minCount, maxCount int) ([]Instance, bool, error) {
	prev := c.instances[first]
	var out []Instance
	for _, id := range c.order {
		if in := c.instances[id]; in.Reservation == prev.Reservation && in.ClientToken == prev.ClientToken {
			out = append(out, in.clone())
		}
	}
	if len(out) == 0 {
		out = []Instance{prev.clone()}
	}
	differs := prev.Name != spec.Name || prev.Size != spec.Size || prev.ImageID != spec.ImageID || prev.Region != spec.Region
	if c.strictTokens {
		differs = differs || prev.Params != spec.Params || minCount > len(out) || maxCount < len(out)
	}
	if differs {
		return nil, false, errf(CodeIdempotency, "client token %q was used with different parameters", spec.ClientToken)
	}
	return out, false, nil
}

// checkSpecLocked validates a create against the catalogue and returns the
// machine's architecture.
func (c *Cloud) checkSpecLocked(spec InstanceSpec, now time.Time) (string, error) {
	if spec.Name == "" {
		return "", &Error{Code: CodeInvalid, Field: "name", Message: "name is required"}
	}
	if len(c.opts.Regions) > 0 && !slices.Contains(c.opts.Regions, spec.Region) {
		return "", &Error{Code: CodeInvalid, Field: "region", Message: fmt.Sprintf("region %q does not exist", spec.Region)}
	}
	arch := "x86_64"
	if len(c.opts.Sizes) > 0 {
		sz, ok := c.opts.Sizes[spec.Size]
		if !ok {
			return "", &Error{Code: CodeInvalid, Field: "size", Message: fmt.Sprintf("size %q does not exist", spec.Size)}
		}
		arch = sz.Arch
	}
	img, ok := c.images[spec.ImageID]
	if !ok || !img.DeletedAt.IsZero() {
		return "", &Error{Code: CodeInvalid, Field: "image", Message: fmt.Sprintf("image %d does not exist", spec.ImageID)}
	}
	if !img.Available(now) {
		return "", &Error{Code: CodeIncorrect, Field: "image", Message: fmt.Sprintf("image %d is not available", spec.ImageID)}
	}
	if img.Arch != "" && img.Arch != arch {
		return "", &Error{Code: CodeInvalid, Field: "image", Message: fmt.Sprintf("image %d is for %s, size %s is %s", spec.ImageID, img.Arch, spec.Size, arch)}
	}
	for _, k := range spec.SSHKeyIDs {
		if _, ok := c.keys[k]; !ok {
			return "", &Error{Code: CodeInvalid, Field: "ssh_keys", Message: fmt.Sprintf("SSH key %d does not exist", k)}
		}
	}
	return arch, nil
}

// roomLocked returns how many more machines fit the placement, or -1 for
// no bound.
func (c *Cloud) roomLocked(region, size string, now time.Time) int {
	room := -1
	for _, p := range c.capacity {
		if !p.matches(region, size) {
			continue
		}
		used := 0
		for _, id := range c.order {
			in := c.instances[id]
			if in.State(now) != StateDeleted && p.matches(in.Region, in.Size) {
				used++
			}
		}
		if r := max(p.Max-used, 0); room < 0 || r < room {
			room = r
		}
	}
	return room
}

// launchLocked makes one machine of spec.
func (c *Cloud) launchLocked(spec InstanceSpec, arch string, now time.Time, consistency time.Duration) *Instance {
	boot := c.Scale(c.jittered(c.opts.BootDelay, c.opts.BootJitter))
	ipAt := now.Add(time.Duration(float64(boot) * c.opts.IPFraction))
	if f := c.opts.LateIPFraction; f > 0 && c.rng.Float64() < f {
		ipAt = now.Add(boot + c.Scale(c.opts.LateIPDelay))
	}
	visible := now.Add(c.Scale(c.opts.ConsistencyDelay))
	if consistency > 0 {
		visible = now.Add(c.Scale(consistency))
	}
	listed := now.Add(c.Scale(c.opts.ListingDelay))
	if listed.Before(visible) {
		listed = visible
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
		Params:      spec.Params,
		IPv4:        ipv4(c.ipSeq),
		IPv6:        ipv6(c.ipSeq),
		CreatedAt:   now,
		IPAt:        ipAt,
		ReadyAt:     now.Add(boot),
		VisibleAt:   visible,
		ListedAt:    listed,
		BusyUntil:   now.Add(boot),
		Extra:       maps.Clone(spec.Extra),
	}
	if !spec.ShutdownAt.IsZero() {
		in.DeletedAt = spec.ShutdownAt
		in.GoneAt = spec.ShutdownAt.Add(c.Scale(c.opts.DestroyDelay))
	}
	c.instances[in.ID] = in
	c.order = append(c.order, in.ID)
	c.created++
	c.addActionLocked("create", in.ID, "instance", now, in.ReadyAt)
	return in
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

// AddInstances creates n instances directly, without admission, faults,
// quota or capacity (for seeding large accounts). spec(i) describes the
// i-th; an ImageID of 0 takes the first image. Instances are ready, listed
// and idle at once.
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
			IPv4: ipv4(c.ipSeq), IPv6: ipv6(c.ipSeq), CreatedAt: now, IPAt: now, ReadyAt: now, VisibleAt: now, ListedAt: now,
			Extra: maps.Clone(s.Extra),
		}
		in.Reservation = in.ID
		c.instances[in.ID] = in
		c.order = append(c.order, in.ID)
		ids = append(ids, in.ID)
	}
	return ids
}

// GetInstance returns a visible instance that exists (running, booting or
// still being deleted: see Options.DestroyDelay), or CodeNotFound.
func (c *Cloud) GetInstance(id int64) (Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	in, ok := c.instances[id]
	if !ok || in.State(now) == StateDeleted || now.Before(in.VisibleAt) {
		return Instance{}, errf(CodeNotFound, "instance %d not found", id)
	}
	return in.clone(), nil
}

// LookupInstance returns a visible instance, existing or gone within
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
	return !in.DeletedAt.IsZero() && now.Sub(in.gone()) >= c.Scale(c.opts.Retention)
}

// ListInstances returns the listed instances for which keep returns true
// (nil keeps all), in ID order, skipping offset and returning at most limit
// (0 means all), and the number that matched in all. Instances being
// deleted are listed; with retained set, so are those gone within
// Options.Retention. A new instance is listed once visible and past
// Options.ListingDelay.
func (c *Cloud) ListInstances(keep func(*Instance) bool, offset, limit int, retained bool) (page []Instance, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, id := range c.order {
		in := c.instances[id]
		if now.Before(in.VisibleAt) || now.Before(in.ListedAt) {
			continue
		}
		if in.State(now) == StateDeleted && (!retained || c.expiredLocked(in, now)) {
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

// DeleteInstance deletes an instance: it is gone after Options.DestroyDelay
// (the returned action completes then) and in state StateDeleting until.
// A missing or gone instance gives CodeNotFound, as the clouds do; drivers
// make destroy idempotent. Deleting an instance being deleted returns the
// first delete's action. Under LockActions, an instance with a running
// action (booting, being snapshotted or deleted) gives CodeLocked.
func (c *Cloud) DeleteInstance(id int64) (Action, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	in, ok := c.instances[id]
	if !ok || in.State(now) == StateDeleted {
		return Action{}, errf(CodeNotFound, "instance %d not found", id)
	}
	if c.lockActions && in.Busy(now) {
		return Action{}, errf(CodeLocked, "instance %d is locked: an action is running", id)
	}
	if in.State(now) == StateDeleting {
		for _, a := range c.actionsForLocked("instance", id) {
			if a.Type == "delete" {
				return a, nil
			}
		}
	}
	in.DeletedAt = now
	in.GoneAt = now.Add(c.Scale(c.opts.DestroyDelay))
	in.BusyUntil = in.GoneAt
	return c.addActionLocked("delete", id, "instance", now, in.GoneAt), nil
}

// SetInstanceLabels replaces (replace=true) or merges labels of an
// existing instance.
func (c *Cloud) SetInstanceLabels(id int64, labels map[string]string, replace bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.instances[id]
	if !ok || in.State(c.now()) == StateDeleted {
		return errf(CodeNotFound, "instance %d not found", id)
	}
	if replace || in.Labels == nil {
		in.Labels = make(map[string]string, len(labels))
	}
	maps.Copy(in.Labels, labels)
	return nil
}

// RemoveInstanceLabel removes a label key from an existing instance.
func (c *Cloud) RemoveInstanceLabel(id int64, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.instances[id]
	if !ok || in.State(c.now()) == StateDeleted {
		return errf(CodeNotFound, "instance %d not found", id)
	}
	delete(in.Labels, key)
	return nil
}

// SetCapacity bounds the placement (region, size; empty matches any) to
// max machines at once, replacing an earlier bound of the same placement;
// a negative max removes the bound. Tests exhaust a region with it.
func (c *Cloud) SetCapacity(region, size string, max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.capacity = slices.DeleteFunc(c.capacity, func(p Capacity) bool { return p.Region == region && p.Size == size })
	if max >= 0 {
		c.capacity = append(c.capacity, Capacity{Region: region, Size: size, Max: max})
	}
}

// RegionDisabled reports whether a region refuses new machines.
func (c *Cloud) RegionDisabled(region string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.disabled[region]
}

// DisableRegion makes a region refuse new machines (CodeRegionDisabled),
// or take them again.
func (c *Cloud) DisableRegion(region string, disabled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if disabled {
		c.disabled[region] = true
	} else {
		delete(c.disabled, region)
	}
}
