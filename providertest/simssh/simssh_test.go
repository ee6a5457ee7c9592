package simssh_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/spuffgo/spuff/providertest/simcloud"
	"github.com/spuffgo/spuff/providertest/simssh"
)

// clock is a settable clock for the cloud: the tests move time instead of
// waiting for it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	clk    *clock
	cloud  *simcloud.Cloud
	sshd   *simssh.Server
	inst   simcloud.Instance
	addr   string
	signer ssh.Signer // installed
	other  ssh.Signer // the account's, not installed
}

// newFixture makes a cloud on a fake clock with one machine that
// installed one key, booted (active) but with sshd not up yet.
func newFixture(t *testing.T, opts simssh.Options, userData string) *fixture {
	t.Helper()
	clk := &clock{now: time.Unix(1700000000, 0)}
	cloud := simcloud.New(simcloud.Options{World: simcloud.WorldSimple, Seed: 5, Now: clk.Now})
	img := cloud.AddImage(simcloud.Image{Name: "ubuntu", Arch: "x86_64"})
	signer, key := simssh.AddUserKey(cloud, "me", 1)
	other, _ := simssh.AddUserKey(cloud, "other", 2)
	inst, _, err := cloud.CreateInstance(simcloud.InstanceSpec{Name: "box", Region: "r", Size: "s", ImageID: img,
		UserData: userData, SSHKeyIDs: []int64{key.ID}})
	if err != nil {
		t.Fatal(err)
	}
	clk.add(inst.ReadyAt.Sub(clk.Now())) // active, with its IP
	return &fixture{clk: clk, cloud: cloud, sshd: simssh.Start(t, cloud, opts), inst: inst,
		addr: net.JoinHostPort(inst.IPv4.String(), "22"), signer: signer, other: other}
}

// up moves the clock past sshd's start and the keys landing.
func (f *fixture) up() { f.clk.add(f.sshd.Timeline(f.inst).Keys.Sub(f.clk.Now())) }

func (f *fixture) dial(t *testing.T, signer ssh.Signer) (*ssh.Client, ssh.PublicKey, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := f.sshd.DialContext(ctx, "tcp", f.addr)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var shown ssh.PublicKey
	cc, chans, reqs, err := ssh.NewClientConn(conn, f.addr, &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, remote net.Addr, key ssh.PublicKey) error {
			if remote.String() != f.addr {
				t.Errorf("the connection says it goes to %s, want %s", remote, f.addr)
			}
			shown = key
			return nil // the test checks the key itself, after the handshake
		},
	})
	if err != nil {
		_ = conn.Close()
		return nil, shown, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), shown, nil
}

func run(t *testing.T, c *ssh.Client, cmd string) (string, int) {
	t.Helper()
	out, code, err := runE(c, cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out, code
}

// runE runs cmd and returns its output and exit status.
func runE(c *ssh.Client, cmd string) (string, int, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", 0, err
	}
	defer s.Close()
	var out syncBuffer
	s.Stdout, s.Stderr = &out, &out
	err = s.Run(cmd)
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), 0, nil
	case errors.As(err, &exit):
		return out.String(), exit.ExitStatus(), nil
	}
	return "", 0, err
}

