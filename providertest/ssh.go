package providertest

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
	"github.com/spuffgo/spuff/providertest/simssh"
)

// The checks of staged readiness over real SSH (provider.WaitSSH), run on
// every driver: its simulated cloud's machines get real SSH servers
// (package simssh), reached through Config.DialContext, so these checks
// also prove that InstanceRequest.SSHKeys reach the machine and that the
// user data does.

// sshEnv is a subtest's cloud with SSH servers on its machines, the
// provider reaching them through Config.DialContext, and a key of the
// account that requests install.
type sshEnv struct {
	*env
	sshd   *simssh.Server
	signer ssh.Signer // its public key is the account's key keyRef
	keyRef string     // the provider's ID of it
	other  ssh.Signer // a key of the account no request installs
}

// sshOptions are the simulated SSH servers of most SSH subtests: the
// realistic world's (sshd up 8 s after the machine runs, keys refused for
// 2 s more, cloud-init 25 s), at the suite's scale.
func sshOptions() simssh.Options { return simssh.Options{} }

func sshSetup(t *testing.T, h Harness, opts simcloud.Options, sopts simssh.Options, tweak func(*provider.Config)) *sshEnv {
	t.Helper()
	var sshd *simssh.Server
	e := setup(t, h, opts, func(c *provider.Config) {
		c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return sshd.DialContext(ctx, network, addr)
		}
		if tweak != nil {
			tweak(c)
		}
	})
	if !e.p.Capabilities().SSHKeys {
		t.Skip("the provider installs no SSH keys")
	}
	sshd = simssh.Start(t, e.cloud, sopts)
	signer, key := simssh.AddUserKey(e.cloud, "conformance", 1)
	other, _ := simssh.AddUserKey(e.cloud, "not-installed", 2)
	keys, err := e.p.ListSSHKeys(e.ctx)
	if err != nil {
		t.Fatalf("ListSSHKeys: %v", err)
	}
	se := &sshEnv{env: e, sshd: sshd, signer: signer, other: other}
	for _, k := range keys {
		if k.Name == key.Name {
			se.keyRef = k.ID
		}
	}
	if se.keyRef == "" {
		t.Fatalf("ListSSHKeys does not list the key %q the account has: %+v", key.Name, keys)
	}
	return se
}

// machine creates a machine that installs the key, with userData.
func (e *sshEnv) machine(tag, userData string) *provider.Instance {
	e.t.Helper()
	req := e.h.Request(e.name(tag))
	req.SSHKeys = []string{e.keyRef}
	req.UserData = userData
	return e.create(req)
}

// options are WaitSSH's options for inst: the installed key, the
// machine's real host key pinned (the model's), quick attempts.
func (e *sshEnv) options(inst *provider.Instance) provider.SSHOptions {
	return provider.SSHOptions{
		Signers:        []ssh.Signer{e.signer},
		HostKeys:       provider.HostKeys(simssh.HostKey(e.cloud, e.modelID(inst.ID))),
		AttemptTimeout: 2 * time.Second,
		RefusedFor:     300 * time.Millisecond,
	}
}

