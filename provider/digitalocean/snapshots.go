package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/provider"
)

// clockSkew is how far the API's clock may be from ours when matching a
// snapshot action or image to the call that made it.
const clockSkew = time.Minute

// CreateSnapshot takes a snapshot of the droplet with its snapshot action,
// waits for the action to complete, finds the image it made among the
// droplet's snapshots, tags it as managed, and returns it with its real ID.
//
// The action is not idempotent: after an attempt whose outcome is unknown,
// the droplet's recent actions are searched for the snapshot before another
// is asked for (DigitalOcean also refuses a second action while one is
// pending).
func (p *Provider) CreateSnapshot(ctx context.Context, instanceID, name string) (*provider.Snapshot, error) {
	const op = "CreateSnapshot"
	n, err := parseID(op, "instance", instanceID)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = fmt.Sprintf("spuff-%d-%d", n, time.Now().Unix())
	}
	start := time.Now()
	var act *godo.Action
	unknown := false
	err = p.pol.Call(ctx, op, func(ctx context.Context) error {
		if unknown {
			a, err := p.pendingSnapshot(ctx, n, name, start)
			if err != nil {
				return classify(op, err)
			}
			if a != nil {
				act = a
				return nil
			}
		}
		a, _, err := p.client.DropletActions.Snapshot(ctx, n, name)
		if err == nil && a == nil {
			err = emptyAnswer(op, "action")
		}
		if err != nil {
			err = classify(op, err)
			if unknown && status(err) == http.StatusUnprocessableEntity {
				// "Droplet already has a pending event": ours, most likely.
				if a, ferr := p.pendingSnapshot(ctx, n, name, start); ferr == nil && a != nil {
					act = a
					return nil
				}
			}
			unknown = unknown || provider.OutcomeUnknown(err)
			return err
		}
		act = a
		return nil
	})
	if err != nil && unknown {
		// The lookups since an attempt whose answer was lost failed:
		// look once more, so that its snapshot is not left behind
		// untagged.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.pol.Timeouts.HTTPRequest)
		var found *godo.Action
		_ = p.call(lctx, op, func(ctx context.Context) (ferr error) {
			found, ferr = p.pendingSnapshot(ctx, n, name, start)
			return ferr
		})
		cancel()
		var perr *provider.Error
		switch {
		case found != nil && ctx.Err() == nil:
			act, err = found, nil // go on with it
		case !errors.As(err, &perr):
		case found != nil:
			perr.Message = strings.TrimPrefix(fmt.Sprintf("%s; snapshot action %d is making the snapshot %q, which will not be tagged %s: delete it", perr.Message, found.ID, name, p.ownerTag), "; ")
		default:
			perr.Message = strings.TrimPrefix(fmt.Sprintf("%s; a snapshot %q of the droplet may have been asked for; if it appears, it is not tagged %s: delete it", perr.Message, name, p.ownerTag), "; ")
		}
	}
	if err != nil {
		return nil, withResource(err, "instance", instanceID)
	}

	err = p.pol.WaitFor(ctx, op, "snapshot action", strconv.Itoa(act.ID), p.pol.Timeouts.ActionComplete, func(ctx context.Context) (bool, string, error) {
		a, _, err := p.client.Actions.Get(ctx, act.ID)
		if err == nil && a == nil {
			err = emptyAnswer(op, "action")
		}
		if err != nil {
			return false, "", classify(op, err)
		}
		switch a.Status {
		case godo.ActionCompleted:
			return true, a.Status, nil
		case "errored":
			return false, a.Status, &provider.Error{Kind: provider.KindAPI, Provider: Name, Op: op, Resource: "instance", ID: instanceID,
				Message: fmt.Sprintf("snapshot action %d errored", a.ID)}
		}
		return false, a.Status, nil
	})
	if err != nil {
		return nil, err
	}

	// The snapshot exists now, untagged: until it is tagged, no listing
	// shows it. Finding and tagging it ride over transient errors like a
	// wait, bounded by ActionComplete.
	var img *godo.Image
	err = p.pol.WaitFor(ctx, op, "instance", instanceID, p.pol.Timeouts.ActionComplete, func(ctx context.Context) (bool, string, error) {
		if img == nil {
			m, err := p.findSnapshot(ctx, op, n, name, start)
			if err != nil {
				return false, "finding the snapshot", err
			}
			img = m
		}
		if err := p.tagImage(ctx, op, strconv.Itoa(img.ID)); err != nil {
			return false, "tagging the snapshot", err
		}
		return true, "tagged", nil
	})
	if err != nil {
		var perr *provider.Error
		switch {
		case !errors.As(err, &perr):
		case img != nil:
			perr.Resource, perr.ID = "snapshot", strconv.Itoa(img.ID)
			perr.Message = strings.TrimPrefix(perr.Message+"; the snapshot was made but is not tagged "+p.ownerTag+": tag or delete it", "; ")
		default:
			perr.Message = strings.TrimPrefix(fmt.Sprintf("%s; the snapshot %q of the droplet was made but is not tagged %s: delete it", perr.Message, name, p.ownerTag), "; ")
		}
		return nil, err
	}
	img.Tags = append(img.Tags, p.ownerTag)
	return snapshot(img), nil
}

