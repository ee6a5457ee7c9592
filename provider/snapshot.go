package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spuffgo/spuff/provider/driver"
)

// Snapshots follow the create protocol (see create.go): a snapshot request
// is identified by the owner, the machine and the name; its key is set on
// the snapshot as early as the cloud allows. CreateSnapshot adopts a
// snapshot of the same request that exists or is being made (a retry after
// a timeout resumes waiting for it rather than making a second), starts
// one otherwise, and waits for it. A snapshot that fails is deleted; one
// still being made when the wait ends is left labelled as managed
// (ListSnapshots shows it, a repeated CreateSnapshot resumes it) and named
// in the error's Leftover.

// snapshotKey returns the key of a snapshot request.
func snapshotKey(owner, instanceID, name string, ttl time.Duration) string {
	return requestKey(owner, &InstanceRequest{Name: "snapshot/" + instanceID, Region: name, TTL: ttl})
}

func (m *machines) noSnapshots(op string) error {
	return &Error{Kind: KindNotSupported, Provider: m.name, Op: op, Message: "the provider has no snapshots"}
}

// CreateSnapshot snapshots the machine and waits until the snapshot is
// usable.
func (m *machines) CreateSnapshot(ctx context.Context, instanceID, name string, opts ...SnapshotOption) (*Snapshot, error) {
	const op = "CreateSnapshot"
	start := time.Now()
	if m.snap == nil {
		return nil, m.noSnapshots(op)
	}
	var o snapshotOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkTTL("SnapshotTTL", o.ttl); err != nil {
		return nil, m.fail(op, "", "", start, err)
	}
	if err := m.checkID(op, "instance", instanceID, false); err != nil {
		return nil, err
	}
	key := snapshotKey(m.owner, instanceID, name, o.ttl)
	if name == "" {
		name = "spuff-" + instanceID + "-" + time.Now().UTC().Format("20060102-150405")
	}
	if err := m.snap.CheckSnapshot(name); err != nil {
		return nil, m.fail(op, "", "", start, err)
	}
	v, err := m.snaps.do(ctx, key, func(ctx context.Context) (any, error) {
		return m.snapshot(ctx, instanceID, name, key, o.ttl)
	})
	if err != nil {
		return nil, m.fail(op, "instance", instanceID, start, err)
	}
	return v.(*Snapshot).Clone(), nil
}

func (m *machines) snapshot(ctx context.Context, instanceID, name, key string, ttl time.Duration) (*Snapshot, error) {
	const op = "CreateSnapshot"
	labels := map[string]string{OwnerLabel: m.owner, keyLabel: key}
	if ttl > 0 {
		labels[expiresLabel] = expiryValue(time.Now().Add(ttl))
	}
	s, err := m.findSnapshot(ctx, instanceID, name, key)
	if err != nil {
		return nil, err
	}
	mine := false // this call started it
	if s == nil {
		if s, err = m.startSnapshot(ctx, instanceID, name, key, labels); err != nil {
			return nil, err
		}
		mine = true
	}
	begun := time.Now()
	if !s.CreatedAt.IsZero() && s.CreatedAt.Before(begun) {
		begun = s.CreatedAt
	}
	if s.Job != "" {
		m.jobs.add(key + "/" + s.Job)
	}
	err = m.pol.waitFor(ctx, op, "snapshot", snapshotRef(s), m.pol.t.ActionComplete, DefaultWait(m.info.ExpectedSnapshot, m.pol.t), begun, func(ctx context.Context) (bool, string, error) {
		next, err := m.snap.PollSnapshot(ctx, s)
		if err != nil {
			return false, "", err
		}
		s = next
		switch s.State {
		case driver.SnapshotAvailable:
			return true, "available", nil
		case driver.SnapshotFailed:
			return false, "failed", errSnapshotFailed
		}
		if s.Progress > 0 {
			return false, fmt.Sprintf("pending (%d%%)", s.Progress), nil
		}
		return false, "pending", nil
	})
	switch {
	case err == nil:
		m.jobs.remove(key + "/" + s.Job)
		return m.snapshotOf(s), nil
	case errors.Is(err, errSnapshotFailed) || s.State == driver.SnapshotFailed:
		return nil, m.discardSnapshot(ctx, s, mine)
	}
	// Still being made: it stays, labelled as managed, for a retry to
	// resume or for ListSnapshots and the caller to find.
	var e *Error
	if errors.As(err, &e) {
		if mine {
			e.Leftover = s.ID
		}
		where := "ListSnapshots shows it"
		if s.ID == "" {
			where = "ListSnapshots shows it once the cloud has made it"
		}
		e.Message = joinMessage(e.Message, fmt.Sprintf("the snapshot %q is still being made and was left labelled as managed: %s, and CreateSnapshot of the same machine and name resumes waiting for it", name, where))
	}
	return nil, err
}

