package dosim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// MaxUserDataBytes is DigitalOcean's limit on a droplet's user data: 64 KiB.
const MaxUserDataBytes = 64 << 10

// MaxPerPage is the largest page DigitalOcean serves; DefaultPerPage is the
// page size when a request names none.
const (
	MaxPerPage     = 200
	DefaultPerPage = 20
)

// maxBody bounds a request body (user data is at most 64 KiB).
const maxBody = 1 << 20

// Exchange is one request the handler received and the response it
// rendered, for tests that check the dialect (against the OpenAPI
// description, say).
type Exchange struct {
	// Request is the request; its body has been read into RequestBody.
	Request     *http.Request
	RequestBody []byte
	// Status, Header and Body are the response as the dialect rendered it,
	// before an injected fault mangled or dropped it; Status is 0 when no
	// response was rendered (a dropped connection, a client that gave up).
	Status int
	Header http.Header
	Body   []byte
	// Aborted reports that the connection was closed without the response
	// (a dropped connection or a lost response).
	Aborted bool
}

// Handler serves a simcloud.Cloud in DigitalOcean's API v2 dialect. It
// implements simcloud.Dialect. Safe for concurrent use.
type Handler struct {
	cloud *simcloud.Cloud

	// Trace, if set before the handler serves, is called after every
	// exchange, from the serving goroutine.
	Trace func(Exchange)

	mu   sync.Mutex
	tags map[string]bool // tags created explicitly or by tagging
	// snapshots maps a snapshot action to the droplet it was taken of, as
	// DigitalOcean's actions name the droplet, not the image.
	snapshots map[int64]snapAction
	reqSeq    int64
}

type snapAction struct {
	droplet int64
	region  string
	image   int64
}

// NewHandler returns the handler serving cloud in DigitalOcean's dialect.
func NewHandler(cloud *simcloud.Cloud) *Handler {
	return &Handler{cloud: cloud, tags: make(map[string]bool), snapshots: make(map[int64]snapAction)}
}

// Cloud returns the model the handler serves.
func (h *Handler) Cloud() *simcloud.Cloud { return h.cloud }

type traceKey struct{}

// rendered is what the dialect rendered for one request.
type rendered struct {
	status int
	header http.Header
	body   []byte
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	out := &rendered{}
	r = r.WithContext(context.WithValue(r.Context(), traceKey{}, out))
	if h.Trace != nil {
		defer func() {
			p := recover()
			hdr := w.Header().Clone()
			for k, v := range out.header {
				if _, ok := hdr[k]; !ok {
					hdr[k] = v
				}
			}
			h.Trace(Exchange{Request: r, RequestBody: body, Status: out.status, Header: hdr, Body: out.body, Aborted: p != nil})
			if p != nil {
				panic(p)
			}
		}()
	}
	if err != nil || len(body) > maxBody {
		h.WriteError(w, r, &simcloud.Error{Code: simcloud.CodeInvalid, Message: "request body too large"})
		return
	}
	h.route(w, r, body)
}

