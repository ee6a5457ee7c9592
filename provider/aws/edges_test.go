package aws_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// startWrapped serves a simulated EC2 whose handler wrap changes: what
// today's ec2sim does not do yet (capacity errors, EC2's fingerprints,
// arrival times).
func startWrapped(t *testing.T, opts simcloud.Options, wrap func(c *simcloud.Cloud, next http.Handler) http.Handler) *simcloud.Server {
	t.Helper()
	c := ec2sim.NewCloud(opts)
	srv := simcloud.NewServer(c, wrap(c, ec2sim.Handler(c)))
	t.Cleanup(srv.Close)
	return srv
}

// action reads the EC2 action of a Query API request, leaving its body to
// be read again.
func action(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	form, _ := url.ParseQuery(string(b))
	return form.Get("Action")
}

func writeEC2Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>cap-1</RequestID></Response>`, code, msg)
}

// TestCapacityErrors: EC2 answers a shortage of capacity with HTTP 500
// (InsufficientInstanceCapacity), or with Unsupported for an instance type
// the Availability Zone lacks. Both are ErrCapacity, reach the cloud once
// (neither the SDK nor the portable layer repeats them), are not
// retryable, and leave nothing.
func TestCapacityErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		code, msg string
	}{
		{500, "InsufficientInstanceCapacity", "We currently do not have sufficient t3.micro capacity in the Availability Zone you requested (us-east-1a)."},
		{500, "InsufficientHostCapacity", "There is no Dedicated Host capacity available to launch this instance."},
		{400, "Unsupported", "Your requested instance type (t3.micro) is not supported in your requested Availability Zone (us-east-1e)."},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			runs := 0
			srv := startWrapped(t, fastOptions(), func(_ *simcloud.Cloud, next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if action(r) == "RunInstances" {
						mu.Lock()
						runs++
						mu.Unlock()
						writeEC2Error(w, tc.status, tc.code, tc.msg)
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			p, err := aws.Open(context.Background(), fastConfig(srv))
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.CreateInstance(context.Background(), request("no-room"))
			var perr *provider.Error
			if !errors.Is(err, provider.ErrCapacity) || !errors.As(err, &perr) || perr.Code != tc.code || perr.Status != tc.status {
				t.Fatalf("CreateInstance without capacity: %v, want ErrCapacity with code %s and HTTP %d", err, tc.code, tc.status)
			}
			if provider.IsRetryable(err) {
				t.Errorf("a capacity error is reported retryable: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if runs != 1 {
				t.Errorf("the capacity error reached the cloud %d times, want once", runs)
			}
			if perr.Leftover != "" {
				t.Errorf("a refused launch names a leftover %q", perr.Leftover)
			}
		})
	}
}

// TestKeyReferences: a request names its key pair by name, by key pair
// ID, or by a fingerprint as EC2 reports it — base64 SHA-256 for ed25519
// keys (here with and without its "=" padding, and as ssh-keygen prints
// it), colon-hex MD5 for imported RSA keys — and the instance gets that
// key pair. The old driver took a base64 fingerprint for a key name.
func TestKeyReferences(t *testing.T) {
	t.Parallel()
	srv := ec2sim.Start(t, fastOptions())
	p, err := aws.Open(context.Background(), fastConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys, err := p.ListSSHKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	model := map[string]int64{}
	for _, k := range srv.Cloud.SSHKeys() {
		model[k.Name] = k.ID
	}
	tried := map[string]bool{}
	i := 0
	for _, k := range keys {
		if !strings.HasPrefix(k.ID, "key-") {
			t.Errorf("key %q has ID %q, want EC2's key pair ID", k.Name, k.ID)
		}
		refs := []string{k.Name, k.ID, k.Fingerprint}
		switch {
		case strings.HasSuffix(k.Fingerprint, "="): // base64 SHA-256 (ed25519)
			tried["sha256"] = true
			refs = append(refs, strings.TrimRight(k.Fingerprint, "="), "SHA256:"+strings.TrimRight(k.Fingerprint, "="))
		case strings.Count(k.Fingerprint, ":") == 15: // colon-hex MD5 (imported RSA)
			tried["md5"] = true
			refs = append(refs, strings.ToUpper(k.Fingerprint))
		case strings.Count(k.Fingerprint, ":") == 19: // colon-hex SHA-1 (EC2-made RSA)
			tried["sha1"] = true
		}
		for _, ref := range refs {
			i++
			req := request(fmt.Sprintf("key-ref-%d", i))
			req.SSHKeys = []string{ref}
			inst, err := p.CreateInstance(ctx, req)
			if err != nil {
				t.Errorf("SSH key %q: %v", ref, err)
				continue
			}
			if m := model2(t, srv, inst.ID); len(m.SSHKeyIDs) != 1 || m.SSHKeyIDs[0] != model[k.Name] {
				t.Errorf("SSH key %q: the instance has key pairs %v, want %d (%s)", ref, m.SSHKeyIDs, model[k.Name], k.Name)
			}
		}
	}
	for _, f := range []string{"sha256", "md5", "sha1"} {
		if !tried[f] {
			t.Errorf("the simulated account has no key whose fingerprint is %s: keys %+v", f, keys)
		}
	}
	before := srv.Cloud.Calls(simcloud.OpCreateInstance)
	req := request("key-missing")
	req.SSHKeys = []string{base64.StdEncoding.EncodeToString(make([]byte, 32))}
	_, err = p.CreateInstance(ctx, req)
	var perr *provider.Error
	if !errors.As(err, &perr) || perr.Kind != provider.KindInvalidConfig || !strings.HasPrefix(perr.Field, "SSHKeys") {
		t.Errorf("a fingerprint of no key pair: %v, want invalid config naming SSHKeys", err)
	}
	if n := srv.Cloud.Calls(simcloud.OpCreateInstance) - before; n != 0 {
		t.Errorf("a fingerprint of no key pair made %d RunInstances calls", n)
	}
}

func model2(t *testing.T, srv *simcloud.Server, id string) simcloud.Instance {
	t.Helper()
	n, err := ec2sim.ModelID(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range srv.Cloud.LiveInstances() {
		if in.ID == n {
			return in
		}
	}
	t.Fatalf("no live instance %s", id)
	return simcloud.Instance{}
}

// arrivals records when each action reached the cloud.
type arrivals struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func (a *arrivals) wrap(_ *simcloud.Cloud, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		act := action(r)
		a.mu.Lock()
		a.at[act] = append(a.at[act], time.Now())
		a.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (a *arrivals) of(act string) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.at[act]...)
}

// TestPerClassPacing: a burst of creates is paced under RunInstances'
// bucket — 5 at once, then 2 a second — while reads go on under their
// own: listings made meanwhile come far faster than RunInstances' refill
// would let them.
func TestPerClassPacing(t *testing.T) {
	t.Parallel()
	rec := &arrivals{at: map[string][]time.Time{}}
	// The simulated cloud admits everything: what is measured is the
	// driver's own pacing.
	srv := startWrapped(t, fastUnlimited(), rec.wrap)
	p, err := aws.Open(context.Background(), fastConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 11
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	for i := range n {
		wg.Go(func() {
			if _, err := p.CreateInstance(ctx, request(fmt.Sprintf("burst-%d", i))); err != nil {
				errs <- err
			}
		})
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var reads []time.Duration // how long each listing took, for the log
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			t0 := time.Now()
			if _, err := p.ListInstances(ctx); err != nil {
				errs <- err
				return
			}
			reads = append(reads, time.Since(t0))
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	runs := rec.of("RunInstances")
	if len(runs) != n {
		t.Fatalf("%d RunInstances calls, want %d", len(runs), n)
	}
	// The k-th launch (from 0) past the bucket's 5 waits for (k-4) tokens
	// refilled at 2 a second, counted from the bucket's start (shortly
	// before the first launch).
	for k := 5; k < n; k++ {
		if min := time.Duration(k-4)*500*time.Millisecond - 200*time.Millisecond; runs[k].Sub(runs[0]) < min {
			t.Errorf("launch %d came %v after the first, want at least %v (RunInstances refills 2 a second)", k, runs[k].Sub(runs[0]), min)
		}
	}
	// While the last launches waited on their bucket, the listings went
	// on, and none of them waited on the pacer: the only requests it held
	// back are the launches past RunInstances' 5.
	window := runs[n-1].Sub(runs[5])
	listed := 0
	for _, at := range rec.of("DescribeInstances") {
		if at.After(runs[5]) && at.Before(runs[n-1]) {
			listed++
		}
	}
	if listed < 2 {
		t.Errorf("%d listings reached the cloud in the %v the launches were paced, want them to go on", listed, window)
	}
	var st provider.Stats
	if !p.As(&st) || st.Pacer.Delayed != n-5 {
		t.Errorf("pacer stats %+v: want exactly the %d launches past the bucket delayed, and no read", st.Pacer, n-5)
	}
	t.Logf("%d launches over %v; %d listings reached the cloud in the last %v (slowest listing %v); pacer %+v",
		n, runs[n-1].Sub(runs[0]), listed, window, slowest(reads), st.Pacer)
}

func slowest(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// TestRequestLimitExceeded: EC2 throttles with 503 RequestLimitExceeded and
// no Retry-After. It is ErrRateLimit, retryable, with no RetryAfter (even
// when a Retry-After header is there: EC2 never sends one), repeated by the
// portable layer, and it pauses the account's pacer.
func TestRequestLimitExceeded(t *testing.T) {
	for _, kind := range []simcloud.FaultKind{simcloud.FaultRateLimitBare, simcloud.FaultRateLimit} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			srv, p := setup(t, fastOptions())
			ctx := context.Background()
			srv.Cloud.Inject(simcloud.Fault{Op: simcloud.OpListInstances, Kind: kind, Count: 100, Delay: 20 * time.Millisecond})
			_, err := p.ListInstances(ctx)
			var perr *provider.Error
			if !errors.Is(err, provider.ErrRateLimit) || !errors.As(err, &perr) || perr.Code != "RequestLimitExceeded" {
				t.Fatalf("ListInstances under throttling: %v, want ErrRateLimit with EC2's code", err)
			}
			if d, ok := provider.RetryAfter(err); ok {
				t.Errorf("RetryAfter = %v; EC2 sends none", d)
			}
			if !provider.IsRetryable(err) {
				t.Errorf("a rate-limit error is not reported retryable")
			}
			if n := srv.Cloud.Calls(simcloud.OpListInstances); n < 2 {
				t.Errorf("ListInstances was tried %d times under throttling, want it repeated", n)
			}
			var st provider.Stats
			if !p.As(&st) || st.Pacer.Throttled == 0 {
				t.Errorf("pacer stats %+v: the throttle was not seen", st.Pacer)
			}
			srv.Cloud.ClearFaults()
			if _, err := p.ListInstances(ctx); err != nil {
				t.Errorf("ListInstances once the throttling ends: %v", err)
			}
		})
	}
}

// TestAs: As reaches the default region's client and the Provider's
// statistics; an unknown target is refused.
func TestAs(t *testing.T) {
	t.Parallel()
	srv, p := setup(t, fastOptions())
	var c *ec2.Client
	if !p.As(&c) || c == nil || c.Options().Region != testRegion {
		t.Fatalf("As(**ec2.Client) = %v", c)
	}
	if _, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("a call on the client As gives: %v", err)
	}
	if _, err := p.ListInstances(context.Background()); err != nil {
		t.Fatal(err)
	}
	var st provider.Stats
	if !p.As(&st) || st.Calls == 0 || st.Pacer.Requests < 2 {
		t.Errorf("As(*provider.Stats) = %+v: want the calls counted (the client's own call paced too)", st)
	}
	var other *http.Client
	if p.As(&other) {
		t.Error("As(**http.Client) succeeded")
	}
	_ = srv
}

// TestReapRemovesOrphanedEBSSnapshots: the EBS snapshots a half-finished
// delete left behind a managed AMI are found (driver.Orphaner) and deleted
// by provider.Reap; a dry run only reports them; those of an AMI spuff did
// not make, and those of a live AMI, stay.
func TestReapRemovesOrphanedEBSSnapshots(t *testing.T) {
	t.Parallel()
	srv, p := setup(t, fastOptions())
	ctx := context.Background()
	inst, err := p.CreateInstance(ctx, request("orphans"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitReady(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	kept, err := p.CreateSnapshot(ctx, inst.ID, "kept")
	if err != nil {
		t.Fatal(err)
	}
	left, err := p.CreateSnapshot(ctx, inst.ID, "half-deleted")
	if err != nil {
		t.Fatal(err)
	}
	// Someone else's AMI of the same instance, deregistered with its EBS
	// snapshot left.
	var c *ec2.Client
	p.As(&c)
	out, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: &inst.ID, Name: awssdk.String("not-ours"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{{Key: awssdk.String("env"), Value: awssdk.String("prod")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{left.ID, *out.ImageId} {
		n, _ := ec2sim.ModelID(id)
		if err := srv.Cloud.DeleteImage(n, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Cloud.LiveVolumeSnapshots()); n != 3 {
		t.Fatalf("%d EBS snapshots before the reap, want 3", n)
	}
	dry, err := provider.Reap(ctx, p, provider.ReapOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Destroyed) != 1 || dry.Destroyed[0].Resource != "volume-snapshot" || len(srv.Cloud.LiveVolumeSnapshots()) != 3 {
		t.Fatalf("dry run: %+v with %d EBS snapshots left, want the one orphan reported and nothing deleted", dry.Destroyed, len(srv.Cloud.LiveVolumeSnapshots()))
	}
	rep, err := provider.Reap(ctx, p, provider.ReapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Destroyed) != 1 || rep.Destroyed[0].ID != dry.Destroyed[0].ID {
		t.Errorf("Reap destroyed %+v, want the orphan %s", rep.Destroyed, dry.Destroyed[0].ID)
	}
	live := srv.Cloud.LiveVolumeSnapshots()
	if len(live) != 2 {
		t.Fatalf("%d EBS snapshots after the reap, want 2 (the live AMI's, the foreign one)", len(live))
	}
	for _, v := range live {
		if ec2sim.SnapshotID(v.ID) == rep.Destroyed[0].ID {
			t.Errorf("the orphan %s is still there", rep.Destroyed[0].ID)
		}
	}
	if err := p.DeleteSnapshot(ctx, kept.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyInstance(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
}