// errSnapshotFailed ends the wait for a snapshot the cloud reports failed.
var errSnapshotFailed = &Error{Kind: KindAPI, Message: "the cloud reports the snapshot failed"}

// snapshotRef names a snapshot in progress: its ID, else its job.
func snapshotRef(s *driver.Snapshot) string {
	if s.ID != "" {
		return s.ID
	}
	return s.Job
}

// discardSnapshot deletes a snapshot that failed, within ctx; if it
// cannot be deleted and this call made it, the error names it in
// Leftover.
func (m *machines) discardSnapshot(ctx context.Context, s *driver.Snapshot, mine bool) error {
	const op = "CreateSnapshot"
	e := &Error{Kind: KindAPI, Provider: m.name, Op: op, Resource: "snapshot", ID: s.ID,
		Message: joinMessage("the snapshot failed", s.Message)}
	if s.ID == "" {
		return e
	}
	derr := m.pol.call(ctx, op, func(ctx context.Context) error { return m.snap.DeleteSnapshot(ctx, s.ID) })
	if derr != nil && KindOf(derr) != KindNotFound {
		if mine {
			e.Leftover = s.ID
		}
		e.Message = joinMessage(e.Message, "it could not be deleted: delete it")
		e.Err = derr
	}
	return e
}

// findSnapshot returns a snapshot of the same request that exists or is
// being made (not failed), or nil. A job in progress on the machine whose
// labels the cloud cannot show yet is taken only when this Provider
// started it.
func (m *machines) findSnapshot(ctx context.Context, instanceID, name, key string) (*driver.Snapshot, error) {
	mine, _, err := m.snapshotsOf(ctx, instanceID, name, key)
	return mine, err
}

// snapshotsOf looks at the snapshots of the machine: the request's own
// (see findSnapshot), and a job in progress whose labels the cloud cannot
// show yet and that this Provider did not start (someone's, or this
// request's from another process).
func (m *machines) snapshotsOf(ctx context.Context, instanceID, name, key string) (mine, unlabelled *driver.Snapshot, err error) {
	const op = "CreateSnapshot"
	q := driver.Query{InstanceID: instanceID, Labels: map[string]string{OwnerLabel: m.owner, keyLabel: key}}
	err = m.snapshotPages(ctx, op, q, func(page []*driver.Snapshot) bool {
		for _, s := range page {
			switch {
			case s.State == driver.SnapshotFailed:
			case m.owned(s.Labels) && s.Labels[keyLabel] == key:
				mine = s
				return false
			case s.Labels == nil && m.startedJob(key, instanceID, s):
				// This request's job: what it makes is named and
				// labelled as the request asked.
				c := *s
				c.Name, c.Labels = name, map[string]string{OwnerLabel: m.owner, keyLabel: key}
				mine = &c
				return false
			case s.Labels == nil && s.Job != "" && s.State == driver.SnapshotPending:
				unlabelled = s
			}
		}
		return true
	})
	return mine, unlabelled, err
}

// clockSkew is how far the cloud's clock may be from ours.
const clockSkew = time.Minute

// startedJob reports whether a snapshot job whose labels the cloud cannot
// show yet is this request's: one this Provider started, or one begun on
// the machine since a start of this request whose answer was lost.
func (m *machines) startedJob(key, instanceID string, s *driver.Snapshot) bool {
	if s.Job == "" {
		return false
	}
	if m.jobs.has(key + "/" + s.Job) {
		return true
	}
	age, ok := m.jobs.age(key + "/@" + instanceID)
	return ok && !s.CreatedAt.IsZero() && !s.CreatedAt.Before(time.Now().Add(-age-clockSkew))
}

