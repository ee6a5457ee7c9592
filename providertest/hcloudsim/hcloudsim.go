// Package hcloudsim serves a simulated cloud (package simcloud) in the wire
// format of the Hetzner Cloud API v1, so that hcloud-go and spuff's hetzner
// driver run against it unmodified.
//
// It answers the endpoints a driver for short-lived machines needs:
//
//   - servers: create (201 with server, action, next_actions and
//     root_password), get, list (name, status, label_selector, page and
//     per_page up to 50, meta.pagination), update labels, delete (with its
//     action), and POST /servers/{id}/actions/create_image;
//   - actions: GET /actions/{id}, GET /actions?id=… (how hcloud-go's
//     Action.WaitFor polls), and the per-resource forms
//     /servers/{id}/actions/{action_id} and /images/{id}/actions/{action_id};
//   - images: list (type, status, name, architecture, label_selector,
//     pages), get, update description and labels, delete;
//   - ssh_keys, server_types, locations, datacenters and pricing,
//     read-only: the server types, locations and net prices of Catalog
//     (Hetzner's line-up and prices of October 2025), each type's
//     locations "available" while the model has room for it there (and a
//     datacenter's available server types likewise), as Hetzner stops
//     offering what it cannot place. A create is not refused for a
//     location its type is not listed in.
//
// Errors use Hetzner's body {"error":{"code":…,"message":…,"details":…}}
// with its codes: unauthorized (401), forbidden (403, a read-only token
// writing), not_found (404), invalid_input and json_error (400),
// uniqueness_error (409, a server name in use), conflict (409),
// resource_limit_exceeded (403, the quota), resource_unavailable (412:
// "error during placement" when a location has no room for the type,
// "server location disabled"), locked (423, an action is running),
// rate_limit_exceeded (429), server_error, bad_gateway and service_error
// (5xx). Every answer carries RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset (a Unix time), and JSON bodies are sent as
// application/json, without which hcloud-go ignores error bodies and
// pagination.
//
// In the realistic world (simcloud.Realistic) a 429 has no Retry-After, a
// server with a running action (its boot, a snapshot, its delete) answers
// deletes and create_image with 423 locked, a deleted server is still read
// and listed with status "deleting" while its delete_server action runs,
// and snapshots take about a minute (and fail with FaultSnapshotFailed:
// status "unavailable", the action in error).
//
// Paths are served with and without the /v1 prefix, so both srv.URL and
// srv.URL+"/v1" work as the endpoint.
package hcloudsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// MaxPerPage is the largest page the API serves; larger per_page values are
// capped to it.
const MaxPerPage = 50

// MaxUserDataBytes is the largest user data the API accepts (32 KiB).
const MaxUserDataBytes = 32 << 10

// RateLimit is Hetzner's default budget: 3,600 requests an hour, one
// returned every second.
var RateLimit = simcloud.RateLimit{Requests: 3600, Per: time.Hour}

// Location is an entry of the simulated location catalogue.
type location struct {
	name, description, country, city, zone, datacenter string
	lat, lon                                           float64
}

var knownLocations = []location{
	{"fsn1", "Falkenstein DC Park 1", "DE", "Falkenstein", "eu-central", "fsn1-dc14", 50.47612, 12.370071},
	{"nbg1", "Nuremberg DC Park 1", "DE", "Nuremberg", "eu-central", "nbg1-dc3", 49.452102, 11.076665},
	{"hel1", "Helsinki DC Park 1", "FI", "Helsinki", "eu-central", "hel1-dc2", 60.169855, 24.938379},
	{"ash", "Ashburn, VA", "US", "Ashburn, VA", "us-east", "ash-dc1", 39.0437, -77.4875},
	{"hil", "Hillsboro, OR", "US", "Hillsboro, OR", "us-west", "hil-dc1", 45.54222, -122.95194},
	{"sin", "Singapore", "SG", "Singapore", "ap-southeast", "sin-dc1", 1.283333, 103.833333},
}

// ServerTypes is the default server type catalogue (see Catalog): shared
// x86 (cx, cpx), shared Arm (cax) and dedicated x86 (ccx) types.
func ServerTypes() map[string]simcloud.Size {
	out := map[string]simcloud.Size{}
	for name, t := range Catalog() {
		out[name] = t.Size
	}
	return out
}

// Locations returns the names of the default location catalogue.
func Locations() []string {
	out := make([]string, len(knownLocations))
	for i, l := range knownLocations {
		out[i] = l.name
	}
	return out
}

