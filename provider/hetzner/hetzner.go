// Package hetzner is spuff's Hetzner Cloud driver, on the official SDK
// github.com/hetznercloud/hcloud-go/v2. Importing it registers the
// provider "hetzner":
//
//	import _ "github.com/spuffgo/spuff/provider/hetzner"
//
//	p, err := provider.Open(ctx, "hetzner", provider.Config{}) // token from HCLOUD_TOKEN
//
// New builds one on an *hcloud.Client the caller made, for full control of
// the transport; ClientOptions gives the client options spuff recommends.
//
// # Configuration
//
// The API token is Config.Token, else the environment variable
// HCLOUD_TOKEN (the hcloud CLI's), else HETZNER_TOKEN. The endpoint is
// Config.Endpoint, else HCLOUD_ENDPOINT, else https://api.hetzner.cloud/v1.
//
// # Mapping
//
//   - Instances are servers; Region is the location ("fsn1") and Size the
//     server type ("cx22", "cax11").
//   - Labels are Hetzner's native labels; the ownership label is
//     managed-by=<owner>, and listing asks for it with a label selector,
//     50 servers a page (the API's largest), every page.
//   - provider.Ubuntu("24.04") and provider.Debian("12") are the system
//     images "ubuntu-24.04" and "debian-12" of the server type's
//     architecture (x86 for cx, cpx and ccx types, Arm for cax types).
//     CustomImage takes an image ID or name; SnapshotImage a snapshot ID.
//   - Snapshots are images of type snapshot made by the server's
//     create_image action. Hetzner snapshots have no name: the name is kept
//     in the description.
//   - User data is limited to 32 KiB, checked before any call.
//
// # Retries
//
// hcloud-go's own retries are turned off (they would repeat a create whose
// answer timed out, and they ignore Retry-After): spuff's retry policy is
// the only one. A create is retried only because Hetzner server names are
// unique: a create repeated after its answer was lost fails with
// uniqueness_error, and the driver then adopts the server that holds the
// name — if it carries the ownership label and has the requested server
// type, location and image — instead of failing or making a second one.
// A snapshot carries a one-off label, so that a snapshot repeated after a
// lost answer finds the first one instead of making another.
//
// # Errors
//
// Hetzner's error codes map to the portable kinds: unauthorized and
// forbidden to ErrAuthentication, not_found to ErrNotFound,
// rate_limit_exceeded to ErrRateLimit, resource_limit_exceeded to
// ErrQuotaExceeded, invalid_input and uniqueness_error to ErrInvalidConfig
// (with the field), server errors to ErrAPI. The hcloud.Error stays
// reachable with errors.As.
package hetzner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/provider"
)

// Name is the name the driver registers under.
const Name = "hetzner"

// MaxUserDataBytes is the largest user data Hetzner accepts (32 KiB).
const MaxUserDataBytes = 32 << 10

// PageSize is the page size of every list call: the API's maximum.
const PageSize = 50

// RateLimit is Hetzner's default API rate limit: 3,600 requests an hour,
// one returned every second.
var RateLimit = provider.RateLimit{Requests: 3600, Per: time.Hour}

// ExpectedBoot is the typical time from create to a running server with
// its address (10 to 20 s), which tunes the default wait policy.
const ExpectedBoot = 15 * time.Second

// snapshotTokenLabel is the label a snapshot carries while it is made: a
// one-off value that lets a retried create_image find the snapshot an
// earlier attempt made. It is removed once the snapshot is usable.
const snapshotTokenLabel = "spuff-snapshot-token"

func init() {
	provider.Register(Name, func(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
		return Open(ctx, cfg)
	})
}

// Provider is the Hetzner Cloud driver. It is safe for concurrent use.
type Provider struct {
	client *hcloud.Client
	pol    *provider.Policy
	owner  string
	limits provider.Limits

	mu          sync.Mutex
	serverTypes map[string]*hcloud.ServerType
	typesAt     time.Time
	images      map[string]cachedImage // "name/arch" -> image
	// fetchMu makes one catalogue or image lookup at a time: creates
	// made at once wait for it rather than each repeating it.
	fetchMu sync.Mutex
}

type cachedImage struct {
	id int64
	at time.Time
}

var _ provider.Provider = (*Provider)(nil)

// Option configures a Provider.
type Option func(*options)

type options struct {
	expectedBoot time.Duration
}

// WithExpectedBoot tunes the default wait policy to machines that are
// usually ready after d (ExpectedBoot by default). It has no effect when
// Config.WaitPolicy is set.
func WithExpectedBoot(d time.Duration) Option {
	return func(o *options) { o.expectedBoot = d }
}