// startSnapshot starts the snapshot under the retry policy; an attempt
// whose outcome is unknown is looked for (see lookFor), never repeated
// blindly.
func (m *machines) startSnapshot(ctx context.Context, instanceID, name, key string, labels map[string]string) (*driver.Snapshot, error) {
	const op = "CreateSnapshot"
	in := &driver.SnapshotInput{InstanceID: instanceID, Name: name, Labels: labels, Token: newToken()}
	var s *driver.Snapshot
	unknown := false
	started := time.Now()
	err := m.pol.loop(ctx, op, func(ctx context.Context) (bool, error) {
		var out *driver.Snapshot
		err := m.pol.once(ctx, op, func(ctx context.Context) error {
			var err error
			out, err = m.snap.StartSnapshot(ctx, in)
			if err == nil && out == nil {
				err = driver.Lost("the snapshot answer has no snapshot", nil)
			}
			return err
		})
		switch {
		case err == nil:
			s = out
			return false, nil
		case KindOf(err) == KindConflict:
			// The name is taken (EC2's AMI names are unique): by
			// this request's snapshot, or another.
			found, ferr := m.snapshotNamed(ctx, name, key)
			if found != nil {
				s = found
				return false, nil
			}
			if ferr != nil {
				return IsRetryable(ferr), ferr
			}
			var e *Error
			if errors.As(err, &e) {
				e.Field = "name"
			}
			return false, err
		case outcomeUnknown(err):
			unknown = true
			m.jobs.add(key + "/@" + instanceID)
			return false, err
		}
		return IsRetryable(err), err
	})
	if busy(err) && ctx.Err() == nil {
		// The machine has an action running (an earlier snapshot of
		// this request, it may be): wait for it to end, adopting this
		// request's snapshot should it appear.
		s, err = m.startWhenFree(ctx, in, name, key)
	}
	if s != nil || !unknown || ctx.Err() != nil {
		return s, err
	}
	lerr := lookFor(ctx, m.pol.t.Lookup, func(ctx context.Context) (bool, error) {
		found, err := m.findSnapshot(ctx, instanceID, name, key)
		s = found
		return found != nil, err
	})
	if s != nil {
		return s, nil
	}
	m.pol.log.Debug("spuff: a snapshot with a lost answer was not found", "provider", m.name, "instance", instanceID, "since", time.Since(started))
	return nil, &Error{Kind: KindOutcomeUnknown, Provider: m.name, Op: op, Resource: "instance", ID: instanceID,
		Message: fmt.Sprintf("the snapshot may have been started, and no snapshot labelled %s=%s is listed yet; repeat the same CreateSnapshot: it resumes the snapshot once the cloud lists it", keyLabel, key),
		Err:     errors.Join(err, lerr)}
}

// startWhenFree starts the snapshot once the machine is no longer busy,
// bounded by ActionComplete, unless this request's snapshot appears first.
// A job in progress on the machine whose labels cannot be shown yet is
// followed to its end, where its labels tell whose it was: this request's
// (made by another process, or by a call that gave up) is adopted, and no
// second is made while the listing has yet to show it.
func (m *machines) startWhenFree(ctx context.Context, in *driver.SnapshotInput, name, key string) (*driver.Snapshot, error) {
	const op = "CreateSnapshot"
	var s *driver.Snapshot
	var last error
	w := waiter{Provider: m.name, Op: op, Resource: "instance", ID: in.InstanceID, Timeout: m.pol.t.ActionComplete,
		Policy: ExponentialWait(m.pol.t.PollInterval/10, m.pol.t.PollInterval, 1.5, 0.2), Logger: m.pol.log}
	var job *driver.Snapshot // the job in progress being followed
	err := w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		if job != nil {
			err := m.pol.once(ctx, op, func(ctx context.Context) error {
				next, err := m.snap.PollSnapshot(ctx, job)
				if err == nil {
					job = next
				}
				return err
			})
			switch {
			case err != nil:
				return false, "", err
			case job.State == driver.SnapshotPending:
				return false, "another snapshot of the machine in progress", nil
			case job.State == driver.SnapshotAvailable && m.owned(job.Labels) && job.Labels[keyLabel] == key:
				s, last = job, nil
				return true, "", nil
			}
			job = nil // someone else's, done: the machine is free
		}
		found, other, err := m.snapshotsOf(ctx, in.InstanceID, name, key)
		if err != nil || found != nil {
			s, last = found, nil
			return found != nil, "", err
		}
		if other != nil {
			job = other
			return false, "another snapshot of the machine in progress", nil
		}
		last = m.pol.once(ctx, op, func(ctx context.Context) error {
			var err error
			s, err = m.snap.StartSnapshot(ctx, in)
			return err
		})
		if busy(last) {
			return false, "busy with another action", nil
		}
		return true, "", nil
	})
	if err != nil {
		return nil, err
	}
	return s, last
}