// The realistic world's Hetzner numbers that are not published; estimates
// from observed behaviour.
const (
	// realBoot is create to "running": Hetzner's create_server action
	// takes ten to twenty seconds.
	realBoot = 15 * time.Second
	// realSnapshot is create_image to "available" for a small disk: about
	// a minute.
	realSnapshot = time.Minute
	// realDestroy is how long a deleted server is still read and listed,
	// status "deleting", while its delete_server action runs.
	realDestroy = 10 * time.Second
)

// Defaults returns opts with Hetzner's catalogue and rules filled in: the
// default locations and server types where none are given, the rate limit
// of 3,600 requests an hour, one returned every second, where none is given
// (Hetzner Cloud API reference, "Rate Limiting": the RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset headers), and unique server
// names (always: it is the API's rule). The realistic world adds what
// Hetzner always does: no Retry-After on a 429 (the reference names none),
// servers with a running action (their boot, a create_image, their delete)
// locked (423 "locked" to deletes and snapshots), a deleted server still
// read and listed with status "deleting", boots of seconds and snapshots of
// about a minute (see the real* constants).
func Defaults(opts simcloud.Options) simcloud.Options {
	if len(opts.Regions) == 0 {
		opts.Regions = Locations()
	}
	if len(opts.Sizes) == 0 {
		opts.Sizes = ServerTypes()
	}
	if len(opts.RateLimits) == 0 {
		opts.RateLimits = []simcloud.RateLimit{RateLimit}
	}
	opts.UniqueNames = true
	if !opts.IsRealistic() {
		return opts
	}
	if opts.RetryAfter == simcloud.RetryAfterAuto {
		opts.RetryAfter = simcloud.RetryAfterNever
	}
	if opts.LockActions == simcloud.Auto {
		opts.LockActions = simcloud.On
	}
	simcloud.SetDefault(&opts.BootDelay, realBoot)
	simcloud.SetDefault(&opts.SnapshotDelay, realSnapshot)
	simcloud.SetDefault(&opts.DestroyDelay, realDestroy)
	return opts
}

// SystemImages are the system images NewCloud adds, each for x86 and Arm.
// Their names are the distribution in lower case, a dash and the version
// ("ubuntu-24.04").
var SystemImages = []struct{ Distribution, Version string }{
	{"Ubuntu", "22.04"}, {"Ubuntu", "24.04"}, {"Debian", "12"}, {"Debian", "13"},
}

// NewCloud returns a simulated cloud with Defaults(opts) and the system
// images of SystemImages (named "ubuntu-24.04", "debian-12", … once per
// architecture, as on Hetzner).
func NewCloud(opts simcloud.Options) *simcloud.Cloud {
	c := simcloud.New(Defaults(opts))
	for _, arch := range []string{"x86_64", "arm64"} {
		for _, si := range SystemImages {
			name := strings.ToLower(si.Distribution) + "-" + si.Version
			desc := si.Distribution + " " + si.Version
			c.AddImage(simcloud.Image{
				Kind: simcloud.ImageDistribution, Name: name, Slug: name, Description: desc,
				Distribution: si.Distribution, Version: si.Version, Arch: arch, MinDiskGB: 5,
				Owner: "hetzner", CreatedAt: time.Date(2024, 4, 25, 12, 0, 0, 0, time.UTC),
			})
		}
	}
	return c
}

// Start serves a new simulated Hetzner Cloud (NewCloud(opts)) on loopback
// for the duration of the test and closes it at the test's end.
func Start(t testing.TB, opts simcloud.Options, hopts ...Option) *simcloud.Server {
	t.Helper()
	srv := NewServer(opts, hopts...)
	t.Cleanup(srv.Close)
	return srv
}

// NewServer serves a new simulated Hetzner Cloud (NewCloud(opts)) on
// loopback until its Close; Start is the form for tests.
func NewServer(opts simcloud.Options, hopts ...Option) *simcloud.Server {
	cloud := NewCloud(opts)
	return simcloud.NewServer(cloud, Handler(cloud, hopts...))
}

// Config returns the provider.Config that reaches srv: its endpoint, its
// account's token, and a wait policy paced to its simulated boot time.
func Config(srv *simcloud.Server) provider.Config {
	return provider.Config{
		Endpoint:   srv.URL,
		Token:      provider.Secret(srv.Cloud.Token()),
		WaitPolicy: srv.WaitPolicy(),
	}
}

// Option configures a Handler.
type Option func(*handler)

