package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// A HostKeyPolicy decides whether the host key a machine shows in the SSH
// handshake is the machine's own, so that WaitSSH never talks to a man in
// the middle. The package offers KnownHosts (OpenSSH known_hosts files),
// ConsoleHostKeys (the fingerprints cloud-init prints on the machine's
// console, where the cloud shows it: EC2), HostKeys (keys known in
// advance, such as host keys the caller generated and put in the user
// data) and, as an explicit choice, TrustOnFirstUse.
//
// A policy may also have a method
//
//	HostKeyAlgorithms(ctx context.Context, t *HostKeyTarget) []string
//
// returning the host key algorithms it can check for t, most preferred
// first: WaitSSH then asks the server for a key of those types (a server
// with several host keys would otherwise show one the policy has no record
// of). Policies are safe for concurrent use.
type HostKeyPolicy interface {
	// VerifyHostKey returns nil, and a short account of why the key is
	// trusted ("known_hosts /home/me/.ssh/known_hosts"), when key is the
	// host key of t. Otherwise it returns an error: a *HostKeyError
	// matching ErrHostKeyMismatch or ErrHostKeyUnknown ends WaitSSH at
	// once; one matching ErrHostKeyPending makes it try again later.
	VerifyHostKey(ctx context.Context, t *HostKeyTarget, key ssh.PublicKey) (string, error)
}

// HostKeyTarget is the machine whose host key is checked.
type HostKeyTarget struct {
	// Provider is the machine's provider.
	Provider Provider
	// Instance is the machine, as WaitReady returned it.
	Instance *Instance
	// Addr is the address dialled ("198.51.100.7:22").
	Addr string
	// Alias names the machine in known_hosts files apart from its
	// address (HostKeyAlias): public IPs are reused by the next machine,
	// an alias never is.
	Alias string
}

// HostKeyAlias returns the name spuff records a machine's host key under
// ("spuff-digitalocean-123456"), for OpenSSH's HostKeyAlias option: the
// system ssh then checks the key recorded for this machine, not for
// whatever machine had its IP before.
func HostKeyAlias(providerName, id string) string {
	return "spuff-" + providerName + "-" + id
}

// HostKeyFunc adapts a function to a HostKeyPolicy.
type HostKeyFunc func(ctx context.Context, t *HostKeyTarget, key ssh.PublicKey) (string, error)

// VerifyHostKey calls f.
func (f HostKeyFunc) VerifyHostKey(ctx context.Context, t *HostKeyTarget, key ssh.PublicKey) (string, error) {
	return f(ctx, t, key)
}

// The errors a HostKeyPolicy's *HostKeyError matches.
var (
	// ErrHostKeyMismatch: the machine showed a host key other than the
	// one expected. It may be a man in the middle: WaitSSH stops.
	ErrHostKeyMismatch = errors.New("ssh host key mismatch")
	// ErrHostKeyUnknown: the policy has nothing to check the key against
	// (no known_hosts entry for the machine).
	ErrHostKeyUnknown = errors.New("ssh host key unknown")
	// ErrHostKeyPending: what the key is checked against is not known
	// yet (the console does not show the fingerprints yet); WaitSSH tries
	// again.
	ErrHostKeyPending = errors.New("ssh host key not verifiable yet")
)

// HostKeyError is a host key a HostKeyPolicy refused.
type HostKeyError struct {
	// Addr is the address dialled.
	Addr string
	// Fingerprint is the SHA256 fingerprint of the key the machine
	// showed.
	Fingerprint string
	// Want are the fingerprints expected, empty when none was known.
	Want []string
	// Source is where the expectation comes from ("known_hosts
	// /home/me/.ssh/known_hosts", "console output").
	Source string
	// Err is ErrHostKeyMismatch, ErrHostKeyUnknown or ErrHostKeyPending,
	// or the policy's own error.
	Err error
}

// Error describes the refusal: "ssh host key mismatch (198.51.100.7:22):
// the machine showed SHA256:..., expected SHA256:... (console output)".
func (e *HostKeyError) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("ssh host key refused")
	}
	if e.Addr != "" {
		b.WriteString(" (" + e.Addr + ")")
	}
	if e.Fingerprint != "" {
		b.WriteString(": the machine showed " + e.Fingerprint)
	}
	switch {
	case len(e.Want) > 0:
		fmt.Fprintf(&b, ", expected %s", strings.Join(e.Want, " or "))
		if e.Source != "" {
			b.WriteString(" (" + e.Source + ")")
		}
	case errors.Is(e.Err, ErrHostKeyUnknown) && e.Source != "":
		b.WriteString(", which " + e.Source + " has no record of")
	}
	return b.String()
}

// Unwrap returns Err.
func (e *HostKeyError) Unwrap() error { return e.Err }

// keyEqual reports whether two public keys are the same key.
func keyEqual(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}

func fingerprints(keys []ssh.PublicKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = ssh.FingerprintSHA256(k)
	}
	return out
}

