package driver

import "context"

// ConsoleReader is implemented by a Driver whose cloud shows a machine's
// serial console output through its API (EC2's GetConsoleOutput). The
// portable layer reads it to verify SSH host keys: cloud-init prints the
// machine's host key fingerprints there, between the lines
// "-----BEGIN SSH HOST KEY FINGERPRINTS-----" and
// "-----END SSH HOST KEY FINGERPRINTS-----", before anyone can log in.
type ConsoleReader interface {
	// ConsoleOutput returns the machine's console output as the cloud
	// keeps it (the latest output where the cloud can give it, decoded
	// to text), "" when the cloud has none yet. An *Error of KindNotFound
	// means the machine does not exist. One call, no retry, no waiting
	// (the portable layer retries and waits).
	ConsoleOutput(ctx context.Context, id string) (string, error)
}