// WithReadOnlyToken makes token a read-only API token of the cloud's
// account (Cloud.Token's): reads with it succeed, sharing the account's rate
// limit as Hetzner's per-project limit does, and every write answers 403
// forbidden.
func WithReadOnlyToken(token string) Option {
	return func(h *handler) { h.readOnly[token] = h.cloud.Token() }
}

type handler struct {
	cloud    *simcloud.Cloud
	locks    bool // servers with a running action are locked
	mux      *http.ServeMux
	readOnly map[string]string // read-only token -> the account's token

	locations []wireLocation
	types     []wireServerType // by ID - 1

	mu    sync.Mutex
	names map[int64]string // server names seen, for created_from
}

// Handler serves cloud in the Hetzner Cloud API's wire format. The cloud's
// Options.Regions are the locations and Options.Sizes the server types;
// build the cloud with NewCloud for Hetzner's catalogue.
func Handler(cloud *simcloud.Cloud, opts ...Option) http.Handler {
	h := &handler{cloud: cloud, mux: http.NewServeMux(), readOnly: map[string]string{}, names: map[int64]string{},
		locks: cloud.Options().LockActions == simcloud.On}
	for _, o := range opts {
		o(h)
	}
	o := cloud.Options()
	regions := o.Regions
	if len(regions) == 0 {
		regions = Locations()
	}
	for i, name := range regions {
		l := location{name: name, description: name, country: "DE", city: name, zone: "eu-central", datacenter: name + "-dc1"}
		for _, k := range knownLocations {
			if k.name == name {
				l = k
			}
		}
		h.locations = append(h.locations, wireLocation{
			ID: int64(i + 1), Name: l.name, Description: l.description, Country: l.country, City: l.city,
			Latitude: l.lat, Longitude: l.lon, NetworkZone: l.zone,
		})
	}
	sizes := o.Sizes
	if len(sizes) == 0 {
		sizes = ServerTypes()
	}
	names := make([]string, 0, len(sizes))
	for n := range sizes {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		st := serverTypeWire(int64(i+1), n, sizes[n], h.locations)
		h.types = append(h.types, st)
	}

	m := h.mux
	m.HandleFunc("POST /servers", h.serve(simcloud.OpCreateInstance, true, h.createServer))
	m.HandleFunc("GET /servers", h.serve(simcloud.OpListInstances, false, h.listServers))
	m.HandleFunc("GET /servers/{id}", h.serve(simcloud.OpGetInstance, false, h.getServer))
	m.HandleFunc("PUT /servers/{id}", h.serve(simcloud.OpTag, true, h.updateServer))
	m.HandleFunc("DELETE /servers/{id}", h.serve(simcloud.OpDeleteInstance, true, h.deleteServer))
	m.HandleFunc("POST /servers/{id}/actions/create_image", h.serve(simcloud.OpCreateSnapshot, true, h.createImage))
	m.HandleFunc("GET /servers/{id}/actions/{action_id}", h.serve(simcloud.OpGetAction, false, h.getAction))
	m.HandleFunc("GET /images/{id}/actions/{action_id}", h.serve(simcloud.OpGetAction, false, h.getAction))
	m.HandleFunc("GET /actions/{action_id}", h.serve(simcloud.OpGetAction, false, h.getAction))
	m.HandleFunc("GET /actions", h.serve(simcloud.OpGetAction, false, h.listActions))
	m.HandleFunc("GET /images", h.serve(simcloud.OpListImages, false, h.listImages))
	m.HandleFunc("GET /images/{id}", h.serve(simcloud.OpGetImage, false, h.getImage))
	m.HandleFunc("PUT /images/{id}", h.serve(simcloud.OpTag, true, h.updateImage))
	m.HandleFunc("DELETE /images/{id}", h.serve(simcloud.OpDeleteImage, true, h.deleteImage))
	m.HandleFunc("GET /ssh_keys", h.serve(simcloud.OpListSSHKeys, false, h.listSSHKeys))
	m.HandleFunc("GET /ssh_keys/{id}", h.serve(simcloud.OpListSSHKeys, false, h.getSSHKey))
	m.HandleFunc("GET /server_types", h.serve(simcloud.OpCatalog, false, h.listServerTypes))
	m.HandleFunc("GET /server_types/{id}", h.serve(simcloud.OpCatalog, false, h.getServerType))
	m.HandleFunc("GET /locations", h.serve(simcloud.OpCatalog, false, h.listLocations))
	m.HandleFunc("GET /locations/{id}", h.serve(simcloud.OpCatalog, false, h.getLocation))
	m.HandleFunc("GET /datacenters", h.serve(simcloud.OpCatalog, false, h.listDatacenters))
	m.HandleFunc("GET /pricing", h.serve(simcloud.OpCatalog, false, h.getPricing))
	m.HandleFunc("/", h.serve(simcloud.OpOther, false, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &simcloud.Error{Code: simcloud.CodeNotFound, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	}))
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p, ok := strings.CutPrefix(r.URL.Path, "/v1"); ok && (p == "" || p[0] == '/') {
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		r2.URL.RawPath = ""
		r = r2
	}
	h.mux.ServeHTTP(w, r)
}

