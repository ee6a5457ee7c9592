package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/spuffgo/spuff/provider"
)

// exitStatus is a command's own exit status (ssh's), passed through
// without a message.
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return "exit status " + strconv.Itoa(e.code) }

func cmdSSH(a *app, args []string) error {
	fs := a.flags()
	user := fs.String("user", "", "user to log in as (default: the one `up` logged in as, else the image's: root; ubuntu on aws)")
	identity := fs.String("identity", "", "private key `file` for ssh -i (default: the one `up` logged in with, else ssh's own: the agent, ~/.ssh/id_*)")
	print := fs.Bool("print", false, "print the ssh command line instead of running it")
	rest, ctx, cancel, err := a.begin(fs, args, func(n int) bool { return n == 0 }, "ssh takes a machine ID or name, then optionally -- and a command")
	if err != nil {
		return err
	}
	defer cancel()
	ref, command := rest[0], rest[1:]
	if a.sim != nil && len(command) == 0 && !*print {
		return usagef("the simulated machines run commands (hostname, whoami, echo, cloud-init status ...), not an interactive shell: give one, as in `%s ssh %s -- hostname`", programName, ref)
	}
	list, err := a.p.ListInstances(ctx)
	if err != nil {
		return err
	}
	in, managed, err := a.resolve(ctx, list, ref)
	if errors.Is(err, errGone) {
		return fmt.Errorf("no machine %s on %s%s", ref, a.p.Name(), a.searched())
	}
	if err != nil {
		return err
	}
	if !managed {
		fmt.Fprintf(a.stderr, "note: %s is not among the machines spuff manages (or is not listed yet)\n", in.ID)
	}
	if !in.Ready() {
		return fmt.Errorf("%s (%s) is %s (%s), not running with an address yet: wait for it with `%s up` or try again", in.Name, in.ID, in.Status, in.RawStatus, programName)
	}
	rec, _ := a.readLogin(in.ID)
	if *user == "" {
		*user = rec.User
	}
	if *user == "" {
		*user = a.loginUser(in)
	}
	keyFile := a.expandHome(*identity)
	if keyFile == "" {
		keyFile = rec.Identity
	}
	known, err := a.knownHostsPath()
	if err != nil {
		return err
	}
	alias := provider.HostKeyAlias(a.p.Name(), in.ID)
	if !knownHostsHas(known, alias) {
		if *print {
			fmt.Fprintf(a.stderr, "%s: note: no host key of %s is recorded in %s yet, so this ssh will refuse it: run `%s` once (without --print) to record it\n", programName, in.Name, known, a.sshHint(in.Name))
		} else if err := a.recordHostKey(ctx, in, *user, keyFile); err != nil {
			return err
		}
	}

	sshArgs := []string{
		"-o", "UserKnownHostsFile=" + sshConfigValue(known),
		"-o", "StrictHostKeyChecking=yes",
		"-o", "HostKeyAlias=" + alias,
		"-o", "UpdateHostKeys=no",
		"-o", "CheckHostIP=no",
	}
	port := 22
	if rec.Port != 0 {
		port = rec.Port
	}
	sshArgs = append(sshArgs, "-p", strconv.Itoa(port))
	if keyFile != "" {
		sshArgs = append(sshArgs, "-i", keyFile, "-o", "IdentitiesOnly=yes")
	}
	if a.sim != nil {
		proxy, err := a.proxyCommand()
		if err != nil {
			return err
		}
		sshArgs = append(sshArgs, "-o", "ProxyCommand="+proxy)
	}
	sshArgs = append(sshArgs, *user+"@"+in.IP().String())
	sshArgs = append(sshArgs, command...)

	if *print {
		words := append([]string{"ssh"}, sshArgs...)
		for i, w := range words {
			words[i] = shellQuote(w)
		}
		fmt.Fprintln(a.stdout, strings.Join(words, " "))
		if exe, _ := os.Executable(); a.sim != nil && strings.Contains(exe, "go-build") {
			fmt.Fprintf(a.stderr, "%s: note: its ProxyCommand is this spuffctl, a temporary `go run` build that is gone when it exits: `go install ./examples/spuffctl` for one that lasts\n", programName)
		}
		return nil
	}
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		return fmt.Errorf("no ssh client to run (install OpenSSH's ssh): %w", err)
	}
	// The simulated cloud's state is not held while ssh runs: other
	// spuffctl commands go on meanwhile (the proxy reads a copy).
	simDir := ""
	if a.sim != nil {
		simDir, _ = simStateDir(a.getenv)
	}
	if err := a.close(); err != nil {
		return err
	}
	cmd := exec.Command(sshPath, sshArgs...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	cmd.Env = os.Environ()
	if simDir != "" {
		cmd.Env = append(cmd.Env, "SPUFF_SIM_DIR="+simDir)
	}
	// ssh gets the terminal's signals itself (and, on a terminal, puts it
	// in raw mode); spuffctl waits for it and exits as it did.
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &exitStatus{128 + int(ws.Signal())}
		}
		return &exitStatus{ee.ExitCode()}
	}
	return fmt.Errorf("running ssh: %w", err)
}