// token returns the API token of cfg: Config.Token, HCLOUD_TOKEN or
// HETZNER_TOKEN.
func token(cfg provider.Config) provider.Secret {
	return cfg.TokenFromEnv("HCLOUD_TOKEN", "HETZNER_TOKEN")
}

// endpoint returns the API endpoint of cfg: Config.Endpoint, HCLOUD_ENDPOINT
// or hcloud.Endpoint.
func endpoint(cfg provider.Config) string {
	if cfg.Endpoint != "" {
		return cfg.Endpoint
	}
	if e := cfg.Env("HCLOUD_ENDPOINT"); e != "" {
		return e
	}
	return hcloud.Endpoint
}

func policy(cfg provider.Config, o options) *provider.Policy {
	return provider.NewPolicy(Name, cfg, provider.PolicyDefaults{
		Credential:   string(token(cfg)),
		Endpoint:     endpoint(cfg),
		RateLimits:   []provider.RateLimit{RateLimit},
		ExpectedBoot: o.expectedBoot,
	})
}

// ClientOptions returns the hcloud-go client options spuff uses: cfg's
// endpoint and token, cfg.HTTPClient (or a new client) with its transport
// paced by the account's shared pacer and its response bodies bounded,
// hcloud-go's retries turned off (MaxRetries 0: spuff's policy retries,
// never a create blindly) and its action polling set to back off from
// 500 ms to Config.Timeouts.PollInterval. A client built with them and
// passed to New behaves as one built by Open.
func ClientOptions(cfg provider.Config) ([]hcloud.ClientOption, error) {
	tok := token(cfg)
	if tok == "" {
		return nil, provider.InvalidField("Token", "no Hetzner Cloud API token: set Config.Token or HCLOUD_TOKEN")
	}
	pol := policy(cfg, options{expectedBoot: ExpectedBoot})
	hc := pol.Client(cfg.HTTPClient)
	poll := cfg.Timeouts.WithDefaults().PollInterval
	return []hcloud.ClientOption{
		hcloud.WithEndpoint(endpoint(cfg)),
		hcloud.WithToken(string(tok)),
		hcloud.WithHTTPClient(hc),
		hcloud.WithApplication("spuff", ""),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0, BackoffFunc: hcloud.ConstantBackoff(0)}),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ExponentialBackoffWithOpts(hcloud.ExponentialBackoffOpts{
			Base: 500 * time.Millisecond, Multiplier: 1.5, Cap: max(poll, 500*time.Millisecond), Jitter: true,
		})}),
	}, nil
}

// Open builds the provider from cfg, with a client made from
// ClientOptions(cfg). It makes no network call.
func Open(_ context.Context, cfg provider.Config, opts ...Option) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	copts, err := ClientOptions(cfg)
	if err != nil {
		return nil, err
	}
	return New(hcloud.NewClient(copts...), cfg, opts...)
}

// New builds the provider on client, used as it is: its endpoint, token,
// transport, retries and polling are the caller's. Build it with
// ClientOptions(cfg) to get spuff's settings (above all, hcloud-go's own
// retries turned off), then add your own options after them. cfg gives the
// timeouts, logger, owner, wait and retry policies; its Token and Endpoint
// only name the account for the shared pacer.
func New(client *hcloud.Client, cfg provider.Config, opts ...Option) (*Provider, error) {
	if client == nil {
		return nil, provider.InvalidField("client", "nil *hcloud.Client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{expectedBoot: ExpectedBoot}
	for _, opt := range opts {
		opt(&o)
	}
	return &Provider{
		client: client,
		pol:    policy(cfg, o),
		owner:  cfg.OwnerValue(),
		limits: provider.Limits{MaxUserDataBytes: MaxUserDataBytes, UserDataUTF8: true, Check: checkRequest},
		images: map[string]cachedImage{},
	}, nil
}

// Name returns "hetzner".
func (p *Provider) Name() string { return Name }

// String describes the provider without its credentials: fmt prints the
// SDK client's fields, the token among them, for a pointer reached through
// a verb other than %v.
func (p *Provider) String() string { return fmt.Sprintf("hetzner.Provider{owner: %q}", p.owner) }

// Capabilities reports snapshots, SSH keys, user data up to 32 KiB and IPv6.
func (p *Provider) Capabilities() provider.Capabilities {
	return provider.Capabilities{Snapshots: true, SSHKeys: true, UserData: true, IPv6: true, MaxUserDataBytes: MaxUserDataBytes}
}

// Client returns the hcloud-go client, for what spuff does not cover.
func (p *Provider) Client() *hcloud.Client { return p.client }

// Stats returns what the provider's policy has done (calls, retries,
// pacing).
func (p *Provider) Stats() provider.PolicyStats { return p.pol.Stats() }

// selector is the label selector of managed resources.
func (p *Provider) selector() string { return provider.OwnerLabel + "==" + p.owner }

func (p *Provider) owned(labels map[string]string) bool {
	return labels[provider.OwnerLabel] == p.owner
}

// userLabels returns labels without the ones spuff sets.
func userLabels(labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if k != provider.OwnerLabel && k != snapshotTokenLabel {
			out[k] = v
		}
	}
	return out
}

// checkRequest is Hetzner's rule beyond the common ones, checked before
// any call: a snapshot is restored by its image ID, a positive number.
func checkRequest(req *provider.InstanceRequest) error {
	if req.Image.Kind == provider.ImageSnapshot {
		if id, err := strconv.ParseInt(req.Image.Value, 10, 64); err != nil || id <= 0 {
			return provider.InvalidField("Image", fmt.Sprintf("snapshot ID %q is not a Hetzner image ID (a positive number)", req.Image.Value))
		}
	}
	return nil
}

// parseID parses a server or image ID.
func parseID(op, resource, id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		lookup := op == "GetInstance" || op == "WaitReady"
		return 0, provider.MalformedID(Name, op, resource, id, fmt.Sprintf("%s ID %q is not a Hetzner ID (a positive number)", resource, id), lookup)
	}
	return n, nil
}

