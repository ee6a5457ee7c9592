package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spuffgo/spuff/provider"
)

// app is one run of a command: its flags, output and provider.
type app struct {
	ctx    context.Context
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	cmd    *command
	// sub is the subcommand being run ("create"), for help.
	sub string

	// common flags
	providerName string
	simulate     bool
	jsonOut      bool
	timeout      time.Duration
	endpoint     string

	backend *backend
	sim     *simSession
	p       provider.Provider
	// regions are the regions a regional provider covers, for messages.
	regions []string
	// alsoRegions are regions a regional provider must cover besides the
	// ones it knows of (the regions `up` may make the machine in).
	alsoRegions []string
}

// flags returns the command's flag set with the common flags.
func (a *app) flags() *flag.FlagSet {
	fs := flag.NewFlagSet(programName+" "+a.cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by run; --help prints below
	fs.StringVar(&a.providerName, "provider", "", "provider: "+strings.Join(provider.Names(), ", ")+" (default: $SPUFF_PROVIDER, else digitalocean, simulated)")
	fs.BoolVar(&a.simulate, "simulate", false, "use the built-in simulated cloud even if the provider is named and has credentials")
	fs.BoolVar(&a.jsonOut, "json", false, "write machine-readable JSON to stdout")
	fs.DurationVar(&a.timeout, "timeout", 10*time.Minute, "give up after this long (more than 0)")
	fs.StringVar(&a.endpoint, "endpoint", "", "API base URL of a real cloud (a proxy, `spuffctl sim serve`); needs a named provider")
	return fs
}

// parse parses args, flags anywhere (see parseArgs), and returns the
// arguments. --help prints the command's usage and flags to stdout and
// returns flag.ErrHelp.
func (a *app) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	rest, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.help(fs)
			return nil, flag.ErrHelp
		}
		return nil, usagef("%v", err)
	}
	if a.timeout <= 0 {
		return nil, usagef("--timeout %s: want a duration of more than 0, such as 10m", a.timeout)
	}
	return rest, nil
}

