package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/spuffgo/spuff/provider"
)

// limits are DigitalOcean's rules beyond the common ones, checked before any
// call. Droplet names allow no underscore, which the common rules already
// reject.
var limits = provider.Limits{MaxUserDataBytes: MaxUserDataBytes, UserDataUTF8: true}

// call runs fn, safe to repeat, under the retry policy, with its error
// classified.
func (p *Provider) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return p.pol.Call(ctx, op, func(ctx context.Context) error { return classify(op, fn(ctx)) })
}

// maxPages bounds a listing, in case an API keeps answering "next".
const maxPages = 10000

// listAll fetches every page of a list, PageSize items a page, each page
// retried on its own under the retry policy.
func listAll[T any](ctx context.Context, p *Provider, op string, fetch func(ctx context.Context, opt *godo.ListOptions) ([]T, *godo.Response, error)) ([]T, error) {
	var out []T
	for page := 1; page <= maxPages; page++ {
		var items []T
		var resp *godo.Response
		err := p.call(ctx, op, func(ctx context.Context) error {
			var err error
			items, resp, err = fetch(ctx, &godo.ListOptions{Page: page, PerPage: PageSize})
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if lastPage(resp, len(items), len(out)) {
			break
		}
	}
	return out, nil
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

func parseID(op, resource, id string) (int, error) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 {
		return 0, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Resource: resource, ID: id, Field: "id",
			Message: "a DigitalOcean " + resource + " ID is a positive number"}
	}
	return n, nil
}

// tags returns the droplet tags of a request: the ownership tag, then the
// caller's labels as "key:value" (or "key" for an empty value), sorted.
func (p *Provider) tags(labels map[string]string) []string {
	tags := make([]string, 0, len(labels)+1)
	for k, v := range labels {
		if v == "" {
			tags = append(tags, k)
		} else {
			tags = append(tags, k+":"+v)
		}
	}
	slices.Sort(tags)
	return append([]string{p.ownerTag}, tags...)
}

// labels returns the caller's labels of a resource's tags, without the
// ownership label.
func labels(tags []string) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v, _ := strings.Cut(t, ":")
		if k == provider.OwnerLabel || k == "" {
			continue
		}
		out[k] = v
	}
	return out
}

func (p *Provider) owned(tags []string) bool { return slices.Contains(tags, p.ownerTag) }

// image maps an ImageSpec to what a droplet create takes: a slug or an ID.
func image(spec provider.ImageSpec) (godo.DropletCreateImage, error) {
	switch spec.Kind {
	case provider.ImageUbuntu:
		return godo.DropletCreateImage{Slug: "ubuntu-" + strings.ReplaceAll(spec.Value, ".", "-") + "-x64"}, nil
	case provider.ImageDebian:
		return godo.DropletCreateImage{Slug: "debian-" + strings.ReplaceAll(spec.Value, ".", "-") + "-x64"}, nil
	case provider.ImageCustom:
		if id, err := strconv.Atoi(spec.Value); err == nil && id > 0 {
			return godo.DropletCreateImage{ID: id}, nil
		}
		return godo.DropletCreateImage{Slug: spec.Value}, nil
	case provider.ImageSnapshot:
		if id, err := strconv.Atoi(spec.Value); err == nil && id > 0 {
			return godo.DropletCreateImage{ID: id}, nil
		}
		return godo.DropletCreateImage{}, provider.InvalidField("Image", fmt.Sprintf("snapshot ID %q is not a DigitalOcean image ID (a number)", spec.Value))
	}
	return godo.DropletCreateImage{}, provider.InvalidField("Image", "unsupported image kind "+spec.Kind.String())
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

// sshKeys maps key references to what a create takes: IDs and fingerprints
// go as they are; names are looked up among the account's keys.
func (p *Provider) sshKeys(ctx context.Context, op string, refs []string) ([]godo.DropletCreateSSHKey, error) {
	out := make([]godo.DropletCreateSSHKey, 0, len(refs)) // never null: the API wants an array
	var account []*provider.SSHKey
	for i, ref := range refs {
		if id, err := strconv.Atoi(ref); err == nil && id > 0 {
			out = append(out, godo.DropletCreateSSHKey{ID: id})
			continue
		}
		if isFingerprint(ref) {
			out = append(out, godo.DropletCreateSSHKey{Fingerprint: ref})
			continue
		}
		if account == nil {
			var err error
			if account, err = p.ListSSHKeys(ctx); err != nil {
				return nil, err
			}
		}
		j := slices.IndexFunc(account, func(k *provider.SSHKey) bool { return k.Name == ref })
		if j < 0 {
			return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Field: fmt.Sprintf("SSHKeys[%d]", i),
				Message: fmt.Sprintf("the account has no SSH key with the ID, fingerprint or name %q", ref)}
		}
		id, _ := strconv.Atoi(account[j].ID)
		out = append(out, godo.DropletCreateSSHKey{ID: id})
	}
	return out, nil
}