// algorithmsFor returns the host key algorithms that show keys of the
// given types, in order.
func algorithmsFor(types []string) []string {
	var out []string
	for _, t := range types {
		algs := []string{t}
		if t == ssh.KeyAlgoRSA {
			algs = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, a := range algs {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// hostKeyAlgorithms asks pol which algorithms to ask the server for; nil
// for x/crypto/ssh's defaults.
func hostKeyAlgorithms(ctx context.Context, pol HostKeyPolicy, t *HostKeyTarget) []string {
	if a, ok := pol.(interface {
		HostKeyAlgorithms(ctx context.Context, t *HostKeyTarget) []string
	}); ok {
		return a.HostKeyAlgorithms(ctx, t)
	}
	return nil
}

// HostKeys returns a policy that accepts exactly the given keys: host
// keys known in advance, such as ones the caller generated and handed to
// cloud-init in the user data (its ssh_keys module).
func HostKeys(keys ...ssh.PublicKey) HostKeyPolicy { return pinned(slices.Clone(keys)) }

type pinned []ssh.PublicKey

// VerifyHostKey accepts one of the pinned keys.
func (p pinned) VerifyHostKey(_ context.Context, t *HostKeyTarget, key ssh.PublicKey) (string, error) {
	for _, k := range p {
		if keyEqual(k, key) {
			return "pinned host key " + ssh.FingerprintSHA256(k), nil
		}
	}
	err := ErrHostKeyMismatch
	if len(p) == 0 {
		err = ErrHostKeyUnknown
	}
	return "", &HostKeyError{Addr: t.Addr, Fingerprint: ssh.FingerprintSHA256(key), Want: fingerprints(p), Source: "the pinned keys", Err: err}
}

// HostKeyAlgorithms asks for the pinned keys' types.
func (p pinned) HostKeyAlgorithms(context.Context, *HostKeyTarget) []string {
	types := make([]string, len(p))
	for i, k := range p {
		types[i] = k.Type()
	}
	return algorithmsFor(types)
}

// KnownHosts returns a policy that checks host keys against OpenSSH
// known_hosts files (hashed entries, patterns, @revoked and all), read
// once: no file means ~/.ssh/known_hosts. An entry for the machine's
// alias (HostKeyAlias, as TrustOnFirstUse and KnownHostsLine write them)
// decides when there is one, else the entries for its address: a key
// that matches none of them is ErrHostKeyMismatch, a machine without
// entries ErrHostKeyUnknown.
func KnownHosts(files ...string) (HostKeyPolicy, error) {
	if len(files) == 0 {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("spuff: known_hosts: %w", err)
		}
		files = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("spuff: known_hosts: %w", err)
	}
	return &knownHosts{cb: cb, source: "known_hosts " + strings.Join(files, ", ")}, nil
}

type knownHosts struct {
	cb     ssh.HostKeyCallback
	source string
}

// VerifyHostKey checks the alias's entries, else the address's.
func (k *knownHosts) VerifyHostKey(_ context.Context, t *HostKeyTarget, key ssh.PublicKey) (string, error) {
	return checkKnown(k.cb, k.source, t, key)
}

// HostKeyAlgorithms asks for the types of the keys the files have for
// the machine.
func (k *knownHosts) HostKeyAlgorithms(_ context.Context, t *HostKeyTarget) []string {
	return knownAlgorithms(k.cb, t)
}

// checkKnown checks key against cb for t's alias, else its address.
func checkKnown(cb ssh.HostKeyCallback, source string, t *HostKeyTarget, key ssh.PublicKey) (string, error) {
	var want []string
	for _, host := range knownNames(t) {
		err := cb(host, addrPort(t.Addr), key)
		if err == nil {
			return source, nil
		}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			return "", &HostKeyError{Addr: t.Addr, Fingerprint: ssh.FingerprintSHA256(key), Source: source + " (@revoked)", Err: ErrHostKeyMismatch}
		case errors.As(err, &ke) && len(ke.Want) > 0:
			for _, w := range ke.Want {
				want = append(want, ssh.FingerprintSHA256(w.Key))
			}
			return "", &HostKeyError{Addr: t.Addr, Fingerprint: ssh.FingerprintSHA256(key), Want: want, Source: source, Err: ErrHostKeyMismatch}
		case errors.As(err, &ke):
			continue // no entry for this name: the next
		default:
			return "", &HostKeyError{Addr: t.Addr, Fingerprint: ssh.FingerprintSHA256(key), Source: source, Err: err}
		}
	}
	return "", &HostKeyError{Addr: t.Addr, Fingerprint: ssh.FingerprintSHA256(key), Source: source, Err: ErrHostKeyUnknown}
}

// knownNames are the names a machine is looked up under, alias first, in
// the host:port form a HostKeyCallback takes.
func knownNames(t *HostKeyTarget) []string {
	var out []string
	if t.Alias != "" {
		out = append(out, net.JoinHostPort(t.Alias, "22"))
	}
	if t.Addr != "" {
		out = append(out, t.Addr)
	}
	return out
}

// knownAlgorithms returns the algorithms of the keys cb knows for t:
// asking about a key no file can hold makes knownhosts list them.
func knownAlgorithms(cb ssh.HostKeyCallback, t *HostKeyTarget) []string {
	for _, host := range knownNames(t) {
		var ke *knownhosts.KeyError
		if err := cb(host, addrPort(t.Addr), probeKey{}); errors.As(err, &ke) && len(ke.Want) > 0 {
			types := make([]string, len(ke.Want))
			for i, w := range ke.Want {
				types[i] = w.Key.Type()
			}
			return algorithmsFor(types)
		}
	}
	return nil
}

// probeKey is a public key no known_hosts file holds.
type probeKey struct{}

func (probeKey) Type() string                        { return "spuff-probe" }
func (probeKey) Marshal() []byte                     { return []byte("\x00\x00\x00\x0bspuff-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// KnownHostsLine returns a known_hosts line for the host key r accepted,
// under the machine's alias and its address: what a program appends to a
// known_hosts file before running the system ssh with
// "-o HostKeyAlias=<alias>" (or to the address). "" when r has no key.
func (r *SSHReport) KnownHostsLine() string {
	if r == nil || r.HostKey == nil || r.Instance == nil {
		return ""
	}
	var names []string
	if r.Alias != "" {
		names = append(names, r.Alias)
	}
	if r.Addr != "" {
		names = append(names, knownhosts.Normalize(r.Addr))
	}
	return knownhosts.Line(names, r.HostKey)
}

// TrustOnFirstUse returns a policy that trusts the first host key each
// machine shows and records it, then holds the machine to it: an explicit
// choice, for networks the caller trusts, when no better policy is
// available. It is not safe against a man in the middle at the first
// connection.
//
// Keys are recorded in the known_hosts file path under the machine's
// alias (HostKeyAlias), never under its address (the next machine with
// the same IP would otherwise be refused); the file is created (mode
// 0600) if needed, and entries already in it are honoured. An empty path
// keeps them in memory, for this process. VerifyHostKey's account says
// whether the key was trusted on first use (and where it was recorded)
// or matched a record.
func TrustOnFirstUse(path string) HostKeyPolicy {
	return &tofu{path: path, mem: map[string]ssh.PublicKey{}}
}

type tofu struct {
	path string
	mu   sync.Mutex
	mem  map[string]ssh.PublicKey // alias -> key, for path ""
}

// HostKeyAlgorithms asks for the type of the key recorded for the
// machine, if any: a server with several host keys then shows that one.
func (p *tofu) HostKeyAlgorithms(_ context.Context, t *HostKeyTarget) []string {
	name := t.Alias
	if name == "" {
		name = t.Addr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path == "" {
		if k, ok := p.mem[name]; ok {
			return algorithmsFor([]string{k.Type()})
		}
		return nil
	}
	if _, err := os.Stat(p.path); err != nil {
		return nil
	}
	cb, err := knownhosts.New(p.path)
	if err != nil {
		return nil
	}
	return knownAlgorithms(cb, &HostKeyTarget{Alias: name})
}

// VerifyHostKey accepts a recorded key, or records the first one.
func (p *tofu) VerifyHostKey(_ context.Context, t *HostKeyTarget, key ssh.PublicKey) (string, error) {
	name := t.Alias
	if name == "" {
		name = t.Addr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path == "" {
		if k, ok := p.mem[name]; ok {
			if keyEqual(k, key) {
				return "trusted on first use earlier (in memory)", nil
			}
			return "", &HostKeyError{Addr: t.Addr, Fingerprint: ssh.FingerprintSHA256(key), Want: []string{ssh.FingerprintSHA256(k)}, Source: "the key trusted on first use", Err: ErrHostKeyMismatch}
		}
		p.mem[name] = key
		return "trusted on first use (kept in memory): " + ssh.FingerprintSHA256(key), nil
	}
	source := "known_hosts " + p.path
	if _, err := os.Stat(p.path); err == nil {
		cb, err := knownhosts.New(p.path)
		if err != nil {
			return "", &HostKeyError{Addr: t.Addr, Source: source, Err: err}
		}
		how, err := checkKnown(cb, source, &HostKeyTarget{Alias: name}, key)
		if err == nil {
			return "trusted on first use earlier, recorded in " + p.path + ": " + how, nil
		}
		if !errors.Is(err, ErrHostKeyUnknown) {
			var hk *HostKeyError
			if errors.As(err, &hk) {
				hk.Addr = t.Addr
			}
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return "", &HostKeyError{Addr: t.Addr, Source: source, Err: err}
	}
	f, err := os.OpenFile(p.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return "", &HostKeyError{Addr: t.Addr, Source: source, Err: err}
	}
	_, werr := f.WriteString(knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(name, "22"))}, key) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", &HostKeyError{Addr: t.Addr, Source: source, Err: werr}
	}
	return "trusted on first use, recorded in " + p.path + ": " + ssh.FingerprintSHA256(key), nil
}