// serve runs fn as one API call of op, through the cloud's admission, rate
// limit and faults. A write with a read-only token answers 403 forbidden.
func (h *handler) serve(op simcloud.Op, write bool, fn func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		account, readOnly := h.readOnly[token]
		if !readOnly {
			account = token
		}
		h.cloud.Serve(w, r, dialect{}, op, account, func(rw http.ResponseWriter) {
			if write && readOnly {
				writeJSON(rw, http.StatusForbidden, wireError{Error: wireErrorBody{Code: "forbidden", Message: "insufficient permissions: the token is read-only", Details: map[string]any{}}})
				return
			}
			fn(rw, r)
		})
	}
}

// dialect renders errors and rate-limit headers as Hetzner does.
type dialect struct{}

func (dialect) WriteError(w http.ResponseWriter, _ *http.Request, err *simcloud.Error) {
	writeError(w, err)
}

func (dialect) RateHeaders(hd http.Header, windows []simcloud.WindowState) {
	if len(windows) == 0 {
		return
	}
	ws := windows[0]
	for _, x := range windows[1:] {
		if x.Remaining < ws.Remaining {
			ws = x
		}
	}
	hd.Set("RateLimit-Limit", strconv.Itoa(ws.Limit))
	hd.Set("RateLimit-Remaining", strconv.Itoa(ws.Remaining))
	hd.Set("RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(ws.Reset.UnixNano())/1e9)), 10))
}

// writeError writes a model error as Hetzner's error body.
func writeError(w http.ResponseWriter, e *simcloud.Error) {
	status, code, msg := http.StatusInternalServerError, "server_error", e.Message
	details := map[string]any{}
	switch e.Code {
	case simcloud.CodeNotFound:
		status, code = http.StatusNotFound, "not_found"
	case simcloud.CodeInvalid:
		status, code = http.StatusBadRequest, "invalid_input"
		if e.Field != "" {
			details["fields"] = []map[string]any{{"name": e.Field, "messages": []string{e.Message}}}
		}
	case simcloud.CodeQuota:
		status, code = http.StatusForbidden, "resource_limit_exceeded"
	case simcloud.CodeConflict:
		status, code = http.StatusConflict, "uniqueness_error"
		field := e.Field
		if field == "" {
			field = "name"
		}
		details["fields"] = []map[string]any{{"name": field}}
	case simcloud.CodeIdempotency, simcloud.CodeIncorrect, simcloud.CodeDependency, simcloud.CodeChanged:
		status, code = http.StatusConflict, "conflict"
	case simcloud.CodeLocked:
		// A server with a running action, in Hetzner's words (as reported by
		// terraform-provider-hcloud issue 492, jenkinsci/hetzner-cloud-plugin
		// pull 92).
		status, code, msg = http.StatusLocked, "locked", "cannot perform operation because server is locked"
	case simcloud.CodeCapacity:
		// What Hetzner answers when a location has no room for the type.
		status, code, msg = http.StatusPreconditionFailed, "resource_unavailable", "error during placement"
	case simcloud.CodeRegionDisabled:
		status, code, msg = http.StatusPreconditionFailed, "resource_unavailable", "server location disabled"
	case simcloud.CodeUnauthorized:
		status, code = http.StatusUnauthorized, "unauthorized"
	case simcloud.CodeRateLimited:
		status, code = http.StatusTooManyRequests, "rate_limit_exceeded"
	case simcloud.CodeBadGateway:
		status, code = http.StatusBadGateway, "bad_gateway"
	case simcloud.CodeUnavailable:
		status, code = http.StatusServiceUnavailable, "service_error"
	}
	writeJSON(w, status, wireError{Error: wireErrorBody{Code: code, Message: msg, Details: details}})
}

func invalid(field, format string, args ...any) *simcloud.Error {
	return &simcloud.Error{Code: simcloud.CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"server_error","message":"encoding failed","details":{}}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// modelError writes err, a model error or another, as an error answer.
func modelError(w http.ResponseWriter, err error) {
	var e *simcloud.Error
	if !errors.As(err, &e) {
		e = &simcloud.Error{Code: simcloud.CodeInternal, Message: err.Error()}
	}
	writeError(w, e)
}

// decode reads a JSON request body of at most 1 MiB into v.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, wireError{Error: wireErrorBody{Code: "json_error", Message: "invalid JSON in request body: " + err.Error(), Details: map[string]any{}}})
		return false
	}
	return true
}

