package simcloud

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// Stats is what the cloud has seen, for tests and benchmarks to assert on.
type Stats struct {
	// Calls counts API calls per operation, rejected ones included.
	Calls map[Op]int
	// TotalCalls is the sum of Calls.
	TotalCalls int
	// Created counts instances made by CreateInstance (not AddInstances).
	Created int
	// Duplicates counts creates that made a second live instance with the
	// name of another.
	Duplicates int
	// RateLimited counts calls rejected by the rate limit (not injected).
	RateLimited int
	// FaultsInjected counts injected faults by kind.
	FaultsInjected map[FaultKind]int
	// LiveInstances, LiveSnapshots and LiveVolumeSnapshots count what exists
	// now and nobody asked to delete (billed resources: a leak if left).
	LiveInstances, LiveSnapshots, LiveVolumeSnapshots int
	// DeletingInstances counts instances deleted but not gone yet
	// (Options.DestroyDelay).
	DeletingInstances int
	// CapacityRefused counts creates the model refused because their
	// placement was full (Options.Capacity, SetCapacity); injected
	// FaultCapacity answers are in FaultsInjected.
	CapacityRefused int
	// FailedSnapshots counts the snapshots made to fail, by
	// Options.SnapshotFailRate or an injected FaultSnapshotFailed.
	FailedSnapshots int
}

// Stats returns the cloud's counters.
func (c *Cloud) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	s := Stats{
		Calls:           maps.Clone(c.calls),
		Created:         c.created,
		Duplicates:      c.duplicates,
		RateLimited:     c.rateLimited,
		FaultsInjected:  maps.Clone(c.faultsInjected),
		CapacityRefused: c.refused,
		FailedSnapshots: c.failedSnaps,
	}
	for _, n := range c.calls {
		s.TotalCalls += n
	}
	for _, in := range c.instances {
		switch in.State(now) {
		case StateDeleting:
			s.DeletingInstances++
		case StateDeleted:
		default:
			s.LiveInstances++
		}
	}
	for _, m := range c.images {
		if m.Kind == ImageSnapshot && m.DeletedAt.IsZero() {
			s.LiveSnapshots++
		}
	}
	for _, v := range c.volumes {
		if v.DeletedAt.IsZero() {
			s.LiveVolumeSnapshots++
		}
	}
	return s
}

// Calls returns the number of calls of op so far.
func (c *Cloud) Calls(op Op) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// TotalCalls returns the number of API calls so far.
func (c *Cloud) TotalCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// ResetCalls zeroes the call counters.
func (c *Cloud) ResetCalls() {
	c.mu.Lock()
	c.calls = make(map[Op]int)
	c.mu.Unlock()
}

// LiveInstances returns every instance nobody asked to delete, visible or
// not: the ground truth of what is billed and would leak.
func (c *Cloud) LiveInstances() []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var out []Instance
	for _, id := range c.order {
		switch in := c.instances[id]; in.State(now) {
		case StateNew, StateActive:
			out = append(out, in.clone())
		}
	}
	return out
}

// AllInstances returns every instance the cloud ever made, deleted ones
// too, oldest first: the ground truth an audit checks what was made
// against.
func (c *Cloud) AllInstances() []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Instance, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.instances[id].clone())
	}
	return out
}

// DeletingInstances returns the instances deleted but not gone yet.
func (c *Cloud) DeletingInstances() []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var out []Instance
	for _, id := range c.order {
		if in := c.instances[id]; in.State(now) == StateDeleting {
			out = append(out, in.clone())
		}
	}
	return out
}

// LiveSnapshots returns every snapshot image not deleted.
func (c *Cloud) LiveSnapshots() []Image {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Image
	for _, id := range c.imgOrder {
		if m := c.images[id]; m.Kind == ImageSnapshot && m.DeletedAt.IsZero() {
			out = append(out, m.clone())
		}
	}
	return out
}

// LiveVolumeSnapshots returns every volume snapshot not deleted.
func (c *Cloud) LiveVolumeSnapshots() []VolumeSnapshot {
	return c.ListVolumeSnapshots(nil)
}