// fill sets the provider and op of a validation error.
func fill(op string, err error) error { return provider.Classify(Name, op, 0, nil, err) }

// call runs one API request under the retry policy.
func (p *Provider) call(ctx context.Context, op string, fn func(ctx context.Context) (*hcloud.Response, error)) error {
	return p.pol.Call(ctx, op, func(ctx context.Context) error {
		resp, err := fn(ctx)
		return classify(op, resp, err)
	})
}

// listAll fetches every page of a list, each page under the retry policy,
// following meta.pagination.
func listAll[T any](ctx context.Context, p *Provider, op string, fetch func(ctx context.Context, opts hcloud.ListOpts) ([]T, *hcloud.Response, error), selector string) ([]T, error) {
	var out []T
	for page := 1; page > 0; {
		var items []T
		var resp *hcloud.Response
		err := p.call(ctx, op, func(ctx context.Context) (*hcloud.Response, error) {
			var err error
			items, resp, err = fetch(ctx, hcloud.ListOpts{Page: page, PerPage: PageSize, LabelSelector: selector})
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		next := 0
		if resp != nil && resp.Meta.Pagination != nil {
			next = resp.Meta.Pagination.NextPage
		}
		if next <= page {
			break
		}
		page = next
	}
	return out, nil
}

// CreateInstance validates req, resolves its server type, image and SSH
// keys, and creates the server labelled as managed. A create repeated after
// its answer was lost, or by a caller with the same request, returns the
// server made the first time.
func (p *Provider) CreateInstance(ctx context.Context, req provider.InstanceRequest) (*provider.Instance, error) {
	const op = "CreateInstance"
	if err := req.ValidateWith(p.limits); err != nil {
		return nil, fill(op, err)
	}
	st, err := p.serverType(ctx, op, req.Size)
	if err != nil {
		return nil, err
	}
	imageID, err := p.resolveImage(ctx, op, req.Image, st.Architecture)
	if err != nil {
		return nil, err
	}
	keys, err := p.resolveSSHKeys(ctx, op, req.SSHKeys)
	if err != nil {
		return nil, err
	}
	labels := maps.Clone(req.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[provider.OwnerLabel] = p.owner
	opts := hcloud.ServerCreateOpts{
		Name:             req.Name,
		ServerType:       &hcloud.ServerType{ID: st.ID},
		Image:            &hcloud.Image{ID: imageID},
		Location:         &hcloud.Location{Name: req.Region},
		UserData:         req.UserData,
		Labels:           labels,
		SSHKeys:          keys,
		StartAfterCreate: hcloud.Ptr(true),
	}
	var server *hcloud.Server
	adopted := false
	unknown := false // an attempt may have made the server
	err = p.pol.Call(ctx, op, func(ctx context.Context) error {
		res, resp, err := p.client.Server.Create(ctx, opts)
		switch {
		case err == nil:
			server = res.Server
			return nil
		case hcloud.IsError(err, hcloud.ErrorCodeUniquenessError):
			adopted = true
			server, err = p.adopt(ctx, op, req, st, imageID, err)
			return err
		}
		err = classify(op, resp, err)
		unknown = unknown || provider.OutcomeUnknown(err)
		return err
	})
	if err != nil && unknown {
		server, err = p.lostCreate(ctx, op, req, st, imageID, err)
	}
	if err != nil {
		return nil, err
	}
	if !adopted {
		p.pol.Created("instance", strconv.FormatInt(server.ID, 10)) // WaitReady first polls near ExpectedBoot
	}
	return p.instance(server), nil
}

// lostCreate handles a create whose last attempt's outcome is unknown: it
// looks for the server by name once more, on a context that outlives the
// caller's. The server a create with req would have made is returned when
// the caller still waits, else its ID goes in the error.
func (p *Provider) lostCreate(ctx context.Context, op string, req provider.InstanceRequest, st *hcloud.ServerType, imageID int64, err error) (*hcloud.Server, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.pol.Timeouts.HTTPRequest)
	defer cancel()
	var holder *hcloud.Server
	lerr := p.call(lctx, op, func(ctx context.Context) (*hcloud.Response, error) {
		servers, resp, err := p.client.Server.List(ctx, hcloud.ServerListOpts{Name: req.Name})
		for _, s := range servers {
			if s.Name == req.Name {
				holder = s
			}
		}
		return resp, err
	})
	var perr *provider.Error
	switch {
	case !errors.As(err, &perr):
		return nil, err
	case lerr == nil && holder != nil && p.matches(holder, req, st, imageID) && ctx.Err() == nil:
		p.pol.Log.Debug("spuff: adopting the server a create with a lost answer made", "provider", Name, "id", holder.ID, "name", holder.Name)
		return holder, nil
	case lerr == nil && holder != nil && p.matches(holder, req, st, imageID):
		perr.Resource, perr.ID = "instance", strconv.FormatInt(holder.ID, 10)
		perr.Message = strings.TrimPrefix(perr.Message+"; the server was made: DestroyInstance it, or CreateInstance with the same request adopts it", "; ")
	case lerr != nil:
		perr.Message = strings.TrimPrefix(perr.Message+"; the server may have been made: CreateInstance with the same request adopts it rather than making a second", "; ")
	}
	return nil, perr
}

// matches reports whether s is the server a create with req would have
// made: managed by us, of the same server type, location and image.
func (p *Provider) matches(s *hcloud.Server, req provider.InstanceRequest, st *hcloud.ServerType, imageID int64) bool {
	return p.owned(s.Labels) && s.ServerType != nil && s.ServerType.ID == st.ID &&
		s.Location != nil && s.Location.Name == req.Region && s.Image != nil && s.Image.ID == imageID
}

// adopt returns the server holding req.Name when it is the one a create
// with req would have made: managed by us, of the same server type,
// location and image. Otherwise the name is taken, which is the caller's
// to fix.
func (p *Provider) adopt(ctx context.Context, op string, req provider.InstanceRequest, st *hcloud.ServerType, imageID int64, conflict error) (*hcloud.Server, error) {
	// The holder of the name is listed at once, except in a race with its
	// own creation or deletion: look again for a little while.
	var holder *hcloud.Server
	w := provider.Waiter{Provider: Name, Op: op, Resource: "instance", Timeout: p.pol.Timeouts.HTTPRequest,
		Policy: provider.ExponentialWait(100*time.Millisecond, 2*time.Second, 2, 0.2), Logger: p.pol.Log}
	err := w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		servers, resp, err := p.client.Server.List(ctx, hcloud.ServerListOpts{Name: req.Name})
		if err != nil {
			return false, "", classify(op, resp, err)
		}
		for _, s := range servers {
			if s.Name == req.Name {
				holder = s
				return true, "listed", nil
			}
		}
		return false, "name taken by a server not listed yet", nil
	})
	if err != nil {
		return nil, err
	}
	s := holder
	if p.matches(s, req, st, imageID) {
		p.pol.Log.Debug("spuff: adopting the server a create already made", "provider", Name, "id", s.ID, "name", s.Name)
		return s, nil
	}
	return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Field: "Name", Code: string(hcloud.ErrorCodeUniquenessError),
		Status: http.StatusConflict, ID: strconv.FormatInt(s.ID, 10), Err: conflict,
		Message: fmt.Sprintf("the name %q is taken by server %d, which %s", req.Name, s.ID, mismatch(p, s, req, st, imageID))}
}