// pendingSnapshot returns the snapshot action an earlier attempt of this
// call may have started, or nil: a snapshot action of the droplet started
// since start (less the clock skew) that is still in progress (DigitalOcean
// runs one action of a droplet at a time), or one that completed when the
// droplet has a snapshot named name made since then. A completed action of
// an earlier snapshot of the droplet is not taken for this one.
func (p *Provider) pendingSnapshot(ctx context.Context, droplet int, name string, start time.Time) (*godo.Action, error) {
	acts, _, err := p.client.Droplets.Actions(ctx, droplet, &godo.ListOptions{PerPage: PageSize})
	if err != nil {
		return nil, err
	}
	var running, completed *godo.Action
	for i := range acts {
		a := &acts[i]
		if a.Type != "snapshot" || a.Status == "errored" || a.StartedAt == nil || a.StartedAt.Before(start.Add(-clockSkew)) {
			continue
		}
		switch {
		case a.Status != godo.ActionCompleted:
			if running == nil || a.ID > running.ID {
				running = a
			}
		case completed == nil || a.ID > completed.ID:
			completed = a
		}
	}
	if running != nil || completed == nil {
		return running, nil
	}
	for page := 1; page <= maxPages; page++ {
		imgs, resp, err := p.client.Droplets.Snapshots(ctx, droplet, &godo.ListOptions{Page: page, PerPage: PageSize})
		if err != nil {
			return nil, err
		}
		for _, m := range imgs {
			created, _ := time.Parse(time.RFC3339, m.Created)
			if m.Name == name && (created.IsZero() || !created.Before(start.Add(-clockSkew))) {
				return completed, nil
			}
		}
		if lastPage(resp, len(imgs), page*PageSize) {
			break
		}
	}
	return nil, nil
}

// findSnapshot finds the image a snapshot action made: the newest snapshot
// of the droplet with that name, made since start (less the clock skew).
func (p *Provider) findSnapshot(ctx context.Context, op string, droplet int, name string, start time.Time) (*godo.Image, error) {
	imgs, err := listAll(ctx, p, op, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Image, *godo.Response, error) {
		return p.client.Droplets.Snapshots(ctx, droplet, opt)
	})
	if err != nil {
		return nil, err
	}
	var found *godo.Image
	for i := range imgs {
		m := &imgs[i]
		created, _ := time.Parse(time.RFC3339, m.Created)
		if m.Name != name || (!created.IsZero() && created.Before(start.Add(-clockSkew))) {
			continue
		}
		if found == nil || m.ID > found.ID {
			found = m
		}
	}
	if found == nil {
		return nil, &provider.Error{Kind: provider.KindAPI, Provider: Name, Op: op, Resource: "instance", ID: strconv.Itoa(droplet),
			Message: fmt.Sprintf("the snapshot action completed but the droplet has no snapshot named %q", name)}
	}
	// The droplet's list omits tags and type; the image itself has them.
	var img *godo.Image
	err = p.call(ctx, op, func(ctx context.Context) error {
		var err error
		img, _, err = p.client.Images.GetByID(ctx, found.ID)
		if err == nil && img == nil {
			err = emptyAnswer(op, "image")
		}
		return err
	})
	if err != nil {
		var perr *provider.Error
		if errors.As(err, &perr) {
			perr.Resource, perr.ID = "snapshot", strconv.Itoa(found.ID)
			perr.Message = strings.TrimPrefix(perr.Message+"; the snapshot was made but is not tagged "+p.ownerTag+": tag or delete it", "; ")
		}
		return nil, err
	}
	return img, nil
}

// tagImage tags an image as managed, creating the tag first if the account
// lacks it.
func (p *Provider) tagImage(ctx context.Context, op, id string) error {
	req := &godo.TagResourcesRequest{Resources: []godo.Resource{{ID: id, Type: godo.ImageResourceType}}}
	tag := func(ctx context.Context) error {
		_, err := p.client.Tags.TagResources(ctx, p.ownerTag, req)
		return err
	}
	err := p.call(ctx, op, tag)
	if status(err) != http.StatusNotFound {
		return err
	}
	if err := p.call(ctx, op, func(ctx context.Context) error {
		_, _, err := p.client.Tags.Create(ctx, &godo.TagCreateRequest{Name: p.ownerTag})
		return err
	}); err != nil {
		return err
	}
	return p.call(ctx, op, tag)
}

func snapshot(m *godo.Image) *provider.Snapshot {
	s := &provider.Snapshot{ID: strconv.Itoa(m.ID), Name: m.Name, SizeGB: m.SizeGigaBytes, Labels: labels(m.Tags)}
	s.CreatedAt, _ = time.Parse(time.RFC3339, m.Created)
	return s
}

// ListSnapshots returns the snapshots tagged as managed: all pages of
// GET /v2/images?tag_name=managed-by:<owner>.
func (p *Provider) ListSnapshots(ctx context.Context) ([]*provider.Snapshot, error) {
	imgs, err := listAll(ctx, p, "ListSnapshots", func(ctx context.Context, opt *godo.ListOptions) ([]godo.Image, *godo.Response, error) {
		return p.client.Images.ListByTag(ctx, p.ownerTag, opt)
	})
	if err != nil {
		return nil, err
	}
	out := make([]*provider.Snapshot, 0, len(imgs))
	seen := make(map[int]bool, len(imgs))
	for i := range imgs {
		m := &imgs[i]
		if seen[m.ID] || m.Type != "snapshot" || !p.owned(m.Tags) {
			continue
		}
		seen[m.ID] = true
		out = append(out, snapshot(m))
	}
	return out, nil
}

// DeleteSnapshot deletes the snapshot; one already gone is success.
func (p *Provider) DeleteSnapshot(ctx context.Context, id string) error {
	const op = "DeleteSnapshot"
	if _, err := parseID(op, "snapshot", id); err != nil {
		return err
	}
	err := p.call(ctx, op, func(ctx context.Context) error {
		_, err := p.client.Snapshots.Delete(ctx, id)
		return err
	})
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	return withResource(err, "snapshot", id)
}