// credential returns the bearer token of r.
func credential(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// serve runs one call of op through the model's admission and faults.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, op simcloud.Op, fn func(w http.ResponseWriter)) {
	h.cloud.Serve(w, r, h, op, credential(r), fn)
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request, body []byte) {
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(p) < 2 || p[0] != "v2" {
		h.serve(w, r, simcloud.OpOther, func(w http.ResponseWriter) { h.notFound(w, r) })
		return
	}
	p = p[1:]
	m := r.Method
	switch {
	case len(p) == 2 && p[0] == "account" && p[1] == "keys" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpListSSHKeys, func(w http.ResponseWriter) { h.listKeys(w, r) })
	case len(p) == 1 && p[0] == "droplets" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpListInstances, func(w http.ResponseWriter) { h.listDroplets(w, r) })
	case len(p) == 1 && p[0] == "droplets" && m == http.MethodPost:
		h.serve(w, r, simcloud.OpCreateInstance, func(w http.ResponseWriter) { h.createDroplet(w, r, body) })
	case len(p) == 2 && p[0] == "droplets" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpGetInstance, func(w http.ResponseWriter) { h.getDroplet(w, r, p[1]) })
	case len(p) == 2 && p[0] == "droplets" && m == http.MethodDelete:
		h.serve(w, r, simcloud.OpDeleteInstance, func(w http.ResponseWriter) { h.deleteDroplet(w, r, p[1]) })
	case len(p) == 3 && p[0] == "droplets" && p[2] == "snapshots" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpListImages, func(w http.ResponseWriter) { h.listDropletSnapshots(w, r, p[1]) })
	case len(p) == 3 && p[0] == "droplets" && p[2] == "actions" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpGetAction, func(w http.ResponseWriter) { h.listDropletActions(w, r, p[1]) })
	case len(p) == 3 && p[0] == "droplets" && p[2] == "actions" && m == http.MethodPost:
		op := simcloud.OpOther
		var a struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(body, &a) == nil && a.Type == "snapshot" {
			op = simcloud.OpCreateSnapshot
		}
		h.serve(w, r, op, func(w http.ResponseWriter) { h.dropletAction(w, r, p[1], body) })
	case len(p) == 4 && p[0] == "droplets" && p[2] == "actions" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpGetAction, func(w http.ResponseWriter) { h.getAction(w, r, p[3], p[1]) })
	case len(p) == 2 && p[0] == "actions" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpGetAction, func(w http.ResponseWriter) { h.getAction(w, r, p[1], "") })
	case len(p) == 1 && p[0] == "images" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpListImages, func(w http.ResponseWriter) { h.listImages(w, r) })
	case len(p) == 2 && p[0] == "images" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpGetImage, func(w http.ResponseWriter) { h.getImage(w, r, p[1]) })
	case len(p) == 2 && p[0] == "images" && m == http.MethodDelete:
		h.serve(w, r, simcloud.OpDeleteImage, func(w http.ResponseWriter) { h.deleteImage(w, r, p[1], false) })
	case len(p) == 1 && p[0] == "snapshots" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpListImages, func(w http.ResponseWriter) { h.listSnapshots(w, r) })
	case len(p) == 2 && p[0] == "snapshots" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpGetImage, func(w http.ResponseWriter) { h.getSnapshot(w, r, p[1]) })
	case len(p) == 2 && p[0] == "snapshots" && m == http.MethodDelete:
		h.serve(w, r, simcloud.OpDeleteImage, func(w http.ResponseWriter) { h.deleteImage(w, r, p[1], true) })
	case len(p) == 1 && p[0] == "tags" && m == http.MethodPost:
		h.serve(w, r, simcloud.OpTag, func(w http.ResponseWriter) { h.createTag(w, r, body) })
	case len(p) == 2 && p[0] == "tags" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpTag, func(w http.ResponseWriter) { h.getTag(w, r, p[1]) })
	case len(p) == 3 && p[0] == "tags" && p[2] == "resources" && (m == http.MethodPost || m == http.MethodDelete):
		h.serve(w, r, simcloud.OpTag, func(w http.ResponseWriter) { h.tagResources(w, r, p[1], body, m == http.MethodPost) })
	case len(p) == 1 && p[0] == "regions" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpCatalog, func(w http.ResponseWriter) { h.listRegions(w, r) })
	case len(p) == 1 && p[0] == "sizes" && m == http.MethodGet:
		h.serve(w, r, simcloud.OpCatalog, func(w http.ResponseWriter) { h.listSizes(w, r) })
	default:
		h.serve(w, r, simcloud.OpOther, func(w http.ResponseWriter) { h.notFound(w, r) })
	}
}

// writeJSON renders a response and records it for Trace.
func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var body []byte
	if v != nil {
		var err error
		body, err = json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("dosim: encoding a response: %v", err))
		}
		body = append(body, '\n')
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if out, ok := r.Context().Value(traceKey{}).(*rendered); ok {
		out.status, out.body = status, body
		out.header = http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteError writes a model error as DigitalOcean does (simcloud.Dialect).
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, e *simcloud.Error) {
	status, id := errorStatus(e.Code)
	h.mu.Lock()
	h.reqSeq++
	seq := h.reqSeq
	h.mu.Unlock()
	reqID := fmt.Sprintf("5e3c%04x-2d1f-4f5a-9c3b-%012x", seq&0xffff, seq)
	w.Header().Set("X-Request-Id", reqID)
	h.writeJSON(w, r, status, wireError{ID: id, Message: errorMessage(e), RequestID: reqID})
}