func mismatch(p *Provider, s *hcloud.Server, req provider.InstanceRequest, st *hcloud.ServerType, imageID int64) string {
	switch {
	case !p.owned(s.Labels):
		return "is not managed by spuff (owner " + p.owner + ")"
	case s.ServerType == nil || s.ServerType.ID != st.ID:
		return "has another server type"
	case s.Location == nil || s.Location.Name != req.Region:
		return "is in another location"
	}
	return "has another image"
}

// serverType returns the server type named name, from a catalogue fetched
// once and again when a name is missing from it (at most once a minute).
func (p *Provider) serverType(ctx context.Context, op, name string) (*hcloud.ServerType, error) {
	p.mu.Lock()
	st, fresh := p.serverTypes[name], time.Since(p.typesAt) < time.Minute
	p.mu.Unlock()
	if st != nil {
		return st, nil
	}
	if !fresh {
		p.fetchMu.Lock()
		defer p.fetchMu.Unlock()
		p.mu.Lock() // a lookup just made may have it
		st, fresh = p.serverTypes[name], time.Since(p.typesAt) < time.Minute
		p.mu.Unlock()
		if st != nil {
			return st, nil
		}
	}
	if !fresh {
		types, err := listAll(ctx, p, op, func(ctx context.Context, lo hcloud.ListOpts) ([]*hcloud.ServerType, *hcloud.Response, error) {
			lo.LabelSelector = ""
			return p.client.ServerType.List(ctx, hcloud.ServerTypeListOpts{ListOpts: lo})
		}, "")
		if err != nil {
			return nil, err
		}
		m := make(map[string]*hcloud.ServerType, len(types))
		for _, t := range types {
			m[t.Name] = t
		}
		p.mu.Lock()
		p.serverTypes, p.typesAt = m, time.Now()
		st = m[name]
		p.mu.Unlock()
		if st != nil {
			return st, nil
		}
	}
	return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Field: "Size",
		Message: fmt.Sprintf("server type %q does not exist (e.g. cx22, cpx11, cax11)", name)}
}

