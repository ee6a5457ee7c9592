package provider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ConsoleOutput returns the console output of machine id, as far as the
// cloud shows it ("" when it shows none yet): the kernel's and
// cloud-init's boot messages, the host key fingerprints among them. It is
// one API call, retried when that is safe, paced under the account's rate
// limit. A provider whose cloud shows no console output (DigitalOcean,
// Hetzner) answers ErrNotSupported; an unknown machine is ErrNotFound.
func ConsoleOutput(ctx context.Context, p Provider, id string) (string, error) {
	const op = "ConsoleOutput"
	var m *machines
	if !p.As(&m) || m.console == nil {
		return "", &Error{Kind: KindNotSupported, Provider: p.Name(), Op: op, Resource: "instance", ID: id,
			Message: "the provider shows no console output"}
	}
	start := time.Now()
	if err := m.checkID(op, "instance", id, true); err != nil {
		return "", err
	}
	out, err := retried(ctx, m.pol, op, func(ctx context.Context) (string, error) { return m.console.ConsoleOutput(ctx, id) })
	if err != nil {
		return "", m.fail(op, "instance", id, start, err)
	}
	return out, nil
}

// The markers cloud-init's ssh module writes around the host keys on the
// console.
const (
	beginFingerprints = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
	endFingerprints   = "-----END SSH HOST KEY FINGERPRINTS-----"
	beginKeys         = "-----BEGIN SSH HOST KEY KEYS-----"
	endKeys           = "-----END SSH HOST KEY KEYS-----"
)

// ConsoleKeys are the host keys a machine's console output shows.
type ConsoleKeys struct {
	// Fingerprints are the fingerprints between the "SSH HOST KEY
	// FINGERPRINTS" markers, as printed: "SHA256:..." (OpenSSH 6.8 and
	// later) or the colon-separated hex of MD5 (before).
	Fingerprints []string
	// Keys are the public keys between the "SSH HOST KEY KEYS" markers,
	// when cloud-init printed them.
	Keys []ssh.PublicKey
}

// Match reports whether key is one of the keys, or has one of the
// fingerprints.
func (c *ConsoleKeys) Match(key ssh.PublicKey) bool {
	if c == nil || key == nil {
		return false
	}
	for _, k := range c.Keys {
		if keyEqual(k, key) {
			return true
		}
	}
	sha, md5 := ssh.FingerprintSHA256(key), ssh.FingerprintLegacyMD5(key)
	for _, f := range c.Fingerprints {
		if f == sha || strings.EqualFold(strings.TrimPrefix(f, "MD5:"), md5) {
			return true
		}
	}
	return false
}