// CreateInstance validates req, then creates the droplet with the ownership
// tag and the caller's labels as tags. A live droplet with the same name and
// the ownership tag is adopted rather than duplicated, whether it was made
// by an earlier call whose answer was lost or by an attempt of this one.
func (p *Provider) CreateInstance(ctx context.Context, req provider.InstanceRequest) (*provider.Instance, error) {
	const op = "CreateInstance"
	if err := req.ValidateWith(limits); err != nil {
		return nil, provider.Classify(Name, op, 0, nil, err)
	}
	img, err := image(req.Image)
	if err != nil {
		return nil, provider.Classify(Name, op, 0, nil, err)
	}
	keys, err := p.sshKeys(ctx, op, req.SSHKeys)
	if err != nil {
		return nil, err
	}
	cr := &godo.DropletCreateRequest{
		Name: req.Name, Region: req.Region, Size: req.Size, Image: img, SSHKeys: keys,
		IPv6: true, UserData: req.UserData, Tags: p.tags(req.Labels),
	}

	// A droplet of an earlier attempt, by us or by the caller, is adopted.
	// After a create of this name whose outcome was unknown, it is looked
	// for as long as after a lost answer: it may not be listed yet.
	find := p.findOwned
	if p.unsure.Has(req.Name) {
		find = p.findSettled
	}
	var existing *godo.Droplet
	if err := p.call(ctx, op, func(ctx context.Context) error {
		var err error
		existing, err = find(ctx, req.Name)
		return err
	}); err != nil {
		return nil, err
	}
	if existing != nil {
		p.unsure.Remove(req.Name)
		return p.adopt(op, existing, req)
	}

	var made *godo.Droplet
	unknown := false // an attempt may have made the droplet
	err = p.pol.Call(ctx, op, func(ctx context.Context) error {
		if unknown {
			d, err := p.findSettled(ctx, req.Name)
			if err != nil {
				return classify(op, err)
			}
			if d != nil {
				made = d
				return nil
			}
		}
		d, _, err := p.client.Droplets.Create(ctx, cr)
		if err == nil && d == nil {
			err = emptyAnswer(op, "droplet")
		}
		if err != nil {
			err = classify(op, err)
			unknown = unknown || provider.OutcomeUnknown(err)
			return err
		}
		made = d
		return nil
	})
	if err != nil && unknown {
		made, err = p.lostCreate(ctx, op, req.Name, err)
	}
	if err != nil {
		return nil, err
	}
	p.unsure.Remove(req.Name)
	p.pol.Created("instance", strconv.Itoa(made.ID)) // WaitReady first polls near ExpectedBoot
	p.pol.Log.Debug("spuff: droplet created", "provider", Name, "id", made.ID, "name", made.Name)
	return p.instance(made), nil
}

// lostCreate handles a create whose last attempt's outcome is unknown: it
// looks for the droplet once more (for as long as findSettled does), on a
// context that outlives the caller's. A droplet found is returned when the
// caller still waits, else its ID goes in the error.
func (p *Provider) lostCreate(ctx context.Context, op, name string, err error) (*godo.Droplet, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.pol.Timeouts.HTTPRequest+2*p.pol.Timeouts.PollInterval)
	defer cancel()
	var perr *provider.Error
	if !errors.As(err, &perr) {
		return nil, err
	}
	d, ferr := p.findSettled(lctx, name)
	switch {
	case ferr == nil && d != nil && ctx.Err() == nil:
		p.pol.Log.Debug("spuff: adopting the droplet a create with a lost answer made", "provider", Name, "id", d.ID, "name", d.Name)
		return d, nil
	case ferr == nil && d != nil:
		perr.ID = strconv.Itoa(d.ID)
		perr.Resource = "instance"
		perr.Message = strings.TrimPrefix(perr.Message+"; the droplet was made: ListInstances shows it, and CreateInstance with the same request adopts it", "; ")
	default:
		p.unsure.Add(name)
		perr.Message = strings.TrimPrefix(perr.Message+"; the droplet may have been made: CreateInstance with the same request adopts it rather than making a second", "; ")
	}
	return nil, perr
}