// resolveImage returns the image ID of spec for the architecture arch.
func (p *Provider) resolveImage(ctx context.Context, op string, spec provider.ImageSpec, arch hcloud.Architecture) (int64, error) {
	var name string
	switch spec.Kind {
	case provider.ImageUbuntu:
		name = "ubuntu-" + spec.Value
	case provider.ImageDebian:
		name = "debian-" + spec.Value
	case provider.ImageCustom:
		if id, err := strconv.ParseInt(spec.Value, 10, 64); err == nil && id > 0 {
			return id, nil
		}
		name = spec.Value
	case provider.ImageSnapshot:
		id, err := strconv.ParseInt(spec.Value, 10, 64)
		if err != nil || id <= 0 {
			return 0, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Field: "Image",
				Message: fmt.Sprintf("snapshot ID %q is not a Hetzner image ID (a positive number)", spec.Value)}
		}
		return id, nil
	}
	key := name + "/" + string(arch)
	p.mu.Lock()
	c, ok := p.images[key]
	p.mu.Unlock()
	if ok && time.Since(c.at) < 10*time.Minute {
		return c.id, nil
	}
	p.fetchMu.Lock()
	defer p.fetchMu.Unlock()
	p.mu.Lock() // a lookup just made may have it
	c, ok = p.images[key]
	p.mu.Unlock()
	if ok && time.Since(c.at) < 10*time.Minute {
		return c.id, nil
	}
	var images []*hcloud.Image
	err := p.call(ctx, op, func(ctx context.Context) (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		images, resp, err = p.client.Image.List(ctx, hcloud.ImageListOpts{
			ListOpts: hcloud.ListOpts{PerPage: PageSize}, Name: name, Architecture: []hcloud.Architecture{arch},
			Status: []hcloud.ImageStatus{hcloud.ImageStatusAvailable},
		})
		return resp, err
	})
	if err != nil {
		return 0, err
	}
	for _, img := range images {
		if img.Name == name && img.Architecture == arch {
			p.mu.Lock()
			p.images[key] = cachedImage{id: img.ID, at: time.Now()}
			p.mu.Unlock()
			return img.ID, nil
		}
	}
	return 0, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Field: "Image",
		Message: fmt.Sprintf("no image %q for the %s architecture", name, arch)}
}

// resolveSSHKeys maps SSH key IDs, names or fingerprints to keys.
func (p *Provider) resolveSSHKeys(ctx context.Context, op string, refs []string) ([]*hcloud.SSHKey, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	all, err := listAll(ctx, p, op, func(ctx context.Context, lo hcloud.ListOpts) ([]*hcloud.SSHKey, *hcloud.Response, error) {
		return p.client.SSHKey.List(ctx, hcloud.SSHKeyListOpts{ListOpts: lo})
	}, "")
	if err != nil {
		return nil, err
	}
	out := make([]*hcloud.SSHKey, 0, len(refs))
	for i, ref := range refs {
		j := slices.IndexFunc(all, func(k *hcloud.SSHKey) bool {
			return strconv.FormatInt(k.ID, 10) == ref || k.Name == ref || k.Fingerprint == ref
		})
		if j < 0 {
			return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Field: "SSHKeys[" + strconv.Itoa(i) + "]",
				Message: fmt.Sprintf("no SSH key %q on the account", ref)}
		}
		out = append(out, all[j])
	}
	return out, nil
}