// pathID parses the path parameter name as an ID.
func pathID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, invalid("id", "invalid ID %q", r.PathValue(name)))
		return 0, false
	}
	return id, true
}

// paging reads page and per_page (default 25, capped to MaxPerPage).
func paging(w http.ResponseWriter, r *http.Request) (page, perPage int, ok bool) {
	page, perPage = 1, 25
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		dst  *int
	}{{"page", &page}, {"per_page", &perPage}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				writeError(w, invalid(p.name, "%s must be a positive integer", p.name))
				return 0, 0, false
			}
			*p.dst = n
		}
	}
	return page, min(perPage, MaxPerPage), true
}

func meta(page, perPage, total int) wireMeta {
	last := max(1, (total+perPage-1)/perPage)
	p := wirePagination{Page: page, PerPage: perPage, LastPage: last, TotalEntries: total}
	if page > 1 {
		p.PreviousPage = ptr(page - 1)
	}
	if page < last {
		p.NextPage = ptr(page + 1)
	}
	return wireMeta{Pagination: p}
}

// labelSelector parses the label_selector query parameter.
func labelSelector(w http.ResponseWriter, r *http.Request) (selector, bool) {
	raw := r.URL.Query().Get("label_selector")
	if raw == "" {
		return nil, true
	}
	sel, err := parseSelector(raw)
	if err != nil {
		writeError(w, invalid("label_selector", "%s", err.Error()))
		return nil, false
	}
	return sel, true
}

// Catalogue lookups.

func (h *handler) location(name string) wireLocation {
	for _, l := range h.locations {
		if l.Name == name {
			return l
		}
	}
	return wireLocation{ID: 999, Name: name, Description: name, Country: "DE", City: name, NetworkZone: "eu-central"}
}

func (h *handler) findLocation(ref idOrName) (wireLocation, bool) {
	for _, l := range h.locations {
		if string(ref) == l.Name || string(ref) == strconv.FormatInt(l.ID, 10) {
			return l, true
		}
	}
	return wireLocation{}, false
}

func (h *handler) datacenter(l wireLocation) wireDatacenter {
	name := l.Name + "-dc1"
	for _, k := range knownLocations {
		if k.name == l.Name {
			name = k.datacenter
		}
	}
	return wireDatacenter{
		ID: l.ID, Name: name, Description: l.City + " DC " + strings.TrimPrefix(name, l.Name+"-dc"), Location: l,
		ServerTypes: h.datacenterTypes(l),
	}
}

func (h *handler) serverType(name string) wireServerType {
	for _, t := range h.types {
		if t.Name == name {
			return t
		}
	}
	return wireServerType{ID: 999, Name: name, Description: name, Cores: 1, Memory: 1, Disk: 20, Prices: []wirePrice{},
		StorageType: "local", CPUType: "shared", Architecture: "x86", Locations: []wireServerTypeLocation{}}
}

func (h *handler) findServerType(ref idOrName) (wireServerType, bool) {
	for _, t := range h.types {
		if string(ref) == t.Name || string(ref) == strconv.FormatInt(t.ID, 10) {
			return t, true
		}
	}
	return wireServerType{}, false
}

