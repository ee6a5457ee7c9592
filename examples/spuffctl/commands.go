package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spuffgo/spuff/provider"
)

// labelFlag collects repeated --label k=v.
type labelFlag map[string]string

func (l labelFlag) String() string {
	parts := make([]string, 0, len(l))
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (l labelFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("label %q is not of the form key=value", s)
	}
	l[k] = v
	return nil
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func cmdProviders(a *app, args []string) error {
	fs := a.flags()
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("providers takes no arguments")
	}
	type row struct {
		Name        string   `json:"name"`
		Credentials bool     `json:"credentials"`
		EnvVars     []string `json:"env_vars"`
	}
	var rows []row
	for _, name := range provider.Names() {
		r := row{Name: name}
		if b := findBackend(name); b != nil {
			r.Credentials = b.hasCredentials(a.getenv)
			r.EnvVars = b.envVars
		}
		rows = append(rows, r)
	}
	if a.jsonOut {
		return a.printJSON(rows)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tCREDENTIALS\tFROM")
	for _, r := range rows {
		creds := "none (simulated)"
		if r.Credentials {
			creds = "set"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, creds, strings.Join(r.EnvVars, ", "))
	}
	return tw.Flush()
}

func randomName() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "spuff-" + hex.EncodeToString(b[:])
}

func cmdUp(a *app, args []string) error {
	fs := a.flags()
	region := fs.String("region", "", "region (default: the provider's usual one, e.g. nyc3, fsn1, us-east-1)")
	size := fs.String("size", "", "size or instance type (default: the provider's smallest usual one)")
	image := provider.Ubuntu("24.04")
	fs.TextVar(&image, "image", provider.Ubuntu("24.04"), "image: ubuntu:<version>, debian:<version>, custom:<id>, snapshot:<id>")
	name := fs.String("name", "", "machine name (default: spuff-<random>)")
	labels := labelFlag{}
	fs.Var(labels, "label", "label key=value (repeatable)")
	userData := fs.String("user-data", "", "cloud-init user data: @file to read it from a file, or the text itself")
	var keys listFlag
	fs.Var(&keys, "ssh-key", "SSH key to install, by ID, name or fingerprint (repeatable; see `keys`)")
	keep := fs.Bool("keep", false, "on failure or interrupt, keep the half-made machine and print its ID instead of destroying it")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("up takes no arguments (got %q)", fs.Args())
	}
	ud := *userData
	if strings.HasPrefix(ud, "@") {
		b, err := os.ReadFile(ud[1:])
		if err != nil {
			return usagef("reading user data: %v", err)
		}
		ud = string(b)
	}
	if err := a.open(); err != nil {
		return err
	}
	req := provider.InstanceRequest{
		Name: *name, Region: *region, Size: *size, Image: image,
		UserData: ud, Labels: labels, SSHKeys: keys,
	}
	if req.Name == "" {
		req.Name = randomName()
	}
	if req.Region == "" {
		req.Region = a.backend.region
	}
	if req.Size == "" {
		req.Size = a.backend.size
	}
	if len(req.Labels) == 0 {
		req.Labels = nil
	}
	if err := req.Validate(); err != nil {
		return usagef("%v", err)
	}

	// The create runs to its end even on interrupt, so that the machine's ID
	// is known and the machine can be destroyed rather than leaked.
	createCtx, cancelCreate := context.WithTimeout(context.WithoutCancel(a.ctx), a.timeout)
	inst, err := a.p.CreateInstance(createCtx, req)
	cancelCreate()
	if err != nil {
		var perr *provider.Error
		if errors.As(err, &perr) && perr.ID != "" {
			a.cleanup(perr.ID, *keep)
		}
		return err
	}
	fmt.Fprintf(a.stderr, "created %s (%s) on %s; waiting for it to be ready\n", inst.Name, inst.ID, a.p.Name())
	if a.ctx.Err() != nil {
		a.cleanup(inst.ID, *keep)
		return errors.New("interrupted")
	}

	pr := newProgress(a.stderr, a.stderrIsTerminal(), inst.Name, inst.Status.String())
	waitCtx, cancel := a.opCtx()
	defer cancel()
	waitCtx = provider.WithWaitTrace(waitCtx, &provider.WaitTrace{Polled: pr.event})
	ready, err := a.p.WaitReady(waitCtx, inst.ID)
	pr.finish()
	if err != nil {
		a.cleanup(inst.ID, *keep)
		if a.ctx.Err() != nil {
			return fmt.Errorf("interrupted while waiting for %s: %w", inst.ID, err)
		}
		return err
	}
	if a.jsonOut {
		return a.printJSON(a.instanceJSON(ready))
	}
	fmt.Fprintf(a.stdout, "id:   %s\nname: %s\nip:   %s\nssh:  %s\n", ready.ID, ready.Name, ready.IP(), sshCommand(a.p.Name(), ready))
	return nil
}

