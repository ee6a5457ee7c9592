package simcloud

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

func (c *Cloud) addActionLocked(typ string, resID int64, resType string, start, done time.Time) Action {
	a := &Action{ID: c.id(), Type: typ, ResourceID: resID, ResourceType: resType, StartedAt: start, DoneAt: done}
	c.actions[a.ID] = a
	return *a
}

// GetAction returns an action, or CodeNotFound.
func (c *Cloud) GetAction(id int64) (Action, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.actions[id]
	if !ok {
		return Action{}, errf(CodeNotFound, "action %d not found", id)
	}
	return *a, nil
}

// ActionsFor returns the actions of a resource, oldest first.
func (c *Cloud) ActionsFor(resourceType string, id int64) []Action {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.actionsForLocked(resourceType, id)
}

func (c *Cloud) actionsForLocked(resourceType string, id int64) []Action {
	var out []Action
	for _, a := range c.actions {
		if a.ResourceID == id && a.ResourceType == resourceType {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(a, b Action) int { return int(a.ID - b.ID) })
	return out
}

// AddSSHKey registers (imports) a public key and returns it.
func (c *Cloud) AddSSHKey(name, publicKey string) SSHKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addKeyLocked(name, publicKey, "")
}

// AddSSHKeyPair registers a key pair the cloud generated (EC2's
// CreateKeyPair): the public key and the PEM private key, which EC2
// fingerprints differently from an imported key.
func (c *Cloud) AddSSHKeyPair(name, publicKey, privateKeyPEM string) SSHKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addKeyLocked(name, publicKey, privateKeyPEM)
}

func (c *Cloud) addKeyLocked(name, pub, priv string) SSHKey {
	k := &SSHKey{ID: c.id(), Name: name, PublicKey: pub, Fingerprint: fingerprint(pub), PrivateKey: priv}
	c.keys[k.ID] = k
	return *k
}

// SSHKeys returns the account's keys in ID order.
func (c *Cloud) SSHKeys() []SSHKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SSHKey, 0, len(c.keys))
	for _, k := range c.keys {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b SSHKey) int { return int(a.ID - b.ID) })
	return out
}

// FindSSHKey finds a key by ID (decimal), name or fingerprint.
func (c *Cloud) FindSSHKey(ref string) (SSHKey, bool) {
	for _, k := range c.SSHKeys() {
		if fmt.Sprint(k.ID) == ref || k.Name == ref || k.Fingerprint == ref {
			return k, true
		}
	}
	return SSHKey{}, false
}

// fakePublicKey makes a deterministic, well-formed ssh-ed25519 public key.
func fakePublicKey(seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0xed25519))
	blob := []byte{0, 0, 0, 11}
	blob = append(blob, "ssh-ed25519"...)
	blob = append(blob, 0, 0, 0, 32)
	for range 32 {
		blob = append(blob, byte(r.UintN(256)))
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " sim@spuff"
}

// KeyBlob returns the SSH wire-format blob of an authorized_keys line
// ("ssh-ed25519 AAAA… comment"), or nil.
func KeyBlob(pub string) []byte {
	f := strings.Fields(pub)
	if len(f) < 2 {
		return nil
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil
	}
	return blob
}

// fingerprint is the MD5 fingerprint DigitalOcean and Hetzner show: the
// colon-separated hex MD5 of the key's SSH wire blob (RFC 4716, section 4).
func fingerprint(pub string) string {
	blob := KeyBlob(pub)
	if blob == nil {
		return ""
	}
	return ColonHex(md5Sum(blob))
}

func md5Sum(b []byte) []byte { s := md5.Sum(b); return s[:] }

// ColonHex writes a digest as colon-separated lower-case hex pairs, the
// form of MD5 and SHA-1 key fingerprints.
func ColonHex(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":")
}