func errorStatus(c simcloud.Code) (int, string) {
	switch c {
	case simcloud.CodeNotFound:
		return http.StatusNotFound, "not_found"
	case simcloud.CodeUnauthorized:
		return http.StatusUnauthorized, "unauthorized"
	case simcloud.CodeRateLimited:
		return http.StatusTooManyRequests, "too_many_requests"
	case simcloud.CodeInternal:
		return http.StatusInternalServerError, "server_error"
	case simcloud.CodeBadGateway:
		return http.StatusBadGateway, "bad_gateway"
	case simcloud.CodeUnavailable:
		return http.StatusServiceUnavailable, "service_unavailable"
	case simcloud.CodeChanged:
		return http.StatusConflict, "conflict"
	case "bad_request":
		return http.StatusBadRequest, "bad_request"
	}
	// Invalid requests, quotas and conflicts are 422s on DigitalOcean.
	return http.StatusUnprocessableEntity, "unprocessable_entity"
}

func errorMessage(e *simcloud.Error) string {
	switch e.Code {
	case simcloud.CodeUnauthorized:
		return "Unable to authenticate you"
	case simcloud.CodeRateLimited:
		return "API Rate limit exceeded."
	case simcloud.CodeNotFound:
		return "The resource you were accessing could not be found."
	case simcloud.CodeInternal:
		return "Server was unable to give you a response."
	case simcloud.CodeQuota:
		// DigitalOcean's wording, which clients match to tell a quota.
		return "creating this/these droplet(s) will exceed your droplet limit: " + e.Message
	case simcloud.CodeCapacity:
		// What DigitalOcean answers (422) for a size it cannot place in a
		// region: not a quota.
		return "Size is not available in this region."
	case simcloud.CodeRegionDisabled:
		return "Region is not available"
	case simcloud.CodeLocked:
		return "Droplet already has a pending event."
	}
	return e.Message
}