// cleanup destroys a half-made machine, or with keep says where it is.
func (a *app) cleanup(id string, keep bool) {
	if keep {
		fmt.Fprintf(a.stderr, "keeping the half-made machine %s (--keep); destroy it with: %s down --provider %s %s\n", id, programName, a.p.Name(), id)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), 2*time.Minute)
	defer cancel()
	if err := a.p.DestroyInstance(ctx, id); err != nil {
		fmt.Fprintf(a.stderr, "could not destroy the half-made machine %s: %v\ndestroy it with: %s down --provider %s %s\n", id, err, programName, a.p.Name(), id)
		return
	}
	fmt.Fprintf(a.stderr, "destroyed the half-made machine %s\n", id)
}

// progress shows a wait's state on stderr: redrawn in place every half
// second on a terminal, one line per change of state otherwise. The first
// line comes at once, whenever the first poll is due.
type progress struct {
	w     io.Writer
	tty   bool
	name  string
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	state string
}

func newProgress(w io.Writer, tty bool, name, state string) *progress {
	p := &progress{w: w, tty: tty, name: name, start: time.Now(), state: state, stop: make(chan struct{}), done: make(chan struct{})}
	p.mu.Lock()
	p.drawLocked()
	p.mu.Unlock()
	if !tty {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.drawLocked()
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *progress) drawLocked() {
	el := time.Since(p.start).Round(100 * time.Millisecond)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[Kwaiting for %s: %s, %s", p.name, p.state, el)
		return
	}
	fmt.Fprintf(p.w, "waiting for %s: %s after %s\n", p.name, p.state, el)
}

// event is the WaitTrace hook: it records the state a poll saw.
func (p *progress) event(e provider.WaitEvent) {
	state := e.State
	if e.Err != nil {
		state += " (retrying: " + provider.KindOf(e.Err).String() + ")"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if state == p.state {
		return
	}
	p.state = state
	if !p.tty {
		p.drawLocked()
	}
}

// finish stops the redrawing and ends the line.
func (p *progress) finish() {
	close(p.stop)
	<-p.done
	if p.tty {
		p.mu.Lock()
		p.drawLocked()
		fmt.Fprintln(p.w)
		p.mu.Unlock()
	}
}

func cmdLs(a *app, args []string) error {
	fs := a.flags()
	ctx, cancel, err := a.begin(fs, args, func(n int) bool { return n > 0 }, "ls takes no arguments")
	if err != nil {
		return err
	}
	defer cancel()
	list, err := a.p.ListInstances(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		out := make([]instanceJSON, 0, len(list))
		for _, in := range list {
			out = append(out, a.instanceJSON(in))
		}
		return a.printJSON(out)
	}
	if len(list) == 0 {
		fmt.Fprintf(a.stderr, "no machines managed by spuff on %s\n", a.p.Name())
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tIP\tREGION\tSIZE\tAGE")
	for _, in := range list {
		ip := "-"
		if in.IP().IsValid() {
			ip = in.IP().String()
		}
		age := "-"
		if !in.CreatedAt.IsZero() {
			age = time.Since(in.CreatedAt).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Name, in.Status, ip, in.Region, in.Size, age)
	}
	return tw.Flush()
}

func cmdStatus(a *app, args []string) error {
	fs := a.flags()
	ctx, cancel, err := a.begin(fs, args, func(n int) bool { return n != 1 }, "status takes one machine ID or name")
	if err != nil {
		return err
	}
	defer cancel()
	in, err := a.resolveInstance(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(a.instanceJSON(in))
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\nname:\t%s\nstatus:\t%s (%s)\n", in.ID, in.Name, in.Status, in.RawStatus)
	if in.PublicIPv4.IsValid() {
		fmt.Fprintf(tw, "ipv4:\t%s\n", in.PublicIPv4)
	}
	if in.PublicIPv6.IsValid() {
		fmt.Fprintf(tw, "ipv6:\t%s\n", in.PublicIPv6)
	}
	fmt.Fprintf(tw, "region:\t%s\nsize:\t%s\n", in.Region, in.Size)
	if !in.CreatedAt.IsZero() {
		fmt.Fprintf(tw, "created:\t%s\n", in.CreatedAt.Format(time.RFC3339))
	}
	if len(in.Labels) > 0 {
		fmt.Fprintf(tw, "labels:\t%s\n", labelFlag(in.Labels))
	}
	if in.Ready() {
		fmt.Fprintf(tw, "ssh:\t%s\n", sshCommand(a.p.Name(), in))
	}
	return tw.Flush()
}

func cmdDown(a *app, args []string) error {
	fs := a.flags()
	all := fs.Bool("all", false, "destroy every machine spuff manages on the account")
	ctx, cancel, err := a.begin(fs, args, func(n int) bool { return *all == (n > 0) }, "down takes machine IDs or names, or --all")
	if err != nil {
		return err
	}
	defer cancel()
	var targets []*provider.Instance
	if *all {
		list, err := a.p.ListInstances(ctx)
		if err != nil {
			return err
		}
		targets = list
	} else {
		for _, ref := range fs.Args() {
			in, err := a.resolveInstance(ctx, ref)
			if errors.Is(err, provider.ErrNotFound) {
				// Already gone: destroying is idempotent.
				fmt.Fprintf(a.stderr, "%s: already gone\n", ref)
				continue
			}
			if err != nil {
				return err
			}
			targets = append(targets, in)
		}
	}
	var destroyed []string
	var errs []error
	for _, in := range targets {
		if err := a.p.DestroyInstance(ctx, in.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		destroyed = append(destroyed, in.ID)
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "destroyed %s (%s)\n", in.ID, in.Name)
		}
	}
	if a.jsonOut {
		if err := a.printJSON(map[string]any{"destroyed": nonNil(destroyed)}); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func cmdSnapshot(a *app, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(a.stdout, "usage: %s %s\n", programName, a.cmd.usage)
			return flag.ErrHelp
		}
		return usagef("snapshot needs a subcommand: create, ls or rm")
	}
	sub, rest := args[0], args[1:]
	fs := a.flags()
	switch sub {
	case "create":
		name := fs.String("name", "", "snapshot name (default: <machine>-<time>)")
		ctx, cancel, err := a.begin(fs, rest, func(n int) bool { return n != 1 }, "snapshot create takes one machine ID or name")
		if err != nil {
			return err
		}
		defer cancel()
		in, err := a.resolveInstance(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		n := *name
		if n == "" {
			n = in.Name + "-" + time.Now().UTC().Format("20060102-150405")
		}
		fmt.Fprintf(a.stderr, "snapshotting %s (%s) as %s\n", in.Name, in.ID, n)
		s, err := a.p.CreateSnapshot(ctx, in.ID, n)
		if err != nil {
			return err
		}
		if a.jsonOut {
			return a.printJSON(snapshotJSON{ID: s.ID, Name: s.Name, Provider: a.p.Name(), CreatedAt: s.CreatedAt, SizeGB: s.SizeGB})
		}
		fmt.Fprintf(a.stdout, "snapshot %s (%s); restore with --image snapshot:%s\n", s.ID, s.Name, s.ID)
		return nil
	case "ls":
		ctx, cancel, err := a.begin(fs, rest, func(n int) bool { return n > 0 }, "snapshot ls takes no arguments")
		if err != nil {
			return err
		}
		defer cancel()
		list, err := a.p.ListSnapshots(ctx)
		if err != nil {
			return err
		}
		if a.jsonOut {
			out := make([]snapshotJSON, 0, len(list))
			for _, s := range list {
				out = append(out, snapshotJSON{ID: s.ID, Name: s.Name, Provider: a.p.Name(), CreatedAt: s.CreatedAt, SizeGB: s.SizeGB})
			}
			return a.printJSON(out)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tSIZE")
		for _, s := range list {
			created := "-"
			if !s.CreatedAt.IsZero() {
				created = s.CreatedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f GB\n", s.ID, s.Name, created, s.SizeGB)
		}
		return tw.Flush()
	case "rm":
		ctx, cancel, err := a.begin(fs, rest, func(n int) bool { return n == 0 }, "snapshot rm takes snapshot IDs")
		if err != nil {
			return err
		}
		defer cancel()
		var errs []error
		for _, id := range fs.Args() {
			if err := a.p.DeleteSnapshot(ctx, id); err != nil {
				errs = append(errs, err)
				continue
			}
			if !a.jsonOut {
				fmt.Fprintf(a.stdout, "deleted snapshot %s\n", id)
			}
		}
		if a.jsonOut && len(errs) == 0 {
			return a.printJSON(map[string]any{"deleted": fs.Args()})
		}
		return errors.Join(errs...)
	}
	return usagef("unknown snapshot subcommand %q (want create, ls or rm)", sub)
}

func cmdKeys(a *app, args []string) error {
	fs := a.flags()
	ctx, cancel, err := a.begin(fs, args, func(n int) bool { return n > 0 }, "keys takes no arguments")
	if err != nil {
		return err
	}
	defer cancel()
	keys, err := a.p.ListSSHKeys(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		type keyJSON struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			Fingerprint string `json:"fingerprint"`
		}
		out := make([]keyJSON, 0, len(keys))
		for _, k := range keys {
			out = append(out, keyJSON{k.ID, k.Name, k.Fingerprint})
		}
		return a.printJSON(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tFINGERPRINT")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.Name, k.Fingerprint)
	}
	return tw.Flush()
}

func cmdSim(a *app, args []string) error {
	if len(args) == 0 {
		return usagef("sim needs a subcommand: reset or path")
	}
	sub, rest := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "-help" {
		fmt.Fprintf(a.stdout, "usage: %s %s\n\nThe simulated clouds keep their state in $SPUFF_SIM_DIR, else the user cache directory's spuff/ folder.\n", programName, a.cmd.usage)
		return flag.ErrHelp
	}
	set := a.flags()
	if err := a.parse(set, rest); err != nil {
		return err
	}
	dir, err := simStateDir(a.getenv)
	if err != nil {
		return err
	}
	switch sub {
	case "path":
		fmt.Fprintln(a.stdout, dir)
		return nil
	case "reset":
		names := []string{a.providerName}
		if a.providerName == "" {
			names = names[:0]
			for _, b := range backends {
				names = append(names, b.name)
			}
		}
		for _, n := range names {
			p := simStatePath(dir, n)
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			} else if err == nil {
				fmt.Fprintf(a.stderr, "reset the simulated %s cloud (%s)\n", n, p)
			}
		}
		return nil
	}
	return usagef("unknown sim subcommand %q (want reset or path)", sub)
}
