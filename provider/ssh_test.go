package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/driver"
	"github.com/spuffgo/spuff/provider/internal/memdriver"
	"github.com/spuffgo/spuff/providertest/simcloud"
	"github.com/spuffgo/spuff/providertest/simssh"
)

// sshCancelBound is how soon after its context is cancelled WaitSSH must
// return: the design target is 100 ms, with slack for the race detector
// on a loaded machine (as providertest's cancelBound).
const sshCancelBound = 300 * time.Millisecond

// consoleDriver is the in-memory driver with the console output of the
// simulated cloud's machine behind each of its machines.
type consoleDriver struct {
	*memdriver.Driver
	cloud *simcloud.Cloud
	mu    sync.Mutex
	sim   map[string]int64 // memdriver ID -> model ID
	reads int
}

// ConsoleOutput is the model's console output of the machine.
func (d *consoleDriver) ConsoleOutput(_ context.Context, id string) (string, error) {
	d.mu.Lock()
	sid, ok := d.sim[id]
	d.reads++
	d.mu.Unlock()
	if !ok {
		return "", driver.NotFound("no machine " + id)
	}
	return d.cloud.ConsoleOutput(sid)
}

func (d *consoleDriver) consoleReads() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads
}

var _ driver.ConsoleReader = (*consoleDriver)(nil)

// sshEnv is a Provider over the in-memory driver whose one machine has the
// public address of a simulated cloud's machine, served by simssh.
type sshEnv struct {
	cloud  *simcloud.Cloud
	sshd   *simssh.Server
	mem    *memdriver.Driver
	drv    *consoleDriver
	p      provider.Provider
	id     string // the Provider's ID of the machine
	simID  int64
	signer ssh.Signer // installed on the machine
	other  ssh.Signer // of the account, not installed
	opts   provider.SSHOptions
}

type envConfig struct {
	ssh      simssh.Options
	userData string
	pending  bool // the machine never runs, as the cloud sees it
	console  bool // the driver shows console output
	tweak    func(*provider.Config)
}

// sshSlots bounds the SSH environments alive at once: handshakes under
// -race are CPU-heavy, and the package's timed tests run beside them.
var sshSlots = make(chan struct{}, 4)

