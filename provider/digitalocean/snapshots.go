package digitalocean

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
)

// markerStart begins the part of a snapshot's name that carries its labels
// until it can be tagged: "name [spuff managed-by:spuff spuff-key:…]".
const markerStart = " [spuff "

// marked returns a snapshot name carrying labels.
func marked(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	return name + markerStart + strings.Join(tags(labels), " ") + "]"
}

// unmarked splits a snapshot name into the caller's name and the labels it
// carries.
func unmarked(name string) (string, map[string]string) {
	i := strings.LastIndex(name, markerStart)
	if i < 0 || !strings.HasSuffix(name, "]") {
		return name, nil
	}
	return name[:i], labels(strings.Fields(name[i+len(markerStart) : len(name)-1]))
}

// CheckSnapshot checks a snapshot name: 1 to 200 characters (its labels
// travel in it too).
func (d *drv) CheckSnapshot(name string) error {
	if name == "" || len(name) > 200 || strings.Contains(name, markerStart) {
		return driver.Invalid("name", "snapshot name must be 1 to 200 characters, without \"[spuff \"")
	}
	return nil
}

// StartSnapshot asks for the droplet's snapshot action, its name carrying
// the labels.
func (d *drv) StartSnapshot(ctx context.Context, in *driver.SnapshotInput) (*driver.Snapshot, error) {
	n, err := parseID(in.InstanceID)
	if err != nil {
		return nil, driver.NotFound(err.Error())
	}
	a, _, err := d.client.DropletActions.Snapshot(ctx, n, marked(in.Name, in.Labels))
	if err != nil {
		e := classify(err)
		if status(e) == http.StatusUnprocessableEntity && strings.Contains(strings.ToLower(err.Error()), "pending event") {
			// One action at a time per droplet: busy, not invalid.
			if de, ok := e.(*driver.Error); ok {
				de.Kind, de.Retry, de.Field = driver.KindAPI, true, ""
			}
		}
		return nil, e
	}
	if a == nil {
		return nil, driver.Lost("the API answer has no action", nil)
	}
	return &driver.Snapshot{Job: strconv.Itoa(a.ID), InstanceID: in.InstanceID, Name: in.Name,
		State: driver.SnapshotPending, Labels: maps.Clone(in.Labels), CreatedAt: started(a)}, nil
}

func started(a *godo.Action) time.Time {
	if a.StartedAt != nil {
		return a.StartedAt.Time
	}
	return time.Time{}
}

// PollSnapshot follows the snapshot action, then finds the image it made
// among the droplet's snapshots and tags it as managed.
func (d *drv) PollSnapshot(ctx context.Context, s *driver.Snapshot) (*driver.Snapshot, error) {
	if s.ID != "" {
		return d.getSnapshot(ctx, s.ID)
	}
	job, err := strconv.Atoi(s.Job)
	if err != nil {
		return nil, driver.NotFound("no snapshot action " + s.Job)
	}
	a, _, err := d.client.Actions.Get(ctx, job)
	if err != nil {
		return nil, classify(err)
	}
	if a == nil {
		return nil, driver.Lost("the API answer has no action", nil)
	}
	out := *s
	switch a.Status {
	case godo.ActionCompleted:
	case "errored":
		out.State, out.Message = driver.SnapshotFailed, fmt.Sprintf("snapshot action %d errored", a.ID)
		return &out, nil
	default:
		return &out, nil
	}
	droplet, err := parseID(s.InstanceID)
	if err != nil {
		droplet = a.ResourceID
	}
	img, err := d.madeBy(ctx, droplet, s, started(a))
	if err != nil || img == nil {
		return &out, err // not listed yet: polled again
	}
	return d.tagged(ctx, img)
}

// madeBy finds the image a completed snapshot action made: the newest
// snapshot of the droplet with the job's name and labels.
func (d *drv) madeBy(ctx context.Context, droplet int, s *driver.Snapshot, since time.Time) (*godo.Image, error) {
	var found *godo.Image
	for page := 1; ; page++ {
		imgs, resp, err := d.client.Droplets.Snapshots(ctx, droplet, &godo.ListOptions{Page: page, PerPage: PageSize})
		if err != nil {
			return nil, classify(err)
		}
		for i := range imgs {
			m := &imgs[i]
			name, ls := unmarked(m.Name)
			created, _ := time.Parse(time.RFC3339, m.Created)
			// A job found without its request (another process's) has no
			// name: the newest snapshot since it began is what it made.
			if (s.Name != "" && name != s.Name) || !sameLabels(ls, s.Labels) || (!since.IsZero() && !created.IsZero() && created.Before(since.Add(-time.Minute))) {
				continue
			}
			if found == nil || m.ID > found.ID {
				found = m
			}
		}
		if lastPage(resp, len(imgs), page*PageSize) {
			return found, nil
		}
	}
}

func sameLabels(a, b map[string]string) bool {
	if b == nil {
		return true // a job found without labels: its image tells
	}
	return maps.Equal(a, b)
}

