// Package apispec checks HTTP traffic against an OpenAPI 3 description with
// kin-openapi: the simulated clouds' tests validate every request they
// receive and every response they send against the official description of
// the cloud's API, so that a shape drifting from the real API fails a test.
//
// It guards against the traps that make such a check pass without checking
// anything: an operation the document holds without responses (as
// kin-openapi loads a split file's $ref'd operations) is reported, never
// taken as "anything goes"; a response status the operation does not
// describe fails; and format validation (date-time, ipv4, ipv6) is on.
package apispec

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// EnvDir names the environment variable that, when set, makes the API
// descriptions be read from that folder (holding digitalocean/, hetzner/)
// instead of the copies embedded from testdata/: to try a newer
// description without changing the repository.
const EnvDir = "SPUFF_SPECS_DIR"

// descriptions are the official API descriptions the tests check traffic
// against, kept in the repository (testdata/README.md says where each
// comes from, and under which license) so that a clone needs nothing
// beside it.
//
//go:embed testdata/digitalocean/DigitalOcean-public.v2.bundled.yaml testdata/hetzner/hcloud.json
var descriptions embed.FS

// Description returns the API description rel (such as
// "digitalocean/DigitalOcean-public.v2.bundled.yaml") and where it was read
// from: the folder $SPUFF_SPECS_DIR when set, else the copy embedded from
// testdata/.
func Description(rel string) (data []byte, source string, err error) {
	if dir := os.Getenv(EnvDir); dir != "" {
		p := filepath.Join(dir, rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, "", fmt.Errorf("apispec: %s=%s: %w", EnvDir, dir, err)
		}
		return data, p, nil
	}
	data, err = descriptions.ReadFile(path.Join("testdata", rel))
	if err != nil {
		return nil, "", fmt.Errorf("apispec: no API description %s in testdata: %w", rel, err)
	}
	return data, "testdata/" + rel + " (embedded)", nil
}

// Spec is a loaded API description with a router over its operations.
type Spec struct {
	doc    *openapi3.T
	router routers.Router
	server *url.URL
	// PathPrefix is removed from request paths before routing (Hetzner's
	// "/v1" lives in its server URL, not in its paths).
	pathPrefix string
}

// Options tune Load.
type Options struct {
	// Server is the base URL requests are matched under; empty means the
	// document's first server. Every path- and operation-level server is
	// replaced by its scheme and host (Hetzner's path items carry their own
	// servers, which would otherwise override the document's).
	Server string
	// StripPrefix is removed from request paths before routing (Hetzner's
	// "/v1" lives in its server URL, not in its paths). Empty means the
	// server URL's path.
	StripPrefix string
	// Fix, if set, adjusts the loaded document before the router is built,
	// for documented differences between the description and the real API.
	// It runs once per process and document.
	Fix func(doc *openapi3.T)
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*Spec{}
	formats sync.Once
)

// Require reads (see Description) and loads (see LoadData) the
// description rel, and fails the test when it cannot.
func Require(t testing.TB, rel string, opts Options) *Spec {
	t.Helper()
	data, source, err := Description(rel)
	if err != nil {
		t.Fatalf("%v", err)
	}
	s, err := LoadData(source, data, opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return s
}

// Load reads the description in the file at path (see LoadData).
func Load(path string, opts Options) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apispec: %w", err)
	}
	return LoadData(path, data, opts)
}

// LoadData parses a description (JSON or YAML, self-contained: only
// references within the document) named name, once per process and name
// (later calls return the same Spec), and builds its router.
func LoadData(name string, data []byte, opts Options) (*Spec, error) {
	key := name + "|" + opts.Server + "|" + opts.StripPrefix
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if s := cache[key]; s != nil {
		return s, nil
	}
	formats.Do(func() {
		openapi3.DefineIPv4Format()
		openapi3.DefineIPv6Format()
	})
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("apispec: loading %s: %w", name, err)
	}
	server := opts.Server
	if server == "" {
		if len(doc.Servers) == 0 {
			return nil, fmt.Errorf("apispec: %s has no servers; give Options.Server", name)
		}
		server = doc.Servers[0].URL
	}
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("apispec: server %q: %w", server, err)
	}
	if opts.Fix != nil {
		opts.Fix(doc)
	}
	doc.Servers = openapi3.Servers{{URL: u.Scheme + "://" + u.Host}}
	for _, item := range doc.Paths.Map() {
		item.Servers = nil
		for _, op := range item.Operations() {
			op.Servers = nil
			normalizeRanges(op.Responses)
		}
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("apispec: routing %s: %w", name, err)
	}
	prefix := opts.StripPrefix
	if prefix == "" {
		prefix = strings.TrimSuffix(u.Path, "/")
	}
	s := &Spec{doc: doc, router: router, server: u, pathPrefix: prefix}
	cache[key] = s
	return s, nil
}

