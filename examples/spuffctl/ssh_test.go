package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// needSSH skips a test that runs the system ssh when there is none.
func needSSH(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/ssh"); err != nil {
		t.Skipf("no /usr/bin/ssh: %v", err)
	}
}

// sshKeyPair writes a new ed25519 key pair to e.home/.ssh/name and
// name.pub, and returns the public key's authorized_keys form.
func (e *env) sshKeyPair(name string) string {
	e.t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name+"@test")
	if err != nil {
		e.t.Fatal(err)
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		e.t.Fatal(err)
	}
	dir := filepath.Join(e.home, ".ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pub"), []byte(line+" "+name+"@test\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return line
}

// knownHosts is the known_hosts file spuffctl keeps for the simulated
// cloud of providerName.
func (e *env) knownHosts(providerName string) string {
	return filepath.Join(simLoginDir(e.dir, providerName), "known_hosts")
}

// sshStages are the stages of a wait for SSH, in order.
var sshStages = []string{"api", "port", "handshake", "auth", "cloud-init"}

// TestUpWaitsForSSHThenSSHRuns: on every provider, `up --ssh-key FILE.pub
// --identity FILE` shows the stages of the wait for SSH as they end, says
// how it trusted the host key (first use on DigitalOcean and Hetzner, the
// console on AWS) and records it under the machine's alias; then `ssh NAME
// -- cmd` runs cmd there with the system ssh, as the image's user, with
// the key up logged in with, from any directory.
func TestUpWaitsForSSHThenSSHRuns(t *testing.T) {
	t.Parallel()
	needSSH(t)
	for i := range backends {
		b := &backends[i]
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.sshKeyPair("k")
			r := e.must("up", "--provider", b.name, "--name", "web", "--ssh-key", ".ssh/k.pub", "--identity", ".ssh/k")
			last := -1
			for _, st := range sshStages {
				i := strings.Index(r.stderr, "waiting for web: "+st+" done in ")
				if i < 0 || i < last {
					t.Errorf("stderr lacks %q after the stages before it:\n%v", st+" done in", r)
				}
				last = i
			}
			ready := regexpFind(`(?m)^ready: api [^,]+, port [^,]+, handshake [^,]+, auth [^,]+, cloud-init [^,]+ \(cloud-init: done\)$`, r.stdout)
			if ready == "" {
				t.Errorf("up does not print the stages' times on a ready: line:\n%v", r)
			}
			id := regexpFind(`(?m)^id: +(\S+)$`, r.stdout)
			alias := "spuff-" + b.name + "-" + id
			trust := "on first use"
			if b.name == "aws" {
				trust = "matches the fingerprints on its console"
			}
			if !strings.Contains(r.stderr, trust) || !strings.Contains(r.stderr, "recorded in "+e.knownHosts(b.name)+" as "+alias) {
				t.Errorf("up does not say it trusted the host key %s and recorded it as %s:\n%v", trust, alias, r)
			}
			if !knownHostsHas(e.knownHosts(b.name), alias) {
				t.Errorf("%s has no entry for %s", e.knownHosts(b.name), alias)
			}

			if r := e.must("ssh", "web", "--provider", b.name, "--identity", ".ssh/k", "--", "echo", "hi"); r.stdout != "hi\n" {
				t.Errorf("ssh web -- echo hi printed %q, want hi:\n%v", r.stdout, r)
			}
			// Without --identity: the user and key up logged in with, and
			// from another directory than the one up ran in.
			user := "root"
			if b.name == "aws" {
				user = "ubuntu"
			}
			elsewhere := t.TempDir()
			if r := e.runIn(elsewhere, "ssh", "web", "--provider", b.name, "--", "whoami"); r.code != exitOK || r.stdout != user+"\n" {
				t.Errorf("ssh web -- whoami from another directory: want %s:\n%v", user, r)
			}
		})
	}
}

