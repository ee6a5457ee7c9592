package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/spuffgo/spuff/provider"
)

func cmdDown(a *app, args []string) error {
	fs := a.flags()
	all := fs.Bool("all", false, "destroy every machine spuff manages on the account")
	yes := fs.Bool("yes", false, "with --all, do not ask for confirmation on a terminal")
	rest, ctx, cancel, err := a.begin(fs, args, func(n int) bool { return *all == (n > 0) }, "down takes machine IDs or names, or --all")
	if err != nil {
		return err
	}
	defer cancel()
	list, err := a.p.ListInstances(ctx)
	if err != nil {
		return err
	}
	var targets []*provider.Instance
	var gone []string
	if *all {
		targets = list
		if len(targets) == 0 {
			fmt.Fprintf(a.stderr, "no machines managed by spuff on %s%s\n", a.p.Name(), a.searched())
		} else if !*yes && isTerminal(a.stdin) {
			if err := a.confirm(ctx, targets); err != nil {
				return err
			}
		}
	} else {
		// Every reference is resolved before anything is destroyed: a
		// mistyped one destroys nothing.
		var errs []error
		seen := map[string]bool{}
		for _, ref := range rest {
			in, managed, err := a.resolve(ctx, list, ref)
			switch {
			case errors.Is(err, errGone):
				gone = append(gone, ref)
			case err != nil:
				errs = append(errs, err)
			case !managed:
				errs = append(errs, fmt.Errorf("%s (%s) is not a machine spuff manages (no managed-by label, or not listed yet): not destroying it", in.ID, in.Name))
			case !seen[in.ID]:
				seen[in.ID] = true
				targets = append(targets, in)
			}
		}
		if len(errs) > 0 {
			if len(targets) > 0 {
				errs = append(errs, errors.New("nothing was destroyed"))
			}
			return errors.Join(errs...)
		}
	}
	for _, ref := range gone {
		if a.backend.regional {
			fmt.Fprintf(a.stderr, "%s: already gone (no such machine%s; a machine in another region needs AWS_REGION set to it)\n", ref, a.searched())
		} else {
			fmt.Fprintf(a.stderr, "%s: already gone\n", ref)
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
		a.forgetLogin(in.ID)
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "destroyed %s (%s)\n", in.ID, in.Name)
		}
	}
	if a.jsonOut {
		if err := a.printJSON(map[string]any{"destroyed": nonNil(destroyed), "already_gone": nonNil(gone)}); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// confirm asks on the terminal whether to destroy every machine in
// targets, and returns an error unless the answer is yes.
func (a *app) confirm(ctx context.Context, targets []*provider.Instance) error {
	names := make([]string, 0, len(targets))
	for _, in := range targets {
		names = append(names, in.Name+" ("+in.ID+")")
	}
	fmt.Fprintf(a.stderr, "destroy all %d machines spuff manages on %s: %s? [y/N] ", len(targets), a.p.Name(), strings.Join(names, ", "))
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(a.stdin).ReadString('\n')
		answer <- strings.ToLower(strings.TrimSpace(line))
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(a.stderr)
		return fmt.Errorf("not confirmed, nothing destroyed: %w", context.Cause(ctx))
	case ans := <-answer:
		if ans != "y" && ans != "yes" {
			return errors.New("not confirmed; nothing destroyed (--yes skips the question)")
		}
		return nil
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// isHelp reports whether args ask for help.
func isHelp(args []string) bool {
	for _, s := range args {
		switch s {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}

func cmdSnapshot(a *app, args []string) error {
	// The subcommand is the first argument, wherever it stands among the
	// flags: find it with a flag set that knows every subcommand's flags.
	probe := a.flags()
	probe.String("name", "", "")
	sub, rest := splitSubcommand(probe, args)
	switch sub {
	case "":
		if isHelp(args) {
			a.help(a.flags())
			return flag.ErrHelp
		}
		return usagef("snapshot needs a subcommand: create, ls or rm")
	case "create", "ls", "rm":
		a.sub = sub
	default:
		return usagef("unknown snapshot subcommand %q (want create, ls or rm)", sub)
	}
	fs := a.flags()
	switch sub {
	case "create":
		name := fs.String("name", "", "snapshot name (default: <machine>-<time>)")
		rest, ctx, cancel, err := a.begin(fs, rest, func(n int) bool { return n != 1 }, "snapshot create takes one machine ID or name")
		if err != nil {
			return err
		}
		defer cancel()
		return a.snapshotCreate(ctx, rest[0], *name)
	case "ls":
		_, ctx, cancel, err := a.begin(fs, rest, func(n int) bool { return n > 0 }, "snapshot ls takes no arguments")
		if err != nil {
			return err
		}
		defer cancel()
		list, err := a.p.ListSnapshots(ctx)
		if err != nil {
			return err
		}
		return printList(a, list, "snapshots", a.snapshotJSON, "ID\tNAME\tCREATED\tSIZE", func(s *provider.Snapshot) string {
			created := "-"
			if !s.CreatedAt.IsZero() {
				created = s.CreatedAt.Format(time.RFC3339)
			}
			return fmt.Sprintf("%s\t%s\t%s\t%.2f GB", s.ID, s.Name, created, s.SizeGB)
		})
	default: // rm
		rest, ctx, cancel, err := a.begin(fs, rest, func(n int) bool { return n == 0 }, "snapshot rm takes snapshot IDs or names")
		if err != nil {
			return err
		}
		defer cancel()
		return a.snapshotRemove(ctx, rest)
	}
}

// snapshotCreate snapshots the machine ref names. A snapshot this call
// made and left behind (Error.Leftover) is deleted.
func (a *app) snapshotCreate(ctx context.Context, ref, name string) error {
	list, err := a.p.ListInstances(ctx)
	if err != nil {
		return err
	}
	in, _, err := a.resolve(ctx, list, ref)
	if errors.Is(err, errGone) {
		return fmt.Errorf("no machine %s on %s%s", ref, a.p.Name(), a.searched())
	}
	if err != nil {
		return err
	}
	if name == "" {
		name = in.Name + "-" + time.Now().UTC().Format("20060102-150405")
	}
	fmt.Fprintf(a.stderr, "snapshotting %s (%s) as %s\n", in.Name, in.ID, name)
	s, err := a.p.CreateSnapshot(ctx, in.ID, name)
	if err != nil {
		var perr *provider.Error
		if errors.As(err, &perr) && perr.Leftover != "" {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), 2*time.Minute)
			defer cancel()
			if derr := a.p.DeleteSnapshot(dctx, perr.Leftover); derr != nil {
				fmt.Fprintf(a.stderr, "could not delete the half-made snapshot %s: %v\ndelete it with: %s snapshot rm --provider %s %s\n", perr.Leftover, derr, programName, a.p.Name(), perr.Leftover)
			} else {
				fmt.Fprintf(a.stderr, "deleted the half-made snapshot %s\n", perr.Leftover)
			}
		}
		return err
	}
	if a.jsonOut {
		return a.printJSON(a.snapshotJSON(s))
	}
	fmt.Fprintf(a.stdout, "snapshot %s (%s); restore with --image snapshot:%s\n", s.ID, s.Name, s.ID)
	return nil
}

// snapshotRemove deletes the managed snapshots refs name (by ID or name).
// A well-formed ID that names no snapshot is reported as such; a reference
// that is neither a snapshot's name nor an ID is an error, and then
// nothing is deleted.
func (a *app) snapshotRemove(ctx context.Context, refs []string) error {
	list, err := a.p.ListSnapshots(ctx)
	if err != nil {
		return err
	}
	var targets []*provider.Snapshot
	var missing []string
	var errs []error
	seen := map[string]bool{}
	for _, ref := range refs {
		var match []*provider.Snapshot
		for _, s := range list {
			if s.ID == ref {
				match = []*provider.Snapshot{s}
				break
			}
			if s.Name == ref {
				match = append(match, s)
			}
		}
		switch {
		case len(match) > 1:
			errs = append(errs, fmt.Errorf("%d snapshots are named %q; use an ID", len(match), ref))
		case len(match) == 1:
			if !seen[match[0].ID] {
				seen[match[0].ID] = true
				targets = append(targets, match[0])
			}
		case a.backend.snapshotID.MatchString(ref):
			missing = append(missing, ref)
		default:
			errs = append(errs, fmt.Errorf("%q: no snapshot spuff manages on %s has that name, and it is not a %s snapshot ID", ref, a.p.Name(), a.p.Name()))
		}
	}
	if len(errs) > 0 {
		if len(targets) > 0 {
			errs = append(errs, errors.New("nothing was deleted"))
		}
		return errors.Join(errs...)
	}
	for _, id := range missing {
		fmt.Fprintf(a.stderr, "snapshot %s: no such snapshot among spuff's on %s%s (never existed, or already deleted); nothing to delete\n", id, a.p.Name(), a.searched())
	}
	var deleted []string
	for _, s := range targets {
		if err := a.p.DeleteSnapshot(ctx, s.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, s.ID)
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "deleted snapshot %s (%s)\n", s.ID, s.Name)
		}
	}
	if a.jsonOut {
		if err := a.printJSON(map[string]any{"deleted": nonNil(deleted), "not_found": nonNil(missing)}); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}
