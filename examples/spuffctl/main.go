// Command spuffctl is a thin command-line client of spuff: it creates,
// lists, snapshots and destroys machines on DigitalOcean, Hetzner Cloud and
// AWS EC2, and shows how a program uses the library.
//
// It talks to a real cloud only when the provider is named (--provider, or
// the SPUFF_PROVIDER environment variable) and that provider's credentials
// are found. Otherwise, or with --simulate, it runs against spuff's built-in
// simulated cloud, says so on stderr, and keeps the simulated cloud's state
// in $SPUFF_SIM_DIR (default: the user cache directory's spuff/ folder) so
// that `up`, `ls` and `down` behave as against a real cloud. One spuffctl
// at a time uses a simulated cloud's state (others wait); `spuffctl sim
// serve` serves the simulated clouds to other programs.
//
// Usage:
//
//	spuffctl providers [--json]
//	spuffctl up [--provider p] [--region r,...] [--size s,...] [--image ubuntu:24.04] [--name n] [--label k=v]... [--user-data @file] [--ssh-key k]... [--identity file] [--ssh-user u] [--no-ssh-wait] [--no-cloud-init] [--ttl 2h] [--keep] [--json]
//	spuffctl ls [--provider p] [--json]
//	spuffctl status <id|name> [--provider p] [--json]
//	spuffctl down <id|name>... [--provider p]
//	spuffctl down --all [--provider p] [--yes]
//	spuffctl snapshot create <id|name> [--name n] [--provider p] [--json]
//	spuffctl snapshot ls [--provider p] [--json]
//	spuffctl snapshot rm <snapshot>... [--provider p]
//	spuffctl reap [--dry-run] [--older-than 24h] [--provider p] [--json]
//	spuffctl ssh <id|name> [--provider p] [--user u] [--identity file] [--print] [-- command...]
//	spuffctl sizes [--provider p] [--min-cpu 2] [--min-mem 4] [--arch arm64] [--region r]... [--max-price 0.05] [--json]
//	spuffctl keys [--provider p] [--json]
//	spuffctl sim path [--provider p]
//	spuffctl sim reset [--provider p]
//	spuffctl sim serve [--listen 127.0.0.1:0] [--provider p]
//
// Flags may come anywhere on the line ("--" ends them). Every command takes
// --provider, --simulate, --json, --timeout, --endpoint and --help. Exit
// status: 0 success, 1 the operation failed, 2 usage error, 130 interrupted
// (128 + the signal's number).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spuffgo/spuff/provider"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	programName = "spuffctl"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		cancel(&signalError{s})
		// A second signal ends the process at once, cleanup or not.
		s = <-sigs
		fmt.Fprintf(os.Stderr, "%s: %v again; exiting without cleaning up\n", programName, s)
		os.Exit(signalStatus(s))
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	os.Exit(code)
}

// signalError is the cause of the run's context when a signal stopped it.
type signalError struct{ sig os.Signal }

func (e *signalError) Error() string { return "interrupted (" + e.sig.String() + ")" }

// signalStatus is the shell's exit status for a process ended by s.
func signalStatus(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 128 + int(syscall.SIGINT)
}

// usageError marks an error the user made on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	// usages are the command's forms, one per line of its help, each
	// runnable as shown once its placeholders are filled in.
	usages []string
	run    func(a *app, args []string) error
}

