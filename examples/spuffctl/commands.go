package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
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

// splitList splits a comma-separated flag value ("fsn1,nbg1"), and
// refuses empty and repeated items.
func splitList(flagName, v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			return nil, usagef("--%s %q has an empty item", flagName, v)
		case slices.Contains(out, item):
			return nil, usagef("--%s %q names %s twice", flagName, v, item)
		}
		out = append(out, item)
	}
	return out, nil
}

func cmdUp(a *app, args []string) error {
	fs := a.flags()
	region := fs.String("region", "", "region, or regions to try in order, comma-separated (default: the provider's usual one: nyc3, fsn1, $AWS_REGION or us-east-1)")
	size := fs.String("size", "", "size or instance type, or sizes to try in order, comma-separated (default: the provider's smallest usual one)")
	image := provider.Ubuntu("24.04")
	fs.TextVar(&image, "image", provider.Ubuntu("24.04"), "image: ubuntu:<version>, debian:<version>, custom:<id>, snapshot:<id>")
	name := fs.String("name", "", "machine name (default: spuff-<random>)")
	labels := labelFlag{}
	fs.Var(labels, "label", "label key=value (repeatable)")
	userData := fs.String("user-data", "", "cloud-init user data: @file to read it from a file, or the text itself")
	var keys listFlag
	fs.Var(&keys, "ssh-key", "SSH key to install: an account key's ID, name or fingerprint (see `keys`), or a public key file such as ~/.ssh/id_ed25519.pub (repeatable); then up waits until the machine takes an SSH login")
	identity := fs.String("identity", "", "private key `file` to log in with (default: the SSH agent's keys, ~/.ssh/id_ed25519, id_ecdsa, id_rsa: those whose public key is installed)")
	sshUser := fs.String("ssh-user", "", "user to log in as (default: the image's: root; ubuntu or admin on aws)")
	noSSHWait := fs.Bool("no-ssh-wait", false, "do not wait for SSH: return once the cloud says the machine runs with an address")
	noCloudInit := fs.Bool("no-cloud-init", false, "when waiting for SSH, do not wait for cloud-init to finish")
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
	regions, err := splitList("region", *region)
	if err != nil {
		return err
	}
	sizes, err := splitList("size", *size)
	if err != nil {
		return err
	}
	c, err := a.choose()
	if err != nil {
		return err
	}
	if len(regions) == 0 {
		regions = []string{c.backend.defaultRegion(a.getenv)}
	}
	if len(sizes) == 0 {
		sizes = []string{c.backend.size}
	}
	req := provider.InstanceRequest{
		Name: *name, Region: regions[0], Size: sizes[0], Image: image,
		UserData: ud, Labels: labels, SSHKeys: nil, TTL: life,
	}
	if req.Name == "" {
		req.Name = randomName()
	}
	if len(req.Labels) == 0 {
		req.Labels = nil
	}
	for _, r := range regions {
		for _, sz := range sizes {
			try := req
			try.Region, try.Size = r, sz
			if err := try.Validate(); err != nil {
				return usagef("%v", err)
			}
		}
	}
	waitSSH := (len(keys) > 0 || *identity != "") && !*noSSHWait
	if c.backend.regional {
		a.alsoRegions = regions
	}
	if err := a.open(); err != nil {
		return err
	}

	// The keys, and the private keys to log in with, before anything is
	// made: a login that cannot work is refused now.
	keysCtx, cancelKeys := a.opCtx()
	install, err := a.resolveKeys(keysCtx, keys)
	cancelKeys()
	if err != nil {
		return err
	}
	for _, k := range install {
		req.SSHKeys = append(req.SSHKeys, k.key.ID)
	}
	plan := loginPlan{user: *sshUser, cloudInit: !*noCloudInit}
	if plan.user == "" {
		plan.user = provider.LoginUser(a.p.Name(), image)
	}
	if waitSSH {
		ids, closer, notes, err := a.loginIdentities(*identity, install)
		for _, n := range notes {
			fmt.Fprintf(a.stderr, "%s: %s\n", programName, n)
		}
		if err != nil {
			return err
		}
		if closer != nil {
			defer closer.Close()
		}
		plan.ids = ids
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
	var inst *provider.Instance
	var tried []attemptJSON
	placed := provider.Placement{Provider: a.p, Region: req.Region, Size: req.Size}
	if len(regions)*len(sizes) == 1 {
		inst, err = a.p.CreateInstance(createCtx, req)
	} else {
		grid := provider.Grid(a.p, regions, sizes)
		fmt.Fprintf(a.stderr, "%s: trying %d placements in order, moving on when one has no room: %s\n", programName, len(grid), placementList(grid))
		n := 0
		createCtx = provider.WithFailoverTrace(createCtx, &provider.FailoverTrace{Tried: func(at provider.Attempt) {
			n++
			tried = append(tried, attemptJSON{Region: at.Placement.Region, Size: at.Placement.Size, Error: errText(at.Err)})
			if at.Err == nil {
				placed = at.Placement
				fmt.Fprintf(a.stderr, "  %d/%d %s %s: created\n", n, len(grid), at.Placement.Region, at.Placement.Size)
				return
			}
			why := "no room"
			if !errors.Is(at.Err, provider.ErrCapacity) {
				why = "failed; not trying further: only a lack of room moves on"
			}
			fmt.Fprintf(a.stderr, "  %d/%d %s %s: %s (%s)\n", n, len(grid), at.Placement.Region, at.Placement.Size, why, errText(at.Err))
		}})
		inst, err = provider.CreateWithFailover(createCtx, req, grid)
	}
	cancelCreate()
	if err != nil {
		// Leftover is the one field that names a machine this very call
		// made; Error.ID never is. A failover's attempts each have theirs.
		errs := []error{err}
		var ferr *provider.FailoverError
		if errors.As(err, &ferr) {
			errs = errs[:0]
			for _, at := range ferr.Attempts {
				errs = append(errs, at.Err)
			}
		}
		cleaned := map[string]bool{}
		for _, e := range errs {
			var perr *provider.Error
			if !errors.As(e, &perr) {
				continue
			}
			if perr.Existing != "" && !cleaned["existing "+perr.Existing] {
				cleaned["existing "+perr.Existing] = true
				fmt.Fprintf(a.stderr, "%s: %s, which is in the way, was there before this command and is left as it is\n", programName, perr.Existing)
			}
			if perr.Leftover != "" && !cleaned[perr.Leftover] {
				cleaned[perr.Leftover] = true
				a.cleanup(perr.Leftover, !before[perr.Leftover], *keep)
			}
		}
		return err
	}
	ours := !before[inst.ID] && (inst.CreatedAt.IsZero() || !inst.CreatedAt.Before(start.Add(-adoptSlack)))
	where := ""
	if len(tried) > 0 {
		where = " in " + placed.Region + " as " + placed.Size
	}
	if ours {
		fmt.Fprintf(a.stderr, "created %s (%s)%s on %s; waiting for it to be ready\n", inst.Name, inst.ID, where, a.p.Name())
		if a.sim == nil && a.backend.regional {
			if dir, err := simStateDir(a.getenv); err == nil {
				if err := recordRegion(dir, a.backend.name, placed.Region); err != nil {
					fmt.Fprintf(a.stderr, "%s: could not record region %s for later commands: %v\n", programName, placed.Region, err)
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
	var ready *provider.Instance
	var rep *provider.SSHReport
	if waitSSH {
		rep, err = a.waitLogin(waitCtx, inst.ID, inst.Name, plan, pr)
		if rep != nil {
			ready = rep.Instance
		}
	} else {
		waitCtx = provider.WithWaitTrace(waitCtx, &provider.WaitTrace{Polled: pr.event})
		ready, err = a.p.WaitReady(waitCtx, inst.ID)
		pr.finish()
	}
	if err != nil {
		a.cleanup(inst.ID, ours, *keep)
		if a.interrupted() {
			return fmt.Errorf("interrupted while waiting for %s: %w", inst.ID, err)
		}
		return err
	}
	if len(req.SSHKeys) > 0 || *sshUser != "" || *identity != "" {
		// The key file is recorded as an absolute path: `ssh` may run in
		// another directory. --identity is recorded with --no-ssh-wait
		// too, for the first `ssh` to log in with.
		rec := loginRecord{User: plan.user}
		switch {
		case *identity != "":
			rec.Identity = absPath(a.expandHome(*identity))
		case waitSSH:
			agent := false
			for _, id := range plan.ids {
				agent = agent || id.File == ""
			}
			if !agent && len(plan.ids) > 0 {
				rec.Identity = absPath(plan.ids[0].File)
			}
		}
		if err := a.saveLogin(ready.ID, rec); err != nil {
			fmt.Fprintf(a.stderr, "%s: could not record the login of %s for `%s ssh`: %v\n", programName, ready.Name, programName, err)
		}
	}
	if a.jsonOut {
		j := a.instanceJSON(ready)
		j.Failover = tried
		if rep != nil {
			j.SSHReady = a.loginJSON(rep, ready.Name)
		}
		return a.printJSON(j)
	}
	fmt.Fprintf(a.stdout, "id:    %s\nname:  %s\nip:    %s\nssh:   %s\n", ready.ID, ready.Name, ready.IP(), a.sshHint(ready.Name))
	if rep != nil {
		line := stagesLine(rep.Stages)
		if rep.CloudInit != nil {
			line += " (cloud-init: " + rep.CloudInit.Status + ")"
		}
		fmt.Fprintf(a.stdout, "ready: %s\n", line)
	}
	return nil
}

// attemptJSON is one placement a failover tried.
type attemptJSON struct {
	Region string `json:"region"`
	Size   string `json:"size"`
	Error  string `json:"error,omitempty"`
}

// placementList writes placements as "fsn1 cx22, fsn1 cpx11, ...".
func placementList(pl []provider.Placement) string {
	parts := make([]string, len(pl))
	for i, p := range pl {
		parts[i] = p.Region + " " + p.Size
	}
	return strings.Join(parts, ", ")
}

// errText is an error's text without the library's "spuff: " prefix, ""
// for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimPrefix(err.Error(), "spuff: ")
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
	a.forgetLogin(id)
	fmt.Fprintf(a.stderr, "destroyed the half-made machine %s\n", id)
}

// progress shows a wait's state on stderr: redrawn in place every half
// second on a terminal, one line per change of state otherwise. The first
// line comes at once, whenever the first poll is due. A wait for SSH
// (WaitSSH) shows its stages as they pass: on a terminal
//
//	waiting for dev-1: api 3.1s, port 520ms, handshake 3ms; auth: keys refused, 3.7s
//
// and otherwise a line as each stage ends ("waiting for dev-1: port done
// in 520ms (4 attempts)").
type progress struct {
	w     io.Writer
	tty   bool
	name  string
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	finished bool
	state    string
	// stage is the stage of a wait for SSH the state belongs to; "" for
	// WaitReady's polls (and WaitSSH's api stage, shown the same way).
	stage provider.Stage
	// passed are the stages of a wait for SSH that ended.
	passed []provider.StageTiming
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

// current is the state being waited in: "new", "port: connection refused".
func (p *progress) current() string {
	if p.stage == "" || p.stage == provider.StageAPI {
		return p.state
	}
	if p.state == "" {
		return string(p.stage)
	}
	return string(p.stage) + ": " + p.state
}

func (p *progress) drawLocked() {
	el := time.Since(p.start).Round(100 * time.Millisecond)
	if p.tty {
		what := p.current()
		if len(p.passed) > 0 && what != "" {
			what = stagesLine(p.passed) + "; " + what
		} else if len(p.passed) > 0 {
			what = stagesLine(p.passed)
		}
		fmt.Fprintf(p.w, "\r\033[Kwaiting for %s: %s, %s", p.name, what, el)
		return
	}
	fmt.Fprintf(p.w, "waiting for %s: %s after %s\n", p.name, p.current(), el)
}

// event is the WaitTrace hook: it records the state a poll saw.
func (p *progress) event(e provider.WaitEvent) {
	state := e.State
	if e.Err != nil {
		state += " (retrying: " + provider.KindOf(e.Err).String() + ")"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished || state == p.state && e.Stage == p.stage {
		return
	}
	for _, st := range p.passed {
		if st.Stage == e.Stage {
			return // the poll that ended a stage, reported after its end
		}
	}
	p.state, p.stage = state, e.Stage
	if !p.tty {
		p.drawLocked()
	}
}

// stageDone is the WaitTrace hook for the end of a stage of WaitSSH.
func (p *progress) stageDone(e provider.StageEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Err != nil || p.finished {
		return // the error is the command's to report
	}
	p.passed = append(p.passed, e.StageTiming)
	p.state, p.stage = "", ""
	if !p.tty {
		unit := "attempt"
		if e.Stage == provider.StageAPI {
			unit = "poll"
		} else if e.Stage == provider.StageCloudInit {
			unit = "check"
		}
		if e.Attempts != 1 {
			unit += "s"
		}
		fmt.Fprintf(p.w, "waiting for %s: %s done in %s (%d %s)\n", p.name, e.Stage, roundDuration(e.Duration), e.Attempts, unit)
	}
}

// finish stops the redrawing and ends the line. It may be called more
// than once.
func (p *progress) finish() {
	p.mu.Lock()
	if p.finished {
		p.mu.Unlock()
		return
	}
	p.finished = true
	p.mu.Unlock()
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
	return printList(a, list, "machines", a.instanceJSON, "ID\tNAME\tSTATUS\tIP\tREGION\tSIZE\tAGE\tEXPIRES", func(in *provider.Instance) string {
		ip := "-"
		if in.IP().IsValid() {
			ip = in.IP().String()
		}
		age := "-"
		if !in.CreatedAt.IsZero() {
			age = time.Since(in.CreatedAt).Round(time.Second).String()
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", in.ID, in.Name, in.Status, ip, in.Region, in.Size, age, expires(in.ExpiresAt))
	})
}

// printList prints what ls and snapshot ls listed: with --json, each
// item's JSON form; else a table of header and one row an item, or, on
// stderr, that spuff manages no such things here.
func printList[T, J any](a *app, list []T, what string, toJSON func(T) J, header string, row func(T) string) error {
	if a.jsonOut {
		out := make([]J, 0, len(list))
		for _, v := range list {
			out = append(out, toJSON(v))
		}
		return a.printJSON(out)
	}
	if len(list) == 0 {
		fmt.Fprintf(a.stderr, "no %s managed by spuff on %s%s\n", what, a.p.Name(), a.searched())
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, v := range list {
		fmt.Fprintln(tw, row(v))
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
		fmt.Fprintf(tw, "ssh:\t%s\n", a.sshHint(in.Name))
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