// Operations returns the number of operations in the document.
func (s *Spec) Operations() int {
	n := 0
	for _, item := range s.doc.Paths.Map() {
		n += len(item.Operations())
	}
	return n
}

// route finds the operation of a request, with the request rewritten to the
// spec's server.
func (s *Spec) route(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	u := *r.URL
	u.Scheme, u.Host = s.server.Scheme, s.server.Host
	u.Path = strings.TrimPrefix(u.Path, s.pathPrefix)
	u.RawPath = ""
	req := r.Clone(context.Background())
	req.URL, req.Host = &u, s.server.Host
	req.RequestURI = ""
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: no such operation in the API description: %w", r.Method, r.URL.Path, err)
	}
	if route.Operation == nil || route.Operation.Responses == nil || route.Operation.Responses.Len() == 0 {
		return nil, fmt.Errorf("%s %s: operation %q has no responses in the loaded description (a $ref'd operation of a split file?); nothing would be checked", r.Method, r.URL.Path, opID(route))
	}
	return &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			MultiError:              true,
			IncludeResponseStatus:   true,
			AuthenticationFunc:      bearer,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.EnableFormatValidation()},
		},
	}, nil
}

// normalizeRanges renames response keys such as "4xx" to "4XX", the form
// OpenAPI defines and kin-openapi matches a status against.
func normalizeRanges(rs *openapi3.Responses) {
	if rs == nil {
		return
	}
	for k, v := range rs.Map() {
		if len(k) == 3 && k[0] >= '1' && k[0] <= '5' && strings.EqualFold(k[1:], "xx") && k[1:] != "XX" {
			rs.Delete(k)
			rs.Set(k[:1]+"XX", v)
		}
	}
}

func opID(r *routers.Route) string {
	if r == nil || r.Operation == nil {
		return ""
	}
	return r.Operation.OperationID
}

// bearer accepts a request that carries some bearer token: the simulated
// cloud, not the validator, decides whether it is right.
func bearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme != nil && in.SecurityScheme.Type == "http" && strings.EqualFold(in.SecurityScheme.Scheme, "bearer") {
		if strings.HasPrefix(strings.ToLower(in.RequestValidationInput.Request.Header.Get("Authorization")), "bearer ") {
			return nil
		}
		return errors.New("no bearer token")
	}
	return fmt.Errorf("security scheme %q not accepted", in.SecuritySchemeName)
}

// ValidateRequest checks a request (with its body read into body) against
// the description.
func (s *Spec) ValidateRequest(r *http.Request, body []byte) error {
	in, err := s.route(r, body)
	if err != nil {
		return err
	}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return fmt.Errorf("request %s %s (operation %s): %w", r.Method, r.URL.RequestURI(), opID(in.Route), err)
	}
	return nil
}

// ValidateResponse checks a response to the request against the operation's
// response of that status (or its default response): status, headers and
// body.
func (s *Spec) ValidateResponse(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	in, err := s.route(r, reqBody)
	if err != nil {
		return err
	}
	if header == nil {
		header = http.Header{}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: in.Options,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("response %d to %s %s (operation %s): %w", status, r.Method, r.URL.RequestURI(), opID(in.Route), err)
	}
	return nil
}

// Recorder validates exchanges as they happen and keeps the violations.
// Safe for concurrent use.
type Recorder struct {
	Spec *Spec

	mu         sync.Mutex
	violations []string
	requests   int
	responses  int
	ops        map[string]int
}

// NewRecorder returns a Recorder for spec.
func NewRecorder(spec *Spec) *Recorder { return &Recorder{Spec: spec, ops: map[string]int{}} }