// TestUpSSHStagesInJSON: `up --json` with a key has the wait's stages and
// their timings; --no-cloud-init has no cloud-init stage; --no-ssh-wait
// has no wait for SSH at all.
func TestUpSSHStagesInJSON(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		args   []string
		stages []string
	}{
		{"wait", nil, sshStages},
		{"no-cloud-init", []string{"--no-cloud-init"}, sshStages[:4]},
		{"no-ssh-wait", []string{"--no-ssh-wait"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.sshKeyPair("k")
			r := e.must(append([]string{"up", "--json", "--provider", "hetzner", "--name", "web", "--ssh-key", ".ssh/k.pub", "--identity", ".ssh/k"}, c.args...)...)
			var out struct {
				ID       string     `json:"id"`
				SSHReady *loginJSON `json:"ssh_ready"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("up --json printed %q: %v", r.stdout, err)
			}
			if c.stages == nil {
				if out.SSHReady != nil || strings.Contains(r.stdout, "stages") {
					t.Errorf("up --no-ssh-wait --json has a wait for SSH:\n%v", r)
				}
				for _, st := range sshStages[1:] {
					if strings.Contains(r.stderr, st+" done") {
						t.Errorf("up --no-ssh-wait waited for %s:\n%v", st, r)
					}
				}
				return
			}
			j := out.SSHReady
			if j == nil {
				t.Fatalf("up --json has no ssh_ready:\n%v", r)
			}
			var got []string
			sum := 0.0
			for _, st := range j.Stages {
				got = append(got, st.Stage)
				if st.DurationMS < 0 || st.Attempts < 1 {
					t.Errorf("stage %+v: want a duration and at least one attempt", st)
				}
				sum += st.DurationMS
			}
			if !slices.Equal(got, c.stages) {
				t.Errorf("ssh_ready.stages = %q, want %q", got, c.stages)
			}
			if j.TotalMS <= 0 || j.TotalMS+1 < sum {
				t.Errorf("ssh_ready.total_ms = %v, the stages sum to %v", j.TotalMS, sum)
			}
			wantCI := ""
			if slices.Contains(c.stages, "cloud-init") {
				wantCI = "done"
			}
			if j.CloudInit != wantCI || j.User != "root" || j.HostKeyAlias != "spuff-hetzner-"+out.ID ||
				!strings.HasPrefix(j.HostKey, "SHA256:") || j.Command != "spuffctl ssh web --provider hetzner" {
				t.Errorf("ssh_ready = %+v", j)
			}
		})
	}
}

// TestSSHRefusesWhatItShould: `spuffctl ssh` with a key the machine does
// not have is refused by the machine, and a host key other than the one
// recorded makes it refuse the machine; --print shows the strict
// checking it runs ssh with.
func TestSSHRefusesWhatItShould(t *testing.T) {
	t.Parallel()
	needSSH(t)
	e := newEnv(t)
	e.sshKeyPair("k")
	otherKey := e.sshKeyPair("other")
	web := e.up("--name", "web", "--ssh-key", ".ssh/k.pub", "--identity", ".ssh/k")
	alias := "spuff-digitalocean-" + web.ID

	r := e.must("ssh", "web", "--print")
	for _, want := range []string{"-o StrictHostKeyChecking=yes", "-o HostKeyAlias=" + alias, "-o UserKnownHostsFile=" + e.knownHosts("digitalocean"),
		" sim proxy --provider digitalocean %h %p'", " root@" + web.IPv4} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ssh --print lacks %q:\n%v", want, r)
		}
	}

	r = e.run("ssh", "web", "--identity", ".ssh/other", "--", "echo", "hi")
	if r.code == exitOK || strings.Contains(r.stdout, "hi") || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("ssh with a key the machine does not have: want it refused:\n%v", r)
	}

	// Another host key under the machine's alias: as if the machine were
	// another one now.
	kh := e.knownHosts("digitalocean")
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(l, alias+" ") || strings.HasPrefix(l, alias+",") {
			l = alias + " " + otherKey
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("ssh", "web", "--", "echo", "hi")
	if r.code == exitOK || strings.Contains(r.stdout, "hi") || !strings.Contains(r.stderr, "Host key verification failed") {
		t.Errorf("ssh to a machine whose host key changed: want ssh to refuse it:\n%v", r)
	}
}

// TestSSHAfterNoSSHWait: a machine made with --no-ssh-wait has no host
// key recorded: the first `ssh` logs in once to trust it (first use), and
// uses the --identity that up was given; a machine nobody gave a key for
// is refused with a message that helps.
func TestSSHAfterNoSSHWait(t *testing.T) {
	t.Parallel()
	needSSH(t)
	e := newEnv(t)
	e.sshKeyPair("k")
	web := e.up("--provider", "hetzner", "--name", "web", "--ssh-key", ".ssh/k.pub", "--identity", ".ssh/k", "--no-ssh-wait")
	alias := "spuff-hetzner-" + web.ID
	if knownHostsHas(e.knownHosts("hetzner"), alias) {
		t.Fatalf("up --no-ssh-wait recorded a host key")
	}
	r := e.must("ssh", "web", "--provider", "hetzner", "--", "hostname")
	if r.stdout != "web\n" || !strings.Contains(r.stderr, "logging in once to check it") || !knownHostsHas(e.knownHosts("hetzner"), alias) {
		t.Errorf("the first ssh to a machine made with --no-ssh-wait:\n%v", r)
	}

	e.up("--provider", "hetzner", "--name", "bare", "--ssh-key", ".ssh/k.pub", "--no-ssh-wait")
	r = e.run("ssh", "bare", "--provider", "hetzner", "--", "hostname")
	if r.code != exitFailed || !strings.Contains(r.stderr, "--identity") || strings.Contains(r.stderr, "--no-ssh-wait") {
		t.Errorf("ssh to a machine with no key to log in with: want exit 1 and a hint to give --identity (not an up flag):\n%v", r)
	}
	if r := e.must("ssh", "bare", "--provider", "hetzner", "--identity", ".ssh/k", "--", "hostname"); r.stdout != "bare\n" {
		t.Errorf("ssh bare --identity .ssh/k -- hostname:\n%v", r)
	}

	// down forgets how it logged in to the machine it destroyed.
	record := filepath.Join(simLoginDir(e.dir, "hetzner"), "machines", "hetzner-"+web.ID+".json")
	if _, err := os.Stat(record); err != nil {
		t.Fatalf("up recorded no login for web: %v", err)
	}
	e.must("down", "web", "--provider", "hetzner")
	if _, err := os.Stat(record); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after down web, its login record %s: %v, want it removed", record, err)
	}
}