func newSSHEnv(t *testing.T, c envConfig) *sshEnv {
	t.Helper()
	sshSlots <- struct{}{}
	t.Cleanup(func() { <-sshSlots })
	cloud := simcloud.New(simcloud.Options{World: simcloud.WorldSimple, Seed: 7})
	sshd := simssh.Start(t, cloud, c.ssh)
	signer, key := simssh.AddUserKey(cloud, "me", 1)
	other, _ := simssh.AddUserKey(cloud, "someone-else", 2)
	ids := cloud.AddInstances(1, func(int) simcloud.InstanceSpec {
		return simcloud.InstanceSpec{Name: "box", Region: "r", Size: "s", UserData: c.userData, SSHKeyIDs: []int64{key.ID}}
	})
	in := cloud.LiveInstances()[0]
	mem := memdriver.New()
	state, raw := driver.StateRunning, "running"
	if c.pending {
		state, raw = driver.StatePending, "new"
	}
	id := mem.Add(driver.Instance{Name: "box", State: state, RawState: raw, IPv4: in.IPv4, Region: "r", Size: "s",
		Labels: map[string]string{provider.OwnerLabel: provider.DefaultOwner}})
	var d driver.Driver = mem
	cd := &consoleDriver{Driver: mem, cloud: cloud, sim: map[string]int64{id: ids[0]}}
	if c.console {
		d = cd
	}
	cfg := provider.Config{
		DialContext: sshd.DialContext,
		Timeouts: provider.ProviderTimeouts{InstanceReady: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond,
			SSHConnect: 5 * time.Second, CloudInit: 5 * time.Second},
		Pacer: provider.NewPacer(),
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	p, err := provider.OpenDriver(context.Background(), "mem", driver.OpenerFunc(func(context.Context, *driver.Settings) (driver.Driver, error) {
		return d, nil
	}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &sshEnv{cloud: cloud, sshd: sshd, mem: mem, drv: cd, p: p, id: id, simID: ids[0], signer: signer, other: other,
		opts: provider.SSHOptions{
			Signers:        []ssh.Signer{signer},
			HostKeys:       provider.HostKeys(simssh.HostKey(cloud, ids[0])),
			AttemptTimeout: 500 * time.Millisecond,
			RefusedFor:     300 * time.Millisecond,
		}}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func stageNames(r *provider.SSHReport) string {
	var s []string
	for _, st := range r.Stages {
		s = append(s, string(st.Stage))
	}
	return strings.Join(s, " ")
}

func TestWaitSSHStages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		cloudInit bool
		old       bool
		want      string
		method    string
	}{
		{"connect only", false, false, "api port handshake auth", ""},
		{"cloud-init status", true, false, "api port handshake auth cloud-init", "status"},
		{"boot-finished marker", true, true, "api port handshake auth cloud-init", "boot-finished"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSSHEnv(t, envConfig{ssh: simssh.Options{OldCloudInit: tc.old, KeysDelay: 30 * time.Millisecond}})
			opts := e.opts
			opts.CloudInit = tc.cloudInit
			var mu sync.Mutex
			var done []string
			callsAfterAPI := -1
			ctx := provider.WithWaitTrace(ctxFor(t), &provider.WaitTrace{StageDone: func(ev provider.StageEvent) {
				mu.Lock()
				defer mu.Unlock()
				done = append(done, string(ev.Stage))
				if ev.Stage == provider.StageAPI {
					callsAfterAPI = e.mem.Calls()
				}
				if ev.Err != nil || ev.ID != e.id || ev.Provider != "mem" {
					t.Errorf("stage event %+v", ev)
				}
			}})
			rep, err := provider.WaitSSH(ctx, e.p, e.id, opts)
			if err != nil {
				t.Fatalf("WaitSSH: %v", err)
			}
			if got := stageNames(rep); got != tc.want {
				t.Errorf("stages %q, want %q", got, tc.want)
			}
			if got := strings.Join(done, " "); got != tc.want {
				t.Errorf("StageDone saw %q, want %q", got, tc.want)
			}
			if n := e.mem.Calls(); n != callsAfterAPI {
				t.Errorf("%d API calls after the machine ran, want none", n-callsAfterAPI)
			}
			if !keyIs(rep.HostKey, simssh.HostKey(e.cloud, e.simID)) || !strings.HasPrefix(rep.HostKeyTrust, "pinned host key SHA256:") {
				t.Errorf("host key %v trusted as %q", rep.HostKeyFingerprint(), rep.HostKeyTrust)
			}
			if rep.User != "root" || !strings.HasSuffix(rep.Addr, ":22") || rep.Instance == nil || rep.Client != nil {
				t.Errorf("report %+v", rep)
			}
			if tc.cloudInit && (rep.CloudInit == nil || rep.CloudInit.Status != "done" || rep.CloudInit.Method != tc.method) {
				t.Errorf("cloud-init %+v, want done by %s", rep.CloudInit, tc.method)
			}
			if st, _ := rep.Stage(provider.StageAuth); st.Attempts < 1 {
				t.Errorf("auth took %d attempts", st.Attempts)
			}
			if rep.Total() <= 0 {
				t.Errorf("total %v", rep.Total())
			}
			if s := e.sshd.Stats(); s.Logins < 1 {
				t.Errorf("no login: %+v", s)
			}
		})
	}
}

func keyIs(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && string(a.Marshal()) == string(b.Marshal())
}

// TestWaitSSHKeepClient: the connection WaitSSH made runs commands.
func TestWaitSSHKeepClient(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, envConfig{})
	opts := e.opts
	opts.KeepClient, opts.User = true, "ubuntu"
	rep, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Client.Close()
	sess, err := rep.Client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Output("whoami")
	if err != nil || strings.TrimSpace(string(out)) != "ubuntu" {
		t.Errorf("whoami: %q, %v", out, err)
	}
}