// getSnapshot reads a snapshot image, tagging it as managed if its name
// says it is and it is not yet.
func (d *drv) getSnapshot(ctx context.Context, id string) (*driver.Snapshot, error) {
	n, err := parseID(id)
	if err != nil {
		return nil, driver.NotFound(err.Error())
	}
	img, _, err := d.client.Images.GetByID(ctx, n)
	if err != nil {
		return nil, classify(err)
	}
	if img == nil {
		return nil, driver.Lost("the API answer has no image", nil)
	}
	return d.tagged(ctx, img)
}

// tagged tags an image with the ownership label its name carries, if it
// lacks it, and maps it.
func (d *drv) tagged(ctx context.Context, img *godo.Image) (*driver.Snapshot, error) {
	_, ls := unmarked(img.Name)
	owner, ok := ls[provider.OwnerLabel]
	if ok && !slices.Contains(img.Tags, tag(provider.OwnerLabel, owner)) {
		t := tag(provider.OwnerLabel, owner)
		if err := d.tagImage(ctx, t, strconv.Itoa(img.ID)); err != nil {
			return nil, err
		}
		img.Tags = append(img.Tags, t)
	}
	return snapshotOf(img.ID, img.Name, img.Tags, img.Created, img.SizeGigaBytes, img.Status), nil
}

// tagImage tags an image, creating the tag first if the account lacks it.
func (d *drv) tagImage(ctx context.Context, t, id string) error {
	req := &godo.TagResourcesRequest{Resources: []godo.Resource{{ID: id, Type: godo.ImageResourceType}}}
	_, err := d.client.Tags.TagResources(ctx, t, req)
	if err = classify(err); status(err) != http.StatusNotFound {
		return err
	}
	if _, _, err := d.client.Tags.Create(ctx, &godo.TagCreateRequest{Name: t}); err != nil {
		return classify(err)
	}
	_, err = d.client.Tags.TagResources(ctx, t, req)
	return classify(err)
}

// snapshotOf maps a snapshot image: its labels are its tags and those its
// name carries.
func snapshotOf(id int, rawName string, tagList []string, created string, sizeGB float64, imgStatus string) *driver.Snapshot {
	name, ls := unmarked(rawName)
	all := labels(tagList)
	maps.Copy(all, ls)
	s := &driver.Snapshot{ID: strconv.Itoa(id), Name: name, Labels: all, SizeGB: sizeGB, State: driver.SnapshotAvailable}
	s.CreatedAt, _ = time.Parse(time.RFC3339, created)
	switch imgStatus {
	case "pending", "new":
		s.State = driver.SnapshotPending
	case "deleted":
		s.State = driver.SnapshotFailed
	}
	return s
}

// ListSnapshots reads one page of snapshots. With an instance, its
// snapshots (GET /v2/droplets/{id}/snapshots), and, on the first page, its
// snapshot action in progress, whose labels cannot be shown yet; else every
// droplet snapshot of the account (GET /v2/snapshots), whose tags and name
// tell which are managed.
func (d *drv) ListSnapshots(ctx context.Context, q driver.Query, page string) ([]*driver.Snapshot, string, error) {
	n := 1
	if page != "" {
		n, _ = strconv.Atoi(page)
	}
	opt := &godo.ListOptions{Page: n, PerPage: PageSize}
	var out []*driver.Snapshot
	var resp *godo.Response
	count := 0
	if droplet, err := parseID(q.InstanceID); q.InstanceID != "" && err == nil {
		imgs, r, err := d.client.Droplets.Snapshots(ctx, droplet, opt)
		if err != nil {
			return nil, "", classify(err)
		}
		resp, count = r, len(imgs)
		for i := range imgs {
			m := &imgs[i]
			out = append(out, snapshotOf(m.ID, m.Name, m.Tags, m.Created, m.SizeGigaBytes, m.Status))
		}
		if n == 1 {
			acts, _, err := d.client.Droplets.Actions(ctx, droplet, &godo.ListOptions{PerPage: PageSize})
			if err != nil {
				return nil, "", classify(err)
			}
			for i := range acts {
				if a := &acts[i]; a.Type == "snapshot" && a.Status == godo.ActionInProgress {
					out = append(out, &driver.Snapshot{Job: strconv.Itoa(a.ID), InstanceID: q.InstanceID, State: driver.SnapshotPending, CreatedAt: started(a)})
				}
			}
		}
	} else {
		snaps, r, err := d.client.Snapshots.ListDroplet(ctx, opt)
		if err != nil {
			return nil, "", classify(err)
		}
		resp, count = r, len(snaps)
		for _, sn := range snaps {
			id, err := strconv.Atoi(sn.ID)
			if err != nil {
				continue
			}
			out = append(out, snapshotOf(id, sn.Name, sn.Tags, sn.Created, sn.SizeGigaBytes, ""))
		}
	}
	if q.Name != "" {
		out = slices.DeleteFunc(out, func(s *driver.Snapshot) bool { return s.Job == "" && s.Name != q.Name })
	}
	next := ""
	if !lastPage(resp, count, n*PageSize) {
		next = strconv.Itoa(n + 1)
	}
	return out, next, nil
}

// DeleteSnapshot deletes the snapshot.
func (d *drv) DeleteSnapshot(ctx context.Context, id string) error {
	if _, err := parseID(id); err != nil {
		return driver.NotFound(err.Error())
	}
	_, err := d.client.Snapshots.Delete(ctx, id)
	return classify(err)
}