func commands() []command {
	return []command{
		{"providers", "list the providers and where their credentials come from",
			[]string{"providers [--json]"}, cmdProviders},
		{"up", "create a machine and wait until it is ready",
			[]string{"up [--provider p] [--region r,...] [--size s,...] [--image ubuntu:24.04] [--name n] [--label k=v]... [--user-data @file] [--ssh-key k]... [--identity file] [--ssh-user u] [--no-ssh-wait] [--no-cloud-init] [--ttl 2h] [--keep] [--json]"}, cmdUp},
		{"ls", "list the machines spuff manages",
			[]string{"ls [--provider p] [--json]"}, cmdLs},
		{"status", "show one machine",
			[]string{"status <id|name> [--provider p] [--json]"}, cmdStatus},
		{"down", "destroy machines spuff manages",
			[]string{"down <id|name>... [--provider p]", "down --all [--provider p] [--yes]"}, cmdDown},
		{"snapshot", "create, list or remove snapshots",
			[]string{"snapshot create <id|name> [--name n] [--provider p] [--json]", "snapshot ls [--provider p] [--json]", "snapshot rm <snapshot>... [--provider p]"}, cmdSnapshot},
		{"reap", "destroy the machines and snapshots past their expiry (--ttl)",
			[]string{"reap [--dry-run] [--older-than 24h] [--provider p] [--json]"}, cmdReap},
		{"ssh", "log in to a machine, or run a command on it, with the system ssh (host key checked)",
			[]string{"ssh <id|name> [--provider p] [--user u] [--identity file] [--print] [-- command...]"}, cmdSSH},
		{"sizes", "list the sizes and regions that fit, cheapest first, from the cloud's catalogue",
			[]string{"sizes [--provider p] [--min-cpu 2] [--min-mem 4] [--arch arm64] [--region r]... [--max-price 0.05] [--json]"}, cmdSizes},
		{"keys", "list the account's SSH keys",
			[]string{"keys [--provider p] [--json]"}, cmdKeys},
		{"sim", "show, reset or serve the built-in simulated clouds",
			[]string{"sim path [--provider p]", "sim reset [--provider p]", "sim serve [--listen 127.0.0.1:0] [--provider p]"}, cmdSim},
	}
}

func topUsage(w io.Writer) {
	fmt.Fprintf(w, "%s creates, waits for, snapshots and destroys cloud machines (spuff).\n\nUsage:\n", programName)
	for _, c := range commands() {
		for _, u := range c.usages {
			fmt.Fprintf(w, "  %s %s\n", programName, u)
		}
	}
	fmt.Fprintf(w, "\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nFlags may come anywhere on the line (-- ends them). Run '%s <command> --help' for a command's flags.\n", programName)
	fmt.Fprintf(w, "A real cloud is used only when the provider is named (--provider or SPUFF_PROVIDER) and its credentials\nare found; otherwise %s uses a built-in simulated cloud and says so.\n", programName)
}

// run is main without the process: it returns the exit status. A context
// cancelled with a *signalError cause is an interrupt.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		topUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		topUsage(stdout)
		return exitOK
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", programName, args[0])
		topUsage(stderr)
		return exitUsage
	}
	a := &app{ctx: ctx, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, cmd: cmd}
	err := cmd.run(a, args[1:])
	if cerr := a.close(); err == nil {
		err = cerr
	}
	var uerr *usageError
	var serr *signalError
	var xerr *exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &xerr):
		return xerr.code
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "%s %s: %v\n", programName, cmd.name, err)
		for i, u := range cmd.usages {
			lead := "usage:"
			if i > 0 {
				lead = "      "
			}
			fmt.Fprintf(stderr, "%s %s %s\n", lead, programName, u)
		}
		return exitUsage
	case errors.As(context.Cause(ctx), &serr):
		fmt.Fprintf(stderr, "%s %s: %v\n", programName, cmd.name, err)
		return signalStatus(serr.sig)
	default:
		fmt.Fprintf(stderr, "%s %s: %v\n", programName, cmd.name, err)
		if hint := a.authHint(err); hint != "" {
			fmt.Fprintf(stderr, "%s: %s\n", programName, hint)
		}
		return exitFailed
	}
}

// authHint tells which environment variable to set after an
// authentication error (or a missing token reported as an invalid Token
// field), or "".
func (a *app) authHint(err error) string {
	var perr *provider.Error
	missingToken := errors.As(err, &perr) && perr.Kind == provider.KindInvalidConfig && strings.HasSuffix(perr.Field, "Token")
	if (!errors.Is(err, provider.ErrAuthentication) && !missingToken) || a.backend == nil {
		return ""
	}
	b := a.backend
	if a.sim != nil {
		return "the simulated cloud refused its own credential; reset it with `spuffctl sim reset --provider " + b.name + "`"
	}
	hint := b.authHint
	if src := b.credentials(a.getenv); src != "" && !strings.HasPrefix(hint, "set "+src) {
		hint += " (the credentials used came from " + src + ")"
	}
	return hint
}