// Record validates a request and, when status is not 0, its response.
func (rec *Recorder) Record(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	var errs []string
	if err := rec.Spec.ValidateRequest(r, reqBody); err != nil {
		errs = append(errs, err.Error())
	}
	op := r.Method + " " + r.URL.Path
	if in, err := rec.Spec.route(r, reqBody); err == nil {
		op = opID(in.Route)
	}
	if status != 0 {
		if err := rec.Spec.ValidateResponse(r, reqBody, status, header, body); err != nil {
			errs = append(errs, err.Error()+"\nbody: "+truncate(string(body), 2000))
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.requests++
	if status != 0 {
		rec.responses++
		rec.ops[fmt.Sprintf("%s %d", op, status)]++
	}
	rec.violations = append(rec.violations, errs...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Violations returns what failed validation so far.
func (rec *Recorder) Violations() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.violations...)
}

// Counts returns the numbers of requests and responses validated.
func (rec *Recorder) Counts() (requests, responses int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.requests, rec.responses
}

// Covered returns "operationId status" for every response validated, with
// its count, sorted.
func (rec *Recorder) Covered() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([]string, 0, len(rec.ops))
	for k, v := range rec.ops {
		out = append(out, fmt.Sprintf("%s ×%d", k, v))
	}
	sort.Strings(out)
	return out
}

// TB is the part of testing.TB a Recorder reports to.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// Check reports every violation as a test error (at most 20, then a count).
func (rec *Recorder) Check(t TB) {
	t.Helper()
	v := rec.Violations()
	for i, s := range v {
		if i == 20 {
			t.Errorf("apispec: … and %d more violations of the API description", len(v)-20)
			break
		}
		t.Errorf("apispec: %s", s)
	}
}

// Exchange is one request and the response to it.
type Exchange struct {
	// Request is the request; its body is RequestBody.
	Request     *http.Request
	RequestBody []byte
	// Status, Header and Body are the response; a Status of 0 means there
	// was none (the connection was dropped), and only the request is checked.
	Status int
	Header http.Header
	Body   []byte
}

// Check validates an exchange: the request, then the response when there is
// one. It returns the operation's ID when the request matched one.
func (s *Spec) Check(x Exchange) (operationID string, err error) {
	if x.Request == nil {
		return "", errors.New("apispec: exchange without a request")
	}
	in, err := s.route(x.Request, x.RequestBody)
	if err != nil {
		return "", err
	}
	op := opID(in.Route)
	var errs []error
	if err := s.ValidateRequest(x.Request, x.RequestBody); err != nil {
		errs = append(errs, err)
	}
	if x.Status != 0 {
		if err := s.ValidateResponse(x.Request, x.RequestBody, x.Status, x.Header, x.Body); err != nil {
			errs = append(errs, fmt.Errorf("%w\nbody: %s", err, truncate(string(x.Body), 2000)))
		}
	}
	return op, errors.Join(errs...)
}

// Validator is an http.Handler that passes requests to the handler it wraps
// and validates every exchange against the Spec. Report fails a test with
// what did not conform.
type Validator struct {
	rec  *Recorder
	next http.Handler
}

// Wrap returns a Validator in front of h.
func (s *Spec) Wrap(h http.Handler) *Validator {
	return &Validator{rec: NewRecorder(s), next: h}
}

// Recorder returns the Validator's record of violations.
func (v *Validator) Recorder() *Recorder { return v.rec }

// ServeHTTP implements http.Handler.
func (v *Validator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	cw := &captureWriter{ResponseWriter: w}
	defer func() {
		p := recover()
		v.rec.Record(r, body, cw.status, cw.Header().Clone(), cw.body.Bytes())
		if p != nil {
			panic(p)
		}
	}()
	v.next.ServeHTTP(cw, r)
	if cw.status == 0 && cw.wrote {
		cw.status = http.StatusOK
	}
}

// Report fails t with every violation seen so far.
func (v *Validator) Report(t TB) {
	t.Helper()
	req, resp := v.rec.Counts()
	t.Logf("apispec: %d requests and %d responses validated", req, resp)
	v.rec.Check(t)
}

type captureWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	body   bytes.Buffer
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.wrote = true
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

func (c *captureWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
