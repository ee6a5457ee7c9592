package ec2sim

import (
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"math/big"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// KeyFingerprint is a key pair's fingerprint as EC2 reports it
// (KeyPairInfo.KeyFingerprint, EC2 API Reference; the digest inputs as
// observed on real accounts, which the RSA wording of the reference gets
// wrong):
//   - ed25519, imported or created: the base64-encoded SHA-256 digest of
//     the key's SSH blob, padded ("8ZVMcTKqdR5hxMjZI3t6b09EPIOE5QA6G9/Z63ejNBM=",
//     OpenSSH's SHA256 fingerprint without its "SHA256:" prefix, with '=');
//   - RSA, imported: the colon-hex MD5 digest of the DER SubjectPublicKeyInfo
//     ("openssl pkey -pubout -outform DER | openssl md5 -c");
//   - RSA, created by EC2 (a key pair with its private key): the colon-hex
//     SHA-1 digest of the DER PKCS#8 private key.
//
// A key it cannot read keeps the model's fingerprint (MD5 of the blob,
// DigitalOcean's and Hetzner's form).
func KeyFingerprint(k simcloud.SSHKey) string {
	blob := simcloud.KeyBlob(k.PublicKey)
	switch sshString(blob) {
	case "ssh-ed25519":
		sum := sha256.Sum256(blob)
		return base64.StdEncoding.EncodeToString(sum[:])
	case "ssh-rsa":
		if k.PrivateKey != "" {
			if der := pkcs8(k.PrivateKey); der != nil {
				sum := sha1.Sum(der)
				return simcloud.ColonHex(sum[:])
			}
			break
		}
		if pub := rsaPublic(blob); pub != nil {
			if der, err := x509.MarshalPKIXPublicKey(pub); err == nil {
				sum := md5.Sum(der)
				return simcloud.ColonHex(sum[:])
			}
		}
	}
	return k.Fingerprint
}

// sshString returns the first string of an SSH wire blob (the key type).
func sshString(b []byte) string {
	s, _ := sshField(b)
	return string(s)
}

// sshField splits the first length-prefixed field off an SSH wire blob.
func sshField(b []byte) (field, rest []byte) {
	if len(b) < 4 {
		return nil, nil
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(len(b)-4) < uint64(n) {
		return nil, nil
	}
	return b[4 : 4+n], b[4+n:]
}

// rsaPublic reads an ssh-rsa blob: type, exponent e, modulus n.
func rsaPublic(blob []byte) *rsa.PublicKey {
	_, rest := sshField(blob)
	e, rest := sshField(rest)
	n, _ := sshField(rest)
	if len(e) == 0 || len(e) > 4 || len(n) == 0 {
		return nil
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}

// pkcs8 returns the DER PKCS#8 form of a PEM private key (PKCS#8 or
// PKCS#1), or nil.
func pkcs8(privatePEM string) []byte {
	blk, _ := pem.Decode([]byte(privatePEM))
	if blk == nil {
		return nil
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		return blk.Bytes
	}
	key, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil
	}
	return der
}

// The RSA key pairs the realistic world adds to the account, beside the
// model's two imported ed25519 keys: one imported, one created by EC2.
// They are fixtures of the simulator, made for it and used nowhere else.
const (
	// ImportedRSAKeyName names an RSA public key imported into the account.
	ImportedRSAKeyName = "deploy-rsa"
	// CreatedRSAKeyName names an RSA key pair EC2 generated.
	CreatedRSAKeyName = "ec2-created"
)

const importedRSAPublic = `ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDepSxWjN8ZcbZr8Z0AqS+oZEw/4gNNlQay2L6Tywlu4q4nMv7i4AwqqLrzA84nggDsg1mEetJWjIQnmAKLHoak/5e9qXQQqITf2sZO+wlUcsK3WPwksBOH/EC8dGcg5K5GHdnY69mJa0REHz1BA8V3JrwQP3xdAC8SnQfmTq99Eyr6Cipb9d8kWubPiEkviDjW6L4gyaOxXLMf5B9jtFKgnRpjtWSd2TOZvCPkZETTK6AQvJwCwq5IGkeHWszKBRsvydmqmW2pX7d1aRa0u6RFzmLLQ8wh2tzl9+fXVM4N0ujuy7/fXqEtTyMRVdrEF9Rr1+VCRUB5pGTXeZYVjW6V deploy@sim`

const createdRSAPublic = `ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDvtNXGB72870QB++4dBfFaOyU3OULbSep4EllvMUIcduMiTANfglqDYrGBUB92rr0MO5oQHiGgHnOc41cfHRum3MmZFJZk+oWI4ntffdkS8ASYS574tMlhruBnm9ID3uIMgal1hOJaDvHcDo1kXAO+2ppwTFtAoa/JNqcDzwMOaeQbC9BBbL9mePtVIVWofj4HUyFcixKMWVVZC5sKVF6NU1dINzX/GGNzbRdQcMT1WJJZjB9SuK9pJVwTkUODFveiNri8Jv9rBKY9S4cW8YgWKD79U6wrL93gdQKAi279VHZ48bCYw6+eHKLHx0zGaVLiuLziXb2DxOVAphLZkFwH ec2-created@sim`

const createdRSAPrivate = `-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDvtNXGB72870QB
++4dBfFaOyU3OULbSep4EllvMUIcduMiTANfglqDYrGBUB92rr0MO5oQHiGgHnOc
41cfHRum3MmZFJZk+oWI4ntffdkS8ASYS574tMlhruBnm9ID3uIMgal1hOJaDvHc
Do1kXAO+2ppwTFtAoa/JNqcDzwMOaeQbC9BBbL9mePtVIVWofj4HUyFcixKMWVVZ
C5sKVF6NU1dINzX/GGNzbRdQcMT1WJJZjB9SuK9pJVwTkUODFveiNri8Jv9rBKY9
S4cW8YgWKD79U6wrL93gdQKAi279VHZ48bCYw6+eHKLHx0zGaVLiuLziXb2DxOVA
phLZkFwHAgMBAAECggEAYD5ZxNCv4G+q/SbzhIixzrpHp4QgsV5cu4gWi5waAMbF
TKx7gDoc8HrMbXDHqUXglsxJf+YxNxJy9g+bl9z+kME+Wm3XMsUZn4vb4Evtv/pJ
xgI62n3wC34FEOSR7sbrOP1Ilmxb26/7cREQuTZutI8eCi/GRc2FgIMmjNNt1Tdt
F7KJm5neViweO8TRNimQRire7yt0HuKNAsFjfMCvM1hHfKn+GRuBoNmL3a8+B+l7
fYLlKQacvX8bgf9gNnAyQtlv0x50KM8W1y40ydfC40s3J6+EcUikJW9z+Qq6eDb1
T88QUX0gB3HeR61OEERbftoTw9X0bJOM3RkRZ8oZJQKBgQD3yg/PWhw6jj2qviBU
Ar05jh024KrxvzKUbvhYNg7peHbWgDtP0/nzDk0tVX2DAxc4N0fZSvL09xmXFcFk
t88ILCZhKqfBq2D1c/HqZyDP1Fy1hr84iOYSDQr7ycygdr8quOBxmMMDP4i+QeCa
NQFQI3/m/3xNZ76Lpym4xDo64wKBgQD3pjUziTekkywDIn7iIE95BJgpZmK0tKrF
KbKwrls4oskz4Uxzjol2utqC22w/kOxDuTh4hhqJdG+WYSjD/PAbNhv9nCq4GdLK
lHatYsglejTvVvvZP7IApxkqcqzuDDgllNakpYAmdMAw1y4TY4acOiosSLwRIF51
uqRvSKzvjQKBgQDvmJiU/SLSk/uY/+KumT9zSbGCANgKjcBQusS0NwFQS8VNQA0Z
8XR8y1VhAosshW6MUxfMSqaGq/A4oTaxNvKfimFKDz7LC/XjIUvIRhP6IfPLKxH3
jpg42BfIw6Zzep76pm2QKhBXMbX9kiGlup8caFcie+QrzKb4zpiPKl7L1QKBgQCs
cL1mz0tBe4EQBbsYNatg9wQE/9gHQC4Q78IPKLk4LJGxYFXduQia9e0lZShw8rax
SY26zpY31C3HJow+PCfsqra+1zkfzEts6AfjH3+CKSAm8AiZ87I8ph3t4r/rWfLW
qFb1epBLNsyEtbDNq2WV7yJih5r8ye88RuQs4QwaGQKBgQCLq1BeNnHiz11b7pQo
reCLfEZd0VmZpil6OY9UBblwgunKcpeDrQeyqwCwTKk0Xq9fHwsk2Ql07+4IrbiT
wkePza0UlOwXsbwkQHlebxKMfyOmtO4q8o9dncLUgGsGy/VdBvJJ8pgnWifu+oIS
s9TxUdxChxU0GzkXaChW1XDNuA==
-----END PRIVATE KEY-----
`

// addRealisticKeys adds the RSA key pairs of the realistic world.
func addRealisticKeys(c *simcloud.Cloud) {
	c.AddSSHKey(ImportedRSAKeyName, importedRSAPublic)
	c.AddSSHKeyPair(CreatedRSAKeyName, createdRSAPublic, createdRSAPrivate)
}
