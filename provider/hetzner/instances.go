package hetzner

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider/driver"
)

// parseID parses a server or image ID: a positive number.
func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a Hetzner ID (a positive number)", id)
	}
	return n, nil
}

// CheckID checks that id is a Hetzner ID: a positive number.
func (d *drv) CheckID(resource, id string) error {
	if _, err := parseID(id); err != nil {
		return driver.Errorf(driver.KindInvalidConfig, "a Hetzner %s ID is a positive number", resource)
	}
	return nil
}

// CheckRequest checks Hetzner's rule beyond the common ones: a snapshot is
// restored by its image ID, a positive number.
func (d *drv) CheckRequest(r *driver.Request) error {
	if r.Image.Kind == driver.ImageSnapshot {
		if _, err := parseID(r.Image.Value); err != nil {
			return driver.Invalid("Image", fmt.Sprintf("snapshot ID %q is not a Hetzner image ID (a positive number)", r.Image.Value))
		}
	}
	return nil
}

// plan is what a create sends besides the request.
type plan struct {
	serverType int64
	image      int64
	keys       []*hcloud.SSHKey
}

// Prepare resolves the server type (from the catalogue), the image of the
// type's architecture and the SSH keys.
func (d *drv) Prepare(ctx context.Context, r *driver.Request) (any, error) {
	st, err := d.serverType(ctx, r.Size)
	if err != nil {
		return nil, err
	}
	img, err := d.image(ctx, r.Image, st.Architecture)
	if err != nil {
		return nil, err
	}
	keys, err := d.sshKeys(ctx, r.SSHKeys)
	if err != nil {
		return nil, err
	}
	return &plan{serverType: st.ID, image: img, keys: keys}, nil
}

// typesTTL is how long the server type catalogue is used before it is
// fetched again; imagesTTL the same for an image looked up by name.
const (
	typesTTL  = time.Minute
	imagesTTL = 10 * time.Minute
)

// catalogue caches what Prepare reads of the cloud's catalogue. One lookup
// runs at a time: creates made at once wait for it (or for their context)
// rather than each repeating it.
type catalogue struct {
	fetch chan struct{} // held by the goroutine fetching

	mu      sync.Mutex
	types   map[string]*hcloud.ServerType
	typesAt time.Time
	images  map[string]cachedImage // "name/arch" -> image
}

type cachedImage struct {
	id int64
	at time.Time
}

func newCatalogue() catalogue {
	return catalogue{fetch: make(chan struct{}, 1), images: map[string]cachedImage{}}
}