// RateHeaders sets RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
// (Unix seconds) of the account's longest window, as DigitalOcean reports
// its hourly limit (simcloud.Dialect). Over the burst limit (the realistic
// window "minute"), RateLimit-Remaining is 0, as in the reference's sample
// of a burst 429.
func (h *Handler) RateHeaders(hdr http.Header, windows []simcloud.WindowState) {
	if len(windows) == 0 {
		return
	}
	w := windows[0]
	burst := false
	for _, x := range windows {
		if x.Per > w.Per {
			w = x
		}
		burst = burst || (x.Throttled && x.Name == windowMinute)
	}
	if burst {
		w.Remaining = 0
	}
	// Like DigitalOcean, the headers speak of the hourly window only; the
	// per-minute one shows itself by 429s.
	hdr.Set("RateLimit-Limit", strconv.Itoa(w.Limit))
	hdr.Set("RateLimit-Remaining", strconv.Itoa(w.Remaining))
	hdr.Set("RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(w.Reset.UnixNano())/1e9)), 10))
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *simcloud.Error
	if !errors.As(err, &e) {
		e = &simcloud.Error{Code: simcloud.CodeInternal, Message: err.Error()}
	}
	h.WriteError(w, r, e)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.WriteError(w, r, &simcloud.Error{Code: simcloud.CodeNotFound, Message: "not found"})
}

func unprocessable(format string, args ...any) *simcloud.Error {
	return &simcloud.Error{Code: simcloud.CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

func parseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// page reads page and per_page: per_page is clamped to 1..MaxPerPage, page
// is at least 1.
func page(r *http.Request) (pg, per int) {
	q := r.URL.Query()
	pg, _ = strconv.Atoi(q.Get("page"))
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per < 1 {
		per = DefaultPerPage
	}
	return max(pg, 1), min(per, MaxPerPage)
}

// links builds the pagination links of a list: absolute URLs that keep the
// request's query, as DigitalOcean sends them (godo derives the current
// page from "prev").
func links(r *http.Request, pg, per, total int) wireLinks {
	last := max(1, (total+per-1)/per)
	if last == 1 && pg == 1 {
		return wireLinks{}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	at := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		q.Set("per_page", strconv.Itoa(per))
		u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return u.String()
	}
	p := &wirePages{}
	if pg > 1 {
		p.First, p.Prev = at(1), at(min(pg-1, last))
	}
	if pg < last {
		p.Next, p.Last = at(pg+1), at(last)
	}
	return wireLinks{Pages: p}
}

// --- droplets ---

var dropletName = regexp.MustCompile(`^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$`)
var tagName = regexp.MustCompile(`^[a-zA-Z0-9_\-:]+$`)

type createRequest struct {
	Name              string            `json:"name"`
	Names             []string          `json:"names"`
	Region            string            `json:"region"`
	Size              string            `json:"size"`
	Image             json.RawMessage   `json:"image"`
	SSHKeys           []json.RawMessage `json:"ssh_keys"`
	Backups           bool              `json:"backups"`
	IPv6              bool              `json:"ipv6"`
	PrivateNetworking bool              `json:"private_networking"`
	Monitoring        bool              `json:"monitoring"`
	UserData          *string           `json:"user_data"`
	Tags              []string          `json:"tags"`
	VPCUUID           string            `json:"vpc_uuid"`
}

func (h *Handler) createDroplet(w http.ResponseWriter, r *http.Request, body []byte) {
	var req createRequest
	if err := json.Unmarshal(body, &req); err != nil {
		h.fail(w, r, unprocessable("invalid JSON body: %v", err))
		return
	}
	if len(req.Names) > 0 {
		h.fail(w, r, unprocessable("creating several droplets at once is not simulated"))
		return
	}
	if len(req.Name) > 255 || !dropletName.MatchString(req.Name) {
		h.fail(w, r, &simcloud.Error{Code: simcloud.CodeInvalid, Field: "name", Message: "Name is invalid: only letters, digits, '.' and '-' are allowed"})
		return
	}
	imageID, err := h.resolveImage(req.Image)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var keys []int64
	for _, raw := range req.SSHKeys {
		var ref string
		var id int64
		if json.Unmarshal(raw, &id) == nil {
			ref = strconv.FormatInt(id, 10)
		} else if json.Unmarshal(raw, &ref) != nil {
			h.fail(w, r, unprocessable("ssh_keys must hold IDs or fingerprints"))
			return
		}
		k, ok := h.cloud.FindSSHKey(ref)
		if !ok || (id == 0 && k.Fingerprint != ref) {
			h.fail(w, r, unprocessable("SSH key %s does not exist: you specified an invalid SSH key ID or fingerprint", ref))
			return
		}
		keys = append(keys, k.ID)
	}
	userData := ""
	if req.UserData != nil {
		userData = *req.UserData
	}
	if len(userData) > MaxUserDataBytes {
		h.fail(w, r, unprocessable("user_data is %d bytes, more than the limit of %d", len(userData), MaxUserDataBytes))
		return
	}
	for _, t := range req.Tags {
		if len(t) > 255 || !tagName.MatchString(t) {
			h.fail(w, r, unprocessable("tag %q is invalid: use letters, digits, ':', '-' and '_'", t))
			return
		}
	}
	extra := map[string]string{}
	if req.IPv6 {
		extra["ipv6"] = "true"
	}
	in, _, err := h.cloud.CreateInstance(simcloud.InstanceSpec{
		Name: req.Name, Region: req.Region, Size: req.Size, ImageID: imageID,
		UserData: userData, Labels: Labels(req.Tags), SSHKeyIDs: keys, Extra: extra,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.mu.Lock()
	for _, t := range req.Tags {
		h.tags[t] = true
	}
	h.mu.Unlock()
	resp := struct {
		Droplet wireDroplet `json:"droplet"`
		Links   struct {
			Actions []wireActionLink `json:"actions"`
		} `json:"links"`
	}{Droplet: h.droplet(in)}
	resp.Links.Actions = []wireActionLink{}
	for _, a := range h.cloud.ActionsFor("instance", in.ID) {
		if a.Type == "create" {
			resp.Links.Actions = append(resp.Links.Actions, wireActionLink{ID: a.ID, Rel: "create", HREF: baseURL(r) + "/v2/actions/" + strconv.FormatInt(a.ID, 10)})
		}
	}
	h.writeJSON(w, r, http.StatusAccepted, resp)
}

func baseURL(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// resolveImage reads a create's image: a slug or an ID.
func (h *Handler) resolveImage(raw json.RawMessage) (int64, error) {
	var id int64
	if json.Unmarshal(raw, &id) == nil {
		if m, err := h.cloud.GetImage(id); err == nil && m.Available(h.cloud.Now()) {
			return id, nil
		}
		return 0, &simcloud.Error{Code: simcloud.CodeInvalid, Field: "image", Message: fmt.Sprintf("You specified an invalid image for Droplet creation: image %d does not exist", id)}
	}
	var slug string
	if err := json.Unmarshal(raw, &slug); err != nil || slug == "" {
		return 0, &simcloud.Error{Code: simcloud.CodeInvalid, Field: "image", Message: "image is required"}
	}
	if id := ImageID(h.cloud, slug); id != 0 {
		return id, nil
	}
	return 0, &simcloud.Error{Code: simcloud.CodeInvalid, Field: "image", Message: fmt.Sprintf("You specified an invalid image for Droplet creation: no image %q", slug)}
}

func (h *Handler) getDroplet(w http.ResponseWriter, r *http.Request, sid string) {
	id, ok := parseID(sid)
	if !ok {
		h.notFound(w, r)
		return
	}
	in, err := h.cloud.GetInstance(id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"droplet": h.droplet(in)})
}

func (h *Handler) listDroplets(w http.ResponseWriter, r *http.Request) {
	pg, per := page(r)
	q := r.URL.Query()
	tag, name := q.Get("tag_name"), q.Get("name")
	keep := func(in *simcloud.Instance) bool {
		return (tag == "" || hasTag(in.Labels, tag)) && (name == "" || strings.EqualFold(in.Name, name))
	}
	list, total := h.cloud.ListInstances(keep, (pg-1)*per, per, false)
	out := make([]wireDroplet, 0, len(list))
	for _, in := range list {
		out = append(out, h.droplet(in))
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Droplets []wireDroplet `json:"droplets"`
		Links    wireLinks     `json:"links"`
		Meta     wireMeta      `json:"meta"`
	}{out, links(r, pg, per, total), wireMeta{total}})
}

func (h *Handler) deleteDroplet(w http.ResponseWriter, r *http.Request, sid string) {
	id, ok := parseID(sid)
	if !ok {
		h.notFound(w, r)
		return
	}
	if _, err := h.cloud.DeleteInstance(id); err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeNoContent(w, r)
}

func (h *Handler) writeNoContent(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if out, ok := r.Context().Value(traceKey{}).(*rendered); ok {
		out.status, out.body = http.StatusNoContent, nil
		out.header = http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- actions ---

// locked reports whether a droplet has a snapshot in progress.
func (h *Handler) locked(droplet int64) bool {
	now := h.cloud.Now()
	h.mu.Lock()
	var ids []int64
	for aid, s := range h.snapshots {
		if s.droplet == droplet {
			ids = append(ids, aid)
		}
	}
	h.mu.Unlock()
	for _, aid := range ids {
		if a, err := h.cloud.GetAction(aid); err == nil && !a.Done(now) {
			return true
		}
	}
	return false
}

func (h *Handler) dropletAction(w http.ResponseWriter, r *http.Request, sid string, body []byte) {
	id, ok := parseID(sid)
	if !ok {
		h.notFound(w, r)
		return
	}
	var req struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		h.fail(w, r, unprocessable("invalid JSON body: %v", err))
		return
	}
	in, err := h.cloud.GetInstance(id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Type != "snapshot" {
		h.fail(w, r, unprocessable("droplet action %q is not simulated", req.Type))
		return
	}
	if h.locked(id) {
		h.fail(w, r, &simcloud.Error{Code: simcloud.CodeIncorrect, Message: "Droplet already has a pending event."})
		return
	}
	if req.Name == "" {
		req.Name = fmt.Sprintf("%s-%d", in.Name, h.cloud.Now().Unix())
	}
	img, act, err := h.cloud.CreateSnapshot(simcloud.SnapshotSpec{InstanceID: id, Name: req.Name, DiscardFailed: true})
	if err != nil {
		if e := (*simcloud.Error)(nil); errors.As(err, &e) && e.Code == simcloud.CodeQuota {
			err = &simcloud.Error{Code: simcloud.CodeInvalid, Message: "you have exceeded your snapshot limit: " + e.Message}
		}
		h.fail(w, r, err)
		return
	}
	h.mu.Lock()
	h.snapshots[act.ID] = snapAction{droplet: id, region: in.Region, image: img.ID}
	h.mu.Unlock()
	h.writeJSON(w, r, http.StatusCreated, map[string]any{"action": h.action(act)})
}

// action renders a model action as DigitalOcean's: resources are droplets,
// a delete is a "destroy".
func (h *Handler) action(a simcloud.Action) wireAction {
	now := h.cloud.Now()
	w := wireAction{ID: a.ID, Status: "in-progress", Type: a.Type, StartedAt: timestamp(a.StartedAt),
		ResourceID: a.ResourceID, ResourceType: "droplet"}
	if a.Done(now) {
		w.Status = "completed"
		done := timestamp(a.DoneAt)
		w.CompletedAt = &done
	}
	if a.Failed {
		w.Status = "errored"
	}
	if a.Type == "delete" {
		w.Type = "destroy"
	}
	region := ""
	h.mu.Lock()
	s, isSnap := h.snapshots[a.ID]
	h.mu.Unlock()
	switch {
	case isSnap:
		w.ResourceID, region = s.droplet, s.region
	case a.ResourceType == "image":
		if m, err := h.cloud.GetImage(a.ResourceID); err == nil {
			w.ResourceID = m.Source
			if len(m.Regions) > 0 {
				region = m.Regions[0]
			}
		}
	default:
		if in, err := h.cloud.LookupInstance(a.ResourceID); err == nil {
			region = in.Region
		}
	}
	if region != "" {
		reg := h.region(region)
		w.Region, w.RegionSlug = &reg, &region
	}
	return w
}

func (h *Handler) getAction(w http.ResponseWriter, r *http.Request, sid, droplet string) {
	id, ok := parseID(sid)
	if !ok {
		h.notFound(w, r)
		return
	}
	a, err := h.cloud.GetAction(id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	wa := h.action(a)
	if droplet != "" && strconv.FormatInt(wa.ResourceID, 10) != droplet {
		h.notFound(w, r)
		return
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"action": wa})
}

func (h *Handler) listDropletActions(w http.ResponseWriter, r *http.Request, sid string) {
	id, ok := parseID(sid)
	if !ok {
		h.notFound(w, r)
		return
	}
	if _, err := h.cloud.LookupInstance(id); err != nil {
		h.fail(w, r, err)
		return
	}
	acts := h.cloud.ActionsFor("instance", id)
	h.mu.Lock()
	var snapIDs []int64
	for aid, s := range h.snapshots {
		if s.droplet == id {
			snapIDs = append(snapIDs, aid)
		}
	}
	h.mu.Unlock()
	for _, aid := range snapIDs {
		if a, err := h.cloud.GetAction(aid); err == nil {
			acts = append(acts, a)
		}
	}
	// Newest first, as DigitalOcean lists them.
	slices.SortFunc(acts, func(a, b simcloud.Action) int { return int(b.ID - a.ID) })
	pg, per := page(r)
	out := []wireAction{}
	for i := (pg - 1) * per; i < len(acts) && i < pg*per; i++ {
		out = append(out, h.action(acts[i]))
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Actions []wireAction `json:"actions"`
		Links   wireLinks    `json:"links"`
		Meta    wireMeta     `json:"meta"`
	}{out, links(r, pg, per, len(acts)), wireMeta{len(acts)}})
}

// --- images and snapshots ---

// visible reports whether an image is shown: snapshots appear once usable,
// as on DigitalOcean, where a snapshot in progress is not yet an image.
func (h *Handler) visible(m *simcloud.Image, now time.Time) bool {
	return m.Kind != simcloud.ImageSnapshot || m.Available(now)
}

func (h *Handler) findImage(ref string) (simcloud.Image, error) {
	now := h.cloud.Now()
	if id, ok := parseID(ref); ok {
		m, err := h.cloud.GetImage(id)
		if err != nil || !h.visible(&m, now) {
			return simcloud.Image{}, &simcloud.Error{Code: simcloud.CodeNotFound, Message: "image not found"}
		}
		return m, nil
	}
	if id := ImageID(h.cloud, ref); id != 0 {
		return h.cloud.GetImage(id)
	}
	return simcloud.Image{}, &simcloud.Error{Code: simcloud.CodeNotFound, Message: "image not found"}
}

func (h *Handler) getImage(w http.ResponseWriter, r *http.Request, ref string) {
	m, err := h.findImage(ref)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"image": h.image(m)})
}

func (h *Handler) listImages(w http.ResponseWriter, r *http.Request) {
	pg, per := page(r)
	q := r.URL.Query()
	now := h.cloud.Now()
	private, typ, tag := q.Get("private") == "true", q.Get("type"), q.Get("tag_name")
	keep := func(m *simcloud.Image) bool {
		switch {
		case !h.visible(m, now):
			return false
		case private && m.Kind != simcloud.ImageSnapshot:
			return false
		case typ == "distribution" && m.Kind != simcloud.ImageDistribution:
			return false
		case typ == "application":
			return false
		case tag != "" && !hasTag(m.Labels, tag):
			return false
		}
		return true
	}
	list, total := h.cloud.ListImages(keep, (pg-1)*per, per)
	out := make([]wireImage, 0, len(list))
	for _, m := range list {
		out = append(out, h.image(m))
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Images []wireImage `json:"images"`
		Links  wireLinks   `json:"links"`
		Meta   wireMeta    `json:"meta"`
	}{out, links(r, pg, per, total), wireMeta{total}})
}

func (h *Handler) listSnapshots(w http.ResponseWriter, r *http.Request) {
	pg, per := page(r)
	now := h.cloud.Now()
	rt := r.URL.Query().Get("resource_type")
	keep := func(m *simcloud.Image) bool {
		return m.Kind == simcloud.ImageSnapshot && m.Available(now) && (rt == "" || rt == "droplet")
	}
	list, total := h.cloud.ListImages(keep, (pg-1)*per, per)
	out := make([]wireSnapshot, 0, len(list))
	for _, m := range list {
		out = append(out, h.snapshot(m))
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Snapshots []wireSnapshot `json:"snapshots"`
		Links     wireLinks      `json:"links"`
		Meta      wireMeta       `json:"meta"`
	}{out, links(r, pg, per, total), wireMeta{total}})
}

func (h *Handler) getSnapshot(w http.ResponseWriter, r *http.Request, ref string) {
	id, ok := parseID(ref)
	if !ok {
		h.notFound(w, r) // a volume snapshot's UUID: none are simulated
		return
	}
	m, err := h.findImage(strconv.FormatInt(id, 10))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if m.Kind != simcloud.ImageSnapshot {
		h.fail(w, r, &simcloud.Error{Code: "bad_request", Message: fmt.Sprintf("image %d is not a snapshot", id)})
		return
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"snapshot": h.snapshot(m)})
}

