package aws

import (
	"fmt"
	"strings"
	"time"
)

// The dead man's switch of a machine with an expiry: EC2 lets a machine
// end itself without credentials — launched with the instance-initiated
// shutdown behaviour "terminate", a power-off from inside terminates it —
// so spuff adds to its user data a boot script that schedules that
// power-off at the expiry. The machine then ends even if every client and
// reaper is gone. The caller's user data is kept: both travel in one MIME
// multipart document, which cloud-init runs part by part.

// expiryBoundary separates the parts of the merged user data.
const expiryBoundary = "==spuff-expiry-boundary=="

// expiryScript is the boot script that powers the machine off at expires
// (systemd's timer; shutdown(8) as a fallback for a guest without
// systemd-run).
func expiryScript(expires time.Time) string {
	at := expires.Unix()
	return fmt.Sprintf(`#!/bin/sh
# spuff: this machine expires at %s (spuff-expires=%d); it powers itself off
# then, and EC2 terminates it (shutdown behaviour "terminate").
systemd-run --on-calendar=@%d systemctl poweroff ||
  shutdown -P "+$(( (%d - $(date +%%s)) / 60 > 1 ? (%d - $(date +%%s)) / 60 : 1 ))" "spuff: expired"
`, expires.UTC().Format(time.RFC3339), at, at, at, at)
}

// withExpiry returns the user data of a machine that expires: the
// caller's (if any) and the expiry script, as a MIME multipart document.
func withExpiry(userData string, expires time.Time) string {
	script := expiryScript(expires)
	if userData == "" {
		return script
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\nMIME-Version: 1.0\n\n", expiryBoundary)
	part := func(contentType, body string) {
		fmt.Fprintf(&b, "--%s\nContent-Type: %s; charset=\"utf-8\"\nMIME-Version: 1.0\n\n%s", expiryBoundary, contentType, body)
		if !strings.HasSuffix(body, "\n") {
			b.WriteByte('\n')
		}
	}
	part(partType(userData), userData)
	part("text/x-shellscript", script)
	fmt.Fprintf(&b, "--%s--\n", expiryBoundary)
	return b.String()
}

// partType is the cloud-init part type of user data, from how it starts
// (cloud-init's own rule).
func partType(userData string) string {
	switch {
	case strings.HasPrefix(userData, "#cloud-config"):
		return "text/cloud-config"
	case strings.HasPrefix(userData, "#!"):
		return "text/x-shellscript"
	case strings.HasPrefix(userData, "#include"):
		return "text/x-include-url"
	case strings.HasPrefix(userData, "#cloud-boothook"):
		return "text/cloud-boothook"
	case strings.HasPrefix(userData, "## template: jinja"):
		return "text/jinja2"
	}
	return "text/plain"
}