// lock takes the right to fetch, or returns ctx's error.
func (c *catalogue) lock(ctx context.Context) error {
	select {
	case c.fetch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *catalogue) unlock() { <-c.fetch }

// cachedType returns the server type named name and whether the catalogue
// is fresh enough to answer (found or not).
func (c *catalogue) cachedType(name string) (*hcloud.ServerType, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.types[name], c.types != nil && time.Since(c.typesAt) < typesTTL
}

func (c *catalogue) cachedImage(key string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img, ok := c.images[key]
	return img.id, ok && time.Since(img.at) < imagesTTL
}

// serverType returns the server type named name, from a catalogue fetched
// at most once a minute.
func (d *drv) serverType(ctx context.Context, name string) (*hcloud.ServerType, error) {
	st, fresh := d.cat.cachedType(name)
	if !fresh {
		if err := d.cat.lock(ctx); err != nil {
			return nil, err
		}
		defer d.cat.unlock()
		if st, fresh = d.cat.cachedType(name); !fresh { // a fetch just made may have it
			types := map[string]*hcloud.ServerType{}
			for page := 1; page > 0; {
				list, resp, err := d.client.ServerType.List(ctx, hcloud.ServerTypeListOpts{ListOpts: hcloud.ListOpts{Page: page, PerPage: PageSize}})
				if err != nil {
					return nil, classify(resp, err)
				}
				for _, t := range list {
					types[t.Name] = t
				}
				page = nextPage(resp, page)
			}
			d.cat.mu.Lock()
			d.cat.types, d.cat.typesAt = types, time.Now()
			d.cat.mu.Unlock()
			st = types[name]
		}
	}
	if st == nil {
		return nil, driver.Invalid("Size", fmt.Sprintf("server type %q does not exist (e.g. cx22, cpx11, cax11)", name))
	}
	return st, nil
}

// image returns the image ID of img for the architecture arch.
func (d *drv) image(ctx context.Context, img driver.Image, arch hcloud.Architecture) (int64, error) {
	var name string
	switch img.Kind {
	case driver.ImageUbuntu:
		name = "ubuntu-" + img.Value
	case driver.ImageDebian:
		name = "debian-" + img.Value
	case driver.ImageCustom:
		if id, err := parseID(img.Value); err == nil {
			return id, nil
		}
		name = img.Value
	case driver.ImageSnapshot:
		id, err := parseID(img.Value)
		if err != nil {
			return 0, driver.Invalid("Image", fmt.Sprintf("snapshot ID %q is not a Hetzner image ID (a positive number)", img.Value))
		}
		return id, nil
	default:
		return 0, driver.Invalid("Image", "unsupported image kind "+img.Kind)
	}
	key := name + "/" + string(arch)
	if id, ok := d.cat.cachedImage(key); ok {
		return id, nil
	}
	if err := d.cat.lock(ctx); err != nil {
		return 0, err
	}
	defer d.cat.unlock()
	if id, ok := d.cat.cachedImage(key); ok {
		return id, nil
	}
	images, resp, err := d.client.Image.List(ctx, hcloud.ImageListOpts{
		ListOpts: hcloud.ListOpts{PerPage: PageSize}, Name: name, Architecture: []hcloud.Architecture{arch},
		Status: []hcloud.ImageStatus{hcloud.ImageStatusAvailable},
	})
	if err != nil {
		return 0, classify(resp, err)
	}
	for _, m := range images {
		if m.Name == name && m.Architecture == arch {
			d.cat.mu.Lock()
			d.cat.images[key] = cachedImage{id: m.ID, at: time.Now()}
			d.cat.mu.Unlock()
			return m.ID, nil
		}
	}
	return 0, driver.Invalid("Image", fmt.Sprintf("no image %q for the %s architecture", name, arch))
}

// sshKeys maps SSH key IDs, names or fingerprints to the account's keys.
func (d *drv) sshKeys(ctx context.Context, refs []string) ([]*hcloud.SSHKey, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	all, err := d.allKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*hcloud.SSHKey, 0, len(refs))
	for i, ref := range refs {
		j := slices.IndexFunc(all, func(k *hcloud.SSHKey) bool {
			return strconv.FormatInt(k.ID, 10) == ref || k.Name == ref || k.Fingerprint == ref
		})
		if j < 0 {
			return nil, driver.Invalid(fmt.Sprintf("SSHKeys[%d]", i), fmt.Sprintf("the account has no SSH key with the ID, name or fingerprint %q", ref))
		}
		out = append(out, &hcloud.SSHKey{ID: all[j].ID})
	}
	return out, nil
}

// allKeys reads every page of the account's SSH keys.
func (d *drv) allKeys(ctx context.Context) ([]*hcloud.SSHKey, error) {
	var all []*hcloud.SSHKey
	for page := 1; page > 0; {
		keys, resp, err := d.client.SSHKey.List(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{Page: page, PerPage: PageSize}})
		if err != nil {
			return nil, classify(resp, err)
		}
		all = append(all, keys...)
		page = nextPage(resp, page)
	}
	return all, nil
}

// Keys returns the account's SSH keys.
func (d *drv) Keys(ctx context.Context) ([]*driver.Key, error) {
	keys, err := d.allKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*driver.Key, len(keys))
	for i, k := range keys {
		out[i] = &driver.Key{ID: strconv.FormatInt(k.ID, 10), Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey}
	}
	return out, nil
}

// nextPage returns the page after page that an answer names, or 0 after
// the last.
func nextPage(resp *hcloud.Response, page int) int {
	if resp == nil || resp.Meta.Pagination == nil || resp.Meta.Pagination.NextPage <= page {
		return 0
	}
	return resp.Meta.Pagination.NextPage
}

// pageToken is the List token of a page number: "" for none.
func pageToken(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// pageNumber is the page a List token names: 1 for "".
func pageNumber(token string) int {
	if n, err := strconv.Atoi(token); err == nil && n > 1 {
		return n
	}
	return 1
}

// selector is the label selector of labels: "k==v" for each, "k" (the
// label is set) for an empty value, sorted and joined by commas.
func selector(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if v := labels[k]; v != "" {
			parts = append(parts, k+"=="+v)
		} else {
			parts = append(parts, k)
		}
	}
	return strings.Join(parts, ",")
}

