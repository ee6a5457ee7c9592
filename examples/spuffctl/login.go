package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spuffgo/spuff/provider"
)

// Logging in. `up --ssh-key` waits until the machine takes an SSH login
// (provider.WaitSSH: api, port, handshake, auth, cloud-init) and `ssh`
// runs the system ssh against it. What both need lives in a login
// directory:
//
//   - known_hosts: the machines' host keys, under their aliases
//     (provider.HostKeyAlias), never under their addresses (the next
//     machine on the same IP is another machine). A host key is never
//     trusted blindly: on AWS it must match the fingerprints cloud-init
//     printed on the machine's console (GetConsoleOutput), which the
//     cloud's API vouches for; DigitalOcean and Hetzner show no console
//     output through their APIs, so there spuffctl trusts the key the
//     machine shows the first time (provider.TrustOnFirstUse), says so,
//     and refuses any other key after.
//   - machines/<provider>-<id>.json: the user and key `up` logged in with,
//     for `ssh`.
//
// For a real cloud the directory is the user config directory's spuff/
// folder; for a simulated cloud it is ssh-<provider>/ in the simulated
// cloud's state directory, forgotten with the cloud by `sim reset`.

// simLoginDir is the login directory of provider name's simulated cloud
// whose state is in dir.
func simLoginDir(dir, name string) string { return filepath.Join(dir, "ssh-"+name) }

// loginDir is the login directory of the provider in use.
func (a *app) loginDir() (string, error) {
	if a.sim != nil {
		dir, err := simStateDir(a.getenv)
		if err != nil {
			return "", err
		}
		return simLoginDir(dir, a.backend.name), nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no user config directory for spuffctl's known_hosts file (set HOME): %w", err)
	}
	return filepath.Join(base, "spuff"), nil
}

// knownHostsPath is spuffctl's known_hosts file for the provider in use.
func (a *app) knownHostsPath() (string, error) {
	dir, err := a.loginDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "known_hosts"), nil
}

// knownHostsHas reports whether the known_hosts file at path has an
// entry under name (spuffctl writes them unhashed).
func knownHostsHas(path, name string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if strings.HasPrefix(fields[0], "@") {
			fields = fields[1:]
		}
		for _, h := range strings.Split(fields[0], ",") {
			if h == name {
				return true
			}
		}
	}
	return false
}