func (h *Handler) deleteImage(w http.ResponseWriter, r *http.Request, ref string, snapshotsAPI bool) {
	m, err := h.findImage(ref)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if m.Kind != simcloud.ImageSnapshot {
		if snapshotsAPI {
			h.fail(w, r, &simcloud.Error{Code: "bad_request", Message: fmt.Sprintf("image %d is not a snapshot", m.ID)})
		} else {
			h.fail(w, r, unprocessable("image %d is a public image and cannot be deleted", m.ID))
		}
		return
	}
	if err := h.cloud.DeleteImage(m.ID, true); err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeNoContent(w, r)
}

func (h *Handler) listDropletSnapshots(w http.ResponseWriter, r *http.Request, sid string) {
	id, ok := parseID(sid)
	if !ok {
		h.notFound(w, r)
		return
	}
	if _, err := h.cloud.GetInstance(id); err != nil {
		h.fail(w, r, err)
		return
	}
	pg, per := page(r)
	now := h.cloud.Now()
	list, total := h.cloud.ListImages(func(m *simcloud.Image) bool {
		return m.Kind == simcloud.ImageSnapshot && m.Source == id && m.Available(now)
	}, (pg-1)*per, per)
	out := make([]wireDropletSnapshot, 0, len(list))
	for _, m := range list {
		out = append(out, wireDropletSnapshot{ID: m.ID, Name: m.Name, CreatedAt: timestamp(m.CreatedAt),
			Regions: nonNil(m.Regions), MinDiskSize: m.MinDiskGB, SizeGigabytes: m.SizeGB, Type: "snapshot"})
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Snapshots []wireDropletSnapshot `json:"snapshots"`
		Links     wireLinks             `json:"links"`
		Meta      wireMeta              `json:"meta"`
	}{out, links(r, pg, per, total), wireMeta{total}})
}

