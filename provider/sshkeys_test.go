package provider_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/spuffgo/spuff/provider"
)

func newEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestIdentityFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	priv := newEd25519(t)
	block, err := ssh.MarshalPrivateKey(priv, "me@laptop")
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(plain, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := provider.IdentityFromFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(priv.Public())
	if id.File != plain || id.Source != plain || id.Fingerprint() != ssh.FingerprintSHA256(pub) {
		t.Errorf("identity %+v (fingerprint %s), want %s's", id, id.Fingerprint(), plain)
	}
	if got, _, err := provider.ParseAuthorizedKey(id.AuthorizedKey() + " me@laptop\n"); err != nil || provider.KeyFingerprint(got) != id.Fingerprint() {
		t.Errorf("the authorized key %q parses back as %v (%v)", id.AuthorizedKey(), got, err)
	}

	enc, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "me@laptop", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "id_locked")
	if err := os.WriteFile(locked, pem.EncodeToMemory(enc), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := provider.IdentityFromFile(locked); !errors.Is(err, provider.ErrEncryptedKey) {
		t.Errorf("an encrypted key: %v, want ErrEncryptedKey", err)
	}
	if _, err := provider.IdentityFromFile(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	if _, _, err := provider.ParseAuthorizedKey("not a key"); err == nil {
		t.Error("ParseAuthorizedKey accepted garbage")
	}
}

func TestSSHKeyMatches(t *testing.T) {
	t.Parallel()
	pub, _ := ssh.NewPublicKey(newEd25519(t).Public())
	other, _ := ssh.NewPublicKey(newEd25519(t).Public())
	for _, k := range []provider.SSHKey{
		{PublicKey: provider.AuthorizedKey(pub) + " me@laptop"},
		{Fingerprint: ssh.FingerprintSHA256(pub)},
		{Fingerprint: ssh.FingerprintLegacyMD5(pub)},
		{Fingerprint: "MD5:" + ssh.FingerprintLegacyMD5(pub)},
	} {
		if !k.Matches(pub) {
			t.Errorf("%+v does not match its key", k)
		}
		if k.Matches(other) {
			t.Errorf("%+v matches another key", k)
		}
	}
	if (&provider.SSHKey{}).Matches(pub) {
		t.Error("a key with neither public key nor fingerprint matches")
	}
}

func TestAgentIdentities(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no Unix sockets here: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	keyring := agent.NewKeyring()
	priv := newEd25519(t)
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "me@agent"}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	ids, closer, err := provider.AgentIdentities(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	pub, _ := ssh.NewPublicKey(priv.Public())
	if len(ids) != 1 || ids[0].Source != "ssh-agent: me@agent" || ids[0].File != "" || ids[0].Fingerprint() != ssh.FingerprintSHA256(pub) {
		t.Fatalf("agent identities %+v", ids)
	}
	sig, err := ids[0].Signer.Sign(rand.Reader, []byte("data"))
	if err != nil || pub.Verify([]byte("data"), sig) != nil {
		t.Errorf("the agent's signer does not sign: %v", err)
	}
	if len(provider.Signers(ids...)) != 1 {
		t.Error("Signers lost the identity")
	}
	if _, _, err := provider.AgentIdentities(""); err == nil {
		t.Error("no socket: no error")
	}
}
