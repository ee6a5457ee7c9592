package soak_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The secrets the hygiene test drives through every path. None may show
// in an error, a log line or a printed value.
const (
	secretToken    = "tok-SECRET-7f3a9c1e5b2d"  // DigitalOcean's and Hetzner's API token
	wrongToken     = "tok-WRONG-SECRET-0c4d8e2" // a rejected token is a secret too
	secretKey      = "key-SECRET-41d8cd98f00b"  // AWS secret access key
	sessionToken   = "sess-SECRET-9e107d9d372b" // AWS session token
	userDataMarker = "USERDATA-MARKER-e4da3b7f"
)

var secrets = []string{secretToken, wrongToken, secretKey, sessionToken, userDataMarker}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// teeHandler sends every record to all of its handlers.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(attrs)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

// exposure collects everything a user of spuff may see: error texts in
// every format, log lines, printed values.
type exposure struct {
	mu     sync.Mutex
	texts  []string
	errors int
	kinds  map[provider.Kind]int
}

func (x *exposure) add(what string, v any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		x.texts = append(x.texts, what+" "+format+": "+fmt.Sprintf(format, v))
	}
	if b, err := json.Marshal(v); err == nil {
		x.texts = append(x.texts, what+" JSON: "+string(b))
	}
}

func (x *exposure) err(what string, err error) {
	if err == nil {
		return
	}
	x.mu.Lock()
	x.errors++
	x.kinds[provider.KindOf(err)]++
	x.mu.Unlock()
	x.add(what, err)
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		x.add(what+" (unwrapped)", e)
	}
}

