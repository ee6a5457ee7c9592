package simcloud

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// HostKey returns the SSH host key of machine id: an ed25519 key that is
// the machine's for its whole life, derived from Options.Seed and id (the
// same seed gives the same keys). The simulated SSH servers
// (providertest/simssh) show it, and ConsoleOutput prints its
// fingerprint.
func (c *Cloud) HostKey(id int64) ed25519.PrivateKey {
	return DeriveKey(c.opts.Seed, "host", id)
}

// DeriveKey returns the ed25519 key named by seed, purpose and n: the
// simulated clouds' keys are derived, never random, so that a run can be
// repeated.
func DeriveKey(seed uint64, purpose string, n int64) ed25519.PrivateKey {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(n))
	sum := sha256.Sum256(append([]byte("simcloud key\x00"+purpose+"\x00"), b[:]...))
	return ed25519.NewKeyFromSeed(sum[:])
}

// AuthorizedKey formats an ed25519 public key as an OpenSSH
// authorized_keys line ("ssh-ed25519 AAAA... comment").
func AuthorizedKey(pub ed25519.PublicKey, comment string) string {
	s := "ssh-ed25519 " + base64.StdEncoding.EncodeToString(ed25519Blob(pub))
	if comment != "" {
		s += " " + comment
	}
	return s
}

// ed25519Blob is the SSH wire form of an ed25519 public key.
func ed25519Blob(pub ed25519.PublicKey) []byte {
	blob := binary.BigEndian.AppendUint32(nil, 11)
	blob = append(blob, "ssh-ed25519"...)
	blob = binary.BigEndian.AppendUint32(blob, uint32(len(pub)))
	return append(blob, pub...)
}

// FingerprintSHA256 is OpenSSH's fingerprint of an ed25519 public key
// ("SHA256:" and the unpadded base64 of the SHA-256 of its wire form).
func FingerprintSHA256(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(ed25519Blob(pub))
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// ConsoleOutput returns machine id's console output as EC2's
// GetConsoleOutput shows it: the kernel's first lines from creation, then,
// once the machine is active (ReadyAt), cloud-init's lines with the host
// key fingerprints between "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
// and its end marker, and the host key between "-----BEGIN SSH HOST KEY
// KEYS-----" and its end marker, as cloud-init prints them. It is a read
// of the model, not an API call (dialects count their own). A machine
// that is not visible gives CodeNotFound.
func (c *Cloud) ConsoleOutput(id int64) (string, error) {
	in, err := c.LookupInstance(id)
	if err != nil {
		return "", err
	}
	now := c.now()
	var b strings.Builder
	stamp := func(d time.Duration) string { return fmt.Sprintf("[%12.6f]", d.Seconds()) }
	fmt.Fprintf(&b, "%s Linux version 6.8.0-1015-sim (buildd@spuff) #16-Ubuntu SMP\n", stamp(0))
	fmt.Fprintf(&b, "%s Command line: BOOT_IMAGE=/vmlinuz root=LABEL=cloudimg-rootfs ro console=ttyS0\n", stamp(time.Millisecond))
	if now.Before(in.ReadyAt) {
		return b.String(), nil
	}
	boot := in.ReadyAt.Sub(in.CreatedAt)
	host := fmt.Sprintf("root@%s", in.Name)
	pub := c.HostKey(id).Public().(ed25519.PublicKey)
	fmt.Fprintf(&b, "%s cloud-init[612]: Cloud-init v. 24.1.3-0ubuntu3 running 'init' at %s. Up %.2f seconds.\n",
		stamp(boot/2), in.CreatedAt.UTC().Format(time.RFC1123Z), (boot / 2).Seconds())
	fmt.Fprintf(&b, "%s cloud-init[612]: Generating public/private ed25519 key pair.\n", stamp(boot*3/4))
	b.WriteString("<14>Jan  1 00:00:00 ec2: \n")
	b.WriteString("<14>Jan  1 00:00:00 ec2: #############################################################\n")
	b.WriteString("<14>Jan  1 00:00:00 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n")
	fmt.Fprintf(&b, "<14>Jan  1 00:00:00 ec2: 256 %s %s (ED25519)\n", FingerprintSHA256(pub), host)
	b.WriteString("<14>Jan  1 00:00:00 ec2: -----END SSH HOST KEY FINGERPRINTS-----\n")
	b.WriteString("<14>Jan  1 00:00:00 ec2: #############################################################\n")
	b.WriteString("-----BEGIN SSH HOST KEY KEYS-----\n")
	b.WriteString(AuthorizedKey(pub, host) + "\n")
	b.WriteString("-----END SSH HOST KEY KEYS-----\n")
	return b.String(), nil
}