// testSSHReachable: after WaitSSH the machine can be logged in to with the
// installed key, every stage ended in order, the machine's host key was
// the one accepted, cloud-init is done, and nothing after the machine ran
// called the API.
func testSSHReachable(t *testing.T, h Harness) {
	e := sshSetup(t, h, suiteOptions(), sshOptions(), nil)
	inst := e.machine("ssh", "#!/bin/sh\necho hello\n")
	opts := e.options(inst)
	opts.CloudInit, opts.KeepClient = true, true
	var mu sync.Mutex
	callsAtRunning := -1
	ctx := provider.WithWaitTrace(e.ctx, &provider.WaitTrace{StageDone: func(ev provider.StageEvent) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Stage == provider.StageAPI {
			callsAtRunning = e.cloud.TotalCalls()
		}
	}})
	rep, err := provider.WaitSSH(ctx, e.p, inst.ID, opts)
	if err != nil {
		t.Fatalf("WaitSSH: %v", err)
	}
	defer rep.Client.Close()
	mu.Lock()
	if n := e.cloud.TotalCalls(); n != callsAtRunning {
		t.Errorf("WaitSSH made %d API calls after the machine ran, want none", n-callsAtRunning)
	}
	mu.Unlock()
	want := []provider.Stage{provider.StageAPI, provider.StagePort, provider.StageHandshake, provider.StageAuth, provider.StageCloudInit}
	if len(rep.Stages) != len(want) {
		t.Fatalf("stages %+v, want %v", rep.Stages, want)
	}
	for i, st := range rep.Stages {
		if st.Stage != want[i] || st.Duration < 0 || st.Attempts < 1 {
			t.Errorf("stage %d: %+v, want %s", i, st, want[i])
		}
	}
	if !keyEqual(rep.HostKey, simssh.HostKey(e.cloud, e.modelID(inst.ID))) {
		t.Errorf("accepted host key %s, not the machine's", rep.HostKeyFingerprint())
	}
	if rep.CloudInit == nil || rep.CloudInit.Status != "done" {
		t.Errorf("cloud-init %+v, want done", rep.CloudInit)
	}
	ip := e.modelInstance(inst.ID).IPv4
	if !strings.HasPrefix(rep.Addr, ip.String()+":") {
		t.Errorf("connected to %s, the machine's IPv4 is %s", rep.Addr, ip)
	}
	sess, err := rep.Client.NewSession()
	if err != nil {
		t.Fatalf("a session on the connection WaitSSH kept: %v", err)
	}
	out, err := sess.Output("hostname")
	_ = sess.Close()
	if err != nil || strings.TrimSpace(string(out)) != inst.Name {
		t.Errorf("hostname: %q, %v; want %q", out, err, inst.Name)
	}
	e.destroy(inst.ID)
	e.noLeaks()
}

func keyEqual(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && string(a.Marshal()) == string(b.Marshal())
}

// testSSHKeyNotInstalled: a key of the account the request did not
// install is refused (ErrAuthentication, stage auth), and a request that
// installed no key lets no key in.
func testSSHKeyNotInstalled(t *testing.T, h Harness) {
	e := sshSetup(t, h, suiteOptions(), sshOptions(), nil)
	inst := e.machine("ssh-other", "")
	opts := e.options(inst)
	opts.Signers = []ssh.Signer{e.other}
	_, err := provider.WaitSSH(e.ctx, e.p, inst.ID, opts)
	perr := wantKind(t, err, provider.ErrAuthentication, "WaitSSH with a key the machine does not have")
	var se *provider.StageError
	if !errors.As(err, &se) || se.Stage != provider.StageAuth || !strings.HasPrefix(perr.LastState, "auth") {
		t.Errorf("WaitSSH with a key not installed: %v; want stage auth", err)
	}
	req := e.h.Request(e.name("ssh-nokeys"))
	bare := e.create(req)
	opts = e.options(bare)
	if _, err := provider.WaitSSH(e.ctx, e.p, bare.ID, opts); !errors.Is(err, provider.ErrAuthentication) {
		t.Errorf("WaitSSH on a machine made without SSHKeys: %v, want ErrAuthentication", err)
	}
	if n := e.sshd.Stats().Logins; n != 0 {
		t.Errorf("%d logins with keys the machines do not have", n)
	}
	e.destroy(inst.ID)
	e.destroy(bare.ID)
	e.noLeaks()
}