func TestWaitSSHHostKeyPolicies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	type check func(t *testing.T, e *sshEnv, rep *provider.SSHReport, err error)
	ok := func(trust string) check {
		return func(t *testing.T, _ *sshEnv, rep *provider.SSHReport, err error) {
			if err != nil {
				t.Fatalf("WaitSSH: %v", err)
			}
			if !strings.Contains(rep.HostKeyTrust, trust) {
				t.Errorf("trusted as %q, want %q", rep.HostKeyTrust, trust)
			}
		}
	}
	refused := func(target error) check {
		return func(t *testing.T, e *sshEnv, rep *provider.SSHReport, err error) {
			if !errors.Is(err, target) {
				t.Fatalf("WaitSSH: %v, want %v", err, target)
			}
			var hk *provider.HostKeyError
			var se *provider.StageError
			if !errors.As(err, &hk) || !errors.As(err, &se) || se.Stage != provider.StageHandshake {
				t.Fatalf("error %v has no HostKeyError of stage handshake", err)
			}
			if hk.Fingerprint == "" || hk.Addr != rep.Addr {
				t.Errorf("HostKeyError %+v", hk)
			}
			if s := e.sshd.Stats(); s.Logins != 0 {
				t.Errorf("logged in %d times to a machine whose host key was refused", s.Logins)
			}
			if rep.HostKey != nil {
				t.Errorf("the report holds a refused host key")
			}
		}
	}
	knownHostsFile := func(t *testing.T, e *sshEnv, key ssh.PublicKey, alias bool) provider.HostKeyPolicy {
		in := e.cloud.LiveInstances()[0]
		host := in.IPv4.String()
		if alias {
			host = provider.HostKeyAlias("mem", e.id)
		}
		path := filepath.Join(t.TempDir(), "known_hosts")
		line := "# a comment\n" + "other.example.com " + string(ssh.MarshalAuthorizedKey(simssh.UserKey(9, 9).PublicKey())) +
			host + " " + string(ssh.MarshalAuthorizedKey(key))
		if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		pol, err := provider.KnownHosts(path)
		if err != nil {
			t.Fatal(err)
		}
		return pol
	}
	wrong := simssh.UserKey(3, 3).PublicKey()
	for _, tc := range []struct {
		name    string
		console bool
		fault   simssh.FaultKind
		policy  func(t *testing.T, e *sshEnv) provider.HostKeyPolicy
		check   check
	}{
		{"pinned", false, 0, func(t *testing.T, e *sshEnv) provider.HostKeyPolicy {
			return provider.HostKeys(simssh.HostKey(e.cloud, e.simID))
		}, ok("pinned host key")},
		{"pinned other key", false, 0, func(*testing.T, *sshEnv) provider.HostKeyPolicy { return provider.HostKeys(wrong) }, refused(provider.ErrHostKeyMismatch)},
		{"pinned, impostor", false, simssh.FaultHostKey, func(t *testing.T, e *sshEnv) provider.HostKeyPolicy {
			return provider.HostKeys(simssh.HostKey(e.cloud, e.simID))
		}, refused(provider.ErrHostKeyMismatch)},
		{"pinned none", false, 0, func(*testing.T, *sshEnv) provider.HostKeyPolicy { return provider.HostKeys() }, refused(provider.ErrHostKeyUnknown)},
		{"known_hosts by address", false, 0, func(t *testing.T, e *sshEnv) provider.HostKeyPolicy {
			return knownHostsFile(t, e, simssh.HostKey(e.cloud, e.simID), false)
		}, ok("known_hosts ")},
		{"known_hosts by alias", false, 0, func(t *testing.T, e *sshEnv) provider.HostKeyPolicy {
			return knownHostsFile(t, e, simssh.HostKey(e.cloud, e.simID), true)
		}, ok("known_hosts ")},
		{"known_hosts other key", false, 0, func(t *testing.T, e *sshEnv) provider.HostKeyPolicy {
			return knownHostsFile(t, e, wrong, false)
		}, refused(provider.ErrHostKeyMismatch)},
		{"known_hosts, impostor", false, simssh.FaultHostKey, func(t *testing.T, e *sshEnv) provider.HostKeyPolicy {
			return knownHostsFile(t, e, simssh.HostKey(e.cloud, e.simID), false)
		}, refused(provider.ErrHostKeyMismatch)},
		{"known_hosts without the machine", false, 0, func(t *testing.T, e *sshEnv) provider.HostKeyPolicy {
			path := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			pol, err := provider.KnownHosts(path)
			if err != nil {
				t.Fatal(err)
			}
			return pol
		}, refused(provider.ErrHostKeyUnknown)},
		{"console", true, 0, func(*testing.T, *sshEnv) provider.HostKeyPolicy { return provider.ConsoleHostKeys() }, ok("console output")},
		{"console, impostor", true, simssh.FaultHostKey, func(*testing.T, *sshEnv) provider.HostKeyPolicy { return provider.ConsoleHostKeys() },
			refused(provider.ErrHostKeyMismatch)},
		{"console not supported", false, 0, func(*testing.T, *sshEnv) provider.HostKeyPolicy { return provider.ConsoleHostKeys() },
			func(t *testing.T, _ *sshEnv, _ *provider.SSHReport, err error) {
				if !errors.Is(err, provider.ErrNotSupported) {
					t.Fatalf("WaitSSH with console keys on a cloud without console: %v, want ErrNotSupported", err)
				}
			}},
		{"trust on first use", false, 0, func(*testing.T, *sshEnv) provider.HostKeyPolicy { return provider.TrustOnFirstUse("") },
			ok("trusted on first use")},
		{"trust on first use, file", false, 0, func(*testing.T, *sshEnv) provider.HostKeyPolicy {
			return provider.TrustOnFirstUse(filepath.Join(dir, "tofu", "known_hosts"))
		}, ok("recorded in " + filepath.Join(dir, "tofu", "known_hosts"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSSHEnv(t, envConfig{console: tc.console})
			if tc.fault != 0 {
				e.sshd.Inject(simssh.Fault{Kind: tc.fault, Count: 100})
			}
			opts := e.opts
			opts.HostKeys = tc.policy(t, e)
			rep, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
			tc.check(t, e, rep, err)
		})
	}
}