// Create creates one server, started, with in.Labels as its labels.
func (d *drv) Create(ctx context.Context, in *driver.CreateInput) (*driver.Instance, error) {
	p, ok := in.Plan.(*plan)
	if !ok {
		return nil, driver.Errorf(driver.KindInvalidConfig, "hetzner: Create called without the plan of Prepare") // nothing was sent
	}
	r := in.Request
	res, resp, err := d.client.Server.Create(ctx, hcloud.ServerCreateOpts{
		Name:             r.Name,
		ServerType:       &hcloud.ServerType{ID: p.serverType},
		Image:            &hcloud.Image{ID: p.image},
		Location:         &hcloud.Location{Name: r.Region},
		UserData:         r.UserData,
		Labels:           maps.Clone(in.Labels),
		SSHKeys:          p.keys,
		StartAfterCreate: hcloud.Ptr(true),
	})
	if err != nil {
		return nil, classify(resp, err)
	}
	if res.Server == nil {
		return nil, driver.Lost("the create answer has no server", nil)
	}
	return instance(res.Server), nil
}

// Get reads one server.
func (d *drv) Get(ctx context.Context, id string) (*driver.Instance, error) {
	n, err := parseID(id)
	if err != nil {
		return nil, driver.NotFound(err.Error())
	}
	s, resp, err := d.client.Server.GetByID(ctx, n)
	if err != nil {
		return nil, classify(resp, err)
	}
	if s == nil { // hcloud-go answers a 404 with (nil, resp, nil)
		return nil, driver.NotFound("no server " + id)
	}
	return instance(s), nil
}

// List reads one page of servers, by label selector and by name, 50 a
// page; the token is the next page's number.
func (d *drv) List(ctx context.Context, q driver.Query, page string) ([]*driver.Instance, string, error) {
	n := pageNumber(page)
	servers, resp, err := d.client.Server.List(ctx, hcloud.ServerListOpts{
		ListOpts: hcloud.ListOpts{Page: n, PerPage: PageSize, LabelSelector: selector(q.Labels)},
		Name:     q.Name,
	})
	if err != nil {
		return nil, "", classify(resp, err)
	}
	out := make([]*driver.Instance, len(servers))
	for i, s := range servers {
		out[i] = instance(s)
	}
	return out, pageToken(nextPage(resp, n)), nil
}

// Delete deletes the server.
func (d *drv) Delete(ctx context.Context, id string) error {
	n, err := parseID(id)
	if err != nil {
		return driver.NotFound(err.Error())
	}
	_, resp, err := d.client.Server.DeleteWithResult(ctx, &hcloud.Server{ID: n})
	return classify(resp, err)
}

// instance maps a server.
func instance(s *hcloud.Server) *driver.Instance {
	in := &driver.Instance{
		ID: strconv.FormatInt(s.ID, 10), Name: s.Name, State: state(s.Status), RawState: string(s.Status),
		Labels: maps.Clone(s.Labels), CreatedAt: s.Created,
	}
	if s.Location != nil {
		in.Region = s.Location.Name
	}
	if s.ServerType != nil {
		in.Size = s.ServerType.Name
	}
	if ip := s.PublicNet.IPv4.IP; ip != nil && !ip.IsUnspecified() {
		if a, ok := netip.AddrFromSlice(ip.To4()); ok {
			in.IPv4 = a
		}
	}
	if n := s.PublicNet.IPv6.Network; n != nil && n.IP.To16() != nil && !n.IP.IsUnspecified() {
		// Hetzner assigns a /64; the server answers on its first address.
		ip := slices.Clone(n.IP.To16())
		ip[15] |= 1
		if a, ok := netip.AddrFromSlice(ip); ok {
			in.IPv6 = a
		}
	}
	return in
}

// state maps a server status.
func state(s hcloud.ServerStatus) driver.State {
	switch s {
	case hcloud.ServerStatusRunning:
		return driver.StateRunning
	case hcloud.ServerStatusInitializing, hcloud.ServerStatusStarting, hcloud.ServerStatusRebuilding, hcloud.ServerStatusMigrating:
		return driver.StatePending
	case hcloud.ServerStatusOff, hcloud.ServerStatusStopping:
		return driver.StateOff
	case hcloud.ServerStatusDeleting:
		return driver.StateDestroying
	}
	return driver.StateUnknown
}