// TestSecretsNeverShow drives a known token, AWS secret key and session
// token, and a user-data marker through every error path (invalid
// requests, the cloud's refusals, a rejected token, every fault, lost
// answers), every log line (slog at debug level, JSON and text), and the
// %v, %+v, %#v, %s, %q and JSON forms of Config and of each provider
// value, and fails if any of them shows.
func TestSecretsNeverShow(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			var jsonLog, textLog syncBuffer
			logger := slog.New(teeHandler{
				slog.NewJSONHandler(&jsonLog, &slog.HandlerOptions{Level: slog.LevelDebug}),
				slog.NewTextHandler(&textLog, &slog.HandlerOptions{Level: slog.LevelDebug}),
			})
			x := &exposure{kinds: map[provider.Kind]int{}}
			withSecrets := func(cfg *provider.Config) {
				cfg.Logger = logger
				if tg.name == "aws" {
					cfg.SecretAccessKey = secretKey
					cfg.SessionToken = sessionToken
				}
			}
			token := secretToken
			if tg.name == "aws" {
				token = "AKIDSOAKEXAMPLE" // an access key ID is no secret; the secret key is
			}
			opts := auditOptions(tg, 5)
			opts.Tokens = []string{token}
			srv := tg.server(t, opts, nil)
			cfg := auditConfig(tg, tg.config(srv))
			withSecrets(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := tg.open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			x.add("Config", cfg)
			x.add("*Config", &cfg)
			x.add("provider", p)
			logger.Debug("config", "cfg", cfg, "provider", p)

			// Invalid requests, the user data among them.
			userData := "#cloud-config\n# " + userDataMarker + "\n"
			for _, edit := range []func(*provider.InstanceRequest){
				func(r *provider.InstanceRequest) { r.UserData = strings.Repeat(userData, 1+(64<<10)/len(userData)) },
				func(r *provider.InstanceRequest) { r.UserData = userData + "\xff\xfe" },
				func(r *provider.InstanceRequest) { r.Name = "bad_name" },
				func(r *provider.InstanceRequest) { r.Labels = map[string]string{"a b": userDataMarker} },
				func(r *provider.InstanceRequest) { *r = provider.InstanceRequest{UserData: userData} },
			} {
				req := tg.request("secret-bad")
				req.UserData = userData
				edit(&req)
				_, err := p.CreateInstance(ctx, req)
				x.err("invalid request", err)
			}
			// The cloud refuses: a region it lacks.
			req := tg.request("secret-region")
			req.UserData = userData
			req.Region = "xx-nowhere-1"
			_, err = p.CreateInstance(ctx, req)
			x.err("cloud refusal", err)

			// Lifecycles under every fault, lost answers included.
			srv.Cloud.SetRandomFaults(simcloud.RandomFaults{Rate: 0.3, Delay: auditFaultDelay, Kinds: []simcloud.FaultKind{
				simcloud.FaultRateLimit, simcloud.FaultInternal, simcloud.FaultBadGateway,
				simcloud.FaultUnavailable, simcloud.FaultDrop, simcloud.FaultSlow, simcloud.FaultLoseResponse,
				simcloud.FaultConsistency, simcloud.FaultMalformed, simcloud.FaultTruncated,
			}})
			// One provider retries (and logs its retries); one makes a
			// single attempt, so that the faults reach the caller.
			once := cfg
			once.Retry = provider.RetryPolicy{MaxAttempts: 1}
			once.Pacer = provider.NewPacer(scaledLimits(tg.limits, auditScale)...)
			pOnce, err := tg.open(ctx, once)
			if err != nil {
				t.Fatal(err)
			}
			// Each kind of failure once, for sure, then at random.
			for _, k := range []simcloud.FaultKind{simcloud.FaultDrop, simcloud.FaultUnavailable, simcloud.FaultRateLimit,
				simcloud.FaultMalformed, simcloud.FaultTruncated, simcloud.FaultLoseResponse} {
				srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: k, Delay: auditFaultDelay})
				_, err := pOnce.ListInstances(ctx)
				x.err("list, "+k.String(), err)
				srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpCreateInstance, Kind: k, Delay: auditFaultDelay})
				req := tg.request("secret-" + strings.ReplaceAll(k.String(), "-", ""))
				req.UserData = userData
				inst, err := pOnce.CreateInstance(ctx, req)
				x.err("create, "+k.String(), err)
				if inst != nil {
					x.err("destroy", pOnce.DestroyInstance(ctx, inst.ID))
				}
			}
			for i := range 12 {
				p := p
				if i%2 == 1 {
					p = pOnce
				}
				req := tg.request(fmt.Sprintf("secret-%d", i))
				req.UserData = userData
				inst, err := p.CreateInstance(ctx, req)
				x.err("create", err)
				if err != nil {
					inst, err = p.CreateInstance(ctx, req)
					x.err("create again", err)
				}
				if err != nil {
					continue
				}
				x.add("instance", inst)
				_, err = p.WaitReady(ctx, inst.ID)
				x.err("wait", err)
				_, err = p.GetInstance(ctx, inst.ID)
				x.err("get", err)
				snap, err := p.CreateSnapshot(ctx, inst.ID, fmt.Sprintf("secret-snap-%d", i))
				x.err("snapshot", err)
				_, err = p.ListInstances(ctx)
				x.err("list", err)
				_, err = p.ListSnapshots(ctx)
				x.err("list snapshots", err)
				_, err = p.ListSSHKeys(ctx)
				x.err("list keys", err)
				if snap != nil {
					x.err("delete snapshot", p.DeleteSnapshot(ctx, snap.ID))
				}
				x.err("destroy", p.DestroyInstance(ctx, inst.ID))
			}
			srv.Cloud.ClearFaults()

			// A rejected token: every call fails to authenticate.
			bad := tg.config(srv)
			withSecrets(&bad)
			bad.Retry = provider.RetryPolicy{MaxAttempts: 1}
			bad.Pacer = provider.NewPacer(scaledLimits(tg.limits, auditScale)...)
			bad.Token = wrongToken
			if tg.name == "aws" {
				bad.AccessKeyID = "AKIDREJECTED"
			}
			pb, err := tg.open(ctx, bad)
			x.err("open with a rejected token", err)
			if pb != nil {
				x.add("provider with a rejected token", pb)
				_, err = pb.CreateInstance(ctx, req)
				x.err("create, rejected token", err)
				_, err = pb.ListInstances(ctx)
				x.err("list, rejected token", err)
				x.err("destroy, rejected token", pb.DestroyInstance(ctx, tg.instanceID(1)))
				_, err = pb.CreateSnapshot(ctx, tg.instanceID(1), "secret-snap-x")
				x.err("snapshot, rejected token", err)
			}
			// A Config Open refuses.
			broken := bad
			broken.Owner = "not an owner!"
			_, err = tg.open(ctx, broken)
			x.err("open, invalid owner", err)
			logger.Info("rejected config", "cfg", broken)

			for _, k := range []provider.Kind{provider.KindInvalidConfig, provider.KindAuthentication, provider.KindNetwork, provider.KindAPI} {
				if x.kinds[k] == 0 {
					t.Fatalf("no %s was seen (errors by kind: %v); the test proves little", k, x.kinds)
				}
			}
			logs := jsonLog.String() + textLog.String()
			if !strings.Contains(logs, "spuff: retrying") || !strings.Contains(logs, "level=DEBUG") || !strings.Contains(logs, `"level":"DEBUG"`) {
				t.Fatalf("the debug logs lack retries or a handler's lines; the test proves little:\n%.2000s", logs)
			}
			x.texts = append(x.texts, "JSON log: "+jsonLog.String(), "text log: "+textLog.String())
			for _, text := range x.texts {
				for _, s := range secrets {
					if i := strings.Index(text, s); i >= 0 {
						t.Errorf("%q shows in %.200s", s, text[max(0, i-150):])
					}
				}
			}
			t.Logf("%s: %d errors %v, %d texts, %d bytes of debug logs: no secret shows", tg.name, x.errors, x.kinds, len(x.texts), len(logs))
		})
	}
}