// syncBuffer is a buffer the goroutines copying stdout and stderr share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestPortClosedUntilBoot(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simssh.Options{PortDelay: time.Second}, "")
	_, _, err := f.dial(t, f.signer)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial before sshd starts: %v, want connection refused", err)
	}
	f.clk.add(time.Second)
	c, _, err := f.dial(t, f.signer)
	if err != nil {
		t.Fatalf("dial once sshd is up: %v", err)
	}
	c.Close()
	if _, err := f.sshd.DialContext(context.Background(), "tcp", net.JoinHostPort(f.inst.IPv4.String(), "2222")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial another port: %v, want connection refused", err)
	}
	if _, err := f.sshd.DialContext(context.Background(), "tcp", "198.51.100.1:22"); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("dial an address no machine has: %v, want no route to host", err)
	}
	if _, err := f.sshd.DialContext(context.Background(), "udp", f.addr); err == nil {
		t.Errorf("dial udp: no error")
	}
	if s := f.sshd.Stats(); s.Refused != 2 || s.Unreachable != 1 || s.Accepted != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestOnlyInstalledKeysOnceLanded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simssh.Options{KeysDelay: time.Second}, "")
	f.clk.add(f.sshd.Timeline(f.inst).Port.Sub(f.clk.Now()))
	if _, shown, err := f.dial(t, f.signer); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("login before the keys land: %v, want refused", err)
	} else if string(shown.Marshal()) != string(simssh.HostKey(f.cloud, f.inst.ID).Marshal()) {
		t.Errorf("the server showed %s, not the machine's host key", ssh.FingerprintSHA256(shown))
	}
	f.up()
	if _, _, err := f.dial(t, f.other); err == nil {
		t.Fatalf("login with a key the machine does not have: accepted")
	}
	c, _, err := f.dial(t, f.signer)
	if err != nil {
		t.Fatalf("login with the installed key: %v", err)
	}
	defer c.Close()
	for cmd, want := range map[string]string{"hostname": "box\n", "whoami": "root\n", "echo a  b": "a b\n", "true": ""} {
		if out, code := run(t, c, cmd); out != want || code != 0 {
			t.Errorf("%s: %q exit %d, want %q", cmd, out, code, want)
		}
	}
	if out, code := run(t, c, "apt-get update"); code != 127 || !strings.Contains(out, "not found") {
		t.Errorf("an unknown command: %q exit %d", out, code)
	}
	if s := f.sshd.Stats(); s.Logins != 1 || s.KeysRefused < 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestCloudInit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		opts     simssh.Options
		userData string
		status   string // what cloud-init status says once done
		code     int
		errs     bool
	}{
		{"done", simssh.Options{}, "#!/bin/sh\necho hi\n", "status: done", 0, false},
		{"failed", simssh.Options{}, "#!/bin/sh\n" + simssh.FailMarker + "\n", "status: error", 1, true},
		{"failed by the option", simssh.Options{FailCloudInit: func(in simcloud.Instance) bool { return in.Name == "box" }}, "", "status: error", 1, true},
		{"old cloud-init", simssh.Options{OldCloudInit: true}, "", "invalid choice: 'status'", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.opts, tc.userData)
			f.up()
			c, _, err := f.dial(t, f.signer)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !tc.opts.OldCloudInit {
				if out, code := run(t, c, "cloud-init status"); out != "status: running\n" || code != 0 {
					t.Errorf("status while it runs: %q exit %d", out, code)
				}
			}
			if _, code := run(t, c, "test -f /var/lib/cloud/instance/boot-finished"); code != 1 {
				t.Errorf("boot-finished before the end: exit %d", code)
			}
			if _, code := run(t, c, "cat /var/lib/cloud/data/result.json"); code != 1 {
				t.Errorf("result.json before the end: exit %d", code)
			}
			// status --wait blocks until cloud-init ends.
			type result struct {
				out  string
				code int
				err  error
			}
			done := make(chan result, 1)
			go func() {
				out, code, err := runE(c, "cloud-init status --wait")
				done <- result{out, code, err}
			}()
			if !tc.opts.OldCloudInit {
				select {
				case r := <-done:
					t.Fatalf("status --wait answered %q before cloud-init ended", r.out)
				case <-time.After(50 * time.Millisecond):
				}
			}
			f.clk.add(time.Hour)
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !strings.Contains(r.out, tc.status) || r.code != tc.code {
				t.Errorf("status --wait: %q exit %d, want %q exit %d", r.out, r.code, tc.status, tc.code)
			}
			if _, code := run(t, c, "test -f /var/lib/cloud/instance/boot-finished"); code != 0 {
				t.Errorf("boot-finished after the end: exit %d", code)
			}
			out, code := run(t, c, "cat /var/lib/cloud/data/result.json")
			if code != 0 || strings.Contains(out, "scripts_user") != tc.errs {
				t.Errorf("result.json: %q exit %d", out, code)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind  simssh.FaultKind
		check func(t *testing.T, f *fixture, err error, shown ssh.PublicKey)
	}{
		{simssh.FaultReset, func(t *testing.T, _ *fixture, err error, _ ssh.PublicKey) {
			if err == nil {
				t.Error("handshake over a reset connection succeeded")
			}
		}},
		{simssh.FaultBannerTimeout, func(t *testing.T, _ *fixture, err error, _ ssh.PublicKey) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("handshake with a silent server: %v, want a timeout", err)
			}
		}},
		{simssh.FaultAuthRefused, func(t *testing.T, _ *fixture, err error, _ ssh.PublicKey) {
			if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
				t.Errorf("login under auth-refused: %v", err)
			}
		}},
		{simssh.FaultHostKey, func(t *testing.T, f *fixture, err error, shown ssh.PublicKey) {
			if err != nil || shown == nil || string(shown.Marshal()) == string(simssh.HostKey(f.cloud, f.inst.ID).Marshal()) {
				t.Errorf("impostor: %v, showed %v", err, shown)
			}
		}},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, simssh.Options{}, "")
			f.up()
			f.sshd.Inject(simssh.Fault{Kind: tc.kind, Instance: f.inst.ID + 1}) // another machine's: not taken
			f.sshd.Inject(simssh.Fault{Kind: tc.kind})
			if tc.kind == simssh.FaultBannerTimeout {
				conn, err := f.sshd.DialContext(context.Background(), "tcp", f.addr)
				if err != nil {
					t.Fatal(err)
				}
				_ = conn.SetDeadline(time.Now().Add(100 * time.Millisecond))
				_, _, _, err = ssh.NewClientConn(conn, f.addr, &ssh.ClientConfig{User: "root",
					HostKeyCallback: ssh.FixedHostKey(simssh.HostKey(f.cloud, f.inst.ID))})
				_ = conn.Close()
				tc.check(t, f, err, nil)
			} else {
				c, shown, err := f.dial(t, f.signer)
				if c != nil {
					c.Close()
				}
				tc.check(t, f, err, shown)
			}
			// The fault was for one connection: the next is served.
			c, shown, err := f.dial(t, f.signer)
			if err != nil || string(shown.Marshal()) != string(simssh.HostKey(f.cloud, f.inst.ID).Marshal()) {
				t.Fatalf("the connection after the fault: %v", err)
			}
			c.Close()
			if s := f.sshd.Stats(); s.Faults[tc.kind] != 1 {
				t.Errorf("faults %v, want one %s", s.Faults, tc.kind)
			}
		})
	}
}