// adopt returns an existing droplet named like the request, or an error
// when it is not what the request asks for.
func (p *Provider) adopt(op string, d *godo.Droplet, req provider.InstanceRequest) (*provider.Instance, error) {
	inst := p.instance(d)
	if inst.Region != req.Region || inst.Size != req.Size {
		return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Resource: "instance", ID: inst.ID, Field: "Name",
			Message: fmt.Sprintf("a droplet named %q managed by %s already exists in %s with size %s; destroy it or choose another name", req.Name, p.owner, inst.Region, inst.Size)}
	}
	p.pol.Log.Debug("spuff: adopting existing droplet", "provider", Name, "id", d.ID, "name", d.Name)
	return inst, nil
}

// findSettled looks for the droplet an attempt whose outcome is unknown
// may have made, for up to twice Timeouts.PollInterval: DigitalOcean's
// listings may lag a create, and a droplet missed here would be made a
// second time. It returns nil when no lookup in that time found one.
func (p *Provider) findSettled(ctx context.Context, name string) (*godo.Droplet, error) {
	settle := 2 * p.pol.Timeouts.PollInterval
	timer := time.NewTimer(0)
	defer timer.Stop()
	// Lookups at once, then 1/8, 2/8, 4/8 and 8/8 of settle later.
	for _, eighths := range []time.Duration{0, 1, 1, 2, 4} {
		if eighths > 0 {
			timer.Reset(settle * eighths / 8)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-timer.C:
			}
		}
		var d *godo.Droplet
		err := p.call(ctx, "CreateInstance", func(ctx context.Context) (err error) {
			d, err = p.findOwned(ctx, name)
			return err
		})
		if err != nil || d != nil {
			return d, err
		}
	}
	return nil, nil
}

// findOwned returns the live droplet with the ownership tag and exactly
// this name, or nil: one listing by name (no retry of its own). Of several,
// the oldest is returned.
func (p *Provider) findOwned(ctx context.Context, name string) (*godo.Droplet, error) {
	var found *godo.Droplet
	for page := 1; page <= maxPages; page++ {
		list, resp, err := p.client.Droplets.ListByName(ctx, name, &godo.ListOptions{Page: page, PerPage: PageSize})
		if err != nil {
			return nil, err
		}
		for i := range list {
			d := &list[i]
			if d.Name == name && p.owned(d.Tags) && (found == nil || d.ID < found.ID) {
				found = d
			}
		}
		if lastPage(resp, len(list), page*PageSize) {
			break
		}
	}
	return found, nil
}

// instance maps a droplet.
func (p *Provider) instance(d *godo.Droplet) *provider.Instance {
	inst := &provider.Instance{ID: strconv.Itoa(d.ID), Name: d.Name, RawStatus: d.Status, Size: d.SizeSlug, Labels: labels(d.Tags)}
	switch d.Status {
	case "new":
		inst.Status = provider.StatusNew
	case "active":
		inst.Status = provider.StatusActive
	case "off":
		inst.Status = provider.StatusOff
	case "archive":
		inst.Status = provider.StatusArchive
	}
	if d.Region != nil {
		inst.Region = d.Region.Slug
	}
	if inst.Size == "" && d.Size != nil {
		inst.Size = d.Size.Slug
	}
	if v4, err := d.PublicIPv4(); err == nil && v4 != "" {
		inst.PublicIPv4, _ = netip.ParseAddr(v4)
	}
	if v6, err := d.PublicIPv6(); err == nil && v6 != "" {
		inst.PublicIPv6, _ = netip.ParseAddr(v6)
	}
	inst.CreatedAt, _ = time.Parse(time.RFC3339, d.Created)
	return inst
}

// DestroyInstance deletes the droplet; one already gone is success.
func (p *Provider) DestroyInstance(ctx context.Context, id string) error {
	const op = "DestroyInstance"
	n, err := parseID(op, "instance", id)
	if err != nil {
		return err
	}
	err = p.call(ctx, op, func(ctx context.Context) error {
		_, err := p.client.Droplets.Delete(ctx, n)
		return err
	})
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	return err
}

