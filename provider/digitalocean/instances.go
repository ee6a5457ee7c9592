package digitalocean

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/provider/driver"
)

// CheckID checks that id is a DigitalOcean ID: a positive number.
func (d *drv) CheckID(resource, id string) error {
	if _, err := parseID(id); err != nil {
		return driver.Errorf(driver.KindInvalidConfig, "a DigitalOcean %s ID is a positive number", resource)
	}
	return nil
}

func parseID(id string) (int, error) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("not a positive number: %q", id)
	}
	return n, nil
}

// CheckRequest checks what DigitalOcean's create needs beyond the common
// rules: a snapshot to restore is named by its image ID.
func (d *drv) CheckRequest(r *driver.Request) error {
	_, err := image(r.Image)
	return err
}

// image maps an image to what a droplet create takes: a slug or an ID.
func image(img driver.Image) (godo.DropletCreateImage, error) {
	switch img.Kind {
	case driver.ImageUbuntu:
		return godo.DropletCreateImage{Slug: "ubuntu-" + strings.ReplaceAll(img.Value, ".", "-") + "-x64"}, nil
	case driver.ImageDebian:
		return godo.DropletCreateImage{Slug: "debian-" + strings.ReplaceAll(img.Value, ".", "-") + "-x64"}, nil
	case driver.ImageCustom:
		if id, err := strconv.Atoi(img.Value); err == nil && id > 0 {
			return godo.DropletCreateImage{ID: id}, nil
		}
		return godo.DropletCreateImage{Slug: img.Value}, nil
	case driver.ImageSnapshot:
		if id, err := strconv.Atoi(img.Value); err == nil && id > 0 {
			return godo.DropletCreateImage{ID: id}, nil
		}
		return godo.DropletCreateImage{}, driver.Invalid("Image", fmt.Sprintf("snapshot ID %q is not a DigitalOcean image ID (a number)", img.Value))
	}
	return godo.DropletCreateImage{}, driver.Invalid("Image", "unsupported image kind "+img.Kind)
}

// plan is what a create sends besides the request.
type plan struct {
	image godo.DropletCreateImage
	keys  []godo.DropletCreateSSHKey
}

// Prepare maps the image and resolves SSH key names to IDs (IDs and
// fingerprints go as they are).
func (d *drv) Prepare(ctx context.Context, r *driver.Request) (any, error) {
	img, err := image(r.Image)
	if err != nil {
		return nil, err
	}
	keys := make([]godo.DropletCreateSSHKey, 0, len(r.SSHKeys)) // never null: the API wants an array
	var account []*driver.Key
	for i, ref := range r.SSHKeys {
		if id, err := strconv.Atoi(ref); err == nil && id > 0 {
			keys = append(keys, godo.DropletCreateSSHKey{ID: id})
			continue
		}
		if isFingerprint(ref) {
			keys = append(keys, godo.DropletCreateSSHKey{Fingerprint: ref})
			continue
		}
		if account == nil {
			if account, err = d.Keys(ctx); err != nil {
				return nil, err
			}
		}
		j := slices.IndexFunc(account, func(k *driver.Key) bool { return k.Name == ref })
		if j < 0 {
			return nil, driver.Invalid(fmt.Sprintf("SSHKeys[%d]", i), fmt.Sprintf("the account has no SSH key with the ID, fingerprint or name %q", ref))
		}
		id, _ := strconv.Atoi(account[j].ID)
		keys = append(keys, godo.DropletCreateSSHKey{ID: id})
	}
	return &plan{image: img, keys: keys}, nil
}

// isFingerprint reports whether ref looks like an MD5 key fingerprint
// ("3b:16:e4:...").
func isFingerprint(ref string) bool {
	parts := strings.Split(ref, ":")
	if len(parts) != 16 {
		return false
	}
	for _, p := range parts {
		if len(p) != 2 || strings.Trim(strings.ToLower(p), "0123456789abcdef") != "" {
			return false
		}
	}
	return true
}

// tags returns the droplet tags of labels: "key:value", or "key" for an
// empty value, sorted.
func tags(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		out = append(out, tag(k, v))
	}
	slices.Sort(out)
	return out
}

func tag(k, v string) string {
	if v == "" {
		return k
	}
	return k + ":" + v
}

// labels returns the labels of a resource's tags.
func labels(tags []string) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v, _ := strings.Cut(t, ":")
		if k != "" {
			out[k] = v
		}
	}
	return out
}

// Create creates one droplet with its labels as tags.
func (d *drv) Create(ctx context.Context, in *driver.CreateInput) (*driver.Instance, error) {
	p := in.Plan.(*plan)
	r := in.Request
	dr, _, err := d.client.Droplets.Create(ctx, &godo.DropletCreateRequest{
		Name: r.Name, Region: r.Region, Size: r.Size, Image: p.image, SSHKeys: p.keys,
		IPv6: true, UserData: r.UserData, Tags: tags(in.Labels),
	})
	if err != nil {
		return nil, classify(err)
	}
	if dr == nil {
		return nil, driver.Lost("the API answer has no droplet", nil)
	}
	return instance(dr), nil
}

