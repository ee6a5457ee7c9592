package hcloudsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/internal/apispec"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// client sends raw API calls to a validated simulated Hetzner Cloud.
type client struct {
	t     *testing.T
	url   string
	token string
	cloud *simcloud.Cloud
	clock *clock
	v     *apispec.Validator
}

// newClient serves a validated simulated Hetzner Cloud on a fake clock.
func newClient(t *testing.T, opts simcloud.Options, hopts ...hcloudsim.Option) *client {
	t.Helper()
	spec := apispec.Hetzner(t)
	clk := &clock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	opts.Now = clk.Now
	cloud := hcloudsim.NewCloud(opts)
	v := spec.Wrap(hcloudsim.Handler(cloud, hopts...))
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	return &client{t: t, url: srv.URL + "/v1", token: cloud.Token(), cloud: cloud, clock: clk, v: v}
}

// do sends a request and decodes the JSON answer into out (when not nil).
func (c *client) do(method, path string, body any, out any) (int, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); len(b) > 0 && !strings.HasPrefix(ct, "application/json") {
		c.t.Errorf("%s %s: Content-Type %q, want application/json (hcloud-go ignores other bodies)", method, path, ct)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return res.StatusCode, res.Header
}

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestOpenAPI drives every endpoint the dialect serves, successes and
// errors, and validates each request and response against Hetzner's
// OpenAPI description. It runs in the simple world, whose exact boot and
// snapshot times and absent locks let it walk every state on the fake
// clock; the realistic world's answers (locked servers, deleting servers,
// rate-limit headers without Retry-After, resource_unavailable) are
// validated by the tests of realistic_test.go.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	c := newClient(t, simcloud.Options{World: simcloud.WorldSimple, BootDelay: 30 * time.Millisecond, SnapshotDelay: 30 * time.Millisecond},
		hcloudsim.WithReadOnlyToken("read-only"))

	var keys struct {
		SSHKeys []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"ssh_keys"`
	}
	c.do("GET", "/ssh_keys?per_page=50", nil, &keys)
	if len(keys.SSHKeys) == 0 {
		t.Fatal("no SSH keys")
	}
	c.do("GET", "/ssh_keys/"+strconv.FormatInt(keys.SSHKeys[0].ID, 10), nil, nil)
	c.do("GET", "/server_types?name=cax11", nil, nil)
	c.do("GET", "/server_types/1", nil, nil)
	c.do("GET", "/locations", nil, nil)
	c.do("GET", "/locations/1", nil, nil)
	c.do("GET", "/datacenters", nil, nil)

	var imgs struct {
		Images []struct {
			ID           int64  `json:"id"`
			Architecture string `json:"architecture"`
		} `json:"images"`
	}
	c.do("GET", "/images?type=system&name=ubuntu-24.04&architecture=arm", nil, &imgs)
	if len(imgs.Images) != 1 || imgs.Images[0].Architecture != "arm" {
		t.Fatalf("ubuntu-24.04 for arm: got %+v", imgs.Images)
	}

	var created struct {
		Server struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"server"`
		Action struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"action"`
		RootPassword *string `json:"root_password"`
	}
	st, _ := c.do("POST", "/servers", map[string]any{
		"name": "sim-1", "server_type": "cax11", "image": "ubuntu-24.04", "location": "nbg1",
		"labels": map[string]string{"managed-by": "spuff", "env": "test"}, "user_data": "#cloud-config\n",
		"ssh_keys": []string{keys.SSHKeys[0].Name},
	}, &created)
	if st != http.StatusCreated || created.Server.Status != "initializing" || created.Action.Status != "running" || created.RootPassword != nil {
		t.Fatalf("create: %d %+v", st, created)
	}
	id := strconv.FormatInt(created.Server.ID, 10)
	// By numeric IDs, as hcloud-go sends them.
	st, _ = c.do("POST", "/servers", map[string]any{"name": "sim-2", "server_type": 1, "image": imgs.Images[0].ID}, nil)
	if st != http.StatusCreated {
		t.Fatalf("create by IDs: %d", st)
	}

	var e errBody
	if st, _ := c.do("POST", "/servers", map[string]any{"name": "sim-1", "server_type": "cax11", "image": "ubuntu-24.04"}, &e); st != 409 || e.Error.Code != "uniqueness_error" {
		t.Errorf("duplicate name: %d %q, want 409 uniqueness_error", st, e.Error.Code)
	}
	if st, _ := c.do("POST", "/servers", map[string]any{"name": "bad_name", "server_type": "cx22", "image": "ubuntu-24.04"}, &e); st != 400 || e.Error.Code != "invalid_input" {
		t.Errorf("bad name: %d %q, want 400 invalid_input", st, e.Error.Code)
	}
	if st, _ := c.do("POST", "/servers", map[string]any{"name": "x", "server_type": "cx22", "image": "ubuntu-24.04", "labels": map[string]string{"managed-by:spuff": ""}}, &e); st != 400 || e.Error.Code != "invalid_input" {
		t.Errorf("label key with ':': %d %q, want 400 invalid_input", st, e.Error.Code)
	}
	if st, _ := c.do("POST", "/servers", map[string]any{"name": "x", "server_type": "cx22", "image": "ubuntu-24.04", "user_data": strings.Repeat("a", 32<<10+1)}, &e); st != 400 {
		t.Errorf("user data over 32 KiB: %d, want 400", st)
	}

	c.do("GET", "/servers/"+id, nil, nil)
	var list struct {
		Servers []struct {
			ID int64 `json:"id"`
		} `json:"servers"`
		Meta struct {
			Pagination struct {
				TotalEntries int  `json:"total_entries"`
				NextPage     *int `json:"next_page"`
			} `json:"pagination"`
		} `json:"meta"`
	}
	c.do("GET", "/servers?label_selector=managed-by%3D%3Dspuff&per_page=50&page=1", nil, &list)
	if len(list.Servers) != 1 || list.Meta.Pagination.TotalEntries != 1 || list.Meta.Pagination.NextPage != nil {
		t.Errorf("list by label: %+v", list)
	}
	c.do("GET", "/servers?name=sim-1&status=initializing&status=running", nil, nil)
	c.do("PUT", "/servers/"+id, map[string]any{"labels": map[string]string{"managed-by": "spuff", "env": "prod"}}, nil)

	// The create action, by its two lookups.
	aid := strconv.FormatInt(created.Action.ID, 10)
	c.do("GET", "/actions/"+aid, nil, nil)
	c.do("GET", "/servers/"+id+"/actions/"+aid, nil, nil)
	var acts struct {
		Actions []struct {
			Status string `json:"status"`
		} `json:"actions"`
	}
	c.clock.Advance(30 * time.Millisecond) // the boot
	c.do("GET", "/actions?id="+aid+"&sort=status&sort=id", nil, &acts)
	if len(acts.Actions) != 1 || acts.Actions[0].Status != "success" {
		t.Errorf("GET /actions?id=: %+v", acts)
	}

	var snap struct {
		Image struct {
			ID          int64   `json:"id"`
			Name        *string `json:"name"`
			Description string  `json:"description"`
			Status      string  `json:"status"`
		} `json:"image"`
		Action struct {
			ID int64 `json:"id"`
		} `json:"action"`
	}
	st, _ = c.do("POST", "/servers/"+id+"/actions/create_image", map[string]any{"type": "snapshot", "description": "snap-1", "labels": map[string]string{"managed-by": "spuff"}}, &snap)
	if st != 201 || snap.Image.Name != nil || snap.Image.Description != "snap-1" || snap.Image.Status != "creating" {
		t.Fatalf("create_image: %d %+v", st, snap)
	}
	imgID := strconv.FormatInt(snap.Image.ID, 10)
	c.do("GET", "/images/"+imgID+"/actions/"+strconv.FormatInt(snap.Action.ID, 10), nil, nil)
	c.do("GET", "/images?type=snapshot&label_selector=managed-by%3Dspuff&per_page=50", nil, nil)
	c.do("GET", "/images/"+imgID, nil, nil)
	c.do("PUT", "/images/"+imgID, map[string]any{"labels": map[string]string{"managed-by": "spuff", "kept": "yes"}}, nil)
	c.clock.Advance(30 * time.Millisecond) // the snapshot
	if st, _ := c.do("DELETE", "/images/"+imgID, nil, nil); st != http.StatusNoContent {
		t.Errorf("delete image: %d, want 204", st)
	}

	// Errors: missing resources, bad token, read-only token, rate limit, 5xx.
	if st, _ := c.do("GET", "/images/"+imgID, nil, &e); st != 404 || e.Error.Code != "not_found" {
		t.Errorf("deleted image: %d %q", st, e.Error.Code)
	}
	if st, _ := c.do("DELETE", "/images/"+imgID, nil, &e); st != 404 {
		t.Errorf("deleting again: %d", st)
	}
	ro := *c
	ro.token = "read-only"
	if st, _ := ro.do("DELETE", "/servers/"+id, nil, &e); st != 403 || e.Error.Code != "forbidden" {
		t.Errorf("read-only delete: %d %q, want 403 forbidden", st, e.Error.Code)
	}
	ro.do("GET", "/servers/"+id, nil, nil)
	bad := *c
	bad.token = "wrong"
	if st, _ := bad.do("GET", "/servers", nil, &e); st != 401 || e.Error.Code != "unauthorized" {
		t.Errorf("bad token: %d %q", st, e.Error.Code)
	}
	c.cloud.Inject(simcloud.Fault{Op: simcloud.OpGetInstance, Kind: simcloud.FaultRateLimit})
	if st, h := c.do("GET", "/servers/"+id, nil, &e); st != 429 || e.Error.Code != "rate_limit_exceeded" || h.Get("RateLimit-Limit") != "3600" {
		t.Errorf("429: %d %q %v", st, e.Error.Code, h)
	}
	for _, k := range []simcloud.FaultKind{simcloud.FaultInternal, simcloud.FaultBadGateway, simcloud.FaultUnavailable} {
		c.cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: k})
		if st, _ := c.do("GET", "/servers", nil, &e); st < 500 {
			t.Errorf("fault %v: %d", k, st)
		}
	}
	quota := newClient(t, simcloud.Options{MaxInstances: 1})
	quota.do("POST", "/servers", map[string]any{"name": "q1", "server_type": "cx22", "image": "debian-12"}, nil)
	if st, _ := quota.do("POST", "/servers", map[string]any{"name": "q2", "server_type": "cx22", "image": "debian-12"}, &e); st != 403 || e.Error.Code != "resource_limit_exceeded" {
		t.Errorf("quota: %d %q, want 403 resource_limit_exceeded", st, e.Error.Code)
	}
	c.do("GET", "/servers/999999999", nil, nil)

	var del struct {
		Action struct {
			Command string `json:"command"`
		} `json:"action"`
	}
	if st, _ := c.do("DELETE", "/servers/"+id, nil, &del); st != 200 || del.Action.Command != "delete_server" {
		t.Errorf("delete server: %d %+v", st, del)
	}
	c.do("DELETE", "/servers/"+id, nil, nil)
	c.v.Report(t)
	quota.v.Report(t)
}

// TestOpenAPICanFail proves the validation is not vacuous: deliberately
// wrong answers and requests are flagged.
func TestOpenAPICanFail(t *testing.T) {
	t.Parallel()
	spec := apispec.Hetzner(t)
	get := authed(httptest.NewRequest("GET", "/v1/servers/42", nil))
	good := `{"action":null}`
	// A server of the realistic world being deleted, as the dialect renders
	// it: it validates, and the same body with a status Hetzner lacks does
	// not.
	opts := simcloud.Realistic(1)
	opts.LockActions = simcloud.Off
	rc := newClient(t, opts)
	var made struct {
		Server struct {
			ID int64 `json:"id"`
		} `json:"server"`
	}
	rc.do("POST", "/servers", map[string]any{"name": "doomed", "server_type": "cx22", "image": "debian-12"}, &made)
	id := strconv.FormatInt(made.Server.ID, 10)
	rc.do("DELETE", "/servers/"+id, nil, nil)
	deleting := func() string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/servers/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+rc.token)
		hcloudsim.Handler(rc.cloud).ServeHTTP(rec, req)
		return rec.Body.String()
	}()
	if !strings.Contains(deleting, `"status":"deleting"`) {
		t.Fatalf("a deleted server is not rendered deleting: %s", deleting)
	}
	if _, err := spec.Check(apispec.Exchange{Request: get, Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(deleting)}); err != nil {
		t.Fatalf("the dialect's deleting server does not validate: %v", err)
	}
	rc.v.Report(t)
	cases := []struct {
		name string
		x    apispec.Exchange
	}{
		{"server id is a string", apispec.Exchange{Request: get, Status: 200, Body: []byte(`{"server":{"id":"42"}}`)}},
		{"server without required fields", apispec.Exchange{Request: get, Status: 200, Body: []byte(`{"server":{"id":42,"name":"x"}}`)}},
		{"error body without code", apispec.Exchange{Request: get, Status: 404, Body: []byte(`{"error":{"message":"gone"}}`)}},
		{"empty timestamp", apispec.Exchange{Request: authed(httptest.NewRequest("GET", "/v1/actions/1", nil)), Status: 200,
			Body: []byte(`{"action":{"id":1,"command":"create_server","status":"running","progress":0,"started":"","finished":null,"resources":[],"error":null}}`)}},
		{"unknown status value", apispec.Exchange{Request: authed(httptest.NewRequest("GET", "/v1/actions/1", nil)), Status: 200,
			Body: []byte(`{"action":{"id":1,"command":"create_server","status":"done","progress":0,"started":"2024-01-01T00:00:00Z","finished":null,"resources":[],"error":null}}`)}},
		{"create without server_type", apispec.Exchange{Request: jsonRequest("POST", "/v1/servers"), RequestBody: []byte(`{"name":"x","image":"ubuntu-24.04"}`), Status: 400,
			Body: []byte(`{"error":{"code":"invalid_input","message":"x","details":{}}}`)}},
		{"no such route", apispec.Exchange{Request: authed(httptest.NewRequest("GET", "/v1/no_such_thing", nil)), Status: 200, Body: []byte(good)}},
		{"server status Hetzner lacks", apispec.Exchange{Request: get, Status: 200,
			Body: []byte(strings.Replace(deleting, `"status":"deleting"`, `"status":"destroying"`, 1))}},
		{"423 without an error body", apispec.Exchange{Request: authed(httptest.NewRequest("DELETE", "/v1/servers/42", nil)), Status: 423, Body: []byte(`{"action":null}`)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.x.Header == nil {
				tc.x.Header = http.Header{"Content-Type": {"application/json"}}
			}
			if _, err := spec.Check(tc.x); err == nil {
				t.Fatal("validation passed; want it flagged")
			} else {
				t.Logf("flagged as expected: %.200s", err)
			}
		})
	}
}

func jsonRequest(method, path string) *http.Request {
	r := authed(httptest.NewRequest(method, path, nil))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// authed adds a bearer token, so that a case is flagged for what it is
// about, not for lacking credentials.
func authed(r *http.Request) *http.Request {
	r.Header.Set("Authorization", "Bearer x")
	return r
}

// TestPagination checks pages of at most 50 and meta.pagination.
func TestPagination(t *testing.T) {
	t.Parallel()
	c := newClient(t, simcloud.Options{})
	c.cloud.AddInstances(120, func(i int) simcloud.InstanceSpec {
		labels := map[string]string{"managed-by": "spuff"}
		if i%3 == 0 {
			labels = map[string]string{"owner": "someone-else"}
		}
		return simcloud.InstanceSpec{Name: fmt.Sprintf("n%d", i), Region: "fsn1", Size: "cx22", Labels: labels}
	})
	seen := 0
	for page := 1; ; page++ {
		var list struct {
			Servers []json.RawMessage `json:"servers"`
			Meta    struct {
				Pagination struct {
					PerPage  int  `json:"per_page"`
					LastPage int  `json:"last_page"`
					NextPage *int `json:"next_page"`
				} `json:"pagination"`
			} `json:"meta"`
		}
		c.do("GET", fmt.Sprintf("/servers?label_selector=managed-by%%3Dspuff&per_page=100&page=%d", page), nil, &list)
		if list.Meta.Pagination.PerPage != 50 || list.Meta.Pagination.LastPage != 2 {
			t.Fatalf("page %d: pagination %+v, want per_page 50 of 2 pages", page, list.Meta.Pagination)
		}
		seen += len(list.Servers)
		if list.Meta.Pagination.NextPage == nil {
			break
		}
	}
	if seen != 80 {
		t.Errorf("listed %d managed servers, want 80", seen)
	}
	c.v.Report(t)
}
