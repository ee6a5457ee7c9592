package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	rest, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("providers takes no arguments")
	}
	type row struct {
		Name        string   `json:"name"`
		Credentials bool     `json:"credentials"`
		Source      string   `json:"source,omitempty"`
		EnvVars     []string `json:"env_vars"`
		EndpointVar string   `json:"endpoint_var,omitempty"`
		Endpoint    string   `json:"endpoint,omitempty"`
	}
	var rows []row
	for _, name := range provider.Names() {
		r := row{Name: name}
		if b := findBackend(name); b != nil {
			r.Source = b.credentials(a.getenv)
			r.Credentials = r.Source != ""
			r.EnvVars = b.envVars
			r.EndpointVar = b.endpointVar
			r.Endpoint = a.getenv(b.endpointVar)
		}
		rows = append(rows, r)
	}
	if a.jsonOut {
		return a.printJSON(rows)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tCREDENTIALS FROM\tWITH --provider")
	for _, r := range rows {
		from, mode := "none (set "+strings.Join(r.EnvVars, " or ")+")", "simulated"
		if r.Credentials {
			from, mode = r.Source, "real cloud"
			if r.Endpoint != "" {
				mode += " at " + r.Endpoint + " (" + r.EndpointVar + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, from, mode)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nWithout --provider or SPUFF_PROVIDER every command uses the simulated %s cloud.\n", backends[0].name)
	return nil
}

func randomName() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "spuff-" + hex.EncodeToString(b[:])
}

// adoptSlack is how much older than the command a machine returned by
// CreateInstance may be and still count as made by it (clock skew between
// this machine and the cloud).
const adoptSlack = time.Minute

func cmdUp(a *app, args []string) error {
	fs := a.flags()
	region := fs.String("region", "", "region (default: the provider's usual one: nyc3, fsn1, $AWS_REGION or us-east-1)")
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
	ttl := fs.String("ttl", "", "time to live (1m to 366 days): the machine carries its expiry, which `reap` acts on (on aws it also ends itself then)")
	rest, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("up takes no arguments (got %q); name the machine with --name", rest)
	}
	var life time.Duration
	if *ttl != "" {
		if life, err = time.ParseDuration(*ttl); err != nil || life <= 0 {
			return usagef("--ttl %q is not a positive duration such as 2h (1m to 366 days)", *ttl)
		}
	}
	ud := *userData
	if strings.HasPrefix(ud, "@") {
		b, err := os.ReadFile(ud[1:])
		if err != nil {
			return usagef("reading user data: %v", err)
		}
		ud = string(b)
	}
	c, err := a.choose()
	if err != nil {
		return err
	}
	req := provider.InstanceRequest{
		Name: *name, Region: *region, Size: *size, Image: image,
		UserData: ud, Labels: labels, SSHKeys: keys, TTL: life,
	}
	if req.Name == "" {
		req.Name = randomName()
	}
	if req.Region == "" {
		req.Region = c.backend.defaultRegion(a.getenv)
	}
	if req.Size == "" {
		req.Size = c.backend.size
	}
	if len(req.Labels) == 0 {
		req.Labels = nil
	}
	if err := req.Validate(); err != nil {
		return usagef("%v", err)
	}
	if err := a.open(); err != nil {
		return err
	}

	// A create may adopt a machine made earlier by the same request (that
	// is how a retried create never makes two). Such a machine is not this
	// command's to destroy on failure or interrupt: note the machines that
	// already carry the name.
	listCtx, cancelList := a.opCtx()
	list, err := a.p.ListInstances(listCtx)
	cancelList()
	if err != nil {
		return err
	}
	before := map[string]bool{}
	for _, in := range list {
		if in.Name == req.Name {
			before[in.ID] = true
		}
	}
	start := time.Now()

	// The create runs to its end even on interrupt, so that the machine's ID
	// is known and the machine can be destroyed rather than leaked.
	createCtx, cancelCreate := context.WithTimeout(context.WithoutCancel(a.ctx), a.timeout)
	inst, err := a.p.CreateInstance(createCtx, req)
	cancelCreate()
	if err != nil {
		var perr *provider.Error
		if errors.As(err, &perr) {
			if perr.Existing != "" {
				fmt.Fprintf(a.stderr, "%s: %s, which is in the way, was there before this command and is left as it is\n", programName, perr.Existing)
			}
			// Leftover is the one field that names a machine this very
			// call made; Error.ID never is.
			if perr.Leftover != "" {
				a.cleanup(perr.Leftover, !before[perr.Leftover], *keep)
			}
		}
		return err
	}
	ours := !before[inst.ID] && (inst.CreatedAt.IsZero() || !inst.CreatedAt.Before(start.Add(-adoptSlack)))
	if ours {
		fmt.Fprintf(a.stderr, "created %s (%s) on %s; waiting for it to be ready\n", inst.Name, inst.ID, a.p.Name())
		if a.sim == nil && a.backend.regional {
			if dir, err := simStateDir(a.getenv); err == nil {
				if err := recordRegion(dir, a.backend.name, req.Region); err != nil {
					fmt.Fprintf(a.stderr, "%s: could not record region %s for later commands: %v\n", programName, req.Region, err)
				}
			}
		}
	} else {
		fmt.Fprintf(a.stderr, "%s (%s) already existed with these settings; waiting for it to be ready (it was not made by this command, which will not destroy it)\n", inst.Name, inst.ID)
	}
	if a.interrupted() {
		a.cleanup(inst.ID, ours, *keep)
		return errors.New("interrupted")
	}

	pr := newProgress(a.stderr, a.stderrIsTerminal(), inst.Name, inst.Status.String())
	waitCtx, cancel := a.opCtx()
	defer cancel()
	waitCtx = provider.WithWaitTrace(waitCtx, &provider.WaitTrace{Polled: pr.event})
	ready, err := a.p.WaitReady(waitCtx, inst.ID)
	pr.finish()
	if err != nil {
		a.cleanup(inst.ID, ours, *keep)
		if a.interrupted() {
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

// cleanup destroys a half-made machine that this command made (ours), or
// with keep says where it is. A machine the command did not make is left
// alone.
func (a *app) cleanup(id string, ours, keep bool) {
	if !ours {
		fmt.Fprintf(a.stderr, "left %s as it is: it existed before this command\n", id)
		return
	}
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
	_, ctx, cancel, err := a.begin(fs, args, func(n int) bool { return n > 0 }, "ls takes no arguments")
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
		fmt.Fprintf(a.stderr, "no machines managed by spuff on %s%s\n", a.p.Name(), a.searched())
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tIP\tREGION\tSIZE\tAGE\tEXPIRES")
	for _, in := range list {
		ip := "-"
		if in.IP().IsValid() {
			ip = in.IP().String()
		}
		age := "-"
		if !in.CreatedAt.IsZero() {
			age = time.Since(in.CreatedAt).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Name, in.Status, ip, in.Region, in.Size, age, expires(in.ExpiresAt))
	}
	return tw.Flush()
}

func cmdStatus(a *app, args []string) error {
	fs := a.flags()
	rest, ctx, cancel, err := a.begin(fs, args, func(n int) bool { return n != 1 }, "status takes one machine ID or name")
	if err != nil {
		return err
	}
	defer cancel()
	list, err := a.p.ListInstances(ctx)
	if err != nil {
		return err
	}
	in, managed, err := a.resolve(ctx, list, rest[0])
	if errors.Is(err, errGone) {
		return fmt.Errorf("no machine %s on %s%s", rest[0], a.p.Name(), a.searched())
	}
	if err != nil {
		return err
	}
	if !managed {
		fmt.Fprintf(a.stderr, "note: %s is not among the machines spuff manages (or is not listed yet)\n", in.ID)
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
		if !in.ExpiresAt.IsZero() {
			fmt.Fprintf(tw, "expires:\t%s (%s)\n", in.ExpiresAt.Format(time.RFC3339), expires(in.ExpiresAt))
		}
	}
	if len(in.Labels) > 0 {
		fmt.Fprintf(tw, "labels:\t%s\n", labelFlag(in.Labels))
	}
	if in.Ready() {
		fmt.Fprintf(tw, "ssh:\t%s\n", sshCommand(a.p.Name(), in))
	}
	return tw.Flush()
}

func cmdKeys(a *app, args []string) error {
	fs := a.flags()
	_, ctx, cancel, err := a.begin(fs, args, func(n int) bool { return n > 0 }, "keys takes no arguments")
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

// expires describes an expiry for a table: "in 1h59m", "expired 3m ago",
// or "-" for none.
func expires(at time.Time) string {
	switch d := time.Until(at).Round(time.Second); {
	case at.IsZero():
		return "-"
	case d > 0:
		return "in " + d.String()
	default:
		return "expired " + (-d).String() + " ago"
	}
}

func cmdReap(a *app, args []string) error {
	fs := a.flags()
	dry := fs.Bool("dry-run", false, "say what would be destroyed, and destroy nothing")
	older := fs.Duration("older-than", 0, "also destroy managed machines without an expiry made longer ago than this")
	_, ctx, cancel, err := a.begin(fs, args, func(n int) bool { return n > 0 }, "reap takes no arguments")
	if err != nil {
		return err
	}
	defer cancel()
	if *older < 0 {
		return usagef("--older-than %s is negative", *older)
	}
	rep, rerr := provider.Reap(ctx, a.p, provider.ReapOptions{DryRun: *dry, OlderThan: *older})
	if rep == nil {
		return rerr
	}
	if a.jsonOut {
		type item struct {
			Resource  string    `json:"resource"`
			ID        string    `json:"id"`
			Name      string    `json:"name,omitempty"`
			ExpiresAt time.Time `json:"expires_at,omitzero"`
			Error     string    `json:"error,omitempty"`
		}
		out := struct {
			DryRun    bool   `json:"dry_run"`
			Destroyed []item `json:"destroyed"`
			Failed    []item `json:"failed"`
			Kept      int    `json:"kept"`
		}{DryRun: *dry, Destroyed: []item{}, Failed: []item{}, Kept: rep.Kept}
		for _, r := range rep.Destroyed {
			out.Destroyed = append(out.Destroyed, item{r.Resource, r.ID, r.Name, r.ExpiresAt, ""})
		}
		for _, f := range rep.Failed {
			out.Failed = append(out.Failed, item{f.Resource, f.ID, f.Name, f.ExpiresAt, f.Err.Error()})
		}
		if err := a.printJSON(out); err != nil {
			return err
		}
		return rerr
	}
	verb := "destroyed"
	if *dry {
		verb = "would destroy"
	}
	for _, r := range rep.Destroyed {
		why := expires(r.ExpiresAt)
		if r.ExpiresAt.IsZero() {
			why = "no expiry, made " + time.Since(r.CreatedAt).Round(time.Second).String() + " ago"
		}
		if r.Resource == "volume-snapshot" {
			why = "left behind a deleted snapshot"
		}
		fmt.Fprintf(a.stdout, "%s %s %s (%s): %s\n", verb, r.Resource, r.ID, r.Name, why)
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(a.stderr, "could not destroy %s %s (%s): %v\n", f.Resource, f.ID, f.Name, f.Err)
	}
	fmt.Fprintf(a.stderr, "%d %s, %d failed, %d kept (not expired) on %s%s\n", len(rep.Destroyed), verb, len(rep.Failed), rep.Kept, a.p.Name(), a.searched())
	return rerr
}