// recordHostKey records the host key of a machine whose key spuffctl has
// not seen (made with --no-ssh-wait, or by another program): it logs in
// once with provider.WaitSSH, verifying the key as `up` does.
func (a *app) recordHostKey(ctx context.Context, in *provider.Instance, user, keyFile string) error {
	known, err := a.knownHostsPath()
	if err != nil {
		return err
	}
	var ids []provider.Identity
	if keyFile != "" {
		id, err := provider.IdentityFromFile(keyFile)
		if err != nil {
			return usagef("--identity: %v", err)
		}
		ids = []provider.Identity{id}
	} else {
		found, closer, notes, err := a.loginIdentities("", nil)
		for _, n := range notes {
			fmt.Fprintf(a.stderr, "%s: %s\n", programName, n)
		}
		if err != nil {
			// Not loginIdentities' own words: they are up's (and
			// suggest its --no-ssh-wait).
			return fmt.Errorf("no host key of %s is recorded in %s, and checking it needs a login, but no private key was found to log in with: give --identity FILE (the private half of a key installed on %s), run an SSH agent (SSH_AUTH_SOCK), or have ~/.ssh/id_ed25519", in.Name, known, in.Name)
		}
		if closer != nil {
			defer closer.Close()
		}
		ids = found
	}
	fmt.Fprintf(a.stderr, "%s: no host key of %s is recorded in %s yet: logging in once to check it\n", programName, in.Name, known)
	_, err = a.waitLogin(ctx, in.ID, in.Name, loginPlan{user: user, ids: ids}, nil)
	return err
}

// proxyCommand is the ssh ProxyCommand that reaches a simulated machine:
// this spuffctl's `sim proxy`, with the state directory it uses.
func (a *app) proxyCommand() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("the simulated machines are reached through spuffctl itself, which cannot find its own executable: %w", err)
	}
	dir, err := simStateDir(a.getenv)
	if err != nil {
		return "", err
	}
	words := []string{"env", "SPUFF_SIM_DIR=" + dir}
	if boot := a.getenv("SPUFF_SIM_BOOT"); boot != "" {
		words = append(words, "SPUFF_SIM_BOOT="+boot)
	}
	words = append(words, exe, "sim", "proxy", "--provider", a.backend.name)
	for i, w := range words {
		// ssh expands %-tokens in ProxyCommand, then runs it with the
		// shell.
		words[i] = strings.ReplaceAll(shellQuote(w), "%", "%%")
	}
	return strings.Join(words, " ") + " %h %p", nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sshConfigValue quotes a value of an ssh -o option when it has spaces.
func sshConfigValue(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}