func (h *handler) serverName(id int64) string {
	if in, err := h.cloud.LookupInstance(id); err == nil {
		return in.Name
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.names[id]
}

func (h *handler) rememberName(id int64, name string) {
	h.mu.Lock()
	h.names[id] = name
	h.mu.Unlock()
}

// findImage resolves an image by ID, or by name for the architecture arch
// (names are unique per architecture only).
func (h *handler) findImage(ref idOrName, arch string) (simcloud.Image, bool) {
	if id, err := strconv.ParseInt(string(ref), 10, 64); err == nil {
		m, err := h.cloud.GetImage(id)
		return m, err == nil
	}
	page, _ := h.cloud.ListImages(func(m *simcloud.Image) bool {
		return m.Kind == simcloud.ImageDistribution && m.Name == string(ref) && wireArch(m.Arch) == arch
	}, 0, 1)
	if len(page) == 0 {
		return simcloud.Image{}, false
	}
	return page[0], true
}

// Servers.

func (h *handler) createServer(w http.ResponseWriter, r *http.Request) {
	var req createServerRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Name == "" || !validHostname(req.Name) {
		writeError(w, invalid("name", "name %q is not a valid hostname (RFC 1123)", req.Name))
		return
	}
	if req.ServerType == "" {
		writeError(w, invalid("server_type", "server_type is required"))
		return
	}
	st, ok := h.findServerType(req.ServerType)
	if !ok {
		writeError(w, invalid("server_type", "server type %q not found", req.ServerType))
		return
	}
	if req.Image == "" {
		writeError(w, invalid("image", "image is required"))
		return
	}
	img, ok := h.findImage(req.Image, st.Architecture)
	if !ok {
		writeError(w, invalid("image", "image %q not found", req.Image))
		return
	}
	if img.Kind == simcloud.ImageDistribution && wireArch(img.Arch) != st.Architecture {
		writeError(w, invalid("image", "image %d is for %s, server type %s is %s", img.ID, wireArch(img.Arch), st.Name, st.Architecture))
		return
	}
	loc := h.locations[0]
	switch {
	case req.Location != "" && req.Datacenter != "":
		writeError(w, invalid("location", "location and datacenter are mutually exclusive"))
		return
	case req.Location != "":
		if loc, ok = h.findLocation(req.Location); !ok {
			writeError(w, invalid("location", "location %q not found", req.Location))
			return
		}
	case req.Datacenter != "":
		found := false
		for _, l := range h.locations {
			if dc := h.datacenter(l); string(req.Datacenter) == dc.Name || string(req.Datacenter) == strconv.FormatInt(dc.ID, 10) {
				loc, found = l, true
			}
		}
		if !found {
			writeError(w, invalid("datacenter", "datacenter %q not found", req.Datacenter))
			return
		}
	}
	if len(req.UserData) > MaxUserDataBytes {
		writeError(w, invalid("user_data", "user_data is %d bytes; the limit is %d", len(req.UserData), MaxUserDataBytes))
		return
	}
	if err := checkLabels(req.Labels); err != nil {
		writeError(w, invalid("labels", "%s", err.Error()))
		return
	}
	var keys []int64
	for _, ref := range req.SSHKeys {
		k, ok := h.cloud.FindSSHKey(string(ref))
		if !ok {
			writeError(w, invalid("ssh_keys", "SSH key %q not found", ref))
			return
		}
		keys = append(keys, k.ID)
	}
	in, _, err := h.cloud.CreateInstance(simcloud.InstanceSpec{
		Name: req.Name, Region: loc.Name, Size: st.Name, ImageID: img.ID,
		UserData: req.UserData, Labels: req.Labels, SSHKeyIDs: keys,
	})
	if err != nil {
		modelError(w, err)
		return
	}
	h.rememberName(in.ID, in.Name)
	now := h.cloud.Now()
	var act simcloud.Action
	for _, a := range h.cloud.ActionsFor("instance", in.ID) {
		if a.Type == "create" {
			act = a
		}
	}
	var password *string
	if len(keys) == 0 {
		password = ptr(fmt.Sprintf("sim%013d", in.ID))
	}
	writeJSON(w, http.StatusCreated, struct {
		Server       wireServer   `json:"server"`
		Action       wireAction   `json:"action"`
		NextActions  []wireAction `json:"next_actions"`
		RootPassword *string      `json:"root_password"`
	}{h.server(in, now), h.action(act, now), []wireAction{}, password})
}

func (h *handler) listServers(w http.ResponseWriter, r *http.Request) {
	page, perPage, ok := paging(w, r)
	if !ok {
		return
	}
	sel, ok := labelSelector(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	name, statuses := q.Get("name"), q["status"]
	now := h.cloud.Now()
	// The filter runs under the cloud's lock: it must not call the cloud.
	servers, total := h.cloud.ListInstances(func(in *simcloud.Instance) bool {
		if name != "" && in.Name != name {
			return false
		}
		if sel != nil && !sel.matches(in.Labels) {
			return false
		}
		return len(statuses) == 0 || slices.Contains(statuses, serverStatus(in, now))
	}, (page-1)*perPage, perPage, false)
	out := make([]wireServer, len(servers))
	for i, in := range servers {
		out[i] = h.server(in, now)
	}
	writeJSON(w, http.StatusOK, struct {
		Servers []wireServer `json:"servers"`
		Meta    wireMeta     `json:"meta"`
	}{out, meta(page, perPage, total)})
}

func (h *handler) getServer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	in, err := h.cloud.GetInstance(id)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Server wireServer `json:"server"`
	}{h.server(in, h.cloud.Now())})
}