// state is the persisted form of a Cloud.
type state struct {
	Version   int               `json:"version"`
	SavedAt   time.Time         `json:"saved_at"`
	NextID    int64             `json:"next_id"`
	IPSeq     uint32            `json:"ip_seq"`
	Tokens    []string          `json:"tokens"`
	Instances []*Instance       `json:"instances"`
	Images    []*Image          `json:"images"`
	Volumes   []*VolumeSnapshot `json:"volumes"`
	Keys      []*SSHKey         `json:"keys"`
	Actions   []*Action         `json:"actions"`
	ByClient  map[string]int64  `json:"by_client,omitempty"`
}

// Save writes the cloud's resources (not its counters, limits or faults) as
// JSON, so a later process can Load them: how the spuffctl example keeps a
// simulated cloud between runs. Deleted instances past Options.Retention are
// dropped.
func (c *Cloud) Save(w io.Writer) error {
	c.mu.Lock()
	now := c.now()
	st := state{Version: 1, SavedAt: now, NextID: c.nextID, IPSeq: c.ipSeq, ByClient: maps.Clone(c.byClient)}
	for t := range c.tokens {
		st.Tokens = append(st.Tokens, t)
	}
	slices.Sort(st.Tokens)
	for _, id := range c.order {
		in := c.instances[id]
		if in.State(now) == StateDeleted && c.expiredLocked(in, now) {
			continue
		}
		cp := in.clone()
		st.Instances = append(st.Instances, &cp)
	}
	for _, id := range c.imgOrder {
		if m := c.images[id]; m.DeletedAt.IsZero() {
			cp := m.clone()
			st.Images = append(st.Images, &cp)
		}
	}
	for _, v := range c.volumes {
		if v.DeletedAt.IsZero() {
			cp := *v
			st.Volumes = append(st.Volumes, &cp)
		}
	}
	slices.SortFunc(st.Volumes, func(a, b *VolumeSnapshot) int { return int(a.ID - b.ID) })
	for _, k := range c.keys {
		cp := *k
		st.Keys = append(st.Keys, &cp)
	}
	slices.SortFunc(st.Keys, func(a, b *SSHKey) int { return int(a.ID - b.ID) })
	for _, a := range c.actions {
		if now.Sub(a.DoneAt) < time.Hour {
			cp := *a
			st.Actions = append(st.Actions, &cp)
		}
	}
	slices.SortFunc(st.Actions, func(a, b *Action) int { return int(a.ID - b.ID) })
	c.mu.Unlock()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(&st)
}

// Load makes a Cloud with opts and the resources saved by Save. The saved
// credentials are accepted as well as opts.Tokens.
func Load(r io.Reader, opts Options) (*Cloud, error) {
	var st state
	if err := json.NewDecoder(io.LimitReader(r, 256<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("simcloud: reading saved state: %w", err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("simcloud: saved state has version %d, want 1", st.Version)
	}
	opts.Tokens = append(slices.Clone(opts.Tokens), st.Tokens...)
	c := New(opts)
	c.mu.Lock()
	defer c.mu.Unlock()
	// New added default SSH keys; the saved ones replace them.
	c.keys = make(map[int64]*SSHKey)
	c.nextID = max(c.nextID, st.NextID)
	c.ipSeq = st.IPSeq
	for _, in := range st.Instances {
		c.instances[in.ID] = in
		c.order = append(c.order, in.ID)
	}
	slices.Sort(c.order)
	for _, m := range st.Images {
		c.images[m.ID] = m
		c.imgOrder = append(c.imgOrder, m.ID)
	}
	slices.Sort(c.imgOrder)
	for _, v := range st.Volumes {
		c.volumes[v.ID] = v
	}
	for _, k := range st.Keys {
		c.keys[k.ID] = k
	}
	for _, a := range st.Actions {
		c.actions[a.ID] = a
	}
	maps.Copy(c.byClient, st.ByClient)
	return c, nil
}