// testSSHWrongHostKey: a machine showing another host key than the one
// the policy expects is refused at once, before any login.
func testSSHWrongHostKey(t *testing.T, h Harness) {
	e := sshSetup(t, h, suiteOptions(), sshOptions(), nil)
	inst := e.machine("ssh-mitm", "")
	for _, tc := range []struct {
		name  string
		fault bool
		keys  provider.HostKeyPolicy
	}{
		{"an impostor's key", true, provider.HostKeys(simssh.HostKey(e.cloud, e.modelID(inst.ID)))},
		{"another machine's key expected", false, provider.HostKeys(simssh.HostKey(e.cloud, e.modelID(inst.ID)+1))},
	} {
		if tc.fault {
			e.sshd.Inject(simssh.Fault{Kind: simssh.FaultHostKey, Count: 100})
		}
		opts := e.options(inst)
		opts.HostKeys = tc.keys
		start := e.sshd.Stats().Accepted
		rep, err := provider.WaitSSH(e.ctx, e.p, inst.ID, opts)
		if !errors.Is(err, provider.ErrHostKeyMismatch) {
			t.Fatalf("%s: WaitSSH: %v, want ErrHostKeyMismatch", tc.name, err)
		}
		var hk *provider.HostKeyError
		if !errors.As(err, &hk) || hk.Fingerprint == "" || len(hk.Want) != 1 {
			t.Errorf("%s: %v carries no HostKeyError with both fingerprints", tc.name, err)
		}
		if rep.HostKey != nil {
			t.Errorf("%s: the report holds the refused key", tc.name)
		}
		if n := e.sshd.Stats().Accepted - start; n != 1 {
			t.Errorf("%s: %d connections, want 1: a refused host key is not tried again", tc.name, n)
		}
	}
	if n := e.sshd.Stats().Logins; n != 0 {
		t.Errorf("%d logins to machines whose host key was refused", n)
	}
	e.destroy(inst.ID)
	e.noLeaks()
}

// testSSHCloudInitFailure: a user data the machine fails to run makes
// WaitSSH fail in stage cloud-init, saying so, without showing the user
// data.
func testSSHCloudInitFailure(t *testing.T, h Harness) {
	e := sshSetup(t, h, suiteOptions(), sshOptions(), nil)
	if !e.p.Capabilities().UserData {
		t.Skip("the provider takes no user data")
	}
	const secret = "password-in-user-data"
	inst := e.machine("ssh-ci", "#!/bin/sh\n# "+secret+"\nexit 1\n"+simssh.FailMarker+"\n")
	opts := e.options(inst)
	opts.CloudInit = true
	rep, err := provider.WaitSSH(e.ctx, e.p, inst.ID, opts)
	if !errors.Is(err, provider.ErrCloudInit) {
		t.Fatalf("WaitSSH on a machine whose cloud-init fails: %v, want ErrCloudInit", err)
	}
	var se *provider.StageError
	if !errors.As(err, &se) || se.Stage != provider.StageCloudInit {
		t.Errorf("%v names no stage cloud-init", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error shows the user data: %v", err)
	}
	if rep.CloudInit == nil || rep.CloudInit.Status != "error" {
		t.Errorf("cloud-init result %+v, want error", rep.CloudInit)
	}
	e.destroy(inst.ID)
	e.noLeaks()
}

// testSSHStageTimeouts: a stage that does not end in time is a timeout
// naming it.
func testSSHStageTimeouts(t *testing.T, h Harness) {
	// A machine that boots in 1.5 s outlasts an InstanceReady of 400 ms,
	// and can be destroyed soon after (Hetzner locks a booting server).
	slow := suiteOptions()
	slow.BootDelay = cloudTime(1500 * time.Millisecond)
	for _, tc := range []struct {
		stage     provider.Stage
		cloud     simcloud.Options
		ssh       simssh.Options
		fault     simssh.FaultKind
		cloudInit bool
	}{
		{provider.StageAPI, slow, sshOptions(), 0, false},
		{provider.StagePort, suiteOptions(), simssh.Options{PortDelay: time.Hour}, 0, false},
		{provider.StageHandshake, suiteOptions(), sshOptions(), simssh.FaultBannerTimeout, false},
		{provider.StageAuth, suiteOptions(), simssh.Options{KeysDelay: time.Hour}, 0, false},
		{provider.StageCloudInit, suiteOptions(), simssh.Options{CloudInitDelay: time.Hour}, 0, true},
	} {
		t.Run(string(tc.stage), func(t *testing.T) {
			t.Parallel()
			e := sshSetup(t, h, tc.cloud, tc.ssh, func(c *provider.Config) {
				c.Timeouts.InstanceReady = 400 * time.Millisecond
				c.Timeouts.SSHConnect = 3 * time.Second
				c.Timeouts.CloudInit = 400 * time.Millisecond
			})
			if tc.fault != 0 {
				e.sshd.Inject(simssh.Fault{Kind: tc.fault, Count: 1000})
			}
			inst := e.machine("ssh-slow", "")
			opts := e.options(inst)
			opts.CloudInit = tc.cloudInit
			// Attempts long enough for a handshake under -race on a
			// loaded machine, short enough to give up on a silent
			// server a few times within SSHConnect.
			opts.AttemptTimeout = time.Second
			opts.RefusedFor = time.Hour
			_, err := provider.WaitSSH(e.ctx, e.p, inst.ID, opts)
			perr := wantKind(t, err, provider.ErrTimeout, "WaitSSH stuck in stage "+string(tc.stage))
			var se *provider.StageError
			if !errors.As(err, &se) || se.Stage != tc.stage || !strings.HasPrefix(perr.LastState, string(tc.stage)+": ") {
				t.Errorf("WaitSSH stuck in stage %s: %v (last state %q)", tc.stage, err, perr.LastState)
			}
			e.destroy(inst.ID)
		})
	}
}

// testSSHCancel: a WaitSSH cancelled while the port is closed, or while
// it waits for cloud-init, returns promptly.
func testSSHCancel(t *testing.T, h Harness) {
	for _, tc := range []struct {
		stage, before provider.Stage
		ssh           simssh.Options
		cloudInit     bool
	}{
		{provider.StagePort, provider.StageAPI, simssh.Options{PortDelay: time.Hour}, false},
		{provider.StageCloudInit, provider.StageAuth, simssh.Options{CloudInitDelay: time.Hour}, true},
	} {
		t.Run(string(tc.stage), func(t *testing.T) {
			t.Parallel()
			e := sshSetup(t, h, suiteOptions(), tc.ssh, nil)
			inst := e.machine("ssh-cancel", "")
			opts := e.options(inst)
			opts.CloudInit = tc.cloudInit
			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			var once sync.Once
			var at time.Time
			var mu sync.Mutex
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
			// Cancelled 50 ms into the stage (a command that waits
			// for cloud-init makes no poll until it answers).
			trace := &provider.WaitTrace{
				StageDone: func(ev provider.StageEvent) {
					if ev.Stage == tc.before {
						soon()
					}
				},
			}
			_, err := provider.WaitSSH(provider.WithWaitTrace(ctx, trace), e.p, inst.ID, opts)
			mu.Lock()
			late := time.Since(at)
			mu.Unlock()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitSSH cancelled in stage %s: %v, want context.Canceled", tc.stage, err)
			}
			t.Logf("WaitSSH cancelled in stage %s returned %v after the cancel", tc.stage, late)
			if late > cancelBound {
				t.Errorf("WaitSSH returned %v after the cancel, want within %v", late, cancelBound)
			}
			e.destroy(inst.ID)
		})
	}
}