func (h *handler) updateServer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	var req updateRequest
	if !decode(w, r, &req) {
		return
	}
	in, err := h.cloud.GetInstance(id)
	if err != nil {
		modelError(w, err)
		return
	}
	if req.Name != nil && *req.Name != in.Name {
		writeError(w, invalid("name", "renaming servers is not simulated"))
		return
	}
	if req.Labels != nil {
		if err := checkLabels(*req.Labels); err != nil {
			writeError(w, invalid("labels", "%s", err.Error()))
			return
		}
		if err := h.cloud.SetInstanceLabels(id, *req.Labels, true); err != nil {
			modelError(w, err)
			return
		}
	}
	h.getServer(w, r)
}

func (h *handler) deleteServer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	act, err := h.cloud.DeleteInstance(id)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Action wireAction `json:"action"`
	}{h.action(act, h.cloud.Now())})
}

func (h *handler) createImage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	var req createImageRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Type != nil && *req.Type != "snapshot" {
		writeError(w, invalid("type", "only snapshots are simulated, not %q", *req.Type))
		return
	}
	if err := checkLabels(req.Labels); err != nil {
		writeError(w, invalid("labels", "%s", err.Error()))
		return
	}
	var desc string
	if req.Description != nil {
		desc = *req.Description
	}
	img, act, err := h.cloud.CreateSnapshot(simcloud.SnapshotSpec{InstanceID: id, Description: desc, Labels: req.Labels})
	if err != nil {
		modelError(w, err)
		return
	}
	now := h.cloud.Now()
	writeJSON(w, http.StatusCreated, struct {
		Image  wireImage  `json:"image"`
		Action wireAction `json:"action"`
	}{h.image(img, now), h.action(act, now)})
}

// Actions.

func (h *handler) getAction(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "action_id")
	if !ok {
		return
	}
	a, err := h.cloud.GetAction(id)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Action wireAction `json:"action"`
	}{h.action(a, h.cloud.Now())})
}

// listActions answers GET /actions?id=…&id=…, how hcloud-go's
// Action.WaitFor polls. Unknown IDs are left out.
func (h *handler) listActions(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["id"]
	if len(ids) == 0 {
		writeError(w, invalid("id", "at least one action id is required"))
		return
	}
	now := h.cloud.Now()
	out := []wireAction{}
	for _, s := range ids {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			writeError(w, invalid("id", "invalid action ID %q", s))
			return
		}
		if a, err := h.cloud.GetAction(id); err == nil {
			out = append(out, h.action(a, now))
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Actions []wireAction `json:"actions"`
	}{out})
}

// Images.

func (h *handler) listImages(w http.ResponseWriter, r *http.Request) {
	page, perPage, ok := paging(w, r)
	if !ok {
		return
	}
	sel, ok := labelSelector(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	types, statuses, name, arch := q["type"], q["status"], q.Get("name"), q.Get("architecture")
	if arch != "" && arch != "x86" && arch != "arm" {
		writeError(w, invalid("architecture", "architecture must be x86 or arm"))
		return
	}
	now := h.cloud.Now()
	// The filter runs under the cloud's lock: it must not call the cloud.
	images, total := h.cloud.ListImages(func(m *simcloud.Image) bool {
		switch {
		case len(types) > 0 && !slices.Contains(types, imageType(m)),
			len(statuses) > 0 && !slices.Contains(statuses, imageStatus(m, now)),
			name != "" && (m.Kind != simcloud.ImageDistribution || m.Name != name),
			arch != "" && wireArch(m.Arch) != arch,
			sel != nil && !sel.matches(m.Labels):
			return false
		}
		return true
	}, (page-1)*perPage, perPage)
	out := make([]wireImage, len(images))
	for i, m := range images {
		out[i] = h.image(m, now)
	}
	writeJSON(w, http.StatusOK, struct {
		Images []wireImage `json:"images"`
		Meta   wireMeta    `json:"meta"`
	}{out, meta(page, perPage, total)})
}

func (h *handler) getImage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	m, err := h.cloud.GetImage(id)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Image wireImage `json:"image"`
	}{h.image(m, h.cloud.Now())})
}

