package hetzner_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/spuffgo/spuff/internal/apispec"
	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/hetzner"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/hcloudsim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// validated serves a simulated Hetzner Cloud behind a validator of
// Hetzner's OpenAPI description; mid, if set, sits between the two.
func validated(t *testing.T, opts simcloud.Options, mid func(http.Handler) http.Handler, hopts ...hcloudsim.Option) (*simcloud.Server, *apispec.Validator) {
	t.Helper()
	spec := apispec.Hetzner(t)
	cloud := hcloudsim.NewCloud(opts)
	var h http.Handler = hcloudsim.Handler(cloud, hopts...)
	if mid != nil {
		h = mid(h)
	}
	v := spec.Wrap(h)
	srv := simcloud.NewServer(cloud, v)
	t.Cleanup(srv.Close)
	return srv, v
}

// TestOpenAPIValidation runs the driver — the real hcloud-go client — through
// every call it makes, successes and errors, against the simulated API, and
// validates each request and response against Hetzner's OpenAPI
// description (internal/apispec/testdata/hetzner/hcloud.json).
func TestOpenAPIValidation(t *testing.T) {
	ctx := context.Background()
	srv, v := validated(t, fastOpts(), nil, hcloudsim.WithReadOnlyToken("ro-token"))
	p, err := hetzner.Open(ctx, fastConfig(srv))
	if err != nil {
		t.Fatal(err)
	}

	keys, err := p.ListSSHKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := harness.Request("spec-1")
	req.Labels = map[string]string{"env": "test"}
	req.UserData = "#cloud-config\n"
	req.SSHKeys = []string{keys[0].Name}
	inst, err := p.CreateInstance(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitReady(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetInstance(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListInstances(ctx); err != nil {
		t.Fatal(err)
	}
	// The create again: found by name and key, adopted.
	if again, err := p.CreateInstance(ctx, req); err != nil || again.ID != inst.ID {
		t.Fatalf("repeated create: %v, %v", again, err)
	}
	// A create whose answer is lost: repeated, uniqueness_error (409),
	// then adoption of the server holding the name.
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: simcloud.FaultLoseResponse})
	lost, err := p.CreateInstance(ctx, harness.Request("spec-lost"))
	if err != nil {
		t.Fatalf("create with a lost answer: %v", err)
	}
	snap, err := p.CreateSnapshot(ctx, inst.ID, "spec snapshot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListSnapshots(ctx); err != nil {
		t.Fatal(err)
	}
	restore := harness.Request("spec-restored")
	restore.Image = provider.SnapshotImage(snap.ID)
	restored, err := p.CreateInstance(ctx, restore)
	if err != nil {
		t.Fatal(err)
	}
	arm := harness.Request("spec-arm")
	arm.Size, arm.Image = "cax11", provider.Debian("12")
	armInst, err := p.CreateInstance(ctx, arm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitReady(ctx, armInst.ID); err != nil { // a booting server is locked
		t.Fatal(err)
	}

	// hcloud-go's own action polling (GET /actions?id=…) on the same API.
	var client *hcloud.Client
	if !p.As(&client) {
		t.Fatal("As(**hcloud.Client) = false")
	}
	res, _, err := client.Server.CreateImage(ctx, &hcloud.Server{ID: mustID(t, armInst.ID)}, &hcloud.ServerCreateImageOpts{
		Type: hcloud.ImageTypeSnapshot, Description: hcloud.Ptr("by hcloud-go"), Labels: map[string]string{provider.OwnerLabel: provider.DefaultOwner},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Action.WaitFor(ctx, res.Action); err != nil {
		t.Fatalf("hcloud-go Action.WaitFor: %v", err)
	}

	// Errors: missing (404), quota (403), invalid (400), rate limit (429),
	// server errors (5xx), a read-only token (403) and a wrong one (401).
	if _, err := p.GetInstance(ctx, "999999999"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("missing server: %v", err)
	}
	bad := harness.Request("spec-bad")
	bad.Region = "mars1"
	if _, err := p.CreateInstance(ctx, bad); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Errorf("bad region: %v", err)
	}
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultRateLimit, Delay: 5e6})
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultInternal})
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultBadGateway})
	srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: simcloud.FaultUnavailable})
	if _, err := p.ListInstances(ctx); err != nil {
		t.Errorf("list through 429, 500, 502 and 503: %v", err)
	}
	ro := fastConfig(srv)
	ro.Token = "ro-token"
	pro, _ := hetzner.Open(ctx, ro)
	if err := pro.DestroyInstance(ctx, inst.ID); !errors.Is(err, provider.ErrAuthentication) {
		t.Errorf("read-only destroy: %v", err)
	}
	wrong := fastConfig(srv)
	wrong.Token = "wrong-token"
	pw, _ := hetzner.Open(ctx, wrong)
	if _, err := pw.ListInstances(ctx); !errors.Is(err, provider.ErrAuthentication) {
		t.Errorf("wrong token: %v", err)
	}

	for _, id := range []string{restored.ID, armInst.ID, lost.ID, inst.ID, inst.ID} {
		if err := p.DestroyInstance(ctx, id); err != nil {
			t.Errorf("destroy %s: %v", id, err)
		}
	}
	for _, id := range []string{snap.ID, strconv.FormatInt(res.Image.ID, 10), snap.ID} {
		if err := p.DeleteSnapshot(ctx, id); err != nil {
			t.Errorf("delete snapshot %s: %v", id, err)
		}
	}
	quotaSrv, quotaV := validated(t, maxInstances(providertest.Options(), 1), nil)
	pq, _ := hetzner.Open(ctx, fastConfig(quotaSrv))
	if _, err := pq.CreateInstance(ctx, harness.Request("q1")); err != nil {
		t.Fatal(err)
	}
	if _, err := pq.CreateInstance(ctx, harness.Request("q2")); !errors.Is(err, provider.ErrQuotaExceeded) {
		t.Errorf("quota: %v", err)
	}

	v.Report(t)
	quotaV.Report(t)
	covered := append(v.Recorder().Covered(), quotaV.Recorder().Covered()...)
	t.Logf("operations and statuses validated:\n  %s", strings.Join(covered, "\n  "))
	for _, want := range []string{
		"create_server 201", "create_server 409", "create_server 400", "create_server 403",
		"get_server 200", "get_server 404", "list_servers 200", "list_servers 429", "list_servers 500",
		"list_servers 502", "list_servers 503", "list_servers 401", "delete_server 200", "delete_server 404",
		"delete_server 403", "create_image_from_server 201", "get_action 200", "get_multiple_actions 200", "list_images 200",
		"get_image 200", "delete_image 204", "delete_image 404", "list_ssh_keys 200", "list_server_types 200",
	} {
		if !slices.ContainsFunc(covered, func(s string) bool { return strings.HasPrefix(s, want+" ") }) {
			t.Errorf("no %q exchange was validated", want)
		}
	}
}