// --- tags ---

// tagExists reports whether a tag was created, or is carried by a resource.
func (h *Handler) tagExists(tag string) bool {
	h.mu.Lock()
	ok := h.tags[tag]
	h.mu.Unlock()
	if ok {
		return true
	}
	if _, n := h.cloud.ListInstances(func(in *simcloud.Instance) bool { return hasTag(in.Labels, tag) }, 0, 1, false); n > 0 {
		return true
	}
	_, n := h.cloud.ListImages(func(m *simcloud.Image) bool { return hasTag(m.Labels, tag) }, 0, 1)
	return n > 0
}

func (h *Handler) tag(name string) wireTag {
	_, nd := h.cloud.ListInstances(func(in *simcloud.Instance) bool { return hasTag(in.Labels, name) }, 0, 1, false)
	_, ni := h.cloud.ListImages(func(m *simcloud.Image) bool { return hasTag(m.Labels, name) }, 0, 1)
	return wireTag{Name: name, Resources: wireTagResources{Count: nd + ni,
		Droplets: wireTagCount{Count: nd}, Images: wireTagCount{Count: ni}}}
}

func (h *Handler) createTag(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		h.fail(w, r, unprocessable("invalid JSON body: %v", err))
		return
	}
	if len(req.Name) > 255 || !tagName.MatchString(req.Name) {
		h.fail(w, r, unprocessable("tag %q is invalid: use letters, digits, ':', '-' and '_'", req.Name))
		return
	}
	h.mu.Lock()
	h.tags[req.Name] = true
	h.mu.Unlock()
	// Creating a tag that exists answers it, as DigitalOcean does.
	h.writeJSON(w, r, http.StatusCreated, map[string]any{"tag": h.tag(req.Name)})
}