// snapshotNamed returns the snapshot named name that carries key, when a
// snapshot of that name exists, or nil and a conflict error naming the
// one that does.
func (m *machines) snapshotNamed(ctx context.Context, name, key string) (*driver.Snapshot, error) {
	const op = "CreateSnapshot"
	var found, other *driver.Snapshot
	err := m.snapshotPages(ctx, op, driver.Query{Name: name}, func(page []*driver.Snapshot) bool {
		for _, s := range page {
			if s.Name != name || s.State == driver.SnapshotFailed {
				continue
			}
			if m.owned(s.Labels) && s.Labels[keyLabel] == key {
				found = s
				return false
			}
			other = s
		}
		return true
	})
	switch {
	case err != nil:
		return nil, err
	case found != nil:
		return found, nil
	case other != nil:
		return nil, &Error{Kind: KindConflict, Provider: m.name, Op: op, Resource: "snapshot", Field: "name", Existing: other.ID,
			Message: fmt.Sprintf("a snapshot named %q already exists (%s); choose another name", name, other.ID)}
	}
	return nil, &Error{Kind: KindConflict, Provider: m.name, Op: op, Resource: "snapshot", Field: "name",
		Message: fmt.Sprintf("the cloud says a snapshot named %q exists, and none is listed", name), retry: true}
}

// snapshotPages is pages for snapshots.
func (m *machines) snapshotPages(ctx context.Context, op string, q driver.Query, each func([]*driver.Snapshot) bool) error {
	token := ""
	for range maxPages {
		var page []*driver.Snapshot
		var next string
		err := m.pol.call(ctx, op, func(ctx context.Context) error {
			var err error
			page, next, err = m.snap.ListSnapshots(ctx, q, token)
			return err
		})
		if err != nil {
			return err
		}
		if !each(page) || next == "" || next == token {
			return nil
		}
		token = next
	}
	return nil
}

// snapshotOf maps a driver's snapshot.
func (m *machines) snapshotOf(s *driver.Snapshot) *Snapshot {
	out := &Snapshot{ID: s.ID, Name: s.Name, CreatedAt: s.CreatedAt, SizeGB: s.SizeGB, Labels: userLabels(s.Labels),
		ExpiresAt: expiry(s.Labels)}
	switch s.State {
	case driver.SnapshotAvailable:
		out.Status = SnapshotAvailable
	case driver.SnapshotFailed:
		out.Status = SnapshotFailed
	default:
		out.Status = SnapshotPending
	}
	return out
}

// ListSnapshots returns every snapshot with the ownership label, all
// pages: usable ones, and those still being made or failed (Status says).
func (m *machines) ListSnapshots(ctx context.Context) ([]*Snapshot, error) {
	const op = "ListSnapshots"
	start := time.Now()
	if m.snap == nil {
		return nil, m.noSnapshots(op)
	}
	var out []*Snapshot
	seen := map[string]bool{}
	err := m.snapshotPages(ctx, op, driver.Query{Labels: m.ownerQuery()}, func(page []*driver.Snapshot) bool {
		for _, s := range page {
			if s.ID == "" || seen[s.ID] || !m.owned(s.Labels) {
				continue
			}
			seen[s.ID] = true
			out = append(out, m.snapshotOf(s))
		}
		return true
	})
	if err != nil {
		return nil, m.fail(op, "", "", start, err)
	}
	return out, nil
}

// DeleteSnapshot deletes the snapshot and the storage behind it; one
// already gone is success.
func (m *machines) DeleteSnapshot(ctx context.Context, id string) error {
	const op = "DeleteSnapshot"
	start := time.Now()
	if m.snap == nil {
		return m.noSnapshots(op)
	}
	if err := m.checkID(op, "snapshot", id, false); err != nil {
		return err
	}
	err := m.whileBusy(ctx, op, "snapshot", id, func(ctx context.Context) error { return m.snap.DeleteSnapshot(ctx, id) })
	if KindOf(err) == KindNotFound {
		return nil
	}
	return m.fail(op, "snapshot", id, start, err)
}