func (h *handler) updateImage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	var req updateRequest
	if !decode(w, r, &req) {
		return
	}
	m, err := h.cloud.GetImage(id)
	if err != nil {
		modelError(w, err)
		return
	}
	if m.Kind != simcloud.ImageSnapshot {
		writeError(w, invalid("id", "image %d is a system image and cannot be changed", id))
		return
	}
	if req.Description != nil && *req.Description != m.Description {
		writeError(w, invalid("description", "changing an image's description is not simulated"))
		return
	}
	if req.Labels != nil {
		if err := checkLabels(*req.Labels); err != nil {
			writeError(w, invalid("labels", "%s", err.Error()))
			return
		}
		if err := h.cloud.SetImageLabels(id, *req.Labels, true); err != nil {
			modelError(w, err)
			return
		}
	}
	h.getImage(w, r)
}

func (h *handler) deleteImage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if err := h.cloud.DeleteImage(id, true); err != nil {
		modelError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// SSH keys and catalogue.

var keyCreated = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (h *handler) listSSHKeys(w http.ResponseWriter, r *http.Request) {
	page, perPage, ok := paging(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var keys []wireSSHKey
	for _, k := range h.cloud.SSHKeys() {
		if (q.Get("name") == "" || q.Get("name") == k.Name) && (q.Get("fingerprint") == "" || q.Get("fingerprint") == k.Fingerprint) {
			keys = append(keys, sshKey(k, keyCreated))
		}
	}
	writePage(w, "ssh_keys", keys, page, perPage)
}

func (h *handler) getSSHKey(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	k, found := h.cloud.FindSSHKey(strconv.FormatInt(id, 10))
	if !found {
		writeError(w, &simcloud.Error{Code: simcloud.CodeNotFound, Message: fmt.Sprintf("SSH key %d not found", id)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ssh_key": sshKey(k, keyCreated)})
}

func (h *handler) listServerTypes(w http.ResponseWriter, r *http.Request) {
	page, perPage, ok := paging(w, r)
	if !ok {
		return
	}
	var out []wireServerType
	for _, t := range h.types {
		if n := r.URL.Query().Get("name"); n == "" || n == t.Name {
			out = append(out, h.available(t))
		}
	}
	writePage(w, "server_types", out, page, perPage)
}

func (h *handler) getServerType(w http.ResponseWriter, r *http.Request) {
	t, ok := h.findServerType(idOrName(r.PathValue("id")))
	if !ok {
		writeError(w, &simcloud.Error{Code: simcloud.CodeNotFound, Message: "server type not found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"server_type": h.available(t)})
}

func (h *handler) listLocations(w http.ResponseWriter, r *http.Request) {
	page, perPage, ok := paging(w, r)
	if !ok {
		return
	}
	var out []wireLocation
	for _, l := range h.locations {
		if n := r.URL.Query().Get("name"); n == "" || n == l.Name {
			out = append(out, l)
		}
	}
	writePage(w, "locations", out, page, perPage)
}

func (h *handler) getLocation(w http.ResponseWriter, r *http.Request) {
	l, ok := h.findLocation(idOrName(r.PathValue("id")))
	if !ok {
		writeError(w, &simcloud.Error{Code: simcloud.CodeNotFound, Message: "location not found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"location": l})
}

func (h *handler) listDatacenters(w http.ResponseWriter, r *http.Request) {
	page, perPage, ok := paging(w, r)
	if !ok {
		return
	}
	var out []wireDatacenter
	for _, l := range h.locations {
		if dc := h.datacenter(l); r.URL.Query().Get("name") == "" || r.URL.Query().Get("name") == dc.Name {
			out = append(out, dc)
		}
	}
	total := len(out)
	lo := min((page-1)*perPage, total)
	writeJSON(w, http.StatusOK, map[string]any{
		"datacenters": append([]wireDatacenter{}, out[lo:min(lo+perPage, total)]...),
		"meta":        meta(page, perPage, total), "recommendation": h.locations[0].ID,
	})
}

// writePage writes one page of items under key, with meta.pagination.
func writePage[T any](w http.ResponseWriter, key string, items []T, page, perPage int) {
	total := len(items)
	lo := min((page-1)*perPage, total)
	hi := min(lo+perPage, total)
	out := items[lo:hi]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{key: out, "meta": meta(page, perPage, total)})
}
