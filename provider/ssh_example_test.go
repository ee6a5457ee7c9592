package provider_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/spuffgo/spuff/provider"
)

// Wait until a machine can be logged in to, stage by stage, with the host
// key checked against the console output the cloud shows (EC2), and print
// how long each stage took. A simulated run is in package
// providertest/simssh's example.
func ExampleWaitSSH() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p, err := provider.Open(ctx, "aws", provider.Config{Region: "eu-west-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	pem, err := os.ReadFile(os.ExpandEnv("$HOME/.ssh/id_ed25519"))
	if err != nil {
		fmt.Println(err)
		return
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx = provider.WithWaitTrace(ctx, &provider.WaitTrace{StageDone: func(ev provider.StageEvent) {
		fmt.Printf("%-10s %v\n", ev.Stage, ev.Duration.Round(time.Millisecond))
	}})
	rep, err := provider.WaitSSH(ctx, p, "i-0123456789abcdef0", provider.SSHOptions{
		User:      provider.LoginUser("aws", provider.Ubuntu("24.04")),
		Signers:   []ssh.Signer{signer},
		HostKeys:  provider.ConsoleHostKeys(),
		CloudInit: true,
	})
	var se *provider.StageError
	switch {
	case errors.Is(err, provider.ErrHostKeyMismatch):
		fmt.Println("not the machine's host key:", err)
	case errors.As(err, &se):
		fmt.Println("stuck in stage", se.Stage, ":", err)
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println("ready at", rep.Addr, "host key", rep.HostKeyFingerprint(), "after", rep.Total())
	}
}

// Check host keys against a known_hosts file, and record the key WaitSSH
// accepted for the system ssh.
func ExampleKnownHosts() {
	hostKeys, err := provider.KnownHosts() // ~/.ssh/known_hosts
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = provider.SSHOptions{HostKeys: hostKeys}
	// After a WaitSSH with another policy (ConsoleHostKeys, HostKeys):
	var rep provider.SSHReport
	if line := rep.KnownHostsLine(); line != "" {
		fmt.Println(line) // append to a known_hosts file; ssh -o HostKeyAlias=<rep.Alias>
	}
}