// TestTrustOnFirstUseHoldsTheMachineToItsKey: the first key is recorded
// (in the file, under the machine's alias) and an impostor later refused.
func TestTrustOnFirstUseHoldsTheMachineToItsKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, path string }{
		{"memory", ""},
		{"file", filepath.Join(t.TempDir(), "known_hosts")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSSHEnv(t, envConfig{})
			opts := e.opts
			opts.HostKeys = provider.TrustOnFirstUse(tc.path)
			rep, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(rep.HostKeyTrust, "trusted on first use") || !keyIs(rep.HostKey, simssh.HostKey(e.cloud, e.simID)) {
				t.Fatalf("first use: %q %s", rep.HostKeyTrust, rep.HostKeyFingerprint())
			}
			rep, err = provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
			if err != nil || !strings.Contains(rep.HostKeyTrust, "earlier") {
				t.Fatalf("second use: %q, %v", rep.HostKeyTrust, err)
			}
			if tc.path != "" {
				b, err := os.ReadFile(tc.path)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(string(b), provider.HostKeyAlias("mem", e.id)+" ssh-ed25519 ") || strings.Count(string(b), "\n") != 1 {
					t.Errorf("recorded %q", b)
				}
				if fi, _ := os.Stat(tc.path); fi.Mode().Perm() != 0o600 {
					t.Errorf("file mode %v", fi.Mode())
				}
			}
			e.sshd.Inject(simssh.Fault{Kind: simssh.FaultHostKey, Count: 100})
			_, err = provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
			if !errors.Is(err, provider.ErrHostKeyMismatch) {
				t.Fatalf("impostor after first use: %v, want ErrHostKeyMismatch", err)
			}
		})
	}
}

// TestWaitSSHRidesOverFaults: resets, silent servers, refused keys and a
// dropped connection attempt are tried again, and the wait ends well.
func TestWaitSSHRidesOverFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault simssh.FaultKind
		count int
	}{
		{simssh.FaultReset, 3},
		{simssh.FaultBannerTimeout, 2},
		{simssh.FaultAuthRefused, 2},
		{simssh.FaultBlackhole, 1},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			t.Parallel()
			e := newSSHEnv(t, envConfig{})
			e.sshd.Inject(simssh.Fault{Kind: tc.fault, Count: tc.count, Instance: e.simID})
			opts := e.opts
			opts.AttemptTimeout = 400 * time.Millisecond
			opts.RefusedFor = 2 * time.Second
			rep, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
			if err != nil {
				t.Fatalf("WaitSSH under %d %s faults: %v", tc.count, tc.fault, err)
			}
			// A login the server saw may be one the client gave up on as
			// its attempt ran out (on a loaded machine): at least one.
			if s := e.sshd.Stats(); s.Faults[tc.fault] != tc.count || s.Logins < 1 {
				t.Errorf("stats %+v, want %d faults and a login", s, tc.count)
			}
			var attempts int
			for _, st := range rep.Stages[1:] {
				attempts += st.Attempts
			}
			if attempts < tc.count+1 {
				t.Errorf("%d attempts over the stages, want at least %d", attempts, tc.count+1)
			}
		})
	}
}

func TestWaitSSHKeyNotInstalledIsRefused(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, envConfig{})
	opts := e.opts
	opts.Signers = []ssh.Signer{e.other}
	rep, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
	if !errors.Is(err, provider.ErrAuthentication) {
		t.Fatalf("WaitSSH with a key not installed: %v, want ErrAuthentication", err)
	}
	var perr *provider.Error
	var se *provider.StageError
	if !errors.As(err, &perr) || !errors.As(err, &se) || se.Stage != provider.StageAuth || perr.LastState != "auth: keys refused" {
		t.Errorf("error %v: want stage auth, last state \"auth: keys refused\"", err)
	}
	if provider.IsRetryable(err) {
		t.Errorf("a refused key is reported retryable")
	}
	if got := stageNames(rep); got != "api port handshake" {
		t.Errorf("stages that ended: %q", got)
	}
	// The right key among others is accepted.
	opts.Signers = []ssh.Signer{e.other, e.signer}
	if _, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts); err != nil {
		t.Errorf("WaitSSH with the installed key second: %v", err)
	}
}