// Get reads one droplet.
func (d *drv) Get(ctx context.Context, id string) (*driver.Instance, error) {
	n, err := parseID(id)
	if err != nil {
		return nil, driver.NotFound(err.Error())
	}
	dr, _, err := d.client.Droplets.Get(ctx, n)
	if err != nil {
		return nil, classify(err)
	}
	if dr == nil {
		return nil, driver.Lost("the API answer has no droplet", nil)
	}
	return instance(dr), nil
}

// List reads one page of droplets: by name (GET /v2/droplets?name=), else
// by the most selective tag of the query's labels (tag_name=), 200 a page.
func (d *drv) List(ctx context.Context, q driver.Query, page string) ([]*driver.Instance, string, error) {
	n := 1
	if page != "" {
		n, _ = strconv.Atoi(page)
	}
	opt := &godo.ListOptions{Page: n, PerPage: PageSize}
	var (
		list []godo.Droplet
		resp *godo.Response
		err  error
	)
	switch t := selectiveTag(q.Labels); {
	case q.Name != "":
		list, resp, err = d.client.Droplets.ListByName(ctx, q.Name, opt)
	case t != "":
		list, resp, err = d.client.Droplets.ListByTag(ctx, t, opt)
	default:
		list, resp, err = d.client.Droplets.List(ctx, opt)
	}
	if err != nil {
		return nil, "", classify(err)
	}
	out := make([]*driver.Instance, len(list))
	for i := range list {
		out[i] = instance(&list[i])
	}
	next := ""
	if !lastPage(resp, len(list), n*PageSize) {
		next = strconv.Itoa(n + 1)
	}
	return out, next, nil
}

// selectiveTag returns the tag that narrows a listing most: a label of
// spuff's own (the request key's) before the ownership label.
func selectiveTag(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	for _, k := range keys {
		if strings.HasPrefix(k, "spuff-") {
			return tag(k, labels[k])
		}
	}
	if len(keys) == 0 {
		return ""
	}
	return tag(keys[0], labels[keys[0]])
}

// lastPage reports whether a list answer was its last page. A body without
// "links" leaves resp.Links nil, where godo's IsLastPage would panic.
func lastPage(resp *godo.Response, n, sofar int) bool {
	switch {
	case resp == nil || resp.Links == nil || n == 0:
		return true
	case resp.Meta != nil && resp.Meta.Total > 0 && sofar >= resp.Meta.Total:
		return true
	}
	return resp.Links.IsLastPage()
}

// Delete deletes the droplet.
func (d *drv) Delete(ctx context.Context, id string) error {
	n, err := parseID(id)
	if err != nil {
		return driver.NotFound(err.Error())
	}
	_, err = d.client.Droplets.Delete(ctx, n)
	return classify(err)
}

// Keys returns the account's SSH keys, every page.
func (d *drv) Keys(ctx context.Context) ([]*driver.Key, error) {
	var out []*driver.Key
	for page := 1; ; page++ {
		keys, resp, err := d.client.Keys.List(ctx, &godo.ListOptions{Page: page, PerPage: PageSize})
		if err != nil {
			return nil, classify(err)
		}
		for _, k := range keys {
			out = append(out, &driver.Key{ID: strconv.Itoa(k.ID), Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey})
		}
		if lastPage(resp, len(keys), len(out)) {
			return out, nil
		}
	}
}

// instance maps a droplet.
func instance(dr *godo.Droplet) *driver.Instance {
	in := &driver.Instance{ID: strconv.Itoa(dr.ID), Name: dr.Name, RawState: dr.Status, Size: dr.SizeSlug, Labels: labels(dr.Tags)}
	switch dr.Status {
	case "new":
		in.State = driver.StatePending
	case "active":
		in.State = driver.StateRunning
	case "off":
		in.State = driver.StateOff
	case "archive":
		in.State = driver.StateStopped
	}
	if dr.Region != nil {
		in.Region = dr.Region.Slug
	}
	if in.Size == "" && dr.Size != nil {
		in.Size = dr.Size.Slug
	}
	if v4, err := dr.PublicIPv4(); err == nil && v4 != "" {
		in.IPv4, _ = netip.ParseAddr(v4)
	}
	if v6, err := dr.PublicIPv6(); err == nil && v6 != "" {
		in.IPv6, _ = netip.ParseAddr(v6)
	}
	in.CreatedAt, _ = time.Parse(time.RFC3339, dr.Created)
	return in
}