// appendKnownHost adds a line to the known_hosts file at path.
func appendKnownHost(path, line string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(line + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

// loginRecord is what `up` logged in to a machine with, for `ssh`.
type loginRecord struct {
	User string `json:"user"`
	Port int    `json:"port,omitempty"`
	// Identity is the private key file that matched the key installed,
	// "" when the SSH agent holds it (ssh then uses the agent).
	Identity string `json:"identity,omitempty"`
}

func (a *app) loginRecordPath(id string) (string, error) {
	dir, err := a.loginDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "machines", a.p.Name()+"-"+id+".json"), nil
}

// saveLogin records how machine id was logged in to.
func (a *app) saveLogin(id string, r loginRecord) error {
	path, err := a.loginRecordPath(id)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// readLogin returns the record of machine id, if any.
func (a *app) readLogin(id string) (loginRecord, bool) {
	path, err := a.loginRecordPath(id)
	if err != nil {
		return loginRecord{}, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return loginRecord{}, false
	}
	var r loginRecord
	if json.Unmarshal(b, &r) != nil {
		return loginRecord{}, false
	}
	return r, true
}

// forgetLogin removes the record of a destroyed machine.
func (a *app) forgetLogin(id string) {
	if path, err := a.loginRecordPath(id); err == nil {
		_ = os.Remove(path)
	}
}

// loginUser is the user to log in to in as: the one `up` logged in as,
// else the provider's user for its default image (root; ubuntu on AWS).
func (a *app) loginUser(in *provider.Instance) string {
	if r, ok := a.readLogin(in.ID); ok && r.User != "" {
		return r.User
	}
	return provider.LoginUser(a.p.Name(), provider.Ubuntu("24.04"))
}

// expandHome expands a leading "~/" to the home directory, as a shell
// would (the README's commands are run without one in tests).
func (a *app) expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home := a.home(); home != "" {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// absPath is path made absolute, or path itself when it cannot be.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// home is the user's home directory.
func (a *app) home() string {
	if h := a.getenv("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

// installKey is an --ssh-key value resolved against the account's keys.
type installKey struct {
	// ref is what the user wrote.
	ref string
	// key is the account's key; key.ID goes in InstanceRequest.SSHKeys.
	key provider.SSHKey
	// found is false for a reference that names none of the account's
	// keys: it is passed on as written, and the cloud decides.
	found bool
	// file is the public key file it came from, if any.
	file string
}

// isKeyFile reports whether an --ssh-key value names a public key file
// rather than an account key: a path, or a name ending in .pub.
func isKeyFile(v string) bool {
	return strings.ContainsRune(v, os.PathSeparator) || strings.ContainsRune(v, '/') || strings.HasSuffix(v, ".pub")
}

// resolveKeys resolves --ssh-key values: an account key's ID, name or
// fingerprint, or a public key file (~/.ssh/id_ed25519.pub). A file's key
// must be registered on the account already (found by its public key);
// on a simulated cloud, a file's key not yet registered is registered in
// the simulated account, and spuffctl says so. A real account is never
// changed.
func (a *app) resolveKeys(ctx context.Context, refs []string) ([]installKey, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	keys, err := a.p.ListSSHKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []installKey
	for _, ref := range refs {
		if !isKeyFile(ref) {
			ik := installKey{ref: ref, key: provider.SSHKey{ID: ref}}
			for _, k := range keys {
				if k.ID == ref || k.Name == ref || k.Fingerprint == ref {
					ik.key, ik.found = *k, true
					break
				}
			}
			out = append(out, ik)
			continue
		}
		path := a.expandHome(ref)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, usagef("--ssh-key %s: %v", ref, err)
		}
		pub, comment, err := provider.ParseAuthorizedKey(string(b))
		if err != nil {
			return nil, usagef("--ssh-key %s: not an OpenSSH public key (give the .pub file, or the account key's ID, name or fingerprint): %v", ref, err)
		}
		ik := installKey{ref: ref, file: path}
		for _, k := range keys {
			if k.Matches(pub) {
				ik.key, ik.found = *k, true
				break
			}
		}
		if !ik.found {
			if a.sim == nil {
				return nil, fmt.Errorf("--ssh-key %s (%s) is not registered on the %s account: register it with %s first (spuffctl never changes a real account's keys)",
					ref, provider.KeyFingerprint(pub), a.p.Name(), a.backend.keyImport)
			}
			name := keyName(path, comment, keys)
			if _, err := a.sim.addKey(ctx, a.backend, name, provider.AuthorizedKey(pub)+" "+comment); err != nil {
				return nil, err
			}
			if keys, err = a.p.ListSSHKeys(ctx); err != nil {
				return nil, err
			}
			for _, k := range keys {
				if k.Matches(pub) {
					ik.key, ik.found = *k, true
				}
			}
			if !ik.found {
				return nil, fmt.Errorf("registered %s in the simulated %s account, but the account does not list it", ref, a.p.Name())
			}
			fmt.Fprintf(a.stderr, "%s: registered %s (%s) in the simulated %s account as key %s (%s); `spuffctl keys` lists it\n",
				programName, ref, provider.KeyFingerprint(pub), a.p.Name(), ik.key.ID, ik.key.Name)
		}
		out = append(out, ik)
	}
	return out, nil
}

// keyName names a key registered from a file: its comment, else the
// file's name, made unique among the account's keys.
func keyName(path, comment string, keys []*provider.SSHKey) string {
	name := strings.Map(func(r rune) rune {
		if r > ' ' && r < 0x7f {
			return r
		}
		return '-'
	}, comment)
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), ".pub")
	}
	taken := func(n string) bool {
		for _, k := range keys {
			if k.Name == n || k.ID == n {
				return true
			}
		}
		return false
	}
	for i, n := 2, name; ; i++ {
		if !taken(n) {
			return n
		}
		n = name + "-" + strconv.Itoa(i)
	}
}

// defaultIdentityFiles are the private key files ssh tries by default
// that spuffctl tries too.
var defaultIdentityFiles = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// loginIdentities returns the private keys to log in with: the --identity
// file alone when given; else the SSH agent's keys (SSH_AUTH_SOCK), the
// private halves of the --ssh-key files, and ~/.ssh/id_ed25519, id_ecdsa
// and id_rsa. Of those, only the ones whose public key is among the keys
// to install are kept (when the cloud says what those are): none is an
// error, before anything is made. notes say what was skipped and why.
func (a *app) loginIdentities(identity string, install []installKey) (ids []provider.Identity, closer io.Closer, notes []string, err error) {
	if identity != "" {
		id, err := provider.IdentityFromFile(a.expandHome(identity))
		if err != nil {
			return nil, nil, nil, usagef("--identity: %v", err)
		}
		ids = []provider.Identity{id}
	} else {
		if sock := a.getenv("SSH_AUTH_SOCK"); sock != "" {
			agentIDs, c, err := provider.AgentIdentities(sock)
			if err != nil {
				notes = append(notes, "no keys from the SSH agent: "+err.Error())
			} else {
				closer = c
				ids = append(ids, agentIDs...)
			}
		}
		var files []string
		for _, k := range install {
			if k.file != "" {
				files = append(files, strings.TrimSuffix(k.file, ".pub"))
			}
		}
		if home := a.home(); home != "" {
			for _, f := range defaultIdentityFiles {
				files = append(files, filepath.Join(home, ".ssh", f))
			}
		}
		seen := map[string]bool{}
		for _, f := range files {
			if seen[f] {
				continue
			}
			seen[f] = true
			id, err := provider.IdentityFromFile(f)
			switch {
			case err == nil:
				ids = append(ids, id)
			case errors.Is(err, fs.ErrNotExist):
			default:
				notes = append(notes, err.Error())
			}
		}
	}
	comparable := false
	for _, k := range install {
		comparable = comparable || k.found && (k.key.PublicKey != "" || k.key.Fingerprint != "")
	}
	if !comparable {
		if len(ids) == 0 {
			return nil, closer, notes, errors.New("no private key to log in with: give --identity FILE, run an SSH agent (SSH_AUTH_SOCK), or have ~/.ssh/id_ed25519; or skip the wait with --no-ssh-wait")
		}
		return ids, closer, notes, nil
	}
	var match []provider.Identity
	for _, id := range ids {
		for _, k := range install {
			if k.found && k.key.Matches(id.Signer.PublicKey()) {
				match = append(match, id)
				break
			}
		}
	}
	if len(match) == 0 {
		var have, want []string
		for _, id := range ids {
			have = append(have, id.Source+" ("+id.Fingerprint()+")")
		}
		for _, k := range install {
			want = append(want, k.ref)
		}
		msg := "none of the private keys found"
		if len(have) > 0 {
			msg = "none of the private keys (" + strings.Join(have, ", ") + ")"
		}
		if closer != nil {
			closer.Close()
		}
		return nil, nil, notes, fmt.Errorf("%s is the private half of the keys to install (%s): the machine would refuse the login; give --identity FILE, or skip the wait with --no-ssh-wait", msg, strings.Join(want, ", "))
	}
	return match, closer, notes, nil
}

// hostKeys returns the host key policy for machine id (see the top of
// this file), and whether the key it accepts is to be recorded in the
// known_hosts file after (the console's verdict is not kept by the
// policy itself).
func (a *app) hostKeys(known, id string) (provider.HostKeyPolicy, bool, error) {
	if a.p.Name() != "aws" {
		return provider.TrustOnFirstUse(known), false, nil
	}
	if knownHostsHas(known, provider.HostKeyAlias(a.p.Name(), id)) {
		pol, err := provider.KnownHosts(known)
		return pol, false, err
	}
	return provider.ConsoleHostKeys(), true, nil
}

// loginPlan is how to wait for a login.
type loginPlan struct {
	user      string
	ids       []provider.Identity
	cloudInit bool
}

// waitLogin runs provider.WaitSSH on machine id, reporting to pr, and
// records the host key it accepted in spuffctl's known_hosts file.
func (a *app) waitLogin(ctx context.Context, id, name string, plan loginPlan, pr *progress) (*provider.SSHReport, error) {
	known, err := a.knownHostsPath()
	if err != nil {
		return nil, err
	}
	pol, record, err := a.hostKeys(known, id)
	if err != nil {
		return nil, err
	}
	opts := provider.SSHOptions{User: plan.user, Signers: provider.Signers(plan.ids...), HostKeys: pol, CloudInit: plan.cloudInit}
	if a.sim != nil {
		// The simulated world runs faster than the real one: so do the
		// connection attempts.
		boot := a.sim.boot
		opts.Retry = provider.ExponentialWait(max(boot/50, 5*time.Millisecond), max(boot/5, 20*time.Millisecond), 1.5, 0.2)
		opts.RefusedFor = max(boot, time.Second)
	}
	if pr != nil {
		ctx = provider.WithWaitTrace(ctx, &provider.WaitTrace{Polled: pr.event, StageDone: pr.stageDone})
	}
	rep, err := provider.WaitSSH(ctx, a.p, id, opts)
	if pr != nil {
		pr.finish()
	}
	if err != nil {
		if errors.Is(err, provider.ErrHostKeyMismatch) {
			err = fmt.Errorf("%w\n%s refuses to log in to %s: its host key is not the one recorded in %s (under %s) or vouched for by the cloud; if the machine was really rebuilt, remove that line",
				err, programName, name, known, provider.HostKeyAlias(a.p.Name(), id))
		}
		return rep, err
	}
	fp, alias := rep.HostKeyFingerprint(), provider.HostKeyAlias(a.p.Name(), id)
	switch {
	case record:
		if err := appendKnownHost(known, rep.KnownHostsLine()); err != nil {
			return rep, fmt.Errorf("recording the host key of %s in %s: %w", name, known, err)
		}
		fmt.Fprintf(a.stderr, "%s: %s's host key %s matches the fingerprints on its console (%s); recorded in %s as %s\n",
			programName, name, fp, rep.HostKeyTrust, known, alias)
	case strings.HasPrefix(rep.HostKeyTrust, "trusted on first use, recorded"):
		fmt.Fprintf(a.stderr, "%s: trusted %s's host key %s on first use: %s shows no console output to check it against, so the first key seen is the one; recorded in %s as %s, and any other key will be refused\n",
			programName, name, fp, a.p.Name(), known, alias)
	}
	return rep, nil
}

// loginJSON is the --json form of a wait for SSH.
type loginJSON struct {
	User         string      `json:"user"`
	Address      string      `json:"address"`
	HostKeyAlias string      `json:"host_key_alias"`
	HostKey      string      `json:"host_key"`
	HostKeyTrust string      `json:"host_key_trust"`
	Stages       []stageJSON `json:"stages"`
	TotalMS      float64     `json:"total_ms"`
	CloudInit    string      `json:"cloud_init,omitempty"`
	Command      string      `json:"command"`
}

// stageJSON is one stage of a wait for SSH.
type stageJSON struct {
	Stage      string  `json:"stage"`
	DurationMS float64 `json:"duration_ms"`
	Attempts   int     `json:"attempts"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (a *app) loginJSON(rep *provider.SSHReport, name string) *loginJSON {
	j := &loginJSON{User: rep.User, Address: rep.Addr, HostKeyAlias: rep.Alias, HostKey: rep.HostKeyFingerprint(),
		HostKeyTrust: rep.HostKeyTrust, TotalMS: ms(rep.Total()), Command: a.sshHint(name), Stages: []stageJSON{}}
	for _, st := range rep.Stages {
		j.Stages = append(j.Stages, stageJSON{Stage: string(st.Stage), DurationMS: ms(st.Duration), Attempts: st.Attempts})
	}
	if rep.CloudInit != nil {
		j.CloudInit = rep.CloudInit.Status
	}
	return j
}

// stagesLine sums stages up: "api 3.1s, port 520ms, handshake 3ms".
func stagesLine(stages []provider.StageTiming) string {
	parts := make([]string, 0, len(stages))
	for _, st := range stages {
		parts = append(parts, string(st.Stage)+" "+roundDuration(st.Duration).String())
	}
	return strings.Join(parts, ", ")
}

// roundDuration rounds d for people: to 10 ms from a second up, to the
// millisecond below.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// sshHint is the command that logs in to the machine named name, in the
// same environment.
func (a *app) sshHint(name string) string {
	s := programName + " ssh " + name
	def := a.getenv("SPUFF_PROVIDER")
	if def == "" {
		def = backends[0].name
	}
	if a.p.Name() != def {
		s += " --provider " + a.p.Name()
	}
	if a.simulate {
		s += " --simulate"
	}
	return s
}