// GetInstance returns the droplet, or an error matching
// provider.ErrNotFound.
func (p *Provider) GetInstance(ctx context.Context, id string) (*provider.Instance, error) {
	const op = "GetInstance"
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 {
		return nil, &provider.Error{Kind: provider.KindNotFound, Provider: Name, Op: op, Resource: "instance", ID: id,
			Message: "no droplet has this ID (DigitalOcean IDs are positive numbers)"}
	}
	var d *godo.Droplet
	err = p.call(ctx, op, func(ctx context.Context) error {
		var err error
		d, _, err = p.client.Droplets.Get(ctx, n)
		if err == nil && d == nil {
			err = emptyAnswer(op, "droplet")
		}
		return err
	})
	if err != nil {
		return nil, withResource(err, "instance", id)
	}
	return p.instance(d), nil
}

func withResource(err error, resource, id string) error {
	var e *provider.Error
	if errors.As(err, &e) && e.ID == "" {
		e.Resource, e.ID = resource, id
	}
	return err
}

// ListInstances returns every droplet with the ownership tag: all pages of
// GET /v2/droplets?tag_name=managed-by:<owner>, 200 a page.
func (p *Provider) ListInstances(ctx context.Context) ([]*provider.Instance, error) {
	droplets, err := listAll(ctx, p, "ListInstances", func(ctx context.Context, opt *godo.ListOptions) ([]godo.Droplet, *godo.Response, error) {
		return p.client.Droplets.ListByTag(ctx, p.ownerTag, opt)
	})
	if err != nil {
		return nil, err
	}
	out := make([]*provider.Instance, 0, len(droplets))
	seen := make(map[int]bool, len(droplets))
	for i := range droplets {
		d := &droplets[i]
		if seen[d.ID] || !p.owned(d.Tags) {
			continue // a droplet that moved between pages, or a tag filter ignored
		}
		seen[d.ID] = true
		out = append(out, p.instance(d))
	}
	return out, nil
}

// WaitReady polls the droplet until it is active with a public IP. A
// droplet this Provider made less than a minute ago that answers 404
// before it was ever seen is taken for not visible yet (eventual
// consistency), not for gone.
func (p *Provider) WaitReady(ctx context.Context, id string) (*provider.Instance, error) {
	const op = "WaitReady"
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 {
		return nil, &provider.Error{Kind: provider.KindNotFound, Provider: Name, Op: op, Resource: "instance", ID: id,
			Message: "no droplet has this ID (DigitalOcean IDs are positive numbers)"}
	}
	var last *provider.Instance
	seen := false
	err = p.pol.WaitFor(ctx, op, "instance", id, p.pol.Timeouts.InstanceReady, func(ctx context.Context) (bool, string, error) {
		d, _, err := p.client.Droplets.Get(ctx, n)
		if err == nil && d == nil {
			err = emptyAnswer(op, "droplet")
		}
		if err != nil {
			err = withResource(classify(op, err), "instance", id)
			if !seen && errors.Is(err, provider.ErrNotFound) && p.fresh(id) {
				// Made by this Provider moments ago and never seen since:
				// not visible yet, rather than gone.
				return false, "not yet visible", nil
			}
			return false, "", err
		}
		seen = true
		last = p.instance(d)
		return last.Ready(), state(last), nil
	})
	if err != nil {
		return nil, err
	}
	return last, nil
}

func state(in *provider.Instance) string {
	ip := in.PublicIPv4.IsValid() || in.PublicIPv6.IsValid()
	switch {
	case in.Status == provider.StatusActive && !ip:
		return in.RawStatus + " without public IP"
	case in.Status == provider.StatusNew && ip:
		return in.RawStatus + " with public IP"
	}
	return in.RawStatus
}

// ListSSHKeys returns the account's SSH keys.
func (p *Provider) ListSSHKeys(ctx context.Context) ([]*provider.SSHKey, error) {
	keys, err := listAll(ctx, p, "ListSSHKeys", p.client.Keys.List)
	if err != nil {
		return nil, err
	}
	out := make([]*provider.SSHKey, len(keys))
	for i, k := range keys {
		out[i] = &provider.SSHKey{ID: strconv.Itoa(k.ID), Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey}
	}
	return out, nil
}

// fresh reports whether this Provider made the droplet id less than
// provider.ConsistencyWindow ago: a 404 for it then means "not visible yet".
func (p *Provider) fresh(id string) bool {
	_, ok := p.pol.Fresh("instance", id)
	return ok
}
