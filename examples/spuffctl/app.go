package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spuffgo/spuff/provider"
)

// app is one run of a command: its flags, output and provider.
type app struct {
	ctx    context.Context
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	cmd    *command

	// common flags
	providerName string
	simulate     bool
	jsonOut      bool
	timeout      time.Duration
	endpoint     string

	backend *backend
	sim     *simSession
	p       provider.Provider
}

// flags returns the command's flag set with the common flags.
func (a *app) flags() *flag.FlagSet {
	fs := flag.NewFlagSet(programName+" "+a.cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by run; --help prints below
	fs.StringVar(&a.providerName, "provider", "", "provider: "+strings.Join(provider.Names(), ", ")+" (default: the first with credentials, else digitalocean, simulated)")
	fs.BoolVar(&a.simulate, "simulate", false, "use the built-in simulated cloud even if credentials are set")
	fs.BoolVar(&a.jsonOut, "json", false, "write machine-readable JSON to stdout")
	fs.DurationVar(&a.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.StringVar(&a.endpoint, "endpoint", "", "API base URL override, e.g. a proxy (real clouds only)")
	return fs
}

// parse parses args; --help prints the command's usage and flags to stdout.
func (a *app) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(a.stdout, "usage: %s %s\n\n%s.\n\nFlags:\n", programName, a.cmd.usage, upperFirst(a.cmd.summary))
			fs.SetOutput(a.stdout)
			fs.PrintDefaults()
			return flag.ErrHelp
		}
		return usagef("%v", err)
	}
	return nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// open resolves the provider (real or simulated) and opens it.
func (a *app) open() error {
	name := a.providerName
	if name == "" {
		for i := range backends {
			if !a.simulate && backends[i].hasCredentials(a.getenv) {
				name = backends[i].name
				break
			}
		}
		if name == "" {
			name = "digitalocean"
		}
	}
	b := findBackend(name)
	if b == nil {
		return usagef("unknown provider %q (known: %s)", name, strings.Join(provider.Names(), ", "))
	}
	a.backend = b
	var cfg provider.Config
	if a.simulate || !b.hasCredentials(a.getenv) {
		dir, err := simStateDir(a.getenv)
		if err != nil {
			return err
		}
		boot, err := simBoot(a.getenv)
		if err != nil {
			return usagef("%v", err)
		}
		a.sim, err = openSim(b, dir, boot)
		if err != nil {
			return err
		}
		why := "no " + strings.Join(b.envVars, " or ") + " set"
		if a.simulate {
			why = "--simulate"
		}
		fmt.Fprintf(a.stderr, "%s: using the built-in simulated %s cloud (%s); state in %s\n", programName, b.name, why, a.sim.path)
		cfg = a.sim.config(b)
	}
	if a.endpoint != "" && a.sim == nil {
		cfg.Endpoint = a.endpoint
	}
	cfg.Getenv = a.getenv
	cfg.Timeouts.InstanceReady = a.timeout
	p, err := provider.Open(a.ctx, b.name, cfg)
	if err != nil {
		return err
	}
	a.p = p
	return nil
}

// close releases the simulated cloud, saving its state.
func (a *app) close() error {
	if a.sim == nil {
		return nil
	}
	if err := a.sim.close(); err != nil {
		return fmt.Errorf("saving the simulated cloud's state: %w", err)
	}
	return nil
}

// begin parses a command's flags, refuses with msg (a usage error) when
// badArgs says the number of arguments is wrong, opens the provider and
// returns the command's context, bounded by --timeout.
func (a *app) begin(fs *flag.FlagSet, args []string, badArgs func(n int) bool, msg string) (context.Context, context.CancelFunc, error) {
	if err := a.parse(fs, args); err != nil {
		return nil, nil, err
	}
	if badArgs(fs.NArg()) {
		return nil, nil, usagef("%s", msg)
	}
	if err := a.open(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := a.opCtx()
	return ctx, cancel, nil
}

// opCtx bounds one command by --timeout.
func (a *app) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.timeout)
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stderrIsTerminal reports whether progress can be redrawn in place.
func (a *app) stderrIsTerminal() bool {
	f, ok := a.stderr.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// instanceJSON is the --json form of an instance.
type instanceJSON struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Provider  string            `json:"provider"`
	Status    string            `json:"status"`
	RawStatus string            `json:"raw_status"`
	IPv4      string            `json:"ipv4,omitempty"`
	IPv6      string            `json:"ipv6,omitempty"`
	Region    string            `json:"region"`
	Size      string            `json:"size"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at,omitzero"`
	SSH       string            `json:"ssh,omitempty"`
}

func (a *app) instanceJSON(in *provider.Instance) instanceJSON {
	j := instanceJSON{
		ID: in.ID, Name: in.Name, Provider: a.p.Name(), Status: in.Status.String(), RawStatus: in.RawStatus,
		Region: in.Region, Size: in.Size, Labels: in.Labels, CreatedAt: in.CreatedAt,
	}
	if in.PublicIPv4.IsValid() {
		j.IPv4 = in.PublicIPv4.String()
	}
	if in.PublicIPv6.IsValid() {
		j.IPv6 = in.PublicIPv6.String()
	}
	if in.IP().IsValid() {
		j.SSH = sshCommand(a.p.Name(), in)
	}
	return j
}

// sshCommand is the command that logs in to the machine.
func sshCommand(providerName string, in *provider.Instance) string {
	user := "root"
	if providerName == "aws" {
		user = "ubuntu"
	}
	return "ssh " + user + "@" + in.IP().String()
}

type snapshotJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Provider  string    `json:"provider"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	SizeGB    float64   `json:"size_gb,omitempty"`
}

// resolveInstance finds an instance by ID, or by name among the managed
// ones.
func (a *app) resolveInstance(ctx context.Context, ref string) (*provider.Instance, error) {
	in, err := a.p.GetInstance(ctx, ref)
	if err == nil {
		return in, nil
	}
	if !errors.Is(err, provider.ErrNotFound) && !errors.Is(err, provider.ErrInvalidConfig) && !errors.Is(err, provider.ErrAPI) {
		return nil, err
	}
	list, lerr := a.p.ListInstances(ctx)
	if lerr != nil {
		return nil, lerr
	}
	var found *provider.Instance
	for _, in := range list {
		if in.Name == ref {
			if found != nil {
				return nil, fmt.Errorf("two machines are named %q (%s, %s); use an ID", ref, found.ID, in.ID)
			}
			found = in
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no machine %q: %w", ref, provider.ErrNotFound)
	}
	return found, nil
}