func (h *Handler) getTag(w http.ResponseWriter, r *http.Request, name string) {
	if !h.tagExists(name) {
		h.notFound(w, r)
		return
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"tag": h.tag(name)})
}

func (h *Handler) tagResources(w http.ResponseWriter, r *http.Request, name string, body []byte, add bool) {
	var req struct {
		Resources []struct {
			ID   string `json:"resource_id"`
			Type string `json:"resource_type"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		h.fail(w, r, unprocessable("invalid JSON body: %v", err))
		return
	}
	if !h.tagExists(name) {
		h.notFound(w, r)
		return
	}
	k, v, _ := strings.Cut(name, ":")
	for _, res := range req.Resources {
		id, ok := parseID(res.ID)
		if !ok {
			h.fail(w, r, unprocessable("resource_id %q is invalid", res.ID))
			return
		}
		var err error
		switch res.Type {
		case "droplet":
			if add {
				err = h.cloud.SetInstanceLabels(id, map[string]string{k: v}, false)
			} else if in, gerr := h.cloud.GetInstance(id); gerr != nil {
				err = gerr
			} else if hasTag(in.Labels, name) {
				err = h.cloud.RemoveInstanceLabel(id, k)
			}
		case "image":
			var m simcloud.Image
			if m, err = h.findImage(res.ID); err == nil {
				if add {
					err = h.cloud.SetImageLabels(id, map[string]string{k: v}, false)
				} else if hasTag(m.Labels, name) {
					labels := m.Labels
					delete(labels, k)
					err = h.cloud.SetImageLabels(id, labels, true)
				}
			}
		default:
			err = unprocessable("resource_type %q is not simulated", res.Type)
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	h.writeNoContent(w, r)
}

// --- keys and catalogue ---

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	pg, per := page(r)
	keys := h.cloud.SSHKeys()
	out := []wireKey{}
	for i := (pg - 1) * per; i < len(keys) && i < pg*per; i++ {
		k := keys[i]
		out = append(out, wireKey{ID: k.ID, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey, Name: k.Name})
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		SSHKeys []wireKey `json:"ssh_keys"`
		Links   wireLinks `json:"links"`
		Meta    wireMeta  `json:"meta"`
	}{out, links(r, pg, per, len(keys)), wireMeta{len(keys)}})
}

func (h *Handler) listRegions(w http.ResponseWriter, r *http.Request) {
	pg, per := page(r)
	regions := h.cloud.Options().Regions
	out := []wireRegion{}
	for i := (pg - 1) * per; i < len(regions) && i < pg*per; i++ {
		out = append(out, h.region(regions[i]))
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Regions []wireRegion `json:"regions"`
		Links   wireLinks    `json:"links"`
		Meta    wireMeta     `json:"meta"`
	}{out, links(r, pg, per, len(regions)), wireMeta{len(regions)}})
}

func (h *Handler) listSizes(w http.ResponseWriter, r *http.Request) {
	pg, per := page(r)
	var slugs []string
	for s := range h.cloud.Options().Sizes {
		slugs = append(slugs, s)
	}
	slices.Sort(slugs)
	out := []wireSize{}
	for i := (pg - 1) * per; i < len(slugs) && i < pg*per; i++ {
		out = append(out, h.size(slugs[i]))
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Sizes []wireSize `json:"sizes"`
		Links wireLinks  `json:"links"`
		Meta  wireMeta   `json:"meta"`
	}{out, links(r, pg, per, len(slugs)), wireMeta{len(slugs)}})
}