// testSSHConsoleHostKeys: on a provider whose cloud shows console output,
// the host key is verified from it, and an impostor refused.
func testSSHConsoleHostKeys(t *testing.T, h Harness) {
	e := sshSetup(t, h, suiteOptions(), sshOptions(), nil)
	inst := e.machine("ssh-console", "")
	if _, err := provider.ConsoleOutput(e.ctx, e.p, inst.ID); errors.Is(err, provider.ErrNotSupported) {
		e.destroy(inst.ID)
		t.Skip("the provider shows no console output")
	}
	opts := e.options(inst)
	opts.HostKeys = provider.ConsoleHostKeys()
	rep, err := provider.WaitSSH(e.ctx, e.p, inst.ID, opts)
	if err != nil {
		t.Fatalf("WaitSSH verifying the host key from the console: %v", err)
	}
	if rep.HostKeyTrust != "console output" {
		t.Errorf("host key trusted as %q", rep.HostKeyTrust)
	}
	e.sshd.Inject(simssh.Fault{Kind: simssh.FaultHostKey, Count: 100})
	opts.HostKeys = provider.ConsoleHostKeys()
	if _, err := provider.WaitSSH(e.ctx, e.p, inst.ID, opts); !errors.Is(err, provider.ErrHostKeyMismatch) {
		t.Errorf("WaitSSH to an impostor, checked against the console: %v, want ErrHostKeyMismatch", err)
	}
	e.destroy(inst.ID)
	e.noLeaks()
}