// help prints the usage lines of the command (or of its subcommand) and
// the flags of fs.
func (a *app) help(fs *flag.FlagSet) {
	usages := a.cmd.usages
	if a.sub != "" {
		usages = slices.DeleteFunc(slices.Clone(usages), func(u string) bool { return !strings.HasPrefix(u, a.cmd.name+" "+a.sub) })
	}
	for i, u := range usages {
		lead := "usage:"
		if i > 0 {
			lead = "      "
		}
		fmt.Fprintf(a.stdout, "%s %s %s\n", lead, programName, u)
	}
	fmt.Fprintf(a.stdout, "\n%s.\n\nFlags (anywhere on the line; -- ends them):\n", upperFirst(a.cmd.summary))
	fs.SetOutput(a.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// choice is the provider a command uses and why.
type choice struct {
	backend *backend
	// named is true when the user named the provider (--provider or
	// SPUFF_PROVIDER).
	named bool
	// real is true when a real cloud is used; why says why not.
	real bool
	why  string
}

// choose picks the provider and decides between the real cloud and the
// simulated one. A real cloud is used only when the user named the
// provider and its credentials are found (or --endpoint points elsewhere):
// a command that can create or destroy machines never reaches a real cloud
// by accident.
func (a *app) choose() (choice, error) {
	name, named := a.providerName, a.providerName != ""
	if !named {
		if env := a.getenv("SPUFF_PROVIDER"); env != "" {
			name, named = env, true
		}
	}
	if name == "" {
		name = backends[0].name
	}
	b := findBackend(name)
	if b == nil {
		return choice{}, usagef("unknown provider %q (known: %s)", name, strings.Join(provider.Names(), ", "))
	}
	c := choice{backend: b, named: named}
	switch {
	case a.simulate:
		if a.endpoint != "" {
			return choice{}, usagef("--endpoint and --simulate exclude each other")
		}
		c.why = "--simulate"
	case !named:
		if a.endpoint != "" {
			return choice{}, usagef("--endpoint needs the provider named with --provider or SPUFF_PROVIDER")
		}
		c.why = "no provider named: pass --provider or set SPUFF_PROVIDER to use a real cloud"
	case b.credentials(a.getenv) == "" && a.endpoint == "":
		c.why = "no " + strings.Join(b.envVars, " or ") + " set"
		if b.regional {
			c.why = "no AWS credentials found (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials)"
		}
	default:
		c.real = true
	}
	return c, nil
}

// open resolves the provider (real or simulated) and opens it. In
// simulated mode it first takes the simulated cloud's state, refusing a
// state directory it cannot write to before anything is created.
func (a *app) open() error {
	c, err := a.choose()
	if err != nil {
		return err
	}
	b := c.backend
	a.backend = b
	var cfg provider.Config
	if !c.real {
		boot, capacity, err := simKnobs(a.getenv)
		if err != nil {
			return err
		}
		dir, err := simStateDir(a.getenv)
		if err != nil {
			return err
		}
		a.sim, err = openSim(a.ctx, b, dir, boot, capacity, a.stderr)
		if err != nil {
			return err
		}
		where := "state in " + a.sim.path
		if a.sim.remote != nil {
			where = fmt.Sprintf("served by `spuffctl sim serve` (pid %d) at %s", a.sim.remote.PID, a.sim.remote.Clouds[b.name].URL)
		}
		fmt.Fprintf(a.stderr, "%s: using the built-in simulated %s cloud (%s); %s\n", programName, b.name, c.why, where)
		cfg = a.sim.config(b)
		if b.regional {
			if r := b.defaultRegion(a.getenv); r != b.region {
				cfg.Region = r
			}
		}
	} else {
		cfg.Endpoint = a.endpoint
		if cfg.Endpoint == "" && b.name == "digitalocean" {
			cfg.Endpoint = a.getenv(b.endpointVar)
		}
	}
	if b.regional {
		def := cfg.Region
		if def == "" {
			// A real cloud's default region is the driver's: AWS_REGION,
			// AWS_DEFAULT_REGION, else the shared config file's.
			def = "the default region"
			if r := b.defaultRegion(a.getenv); a.getenv("AWS_REGION")+a.getenv("AWS_DEFAULT_REGION") != "" {
				def = r
			}
		}
		cfg.Regions = a.knownRegions(def)
		a.regions = append([]string{def}, cfg.Regions...)
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

// knownRegions are the regions a regional cloud's listings and lookups
// cover besides the default one: every region of the simulated cloud, or
// for a real cloud the regions named by AWS_REGION and AWS_DEFAULT_REGION
// and those `up` made machines in before (recorded in the state directory).
func (a *app) knownRegions(def string) []string {
	var out []string
	add := func(r string) {
		if r != "" && r != def && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if a.sim != nil {
		for _, r := range a.sim.regions() {
			add(r)
		}
		return out
	}
	add(a.getenv("AWS_REGION"))
	add(a.getenv("AWS_DEFAULT_REGION"))
	for _, r := range a.alsoRegions {
		add(r)
	}
	if dir, err := simStateDir(a.getenv); err == nil {
		for _, r := range readRegions(dir, a.backend.name) {
			add(r)
		}
	}
	return out
}

// close releases the simulated cloud, saving its state. It may be called
// more than once.
func (a *app) close() error {
	if a.sim == nil {
		return nil
	}
	s := a.sim
	a.sim = nil
	if err := s.close(); err != nil {
		return fmt.Errorf("saving the simulated cloud's state: %w", err)
	}
	return nil
}

// begin parses a command's flags, refuses with msg (a usage error) when
// badArgs says the number of arguments is wrong, opens the provider and
// returns the arguments and the command's context, bounded by --timeout.
func (a *app) begin(fs *flag.FlagSet, args []string, badArgs func(n int) bool, msg string) ([]string, context.Context, context.CancelFunc, error) {
	rest, err := a.parse(fs, args)
	if err != nil {
		return nil, nil, nil, err
	}
	if badArgs(len(rest)) {
		return nil, nil, nil, usagef("%s", msg)
	}
	if err := a.open(); err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := a.opCtx()
	return rest, ctx, cancel, nil
}

// opCtx bounds one command by --timeout.
func (a *app) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.timeout)
}

// interrupted reports whether a signal stopped the run.
func (a *app) interrupted() bool {
	var serr *signalError
	return errors.As(context.Cause(a.ctx), &serr)
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stderrIsTerminal reports whether progress can be redrawn in place.
func (a *app) stderrIsTerminal() bool { return isTerminal(a.stderr) }

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
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	SSH       string            `json:"ssh,omitempty"`
	// Failover lists the placements `up --region a,b` tried, in order.
	Failover []attemptJSON `json:"failover,omitempty"`
	// SSHReady is `up`'s wait for SSH, with its stages' timings.
	SSHReady *loginJSON `json:"ssh_ready,omitempty"`
}

func (a *app) instanceJSON(in *provider.Instance) instanceJSON {
	j := instanceJSON{
		ID: in.ID, Name: in.Name, Provider: a.p.Name(), Status: in.Status.String(), RawStatus: in.RawStatus,
		Region: in.Region, Size: in.Size, Labels: in.Labels, CreatedAt: in.CreatedAt, ExpiresAt: in.ExpiresAt,
	}
	if in.PublicIPv4.IsValid() {
		j.IPv4 = in.PublicIPv4.String()
	}
	if in.PublicIPv6.IsValid() {
		j.IPv6 = in.PublicIPv6.String()
	}
	if in.IP().IsValid() {
		j.SSH = "ssh " + a.loginUser(in) + "@" + in.IP().String()
	}
	return j
}

type snapshotJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Provider  string    `json:"provider"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	SizeGB    float64   `json:"size_gb,omitempty"`
}

func (a *app) snapshotJSON(s *provider.Snapshot) snapshotJSON {
	return snapshotJSON{ID: s.ID, Name: s.Name, Provider: a.p.Name(), CreatedAt: s.CreatedAt, SizeGB: roundGB(s.SizeGB)}
}

// roundGB rounds a size in gigabytes to two decimals: clouds report sizes
// as float32 values (3.200000047683716) or computed quotients.
func roundGB(gb float64) float64 { return math.Round(gb*100) / 100 }

// errNoMachine is a reference that names no machine at all.
var errNoMachine = errors.New("no such machine")

// errGone is a well-formed ID of a machine that does not exist (any more).
var errGone = errors.New("already gone")

// resolve finds the machine ref names: a managed one (in list, the
// provider's ListInstances) by ID or name, with managed true; else a
// machine of any owner looked up by ID, with managed false (not spuff's,
// or not listed yet). It returns errGone for a well-formed ID that exists
// nowhere the provider looks, and an error matching errNoMachine for a
// reference that matches nothing.
func (a *app) resolve(ctx context.Context, list []*provider.Instance, ref string) (in *provider.Instance, managed bool, err error) {
	var byName []*provider.Instance
	for _, in := range list {
		if in.ID == ref {
			return in, true, nil
		}
		if in.Name == ref {
			byName = append(byName, in)
		}
	}
	switch len(byName) {
	case 1:
		return byName[0], true, nil
	case 0:
	default:
		ids := make([]string, 0, len(byName))
		for _, in := range byName {
			ids = append(ids, in.ID)
		}
		return nil, false, fmt.Errorf("%d machines are named %q (%s); use an ID", len(byName), ref, strings.Join(ids, ", "))
	}
	if !a.backend.instanceID.MatchString(ref) {
		return nil, false, fmt.Errorf("%q: %w: no machine spuff manages on %s has that name, and it is not a %s instance ID", ref, errNoMachine, a.p.Name(), a.p.Name())
	}
	in, err = a.p.GetInstance(ctx, ref)
	switch {
	case err == nil:
		return in, false, nil
	case errors.Is(err, provider.ErrNotFound):
		return nil, false, errGone
	default:
		return nil, false, err
	}
}

// searched says where a lookup looked, for a regional cloud ("" for
// others).
func (a *app) searched() string {
	if len(a.regions) == 0 {
		return ""
	}
	return " in " + strings.Join(a.regions, ", ")
}

// isTerminal reports whether w or r is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && fdIsTerminal(f)
}