// want lists what the machine's key should match, for a HostKeyError.
func (c *ConsoleKeys) want() []string {
	out := append([]string(nil), c.Fingerprints...)
	for _, k := range c.Keys {
		if f := ssh.FingerprintSHA256(k); !containsString(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var (
	sha256Print = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}=?$`)
	md5Print    = regexp.MustCompile(`^(MD5:)?([0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2}$`)
)

// ParseConsoleHostKeys reads the host keys cloud-init printed in a
// console output: the fingerprints between "-----BEGIN SSH HOST KEY
// FINGERPRINTS-----" and "-----END SSH HOST KEY FINGERPRINTS-----", and
// the keys between "-----BEGIN SSH HOST KEY KEYS-----" and its end
// marker, whatever each line's prefix ("ec2: ", a timestamp). A console
// that shows several boots (a reboot, a machine restored from a snapshot
// with new keys) is read at its last complete block. An output without a
// complete block gives an error matching ErrHostKeyPending: cloud-init
// has not got there yet, or the cloud has not shown it yet (EC2's console
// lags by minutes).
func ParseConsoleHostKeys(output string) (*ConsoleKeys, error) {
	var (
		prints, keys     []string // the block being read
		lastPrints       []string
		lastKeys         []ssh.PublicKey
		printsAt, keysAt int // the line the last complete block of each ended at
		inPrints, inKeys bool
		n                int
	)
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.Contains(line, beginFingerprints):
			inPrints, inKeys, prints = true, false, nil
		case strings.Contains(line, endFingerprints):
			if inPrints && len(prints) > 0 {
				lastPrints, printsAt = prints, n
			}
			inPrints = false
		case strings.Contains(line, beginKeys):
			inKeys, inPrints, keys = true, false, nil
		case strings.Contains(line, endKeys):
			if inKeys && len(keys) > 0 {
				lastKeys, keysAt = nil, n
				for _, l := range keys {
					if k := parseKeyLine(l); k != nil {
						lastKeys = append(lastKeys, k)
					}
				}
			}
			inKeys = false
		case inPrints:
			for _, f := range strings.Fields(line) {
				if sha256Print.MatchString(f) || md5Print.MatchString(f) {
					prints = append(prints, f)
					break
				}
			}
		case inKeys:
			if parseKeyLine(line) != nil {
				keys = append(keys, line)
			}
		}
	}
	// cloud-init prints the fingerprints, then the keys: keys printed
	// before the last fingerprints are an earlier boot's.
	if keysAt < printsAt {
		lastKeys = nil
	}
	if len(lastPrints) == 0 && len(lastKeys) == 0 {
		return nil, fmt.Errorf("no host key fingerprints in the console output: %w", ErrHostKeyPending)
	}
	return &ConsoleKeys{Fingerprints: lastPrints, Keys: lastKeys}, nil
}

// parseKeyLine parses the public key on a console line, after whatever
// prefix the console put before it.
func parseKeyLine(line string) ssh.PublicKey {
	for _, t := range []string{"ssh-", "ecdsa-", "sk-"} {
		if i := strings.Index(line, t); i >= 0 {
			if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line[i:])); err == nil {
				return k
			}
		}
	}
	return nil
}

// ConsoleHostKeys returns a policy that checks the host key against the
// fingerprints cloud-init printed on the machine's console, read through
// ConsoleOutput: the cloud's API, reached with the caller's credentials,
// vouches for the key before the first connection (EC2's
// GetConsoleOutput; a provider without console output makes WaitSSH fail
// with ErrNotSupported). Until the console shows the fingerprints, WaitSSH
// tries again (ErrHostKeyPending): each try reads the console, one API
// call, spaced as the connection attempts are. What a machine's console
// showed is kept for its later connections.
func ConsoleHostKeys() HostKeyPolicy { return &consoleKeys{seen: map[string]*ConsoleKeys{}} }

type consoleKeys struct {
	mu   sync.Mutex
	seen map[string]*ConsoleKeys // by provider and instance ID
}

// VerifyHostKey reads the console (once it has shown the keys, no more)
// and matches key against it.
func (c *consoleKeys) VerifyHostKey(ctx context.Context, t *HostKeyTarget, key ssh.PublicKey) (string, error) {
	if t.Provider == nil || t.Instance == nil {
		return "", &HostKeyError{Addr: t.Addr, Source: "console output", Err: errors.New("no machine to read the console of")}
	}
	k := t.Provider.Name() + "\x00" + t.Instance.ID
	c.mu.Lock()
	keys := c.seen[k]
	c.mu.Unlock()
	if keys == nil {
		out, err := ConsoleOutput(ctx, t.Provider, t.Instance.ID)
		switch {
		case err != nil && IsRetryable(err):
			return "", &HostKeyError{Addr: t.Addr, Source: "console output", Err: fmt.Errorf("%w: reading the console: %w", ErrHostKeyPending, err)}
		case err != nil:
			return "", &HostKeyError{Addr: t.Addr, Source: "console output", Err: err}
		}
		keys, err = ParseConsoleHostKeys(out)
		if err != nil {
			return "", &HostKeyError{Addr: t.Addr, Fingerprint: ssh.FingerprintSHA256(key), Source: "console output", Err: err}
		}
		c.mu.Lock()
		c.seen[k] = keys
		c.mu.Unlock()
	}
	if keys.Match(key) {
		return "console output", nil
	}
	return "", &HostKeyError{Addr: t.Addr, Fingerprint: ssh.FingerprintSHA256(key), Want: keys.want(), Source: "console output", Err: ErrHostKeyMismatch}
}