func TestWaitSSHStageTimeouts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		stage     provider.Stage
		env       envConfig
		fault     simssh.FaultKind
		cloudInit bool
		last      string
	}{
		{provider.StageAPI, envConfig{pending: true}, 0, false, "api: new"},
		{provider.StagePort, envConfig{ssh: simssh.Options{PortDelay: time.Hour}}, 0, false, "port: connection refused"},
		{provider.StagePort, envConfig{}, simssh.FaultBlackhole, false, "port: timed out"},
		{provider.StageHandshake, envConfig{}, simssh.FaultBannerTimeout, false, "handshake: timed out"},
		{provider.StageHandshake, envConfig{}, simssh.FaultReset, false, "handshake: connection reset"},
		{provider.StageAuth, envConfig{ssh: simssh.Options{KeysDelay: time.Hour}}, 0, false, "auth: keys refused"},
		{provider.StageCloudInit, envConfig{ssh: simssh.Options{CloudInitDelay: time.Hour}}, 0, true, "cloud-init: running"},
		{provider.StageCloudInit, envConfig{ssh: simssh.Options{CloudInitDelay: time.Hour, OldCloudInit: true}}, 0, true, "cloud-init: boot-finished not there yet"},
	} {
		t.Run(string(tc.stage)+" "+tc.last, func(t *testing.T) {
			t.Parallel()
			env := tc.env
			env.tweak = func(c *provider.Config) {
				c.Timeouts.SSHConnect, c.Timeouts.CloudInit = 1500*time.Millisecond, 300*time.Millisecond
			}
			e := newSSHEnv(t, env)
			if tc.fault != 0 {
				e.sshd.Inject(simssh.Fault{Kind: tc.fault, Count: 1000})
			}
			opts := e.opts
			opts.CloudInit = tc.cloudInit
			opts.AttemptTimeout = 500 * time.Millisecond // a handshake under -race on a loaded machine may take hundreds of ms
			opts.RefusedFor = time.Hour
			_, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
			if !errors.Is(err, provider.ErrTimeout) {
				t.Fatalf("WaitSSH: %v, want ErrTimeout", err)
			}
			var perr *provider.Error
			var se *provider.StageError
			if !errors.As(err, &perr) || !errors.As(err, &se) {
				t.Fatalf("WaitSSH: %v is no *Error with a *StageError", err)
			}
			if se.Stage != tc.stage || !strings.HasPrefix(perr.LastState, tc.last) || perr.Op != "WaitSSH" || perr.Elapsed <= 0 {
				t.Errorf("stage %s, last state %q, op %s, elapsed %v: want stage %s, last state %q", se.Stage, perr.LastState, perr.Op, perr.Elapsed, tc.stage, tc.last)
			}
			if !strings.Contains(err.Error(), "last state: "+string(tc.stage)) {
				t.Errorf("error text %q does not name the stage", err)
			}
		})
	}
}

func TestWaitSSHCloudInitFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		old    bool
		method string
	}{
		{"status", false, "status"},
		{"boot-finished", true, "boot-finished"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSSHEnv(t, envConfig{ssh: simssh.Options{OldCloudInit: tc.old}, userData: "#!/bin/sh\nfalse\n" + simssh.FailMarker + "\n"})
			opts := e.opts
			opts.CloudInit = true
			rep, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
			if !errors.Is(err, provider.ErrCloudInit) {
				t.Fatalf("WaitSSH: %v, want ErrCloudInit", err)
			}
			var se *provider.StageError
			if !errors.As(err, &se) || se.Stage != provider.StageCloudInit {
				t.Errorf("error %v does not name stage cloud-init", err)
			}
			if provider.IsRetryable(err) {
				t.Errorf("a failed cloud-init is reported retryable")
			}
			if strings.Contains(err.Error(), "false") || strings.Contains(err.Error(), simssh.FailMarker) {
				t.Errorf("the error shows the user data: %v", err)
			}
			if rep.CloudInit == nil || rep.CloudInit.Status != "error" || rep.CloudInit.Method != tc.method {
				t.Errorf("cloud-init result %+v", rep.CloudInit)
			}
			if tc.old && len(rep.CloudInit.Errors) != 1 {
				t.Errorf("errors %q, want result.json's one", rep.CloudInit.Errors)
			}
			if got := stageNames(rep); got != "api port handshake auth" {
				t.Errorf("stages that ended: %q", got)
			}
		})
	}
}

