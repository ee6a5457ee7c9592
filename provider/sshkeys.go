package provider

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// An Identity is a private key to log in to machines with over SSH
// (SSHOptions.Signers), and where it came from: what a program that waits
// for SSH on the user's behalf finds in an OpenSSH private key file or in
// the user's SSH agent. Signers makes SSHOptions.Signers of identities.
type Identity struct {
	// Signer signs with the private key.
	Signer ssh.Signer
	// Source says where the key came from, for messages:
	// "/home/me/.ssh/id_ed25519", "ssh-agent: me@laptop".
	Source string
	// File is the private key file, "" for a key held by an agent.
	File string
}

// Fingerprint is the SHA256 fingerprint of the identity's public key
// ("SHA256:...").
func (id Identity) Fingerprint() string {
	if id.Signer == nil {
		return ""
	}
	return ssh.FingerprintSHA256(id.Signer.PublicKey())
}

// AuthorizedKey is the identity's public key as an authorized_keys line
// ("ssh-ed25519 AAAA..."), without a comment.
func (id Identity) AuthorizedKey() string {
	if id.Signer == nil {
		return ""
	}
	return AuthorizedKey(id.Signer.PublicKey())
}

// IdentityFromFile reads an unencrypted private key file (OpenSSH's
// format, or PEM). An encrypted key is an error matching
// ErrEncryptedKey: load it into an SSH agent (ssh-add) and use
// AgentIdentities instead; spuff never asks for passphrases.
func IdentityFromFile(path string) (Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Identity{}, fmt.Errorf("spuff: SSH private key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return Identity{}, fmt.Errorf("spuff: SSH private key %s: %w (add it to your SSH agent with ssh-add)", path, ErrEncryptedKey)
		}
		return Identity{}, fmt.Errorf("spuff: SSH private key %s: %w", path, err)
	}
	return Identity{Signer: s, Source: path, File: path}, nil
}

// ErrEncryptedKey matches (errors.Is) the error of IdentityFromFile for a
// private key file protected by a passphrase.
var ErrEncryptedKey = errors.New("the private key is encrypted")

// AgentIdentities returns the keys the SSH agent listening on the Unix
// socket path holds (the path SSH_AUTH_SOCK names), in the agent's order.
// The identities sign through the agent: close the returned Closer once
// they are no longer needed, not before.
func AgentIdentities(path string) ([]Identity, io.Closer, error) {
	if path == "" {
		return nil, nil, errors.New("spuff: SSH agent: no socket (SSH_AUTH_SOCK is not set)")
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, nil, fmt.Errorf("spuff: SSH agent: %w", err)
	}
	client := agent.NewClient(conn)
	keys, err := client.List()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("spuff: SSH agent: %w", err)
	}
	signers, err := client.Signers()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("spuff: SSH agent: %w", err)
	}
	out := make([]Identity, 0, len(signers))
	for i, s := range signers {
		src := "ssh-agent"
		if i < len(keys) && keys[i].Comment != "" {
			src += ": " + keys[i].Comment
		} else {
			src += ": " + ssh.FingerprintSHA256(s.PublicKey())
		}
		out = append(out, Identity{Signer: s, Source: src})
	}
	return out, conn, nil
}

// Signers returns the identities' signers, for SSHOptions.Signers.
func Signers(ids ...Identity) []ssh.Signer {
	out := make([]ssh.Signer, 0, len(ids))
	for _, id := range ids {
		if id.Signer != nil {
			out = append(out, id.Signer)
		}
	}
	return out
}

// ParseAuthorizedKey reads an OpenSSH public key: the contents of a .pub
// file, or one authorized_keys line ("ssh-ed25519 AAAA... me@laptop"). It
// returns the key and its comment.
func ParseAuthorizedKey(text string) (ssh.PublicKey, string, error) {
	key, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return nil, "", fmt.Errorf("spuff: SSH public key: %w", err)
	}
	return key, comment, nil
}

// AuthorizedKey formats a public key as an authorized_keys line
// ("ssh-ed25519 AAAA..."), without a comment or newline.
func AuthorizedKey(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// KeyFingerprint is the SHA256 fingerprint of a public key, as OpenSSH
// prints it ("SHA256:...").
func KeyFingerprint(key ssh.PublicKey) string { return ssh.FingerprintSHA256(key) }

// Matches reports whether the account key is key: the same public key
// when the cloud returned it (SSHKey.PublicKey), else the same
// fingerprint (OpenSSH's SHA256 form, or the MD5 hex form DigitalOcean
// and Hetzner report).
func (k *SSHKey) Matches(key ssh.PublicKey) bool {
	if k == nil || key == nil {
		return false
	}
	if k.PublicKey != "" {
		if pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.PublicKey)); err == nil {
			return keyEqual(pub, key)
		}
	}
	if k.Fingerprint == "" {
		return false
	}
	if k.Fingerprint == ssh.FingerprintSHA256(key) {
		return true
	}
	return strings.EqualFold(strings.TrimPrefix(k.Fingerprint, "MD5:"), ssh.FingerprintLegacyMD5(key))
}
