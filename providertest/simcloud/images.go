package simcloud

import (
	"maps"
	"slices"
)

// AddImage adds an image to the catalogue (CreatedAt/ReadyAt default to now)
// and returns its ID (assigned when img.ID is 0).
func (c *Cloud) AddImage(img Image) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addImageLocked(img)
}

func (c *Cloud) addImageLocked(img Image) int64 {
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

// RepublishImage publishes a successor of catalogue image id under a new
// name, created and usable now, as Canonical and Debian publish newer AMIs
// under the same name pattern: an image resolver picking the newest then
// picks another image than before. The old image stays. It returns the new
// image's ID, or CodeNotFound.
func (c *Cloud) RepublishImage(id int64, name string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.images[id]
	if !ok || !m.DeletedAt.IsZero() {
		return 0, errf(CodeNotFound, "image %d not found", id)
	}
	next := m.clone()
	next.ID, next.Name = 0, name
	next.CreatedAt, next.ReadyAt = c.now(), c.now()
	next.Failed = false
	return c.addImageLocked(next), nil
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
	// DiscardFailed: the cloud keeps no image of a snapshot that fails
	// (DigitalOcean's errored snapshot action makes none), so a failed one
	// is no resource at all. Without it the failed image stays until
	// deleted, as EC2's failed AMI does.
	DiscardFailed bool
}

// CreateSnapshot snapshots an existing instance. The image is usable after
// Options.SnapshotDelay (spread by SnapshotJitter); the returned action
// completes then. A share of snapshots (Options.SnapshotFailRate, or an
// injected FaultSnapshotFailed) stays pending as long, then fails, its
// action too. An instance being deleted gives CodeIncorrect; under
// LockActions, one with a running action gives CodeLocked.
func (c *Cloud) CreateSnapshot(spec SnapshotSpec) (Image, Action, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	in, ok := c.instances[spec.InstanceID]
	if !ok || in.State(now) == StateDeleted || now.Before(in.VisibleAt) {
		return Image{}, Action{}, errf(CodeNotFound, "instance %d not found", spec.InstanceID)
	}
	if c.lockActions && in.Busy(now) {
		return Image{}, Action{}, errf(CodeLocked, "instance %d is locked: an action is running", spec.InstanceID)
	}
	if in.State(now) == StateDeleting {
		return Image{}, Action{}, errf(CodeIncorrect, "instance %d is being deleted", spec.InstanceID)
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
	_, failed := c.pendingModelFaultLocked(FaultSnapshotFailed)
	if r := c.opts.SnapshotFailRate; !failed && r > 0 && c.rng.Float64() < r {
		failed = true
	}
	if failed {
		c.failedSnaps++
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
		ReadyAt:     now.Add(c.Scale(c.jittered(c.opts.SnapshotDelay, c.opts.SnapshotJitter))),
		Failed:      failed,
	}
	if src != nil {
		img.Distribution, img.Version = src.Distribution, src.Version
	}
	if failed && spec.DiscardFailed {
		img.DeletedAt = img.ReadyAt // never an image: not read, listed nor billed
	}
	if spec.VolumeSnapshots {
		vl := spec.VolumeLabels
		if vl == nil {
			vl = spec.Labels
		}
		v := &VolumeSnapshot{ID: c.id(), ImageID: img.ID, SizeGB: disk, Labels: maps.Clone(vl), CreatedAt: now, ReadyAt: img.ReadyAt, Failed: failed, DeletedAt: img.DeletedAt}
		c.volumes[v.ID] = v
		img.VolumeSnaps = []int64{v.ID}
	}
	c.images[img.ID] = img
	c.imgOrder = append(c.imgOrder, img.ID)
	if img.ReadyAt.After(in.BusyUntil) {
		in.BusyUntil = img.ReadyAt
	}
	act := c.addActionLocked("snapshot", img.ID, "image", now, img.ReadyAt)
	if failed {
		c.actions[act.ID].Failed = true
		act.Failed = true
	}
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