// TestWaitSSHCancelIsPrompt: cancelled in any stage, WaitSSH returns at
// once with an error matching context.Canceled that names the stage.
func TestWaitSSHCancelIsPrompt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		stage, before provider.Stage // cancelled 50 ms after before ended ("": after two polls)
		env           envConfig
		fault         simssh.FaultKind
		cloudInit     bool
	}{
		{provider.StageAPI, "", envConfig{pending: true, tweak: func(c *provider.Config) { c.Timeouts.InstanceReady = time.Minute }}, 0, false},
		{provider.StagePort, provider.StageAPI, envConfig{ssh: simssh.Options{PortDelay: time.Hour}}, 0, false},
		{provider.StagePort, provider.StageAPI, envConfig{}, simssh.FaultBlackhole, false},
		{provider.StageHandshake, provider.StagePort, envConfig{}, simssh.FaultBannerTimeout, false},
		{provider.StageCloudInit, provider.StageAuth, envConfig{ssh: simssh.Options{CloudInitDelay: time.Hour}}, 0, true},
	} {
		t.Run(string(tc.stage)+" "+tc.fault.String(), func(t *testing.T) {
			t.Parallel()
			e := newSSHEnv(t, tc.env)
			if tc.fault != 0 {
				e.sshd.Inject(simssh.Fault{Kind: tc.fault, Count: 1000})
			}
			opts := e.opts
			opts.CloudInit = tc.cloudInit
			opts.AttemptTimeout = 30 * time.Second
			ctx, cancel := context.WithCancel(ctxFor(t))
			defer cancel()
			var (
				mu   sync.Mutex
				at   time.Time
				once sync.Once
			)
			soon := func() {
				once.Do(func() {
					time.AfterFunc(50*time.Millisecond, func() {
						mu.Lock()
						at = time.Now()
						mu.Unlock()
						cancel()
					})
				})
			}
			trace := &provider.WaitTrace{
				Polled: func(ev provider.WaitEvent) {
					if tc.before == "" && ev.Stage == tc.stage && ev.Polls >= 2 {
						soon()
					}
				},
				StageDone: func(ev provider.StageEvent) {
					if ev.Stage == tc.before {
						soon()
					}
				},
			}
			_, err := provider.WaitSSH(provider.WithWaitTrace(ctx, trace), e.p, e.id, opts)
			mu.Lock()
			late := time.Since(at)
			mu.Unlock()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitSSH cancelled: %v, want context.Canceled", err)
			}
			var se *provider.StageError
			if !errors.As(err, &se) || se.Stage != tc.stage {
				t.Errorf("cancelled in %v, want stage %s", err, tc.stage)
			}
			if late > sshCancelBound {
				t.Errorf("WaitSSH returned %v after the cancel, want within %v", late, sshCancelBound)
			}
			t.Logf("returned %v after the cancel", late)
		})
	}
}

func TestWaitSSHInvalidOptions(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, envConfig{})
	for _, tc := range []struct {
		field string
		edit  func(o *provider.SSHOptions)
	}{
		{"SSHOptions.Signers", func(o *provider.SSHOptions) { o.Signers = nil }},
		{"SSHOptions.Signers[1]", func(o *provider.SSHOptions) { o.Signers = append(o.Signers, nil) }},
		{"SSHOptions.HostKeys", func(o *provider.SSHOptions) { o.HostKeys = nil }},
		{"SSHOptions.Port", func(o *provider.SSHOptions) { o.Port = 70000 }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			opts := e.opts
			opts.Signers = append([]ssh.Signer(nil), opts.Signers...)
			tc.edit(&opts)
			before := e.mem.Calls()
			_, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts)
			requireInvalid(t, err, tc.field)
			if e.mem.Calls() != before {
				t.Errorf("invalid options made API calls")
			}
		})
	}
}

// TestWaitSSHTrace: every poll and attempt reaches the trace with its
// stage, in order.
func TestWaitSSHTrace(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, envConfig{})
	e.sshd.Inject(simssh.Fault{Kind: simssh.FaultReset, Count: 2})
	var mu sync.Mutex
	var stages []provider.Stage
	ctx := provider.WithWaitTrace(ctxFor(t), &provider.WaitTrace{Polled: func(ev provider.WaitEvent) {
		mu.Lock()
		defer mu.Unlock()
		if len(stages) == 0 || stages[len(stages)-1] != ev.Stage {
			stages = append(stages, ev.Stage)
		}
	}})
	opts := e.opts
	opts.CloudInit = true
	if _, err := provider.WaitSSH(ctx, e.p, e.id, opts); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	got := ""
	for _, s := range stages {
		got += string(s) + " "
	}
	// Resets fail at the handshake; the attempt that logs in ends in
	// auth. Attempts before sshd listens fail at the port.
	if got != "api handshake auth cloud-init " && got != "api port handshake auth cloud-init " {
		t.Errorf("stages polled %q, want api, [port,] handshake, auth, cloud-init", got)
	}
}

