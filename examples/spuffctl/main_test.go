package main

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"syscall"
	"testing"
)

func TestUpLsStatusDown(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.must("up", "--provider", b.name, "--json", "--label", "env=test", "--name", "dev-1")
			if !strings.Contains(r.stderr, "simulated") {
				t.Errorf("up did not say on stderr that it uses the simulated cloud:\n%s", r.stderr)
			}
			var inst instanceJSON
			if err := json.Unmarshal([]byte(r.stdout), &inst); err != nil {
				t.Fatalf("up --json printed %q: %v", r.stdout, err)
			}
			if inst.ID == "" || inst.IPv4 == "" || inst.Status != "active" || inst.Labels["env"] != "test" || !strings.HasPrefix(inst.SSH, "ssh ") {
				t.Errorf("up --json = %+v, want an active machine with an IP, its label and an ssh command", inst)
			}

			// A second process sees the machine: the state persists.
			if list := e.ls(b.name); len(list) != 1 || list[0].ID != inst.ID {
				t.Fatalf("ls = %+v, want just %s", list, inst.ID)
			}
			if r := e.must("ls", "--provider", b.name); !strings.Contains(r.stdout, inst.ID) || !strings.Contains(r.stdout, "dev-1") {
				t.Errorf("ls table:\n%s", r.stdout)
			}
			if r := e.must("status", "--provider", b.name, "dev-1"); !strings.Contains(r.stdout, inst.ID) || !strings.Contains(r.stdout, "active") {
				t.Errorf("status by name:\n%s", r.stdout)
			}

			r = e.must("down", "--provider", b.name, "--json", inst.ID)
			var down struct{ Destroyed []string }
			if err := json.Unmarshal([]byte(r.stdout), &down); err != nil || len(down.Destroyed) != 1 {
				t.Errorf("down --json printed %q (%v)", r.stdout, err)
			}
			// Destroying again succeeds: the machine is already gone.
			if r := e.must("down", "--provider", b.name, inst.ID); !strings.Contains(r.stderr, "already gone") {
				t.Errorf("second down:\n%v", r)
			}
			if list := e.ls(b.name); len(list) != 0 {
				t.Errorf("ls after down = %+v, want none", list)
			}
		})
	}
}

func TestSnapshotAndKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.up("--name", "snapsrc")
	r := e.must("snapshot", "create", "--json", "--name", "golden", "snapsrc")
	var snap snapshotJSON
	if err := json.Unmarshal([]byte(r.stdout), &snap); err != nil || snap.ID == "" || snap.Name != "golden" {
		t.Fatalf("snapshot create --json = %q (%v)", r.stdout, err)
	}
	if r := e.must("snapshot", "ls"); !strings.Contains(r.stdout, snap.ID) {
		t.Errorf("snapshot ls:\n%s", r.stdout)
	}
	e.must("up", "--image", "snapshot:"+snap.ID, "--name", "restored")
	if r := e.must("snapshot", "rm", snap.ID); !strings.Contains(r.stdout, "deleted snapshot "+snap.ID) {
		t.Errorf("snapshot rm:\n%v", r)
	}
	r = e.must("keys", "--json")
	var keys []map[string]string
	if json.Unmarshal([]byte(r.stdout), &keys) != nil || len(keys) == 0 {
		t.Errorf("keys --json = %s", r.stdout)
	}
	e.must("down", "--all")
	if list := e.ls("digitalocean"); len(list) != 0 {
		t.Errorf("ls after down --all = %+v", list)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: nil, want: "Usage"},
		{args: []string{"frobnicate"}, want: "unknown command"},
		{args: []string{"up", "--bogus"}, want: "flag provided but not defined"},
		{args: []string{"up", "--label", "novalue"}, want: "key=value"},
		{args: []string{"up", "--image", "windows:11"}, want: "unknown image kind"},
		{args: []string{"up", "--name", "bad_name"}, want: "Name"},
		{args: []string{"up", "extra-arg"}, want: "no arguments"},
		{args: []string{"status"}, want: "one machine"},
		{args: []string{"down"}, want: "--all"},
		{args: []string{"down", "web", "--all"}, want: "--all"},
		{args: []string{"ls", "--provider", "nimbus"}, want: "unknown provider"},
		{args: []string{"ls"}, env: map[string]string{"SPUFF_PROVIDER": "nimbus"}, want: "unknown provider"},
		{args: []string{"snapshot"}, want: "subcommand"},
		{args: []string{"snapshot", "frob"}, want: "unknown snapshot subcommand"},
		{args: []string{"sim", "frob"}, want: "unknown sim subcommand"},
		{args: []string{"up", "--timeout", "soon"}, want: "invalid value"},
		{args: []string{"up", "--timeout", "0s"}, want: "more than 0"},
		{args: []string{"ls", "--timeout=-5s"}, want: "more than 0"},
		{args: []string{"up"}, env: map[string]string{"SPUFF_SIM_BOOT": "fast"}, want: "SPUFF_SIM_BOOT"},
		{args: []string{"sim", "serve", "--listen", "127.0.0.1:http"}, want: "--listen"},
		{args: []string{"ls", "--endpoint", "http://127.0.0.1:1"}, want: "needs the provider named"},
		{args: []string{"ls", "--provider", "hetzner", "--simulate", "--endpoint", "http://127.0.0.1:1"}, want: "exclude"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for k, v := range tc.env {
				e.vars[k] = v
			}
			r := e.run(tc.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want exit %d (usage) and %q on stderr; %v", exitUsage, tc.want, r)
			}
			if strings.Contains(r.stderr, "created") || r.stdout != "" {
				t.Errorf("a usage error did something:\n%v", r)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range commands() {
		t.Run(cmd.name, func(t *testing.T) {
			t.Parallel()
			r := newEnv(t).run(cmd.name, "--help")
			if r.code != exitOK || !strings.Contains(r.stdout, "usage: spuffctl "+cmd.name) {
				t.Errorf("%v", r)
			}
		})
	}
	r := newEnv(t).run("--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "Commands:") {
		t.Errorf("%v", r)
	}
}

func TestProviders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["HCLOUD_TOKEN"] = "not-a-real-token"
	r := e.must("providers", "--json")
	var rows []struct {
		Name        string
		Credentials bool
		Source      string
	}
	if json.Unmarshal([]byte(r.stdout), &rows) != nil {
		t.Fatalf("providers --json = %s", r.stdout)
	}
	got := map[string]bool{}
	for _, r := range rows {
		got[r.Name] = r.Credentials
	}
	if len(got) != 3 || !got["hetzner"] || got["digitalocean"] || got["aws"] {
		t.Errorf("providers = %+v, want three, with credentials for hetzner only", rows)
	}
	if r := e.must("providers"); strings.Contains(r.stdout, "not-a-real-token") || !strings.Contains(r.stdout, "HCLOUD_TOKEN") {
		t.Errorf("providers table shows the token or not its variable:\n%s", r.stdout)
	}
}

func TestErrorsNameProviderAndHideToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["DIGITALOCEAN_TOKEN"] = "dop_v1_supersecret_token_value"
	// Nothing listens on port 1.
	r := e.run("ls", "--provider", "digitalocean", "--endpoint", "http://127.0.0.1:1", "--timeout", "2s")
	if r.code != exitFailed {
		t.Errorf("ls against an unreachable cloud: want exit %d; %v", exitFailed, r)
	}
	if strings.Contains(r.stderr, "supersecret") {
		t.Errorf("the token appears in the error output:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "digitalocean") || !strings.Contains(r.stderr, "ListInstances") {
		t.Errorf("the error does not name the provider and operation:\n%s", r.stderr)
	}
}

// TestInterruptedUpLeavesNoMachine sends SIGINT to an up waiting for a
// machine that never finishes booting, and checks that the machine was
// destroyed (or, with --keep, kept and named) and that the exit status is
// 130, as a shell reports an interrupted command.
func TestInterruptedUpLeavesNoMachine(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		name := "destroys"
		if keep {
			name = "keeps with --keep"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.vars["SPUFF_SIM_BOOT"] = "1h"
			args := []string{"up", "--name", "interrupted"}
			if keep {
				args = append(args, "--keep")
			}
			seen, code := interruptWhen(t, e, "waiting for interrupted", args...)
			if code != 130 {
				t.Errorf("interrupted up exited %d, want 130\nstderr:\n%s", code, seen)
			}
			want := 0
			if keep {
				want = 1
			}
			list := e.lsWait("digitalocean", want) // listings lag creates and destroys
			if keep {
				if len(list) != 1 || !strings.Contains(seen, "keeping the half-made machine "+list[0].ID) {
					t.Errorf("with --keep: machines %+v, stderr:\n%s", list, seen)
				}
				return
			}
			if len(list) != 0 {
				t.Errorf("an interrupted up left %d machines: %+v\nstderr:\n%s", len(list), list, seen)
			}
			if !strings.Contains(seen, "destroyed the half-made machine") {
				t.Errorf("stderr does not say the machine was destroyed:\n%s", seen)
			}
		})
	}
}

// interruptWhen starts spuffctl args, sends it SIGINT once a line of its
// stderr starts with prefix, and returns its whole stderr and exit status.
func interruptWhen(t *testing.T, e *env, prefix string, args ...string) (string, int) {
	t.Helper()
	cmd := e.command(t.Context(), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var seen strings.Builder
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), prefix) {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	seen.Write(rest)
	_ = cmd.Wait()
	return seen.String(), cmd.ProcessState.ExitCode()
}

// TestFailedUpSparesAnAdoptedMachine: an up that finds the machine a
// previous up made with the same request adopts it (a create is never
// made twice), and then neither an interrupt nor a failed wait destroys
// it: it was not this command's.
func TestFailedUpSparesAnAdoptedMachine(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"digitalocean", "hetzner", "aws"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.vars["SPUFF_SIM_BOOT"] = "1h"
			seen, _ := interruptWhen(t, e, "waiting for same", "up", "--provider", p, "--name", "same", "--keep")
			list := e.lsWait(p, 1) // listings lag a create
			if len(list) != 1 {
				t.Fatalf("the first up did not keep its machine: %+v\n%s", list, seen)
			}
			id := list[0].ID
			seen, code := interruptWhen(t, e, "waiting for same", "up", "--provider", p, "--name", "same")
			if code != 130 || !strings.Contains(seen, "left "+id+" as it is") || strings.Contains(seen, "destroyed") {
				t.Errorf("interrupted up of an adopted machine: exit %d\n%s", code, seen)
			}
			// Boots take an hour: the wait, not the create, runs out of time.
			r := e.run("up", "--provider", p, "--name", "same", "--timeout", "5s")
			if r.code != exitFailed || !strings.Contains(r.stderr, "left "+id+" as it is") || strings.Contains(r.stderr, "destroyed") {
				t.Errorf("timed-out up of an adopted machine:\n%v", r)
			}
			if list := e.ls(p); len(list) != 1 || list[0].ID != id {
				t.Errorf("the adopted machine %s did not survive: %+v", id, list)
			}
		})
	}
}
