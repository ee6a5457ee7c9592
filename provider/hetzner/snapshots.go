package hetzner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider/driver"
)

// MaxSnapshotName is the longest snapshot name (the image's description)
// the driver sends.
const MaxSnapshotName = 255

// CheckSnapshot checks a snapshot name: 1 to 255 bytes of UTF-8 (it
// travels in JSON).
func (d *drv) CheckSnapshot(name string) error {
	if name == "" || len(name) > MaxSnapshotName || !utf8.ValidString(name) {
		return driver.Invalid("name", fmt.Sprintf("a snapshot name (its image's description) must be 1 to %d bytes of UTF-8", MaxSnapshotName))
	}
	return nil
}

// StartSnapshot asks for the server's create_image action, type snapshot,
// with the name as description and the labels set at creation. The job is
// the action's ID.
func (d *drv) StartSnapshot(ctx context.Context, in *driver.SnapshotInput) (*driver.Snapshot, error) {
	n, err := parseID(in.InstanceID)
	if err != nil {
		return nil, driver.NotFound(err.Error())
	}
	res, resp, err := d.client.Server.CreateImage(ctx, &hcloud.Server{ID: n}, &hcloud.ServerCreateImageOpts{
		Type: hcloud.ImageTypeSnapshot, Description: hcloud.Ptr(in.Name), Labels: maps.Clone(in.Labels),
	})
	if err != nil {
		return nil, classify(resp, err)
	}
	if res.Image == nil {
		return nil, driver.Lost("the create_image answer has no image", nil)
	}
	s := snapshotOf(res.Image)
	s.InstanceID, s.Name = in.InstanceID, in.Name
	if len(s.Labels) == 0 {
		s.Labels = maps.Clone(in.Labels)
	}
	if s.State == driver.SnapshotAvailable {
		s.State = driver.SnapshotPending // usable once the action says so
	}
	if res.Action != nil {
		s.Job = strconv.FormatInt(res.Action.ID, 10)
	}
	return s, nil
}

// PollSnapshot follows the create_image action; once it succeeded, or when
// it is gone (actions expire) or unknown, the image's status tells.
func (d *drv) PollSnapshot(ctx context.Context, s *driver.Snapshot) (*driver.Snapshot, error) {
	job := s.Job
	if id, err := strconv.ParseInt(job, 10, 64); err == nil {
		a, resp, err := d.client.Action.GetByID(ctx, id)
		if err != nil {
			return nil, classify(resp, err)
		}
		switch {
		case a == nil:
			job = "" // gone: the image tells from now on
		case a.Status == hcloud.ActionStatusError:
			out := *s
			out.State = driver.SnapshotFailed
			out.Message = fmt.Sprintf("create_image action %d failed: %s (%s)", a.ID, a.ErrorMessage, a.ErrorCode)
			return &out, nil
		case a.Status != hcloud.ActionStatusSuccess:
			out := *s
			out.State, out.Progress = driver.SnapshotPending, a.Progress
			return &out, nil
		}
	}
	n, err := parseID(s.ID)
	if err != nil {
		return nil, driver.NotFound("no snapshot image " + s.ID)
	}
	img, resp, err := d.client.Image.GetByID(ctx, n)
	if err != nil {
		return nil, classify(resp, err)
	}
	if img == nil {
		return nil, driver.NotFound("no snapshot image " + s.ID)
	}
	out := snapshotOf(img)
	out.Job = job
	if out.InstanceID == "" {
		out.InstanceID = s.InstanceID
	}
	return out, nil
}

// ListSnapshots reads one page of snapshot images by label selector, 50 a
// page, those being made included; q.Name is matched against the
// description.
func (d *drv) ListSnapshots(ctx context.Context, q driver.Query, page string) ([]*driver.Snapshot, string, error) {
	n := pageNumber(page)
	images, resp, err := d.client.Image.List(ctx, hcloud.ImageListOpts{
		ListOpts: hcloud.ListOpts{Page: n, PerPage: PageSize, LabelSelector: selector(q.Labels)},
		Type:     []hcloud.ImageType{hcloud.ImageTypeSnapshot},
	})
	if err != nil {
		return nil, "", classify(resp, err)
	}
	out := make([]*driver.Snapshot, 0, len(images))
	for _, img := range images {
		if img.Type == hcloud.ImageTypeSnapshot {
			out = append(out, snapshotOf(img))
		}
	}
	if q.Name != "" {
		out = slices.DeleteFunc(out, func(s *driver.Snapshot) bool { return s.Name != q.Name })
	}
	return out, pageToken(nextPage(resp, n)), nil
}

// DeleteSnapshot deletes the snapshot image.
func (d *drv) DeleteSnapshot(ctx context.Context, id string) error {
	n, err := parseID(id)
	if err != nil {
		return driver.NotFound(err.Error())
	}
	resp, err := d.client.Image.Delete(ctx, &hcloud.Image{ID: n})
	return classify(resp, err)
}

// snapshotOf maps a snapshot image: its name is the description, its
// state the image's status (creating is pending, unavailable failed).
func snapshotOf(img *hcloud.Image) *driver.Snapshot {
	labels := maps.Clone(img.Labels)
	if labels == nil {
		labels = map[string]string{} // known to carry none (nil means "not shown yet")
	}
	s := &driver.Snapshot{
		ID: strconv.FormatInt(img.ID, 10), Name: img.Description, Labels: labels,
		SizeGB: float64(img.ImageSize), CreatedAt: img.Created, State: driver.SnapshotPending,
	}
	if img.CreatedFrom != nil && img.CreatedFrom.ID > 0 {
		s.InstanceID = strconv.FormatInt(img.CreatedFrom.ID, 10)
	}
	switch img.Status {
	case hcloud.ImageStatusAvailable:
		s.State = driver.SnapshotAvailable
	case "unavailable":
		s.State, s.Message = driver.SnapshotFailed, "Hetzner reports the image unavailable"
	}
	return s
}