func TestConsoleOutput(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, envConfig{console: true})
	out, err := provider.ConsoleOutput(ctxFor(t), e.p, e.id)
	if err != nil || !strings.Contains(out, "BEGIN SSH HOST KEY FINGERPRINTS") {
		t.Fatalf("ConsoleOutput: %q, %v", out, err)
	}
	if _, err := provider.ConsoleOutput(ctxFor(t), e.p, "424242"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("ConsoleOutput of a missing machine: %v, want ErrNotFound", err)
	}
	if _, err := provider.ConsoleOutput(ctxFor(t), e.p, "x"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("ConsoleOutput of a malformed ID: %v, want ErrNotFound", err)
	}
	plain := newSSHEnv(t, envConfig{})
	if _, err := provider.ConsoleOutput(ctxFor(t), plain.p, plain.id); !errors.Is(err, provider.ErrNotSupported) {
		t.Errorf("ConsoleOutput without console: %v, want ErrNotSupported", err)
	}
}

// TestConsoleHostKeysReadsOnce: the console is read until it shows the
// keys, then never again for the machine.
func TestConsoleHostKeysReadsOnce(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, envConfig{console: true})
	opts := e.opts
	opts.HostKeys = provider.ConsoleHostKeys()
	for i := range 3 {
		if _, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts); err != nil {
			t.Fatalf("WaitSSH %d: %v", i, err)
		}
	}
	if n := e.drv.consoleReads(); n != 1 {
		t.Errorf("%d console reads, want 1", n)
	}
}

