package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spuffgo/spuff/provider/driver"
)

// ReapOptions tune Reap.
type ReapOptions struct {
	// OlderThan, when positive, also reaps managed machines that carry no
	// expiry and were made longer ago than this (snapshots without an
	// expiry are kept: they are meant to last).
	OlderThan time.Duration
	// DryRun reports what would be reaped and changes nothing.
	DryRun bool
	// Now is the time expiries are compared with; zero means time.Now().
	Now time.Time
}

// Reaped is one resource Reap destroyed (or, in a dry run, would have).
type Reaped struct {
	// Resource is "instance", "snapshot" or "volume-snapshot" (EBS
	// snapshots an AMI left behind).
	Resource string
	// ID and Name identify it.
	ID, Name string
	// ExpiresAt is its expiry, zero when it was reaped for its age.
	ExpiresAt time.Time
	// CreatedAt is when it was made.
	CreatedAt time.Time
}

// ReapFailure is a resource Reap could not destroy, and why.
type ReapFailure struct {
	Reaped
	Err error
}

// ReapReport is what a Reap did.
type ReapReport struct {
	// Destroyed are the resources destroyed (in a dry run: that would be).
	Destroyed []Reaped
	// Failed are the ones that could not be, with their errors.
	Failed []ReapFailure
	// Kept counts the managed resources left alone (not expired).
	Kept int
}

// Err returns the failures as one error, or nil.
func (r *ReapReport) Err() error {
	var errs []error
	for _, f := range r.Failed {
		errs = append(errs, fmt.Errorf("%s %s: %w", f.Resource, f.ID, f.Err))
	}
	return errors.Join(errs...)
}

// Reap destroys the managed machines and snapshots of p that are past
// their expiry (InstanceRequest.TTL, SnapshotTTL), and, with
// opts.OlderThan, the managed machines without an expiry older than that.
// It lists every page of every region p covers, and only what p manages:
// nothing spuff did not make is touched. It is idempotent and safe to run
// from many processes at once: a machine another reaper destroyed first
// counts as destroyed. Calls are paced like any of p's. Where the cloud
// leaves storage behind deleted images (EBS snapshots of deregistered
// managed AMIs), Reap removes that too.
//
// A failure to destroy one resource does not stop the others: it is in
// the report, and in the returned error with the listing errors.
func Reap(ctx context.Context, p Provider, opts ReapOptions) (*ReapReport, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	rep := &ReapReport{}
	insts, err := p.ListInstances(ctx)
	if err != nil {
		return rep, err
	}
	for _, in := range insts {
		r := Reaped{Resource: "instance", ID: in.ID, Name: in.Name, ExpiresAt: in.ExpiresAt, CreatedAt: in.CreatedAt}
		due := in.Expired(now) ||
			in.ExpiresAt.IsZero() && opts.OlderThan > 0 && !in.CreatedAt.IsZero() && now.Sub(in.CreatedAt) > opts.OlderThan
		if !due {
			rep.Kept++
			continue
		}
		rep.record(r, opts.DryRun, func() error { return p.DestroyInstance(ctx, in.ID) })
	}
	var listErr error
	if p.Capabilities().Snapshots {
		snaps, err := p.ListSnapshots(ctx)
		if err != nil {
			listErr = err
		}
		for _, s := range snaps {
			if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
				rep.Kept++
				continue
			}
			r := Reaped{Resource: "snapshot", ID: s.ID, Name: s.Name, ExpiresAt: s.ExpiresAt, CreatedAt: s.CreatedAt}
			rep.record(r, opts.DryRun, func() error { return p.DeleteSnapshot(ctx, s.ID) })
		}
	}
	if o, ok := p.(orphanReaper); ok {
		found, err := o.orphans(ctx)
		if err != nil {
			listErr = errors.Join(listErr, err)
		}
		for _, r := range found {
			rep.record(r, opts.DryRun, func() error { return o.deleteOrphan(ctx, r.ID) })
		}
	}
	return rep, errors.Join(listErr, rep.Err())
}

// record destroys one resource (unless dry), noting the outcome.
func (r *ReapReport) record(what Reaped, dry bool, destroy func() error) {
	if dry {
		r.Destroyed = append(r.Destroyed, what)
		return
	}
	if err := destroy(); err != nil {
		r.Failed = append(r.Failed, ReapFailure{Reaped: what, Err: err})
		return
	}
	r.Destroyed = append(r.Destroyed, what)
}

// orphanReaper is the Provider of a cloud that can leave storage behind a
// deleted image.
type orphanReaper interface {
	orphans(ctx context.Context) ([]Reaped, error)
	deleteOrphan(ctx context.Context, id string) error
}

var _ orphanReaper = (*machines)(nil)

// orphans lists the storage left behind by deleted managed snapshots.
func (m *machines) orphans(ctx context.Context) ([]Reaped, error) {
	o, ok := m.d.(driver.Orphaner)
	if !ok {
		return nil, nil
	}
	const op = "Reap"
	start := time.Now()
	found, err := retried(ctx, m.pol, op, func(ctx context.Context) ([]*driver.Snapshot, error) { return o.Orphans(ctx, m.ownerQuery()) })
	if err != nil {
		return nil, m.fail(op, "volume-snapshot", "", start, err)
	}
	out := make([]Reaped, 0, len(found))
	for _, s := range found {
		if m.owned(s.Labels) {
			out = append(out, Reaped{Resource: "volume-snapshot", ID: s.ID, Name: s.Name, CreatedAt: s.CreatedAt, ExpiresAt: expiry(s.Labels)})
		}
	}
	return out, nil
}

// deleteOrphan deletes one; already gone is success.
func (m *machines) deleteOrphan(ctx context.Context, id string) error {
	const op = "Reap"
	start := time.Now()
	o := m.d.(driver.Orphaner)
	err := m.whileBusy(ctx, op, "volume-snapshot", id, func(ctx context.Context) error { return o.DeleteOrphan(ctx, id) })
	if KindOf(err) == KindNotFound {
		return nil
	}
	return m.fail(op, "volume-snapshot", id, start, err)
}
