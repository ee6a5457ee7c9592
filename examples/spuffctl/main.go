// Command spuffctl is a thin command-line client of spuff: it creates,
// lists, snapshots and destroys machines on DigitalOcean, Hetzner Cloud and
// AWS EC2, and shows how a program uses the library.
//
// With no credentials in the environment (or with --simulate) it runs
// against spuff's built-in simulated cloud, whose state it keeps in
// $SPUFF_SIM_DIR (default: the user cache directory's spuff/ folder) so that
// `up`, `ls` and `down` behave as against a real cloud. `spuffctl sim reset`
// forgets it.
//
// Usage:
//
//	spuffctl providers
//	spuffctl up [--provider p] [--region r] [--size s] [--image ubuntu:24.04] [--name n] [--label k=v]... [--user-data @file] [--ssh-key k]... [--keep]
//	spuffctl ls
//	spuffctl status <id|name>
//	spuffctl down <id|name>... | --all
//	spuffctl snapshot create <id|name> [--name n] | snapshot ls | snapshot rm <id>...
//	spuffctl keys
//	spuffctl sim reset | sim path
//
// Every command takes --provider, --simulate, --json and --timeout, and
// --help. Exit status: 0 success, 1 the operation failed, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	programName = "spuffctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks an error the user made on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string
	run     func(a *app, args []string) error
}

func commands() []command {
	return []command{
		{"providers", "list the providers and whether credentials are set", "providers", cmdProviders},
		{"up", "create a machine and wait until it is ready", "up [flags]", cmdUp},
		{"ls", "list the machines spuff manages", "ls [flags]", cmdLs},
		{"status", "show one machine", "status [flags] <id|name>", cmdStatus},
		{"down", "destroy machines", "down [flags] <id|name>... | --all", cmdDown},
		{"snapshot", "create, list or remove snapshots", "snapshot create <id|name> [--name n] | snapshot ls | snapshot rm <id>...", cmdSnapshot},
		{"keys", "list the account's SSH keys", "keys [flags]", cmdKeys},
		{"sim", "manage the built-in simulated cloud's saved state", "sim reset | sim path", cmdSim},
	}
}

func topUsage(w io.Writer) {
	fmt.Fprintf(w, "%s creates, waits for, snapshots and destroys cloud machines (spuff).\n\n", programName)
	fmt.Fprintf(w, "Usage:\n  %s <command> [flags] [args]\n\nCommands:\n", programName)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags.\n", programName)
	fmt.Fprintf(w, "With no credentials in the environment, or with --simulate, %s uses a built-in simulated cloud.\n", programName)
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
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
	a := &app{ctx: ctx, getenv: getenv, stdout: stdout, stderr: stderr, cmd: cmd}
	err := cmd.run(a, args[1:])
	if cerr := a.close(); err == nil {
		err = cerr
	}
	var uerr *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "%s %s: %v\nusage: %s %s\n", programName, cmd.name, err, programName, cmd.usage)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "%s %s: %v\n", programName, cmd.name, err)
		return exitFailed
	}
}