func TestParseConsoleHostKeys(t *testing.T) {
	t.Parallel()
	k1, k2 := simssh.UserKey(1, 1).PublicKey(), simssh.UserKey(1, 2).PublicKey()
	fp1, fp2 := ssh.FingerprintSHA256(k1), ssh.FingerprintSHA256(k2)
	block := func(prefix string, prints ...string) string {
		s := prefix + "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n"
		for _, p := range prints {
			s += prefix + "256 " + p + " root@box (ED25519)\n"
		}
		return s + prefix + "-----END SSH HOST KEY FINGERPRINTS-----\n"
	}
	keys := func(ks ...ssh.PublicKey) string {
		s := "-----BEGIN SSH HOST KEY KEYS-----\r\n"
		for _, k := range ks {
			s += strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " root@box\r\n"
		}
		return s + "-----END SSH HOST KEY KEYS-----\r\n"
	}
	for _, tc := range []struct {
		name    string
		out     string
		match   []ssh.PublicKey
		nomatch []ssh.PublicKey
		pending bool
	}{
		{"ec2 prefix", "boot\n" + block("ec2: ", fp1) + "more\n", []ssh.PublicKey{k1}, []ssh.PublicKey{k2}, false},
		{"syslog prefix", block("<14>Jun  1 12:00:00 ec2: ", fp1, fp2), []ssh.PublicKey{k1, k2}, nil, false},
		{"keys only", keys(k2), []ssh.PublicKey{k2}, []ssh.PublicKey{k1}, false},
		{"prints and keys", block("ec2: ", fp1) + keys(k1), []ssh.PublicKey{k1}, []ssh.PublicKey{k2}, false},
		{"legacy md5", block("ec2: ", ssh.FingerprintLegacyMD5(k1)), []ssh.PublicKey{k1}, []ssh.PublicKey{k2}, false},
		{"second boot wins", block("ec2: ", fp1) + keys(k1) + "reboot\n" + block("ec2: ", fp2), []ssh.PublicKey{k2}, []ssh.PublicKey{k1}, false},
		{"unfinished block", block("ec2: ", fp1) + "-----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 256 " + fp2, []ssh.PublicKey{k1}, []ssh.PublicKey{k2}, false},
		{"no block yet", "[    0.000000] Linux version 6.8\n", nil, nil, true},
		{"only the start", "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 256 " + fp1 + " root@box (ED25519)\n", nil, nil, true},
		{"empty block", block("ec2: "), nil, nil, true},
		{"empty", "", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := provider.ParseConsoleHostKeys(tc.out)
			if tc.pending {
				if !errors.Is(err, provider.ErrHostKeyPending) {
					t.Fatalf("got %+v, %v; want ErrHostKeyPending", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.match {
				if !got.Match(k) {
					t.Errorf("%s does not match %+v", ssh.FingerprintSHA256(k), got)
				}
			}
			for _, k := range tc.nomatch {
				if got.Match(k) {
					t.Errorf("%s matches %+v", ssh.FingerprintSHA256(k), got)
				}
			}
		})
	}
}

// TestSimulatedConsoleShowsHostKey: the simulated cloud's console output
// parses to the key its SSH server shows, once the machine is active.
func TestSimulatedConsoleShowsHostKey(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	var mu sync.Mutex
	cloud := simcloud.New(simcloud.Options{Seed: 3, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	img := cloud.AddImage(simcloud.Image{Name: "ubuntu", Distribution: "Ubuntu", Version: "24.04", Arch: "x86_64"})
	inst, _, err := cloud.CreateInstance(simcloud.InstanceSpec{Name: "c", Region: "r", Size: "s", ImageID: img})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cloud.ConsoleOutput(inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.ParseConsoleHostKeys(out); !errors.Is(err, provider.ErrHostKeyPending) {
		t.Errorf("console of a booting machine: %v, want ErrHostKeyPending", err)
	}
	mu.Lock()
	now = inst.ReadyAt
	mu.Unlock()
	out, _ = cloud.ConsoleOutput(inst.ID)
	keys, err := provider.ParseConsoleHostKeys(out)
	if err != nil {
		t.Fatal(err)
	}
	if !keys.Match(simssh.HostKey(cloud, inst.ID)) || len(keys.Fingerprints) != 1 || len(keys.Keys) != 1 {
		t.Errorf("console keys %+v do not show the machine's host key", keys)
	}
	if keys.Match(simssh.HostKey(cloud, inst.ID+1)) {
		t.Errorf("console keys match another machine's key")
	}
	if _, err := cloud.ConsoleOutput(inst.ID + 1000); err == nil {
		t.Errorf("console of a missing machine: no error")
	}
}

func TestLoginUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		provider string
		img      provider.ImageSpec
		want     string
	}{
		{"aws", provider.Ubuntu("24.04"), "ubuntu"},
		{"aws", provider.Debian("12"), "admin"},
		{"aws", provider.CustomImage("ami-1"), "root"},
		{"digitalocean", provider.Ubuntu("24.04"), "root"},
		{"hetzner", provider.Debian("12"), "root"},
	} {
		if got := provider.LoginUser(tc.provider, tc.img); got != tc.want {
			t.Errorf("LoginUser(%s, %v) = %q, want %q", tc.provider, tc.img, got, tc.want)
		}
	}
}

func TestKnownHostsLine(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, envConfig{})
	rep, err := provider.WaitSSH(ctxFor(t), e.p, e.id, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	line := rep.KnownHostsLine()
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, provider.HostKeyAlias("mem", e.id)+","+strings.TrimSuffix(rep.Addr, ":22")+" ") {
		t.Errorf("line %q", line)
	}
	pol, err := provider.KnownHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := e.opts
	opts.HostKeys = pol
	if _, err := provider.WaitSSH(ctxFor(t), e.p, e.id, opts); err != nil {
		t.Errorf("WaitSSH checked against the line written: %v", err)
	}
	if (*provider.SSHReport)(nil).KnownHostsLine() != "" {
		t.Error("a nil report has a line")
	}
}

// TestNoBlindHostKeys: no code outside tests accepts any host key.
func TestNoBlindHostKeys(t *testing.T) {
	t.Parallel()
	banned := "Insecure" + "IgnoreHostKey"
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && d.Name() != ".." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), banned) {
			t.Errorf("%s uses %s", path, banned)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHostKeyAlgorithms: policies ask the server for the types of key
// they hold, so that a server with several host keys shows one of them.
func TestHostKeyAlgorithms(t *testing.T) {
	t.Parallel()
	rk, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := ssh.NewPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	edPub := simssh.UserKey(4, 4).PublicKey()
	target := &provider.HostKeyTarget{Addr: "198.18.0.9:22", Alias: provider.HostKeyAlias("mem", "9")}
	path := filepath.Join(t.TempDir(), "known_hosts")
	lines := "198.18.0.9 " + string(ssh.MarshalAuthorizedKey(rsaPub)) +
		"[198.18.0.9]:2222 " + string(ssh.MarshalAuthorizedKey(edPub))
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	kh, err := provider.KnownHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	tofu := provider.TrustOnFirstUse("")
	if _, err := tofu.VerifyHostKey(context.Background(), target, edPub); err != nil {
		t.Fatal(err)
	}
	type lister interface {
		HostKeyAlgorithms(context.Context, *provider.HostKeyTarget) []string
	}
	for _, tc := range []struct {
		name   string
		policy provider.HostKeyPolicy
		target *provider.HostKeyTarget
		want   string
	}{
		{"known_hosts", kh, target, "rsa-sha2-512 rsa-sha2-256 ssh-rsa"},
		{"known_hosts, unknown host", kh, &provider.HostKeyTarget{Addr: "198.18.0.10:22"}, ""},
		{"pinned", provider.HostKeys(edPub, rsaPub), target, "ssh-ed25519 rsa-sha2-512 rsa-sha2-256 ssh-rsa"},
		{"trust on first use", tofu, target, "ssh-ed25519"},
		{"trust on first use, unknown host", tofu, &provider.HostKeyTarget{Alias: "x"}, ""},
	} {
		l, ok := tc.policy.(lister)
		if !ok {
			t.Fatalf("%s: no HostKeyAlgorithms", tc.name)
		}
		if got := strings.Join(l.HostKeyAlgorithms(context.Background(), tc.target), " "); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