// DestroyInstance deletes the server. A server already gone is success.
func (p *Provider) DestroyInstance(ctx context.Context, id string) error {
	const op = "DestroyInstance"
	n, err := parseID(op, "instance", id)
	if err != nil {
		return err
	}
	err = p.call(ctx, op, func(ctx context.Context) (*hcloud.Response, error) {
		_, resp, err := p.client.Server.DeleteWithResult(ctx, &hcloud.Server{ID: n})
		return resp, err
	})
	if provider.KindOf(err) == provider.KindNotFound {
		return nil
	}
	return err
}

// GetInstance returns the server, or an error matching ErrNotFound.
func (p *Provider) GetInstance(ctx context.Context, id string) (*provider.Instance, error) {
	const op = "GetInstance"
	s, err := p.getServer(ctx, op, id)
	if err != nil {
		return nil, err
	}
	return p.instance(s), nil
}

func (p *Provider) getServer(ctx context.Context, op, id string) (*hcloud.Server, error) {
	n, err := parseID(op, "instance", id)
	if err != nil {
		return nil, err
	}
	var s *hcloud.Server
	err = p.call(ctx, op, func(ctx context.Context) (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		s, resp, err = p.client.Server.GetByID(ctx, n)
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	if s == nil { // hcloud-go answers a 404 with (nil, resp, nil)
		return nil, notFound(op, "instance", id)
	}
	return s, nil
}

// ListInstances returns every managed server, asking for the ownership
// label with a label selector, 50 a page.
func (p *Provider) ListInstances(ctx context.Context) ([]*provider.Instance, error) {
	servers, err := listAll(ctx, p, "ListInstances", func(ctx context.Context, lo hcloud.ListOpts) ([]*hcloud.Server, *hcloud.Response, error) {
		return p.client.Server.List(ctx, hcloud.ServerListOpts{ListOpts: lo})
	}, p.selector())
	if err != nil {
		return nil, err
	}
	out := make([]*provider.Instance, 0, len(servers))
	for _, s := range servers {
		if p.owned(s.Labels) {
			out = append(out, p.instance(s))
		}
	}
	return out, nil
}

// WaitReady polls the server until it runs and has a public address. A
// server this Provider made less than a minute ago that answers not_found
// before it was ever seen is taken for not visible yet (eventual
// consistency), not for gone.
func (p *Provider) WaitReady(ctx context.Context, id string) (*provider.Instance, error) {
	const op = "WaitReady"
	n, err := parseID(op, "instance", id)
	if err != nil {
		return nil, err
	}
	var inst *provider.Instance
	seen := false
	err = p.pol.WaitFor(ctx, op, "instance", id, p.pol.Timeouts.InstanceReady, func(ctx context.Context) (bool, string, error) {
		s, resp, err := p.client.Server.GetByID(ctx, n)
		if err != nil {
			return false, "", classify(op, resp, err)
		}
		if s == nil {
			if !seen && p.fresh(n) {
				// Made by this Provider moments ago and never seen
				// since: not visible yet, rather than gone.
				return false, "not yet visible", nil
			}
			return false, "not found", notFound(op, "instance", id)
		}
		seen = true
		inst = p.instance(s)
		if inst.Ready() {
			return true, string(s.Status), nil
		}
		state := string(s.Status)
		if !inst.IP().IsValid() {
			state += " without public IP"
		}
		return false, state, nil
	})
	if err != nil {
		return nil, err
	}
	return inst, nil
}

// instance converts a server.
func (p *Provider) instance(s *hcloud.Server) *provider.Instance {
	inst := &provider.Instance{
		ID:        strconv.FormatInt(s.ID, 10),
		Name:      s.Name,
		Status:    status(s.Status),
		RawStatus: string(s.Status),
		Labels:    userLabels(s.Labels),
		CreatedAt: s.Created,
	}
	if s.Location != nil {
		inst.Region = s.Location.Name
	}
	if s.ServerType != nil {
		inst.Size = s.ServerType.Name
	}
	if ip := s.PublicNet.IPv4.IP; ip != nil && !ip.IsUnspecified() {
		if a, ok := netip.AddrFromSlice(ip.To4()); ok {
			inst.PublicIPv4 = a
		}
	}
	if n := s.PublicNet.IPv6.Network; n != nil && !n.IP.IsUnspecified() {
		// Hetzner assigns a /64; the server answers on its first address.
		ip := slices.Clone(n.IP.To16())
		ip[15] |= 1
		if a, ok := netip.AddrFromSlice(net.IP(ip)); ok {
			inst.PublicIPv6 = a
		}
	}
	return inst
}

// status maps a server status to the portable one.
func status(s hcloud.ServerStatus) provider.Status {
	switch s {
	case hcloud.ServerStatusRunning:
		return provider.StatusActive
	case hcloud.ServerStatusInitializing, hcloud.ServerStatusStarting, hcloud.ServerStatusRebuilding, hcloud.ServerStatusMigrating:
		return provider.StatusNew
	case hcloud.ServerStatusOff, hcloud.ServerStatusStopping:
		return provider.StatusOff
	}
	return provider.StatusUnknown
}

// CreateSnapshot snapshots the server with its create_image action, waits
// for the action, and returns the snapshot with its image ID. The name is
// kept in the image's description (Hetzner snapshots have no name).
func (p *Provider) CreateSnapshot(ctx context.Context, instanceID, name string) (*provider.Snapshot, error) {
	const op = "CreateSnapshot"
	n, err := parseID(op, "instance", instanceID)
	if err != nil {
		return nil, err
	}
	if name == "" || len(name) > 255 {
		return nil, &provider.Error{Kind: provider.KindInvalidConfig, Provider: Name, Op: op, Field: "name", Message: "snapshot name must be 1 to 255 characters"}
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	labels := map[string]string{provider.OwnerLabel: p.owner, snapshotTokenLabel: tok}

	var img *hcloud.Image
	var action *hcloud.Action
	unknown := false // an attempt may have made the snapshot
	err = p.pol.Call(ctx, op, func(ctx context.Context) error {
		if unknown {
			// An earlier attempt may have made the snapshot before its
			// answer was lost: look for its one-off label first.
			found, err := p.snapshotByToken(ctx, op, tok)
			if err != nil || found != nil {
				img = found
				return err
			}
		}
		res, resp, err := p.client.Server.CreateImage(ctx, &hcloud.Server{ID: n}, &hcloud.ServerCreateImageOpts{
			Type: hcloud.ImageTypeSnapshot, Description: hcloud.Ptr(name), Labels: labels,
		})
		if err != nil {
			if hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
				return notFound(op, "instance", instanceID)
			}
			err = classify(op, resp, err)
			unknown = unknown || provider.OutcomeUnknown(err)
			return err
		}
		img, action = res.Image, res.Action
		return nil
	})
	if err != nil && unknown {
		// The lookups since an attempt whose answer was lost failed:
		// look once more, so that its snapshot is not left behind.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.pol.Timeouts.HTTPRequest)
		var found *hcloud.Image
		_ = p.pol.Call(lctx, op, func(ctx context.Context) (ferr error) {
			found, ferr = p.snapshotByToken(ctx, op, tok)
			return ferr
		})
		cancel()
		switch {
		case found != nil && ctx.Err() == nil:
			img, action, err = found, nil, nil // go on with it
		case found != nil:
			return nil, p.discardSnapshot(op, found.ID, err)
		}
	}
	if err != nil {
		return nil, err
	}
	id := strconv.FormatInt(img.ID, 10)
	if err := p.waitSnapshot(ctx, op, img, action); err != nil {
		return nil, p.discardSnapshot(op, img.ID, err)
	}
	// The snapshot is usable: drop the one-off label.
	final := img
	err = p.call(ctx, op, func(ctx context.Context) (*hcloud.Response, error) {
		updated, resp, err := p.client.Image.Update(ctx, img, hcloud.ImageUpdateOpts{Labels: userLabelsWithOwner(img.Labels, p.owner)})
		if err == nil {
			final = updated
		}
		return resp, err
	})
	if err != nil {
		p.pol.Log.Debug("spuff: could not remove the snapshot's one-off label", "provider", Name, "id", id, "kind", provider.KindOf(err).String())
	}
	snap := snapshot(final)
	snap.Name = name
	return snap, nil
}

// snapshotByToken returns the snapshot carrying the one-off label value
// tok, or nil: one listing, no retry of its own.
func (p *Provider) snapshotByToken(ctx context.Context, op, tok string) (*hcloud.Image, error) {
	found, resp, err := p.client.Image.List(ctx, hcloud.ImageListOpts{
		ListOpts: hcloud.ListOpts{PerPage: PageSize, LabelSelector: snapshotTokenLabel + "==" + tok},
		Type:     []hcloud.ImageType{hcloud.ImageTypeSnapshot},
	})
	if err != nil {
		return nil, classify(op, resp, err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	return found[0], nil
}

func userLabelsWithOwner(labels map[string]string, owner string) map[string]string {
	out := userLabels(labels)
	out[provider.OwnerLabel] = owner
	return out
}

// waitSnapshot waits for the create_image action, or, when the snapshot
// was found rather than made (a retried create), for the image itself.
func (p *Provider) waitSnapshot(ctx context.Context, op string, img *hcloud.Image, action *hcloud.Action) error {
	id := strconv.FormatInt(img.ID, 10)
	return p.pol.WaitFor(ctx, op, "snapshot", id, p.pol.Timeouts.ActionComplete, func(ctx context.Context) (bool, string, error) {
		if action != nil {
			a, resp, err := p.client.Action.GetByID(ctx, action.ID)
			if err != nil {
				return false, "", classify(op, resp, err)
			}
			if a == nil {
				// The action is gone (actions expire): watch the image.
				action = nil
				return false, "action gone", nil
			}
			switch a.Status {
			case hcloud.ActionStatusSuccess:
				return true, "success", nil
			case hcloud.ActionStatusError:
				return false, "error", &provider.Error{Kind: provider.KindAPI, Provider: Name, Op: op, Resource: "snapshot", ID: id,
					Code: a.ErrorCode, Message: "create_image failed: " + a.ErrorMessage, Err: a.Error()}
			}
			return false, fmt.Sprintf("running (%d%%)", a.Progress), nil
		}
		m, resp, err := p.client.Image.GetByID(ctx, img.ID)
		if err != nil {
			return false, "", classify(op, resp, err)
		}
		if m == nil {
			return false, "not found", notFound(op, "snapshot", id)
		}
		return m.Status == hcloud.ImageStatusAvailable, string(m.Status), nil
	})
}

// discardSnapshot deletes a snapshot whose creation failed, so that it is
// not left behind; if that fails too, the error names it.
func (p *Provider) discardSnapshot(op string, id int64, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.pol.Timeouts.HTTPRequest)
	defer cancel()
	derr := p.call(ctx, op, func(ctx context.Context) (*hcloud.Response, error) {
		return p.client.Image.Delete(ctx, &hcloud.Image{ID: id})
	})
	if derr == nil || provider.KindOf(derr) == provider.KindNotFound {
		return cause
	}
	if e, ok := cause.(*provider.Error); ok {
		e.ID = strconv.FormatInt(id, 10)
		e.Message = fmt.Sprintf("snapshot %d was not usable and could not be deleted (delete it yourself): %s", id, e.Message)
	}
	return cause
}

func snapshot(img *hcloud.Image) *provider.Snapshot {
	return &provider.Snapshot{
		ID:        strconv.FormatInt(img.ID, 10),
		Name:      img.Description,
		CreatedAt: img.Created,
		SizeGB:    float64(img.ImageSize),
		Labels:    userLabels(img.Labels),
	}
}

// ListSnapshots returns the managed snapshots.
func (p *Provider) ListSnapshots(ctx context.Context) ([]*provider.Snapshot, error) {
	images, err := listAll(ctx, p, "ListSnapshots", func(ctx context.Context, lo hcloud.ListOpts) ([]*hcloud.Image, *hcloud.Response, error) {
		return p.client.Image.List(ctx, hcloud.ImageListOpts{ListOpts: lo, Type: []hcloud.ImageType{hcloud.ImageTypeSnapshot}})
	}, p.selector())
	if err != nil {
		return nil, err
	}
	out := make([]*provider.Snapshot, 0, len(images))
	for _, img := range images {
		if p.owned(img.Labels) && img.Type == hcloud.ImageTypeSnapshot {
			out = append(out, snapshot(img))
		}
	}
	return out, nil
}

// DeleteSnapshot deletes the snapshot. One already gone is success.
func (p *Provider) DeleteSnapshot(ctx context.Context, id string) error {
	const op = "DeleteSnapshot"
	n, err := parseID(op, "snapshot", id)
	if err != nil {
		return err
	}
	err = p.call(ctx, op, func(ctx context.Context) (*hcloud.Response, error) {
		return p.client.Image.Delete(ctx, &hcloud.Image{ID: n})
	})
	if provider.KindOf(err) == provider.KindNotFound {
		return nil
	}
	return err
}

// ListSSHKeys returns the account's SSH keys.
func (p *Provider) ListSSHKeys(ctx context.Context) ([]*provider.SSHKey, error) {
	keys, err := listAll(ctx, p, "ListSSHKeys", func(ctx context.Context, lo hcloud.ListOpts) ([]*hcloud.SSHKey, *hcloud.Response, error) {
		return p.client.SSHKey.List(ctx, hcloud.SSHKeyListOpts{ListOpts: lo})
	}, "")
	if err != nil {
		return nil, err
	}
	out := make([]*provider.SSHKey, len(keys))
	for i, k := range keys {
		out[i] = &provider.SSHKey{ID: strconv.FormatInt(k.ID, 10), Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey}
	}
	return out, nil
}

// fresh reports whether this Provider made server id less than
// provider.ConsistencyWindow ago: a not_found for it then means "not
// visible yet".
func (p *Provider) fresh(id int64) bool {
	_, ok := p.pol.Fresh("instance", strconv.FormatInt(id, 10))
	return ok
}