func TestBlackholeHoldsTheDial(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simssh.Options{}, "")
	f.up()
	f.sshd.Inject(simssh.Fault{Kind: simssh.FaultBlackhole})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := f.sshd.DialContext(ctx, "tcp", f.addr)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial into a black hole: %v, want the context's deadline", err)
	}
}

func TestDestroyedMachineIsGone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simssh.Options{}, "")
	f.up()
	c, _, err := f.dial(t, f.signer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := f.cloud.DeleteInstance(f.inst.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.dial(t, f.signer); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("dial a destroyed machine: %v, want no route to host", err)
	}
	if _, ok := f.sshd.HostKeyFor(f.addr); ok {
		t.Errorf("a destroyed machine has a host key")
	}
}

func TestKeysAreDeterministic(t *testing.T) {
	t.Parallel()
	a := simcloud.New(simcloud.Options{Seed: 1})
	b := simcloud.New(simcloud.Options{Seed: 1})
	c := simcloud.New(simcloud.Options{Seed: 2})
	same := func(x, y ssh.PublicKey) bool { return string(x.Marshal()) == string(y.Marshal()) }
	if !same(simssh.HostKey(a, 100001), simssh.HostKey(b, 100001)) {
		t.Error("one seed, one machine: two host keys")
	}
	if same(simssh.HostKey(a, 100001), simssh.HostKey(a, 100002)) || same(simssh.HostKey(a, 100001), simssh.HostKey(c, 100001)) {
		t.Error("two machines, or two seeds, share a host key")
	}
	if !same(simssh.UserKey(1, 1).PublicKey(), simssh.UserKey(1, 1).PublicKey()) || same(simssh.UserKey(1, 1).PublicKey(), simssh.UserKey(1, 2).PublicKey()) {
		t.Error("user keys are not derived from seed and number")
	}
	_, key := simssh.AddUserKey(a, "me", 1)
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key.PublicKey))
	if err != nil || !same(pub, simssh.UserKey(1, 1).PublicKey()) {
		t.Errorf("the account's key %q is not the signer's: %v", key.PublicKey, err)
	}
	if key.Fingerprint == "" {
		t.Error("the key has no fingerprint")
	}
}

func TestCloseEndsConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simssh.Options{}, "")
	f.up()
	c, _, err := f.dial(t, f.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sshd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err == nil {
		t.Log("connection ended cleanly")
	}
	if _, _, err := f.dial(t, f.signer); err == nil {
		t.Error("dial after Close succeeded")
	}
}

// TestDelaysFollowTheWorld: the realistic world's delays are the real
// ones, scaled by the cloud's time scale; the simple world's are short;
// options override them, negative ones to none.
func TestDelaysFollowTheWorld(t *testing.T) {
	t.Parallel()
	ready := time.Unix(1700000000, 0)
	in := simcloud.Instance{ReadyAt: ready}
	for _, tc := range []struct {
		name                  string
		cloud                 simcloud.Options
		opts                  simssh.Options
		port, keys, cloudInit time.Duration
	}{
		{"realistic at 1/100", simcloud.Realistic(0.01), simssh.Options{}, 80 * time.Millisecond, 100 * time.Millisecond, 350 * time.Millisecond},
		{"simple", simcloud.Options{World: simcloud.WorldSimple}, simssh.Options{}, 20 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond},
		{"options, scaled", simcloud.Realistic(0.5), simssh.Options{PortDelay: time.Second, KeysDelay: -1, CloudInitDelay: 2 * time.Second},
			500 * time.Millisecond, 500 * time.Millisecond, 1500 * time.Millisecond},
	} {
		sshd := simssh.New(simcloud.New(tc.cloud), tc.opts)
		tl := sshd.Timeline(in)
		if tl.Port.Sub(ready) != tc.port || tl.Keys.Sub(ready) != tc.keys || tl.CloudInit.Sub(ready) != tc.cloudInit {
			t.Errorf("%s: port %v, keys %v, cloud-init %v after ready; want %v, %v, %v", tc.name,
				tl.Port.Sub(ready), tl.Keys.Sub(ready), tl.CloudInit.Sub(ready), tc.port, tc.keys, tc.cloudInit)
		}
		_ = sshd.Close()
	}
}