func mustID(t *testing.T, id string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOpenAPIValidationCanFail proves the validation above is not vacuous:
// with the dialect's answers altered on the way (a server whose ID is a
// string, an action without its started time, an error body without its
// code), the same driver calls are flagged.
func TestOpenAPIValidationCanFail(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		call           func(ctx context.Context, p provider.Provider, id string) error
	}{
		{"server id as a string", `"server":{"id":`, `"server":{"id":"1","x":`, func(ctx context.Context, p provider.Provider, id string) error {
			_, err := p.GetInstance(ctx, id)
			return err
		}},
		{"status outside the enum", `"status":"running"`, `"status":"ok"`, func(ctx context.Context, p provider.Provider, id string) error {
			_, err := p.ListInstances(ctx)
			return err
		}},
		{"error body without code", `"code":"not_found",`, ``, func(ctx context.Context, p provider.Provider, _ string) error {
			_, err := p.GetInstance(ctx, "999999999")
			return err
		}},
		{"empty timestamp", `"created":"20`, `"created":"","x":"20`, func(ctx context.Context, p provider.Provider, id string) error {
			_, err := p.GetInstance(ctx, id)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tamper := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					rec := httptest.NewRecorder()
					next.ServeHTTP(rec, r)
					body := rec.Body.Bytes()
					if r.Method == http.MethodGet {
						body = bytes.Replace(body, []byte(tc.from), []byte(tc.to), 1)
					}
					for k, v := range rec.Header() {
						w.Header()[k] = v
					}
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					w.WriteHeader(rec.Code)
					_, _ = io.Copy(w, bytes.NewReader(body))
				})
			}
			srv, v := validated(t, fastOpts(), tamper)
			ids := srv.Cloud.AddInstances(1, func(int) simcloud.InstanceSpec {
				return simcloud.InstanceSpec{Name: "victim", Region: "fsn1", Size: "cx22", Labels: map[string]string{provider.OwnerLabel: provider.DefaultOwner}}
			})
			cfg := fastConfig(srv)
			cfg.Retry.MaxAttempts = 1
			p, _ := hetzner.Open(context.Background(), cfg)
			_ = tc.call(context.Background(), p, strconv.FormatInt(ids[0], 10))
			problems := v.Recorder().Violations()
			if len(problems) == 0 {
				t.Fatal("the altered answer passed validation")
			}
			t.Logf("flagged as expected: %.160s", problems[0])
		})
	}
}
