package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as spuffctl itself, for the tests that
// need a real process (signals).
func TestMain(m *testing.M) {
	if os.Getenv("SPUFFCTL_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// simEnv is an environment with no cloud credentials and a private
// simulated-cloud state directory.
func simEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{"SPUFF_SIM_DIR": t.TempDir(), "SPUFF_SIM_BOOT": "150ms", "HOME": t.TempDir()}
}

// spuffctl runs the command in-process with env as its whole environment.
func spuffctl(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), code
}

func TestUpLsStatusDown(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := simEnv(t)
			out, errOut, code := spuffctl(t, env, "up", "--provider", b.name, "--json", "--label", "env=test", "--name", "dev-1")
			if code != exitOK {
				t.Fatalf("up exited %d\nstderr:\n%s", code, errOut)
			}
			if !strings.Contains(errOut, "simulated") {
				t.Errorf("up did not say on stderr that it uses the simulated cloud:\n%s", errOut)
			}
			var inst instanceJSON
			if err := json.Unmarshal([]byte(out), &inst); err != nil {
				t.Fatalf("up --json printed %q: %v", out, err)
			}
			if inst.ID == "" || inst.IPv4 == "" || inst.Status != "active" || inst.Labels["env"] != "test" || !strings.HasPrefix(inst.SSH, "ssh ") {
				t.Errorf("up --json = %+v, want an active machine with an IP, its label and an ssh command", inst)
			}

			// A second process sees the machine: the state persists.
			out, errOut, code = spuffctl(t, env, "ls", "--provider", b.name, "--json")
			if code != exitOK {
				t.Fatalf("ls exited %d: %s", code, errOut)
			}
			var list []instanceJSON
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("ls --json printed %q: %v", out, err)
			}
			if len(list) != 1 || list[0].ID != inst.ID {
				t.Fatalf("ls = %+v, want just %s", list, inst.ID)
			}
			out, _, code = spuffctl(t, env, "ls", "--provider", b.name)
			if code != exitOK || !strings.Contains(out, inst.ID) || !strings.Contains(out, "dev-1") {
				t.Errorf("ls table (exit %d):\n%s", code, out)
			}
			out, _, code = spuffctl(t, env, "status", "--provider", b.name, "dev-1")
			if code != exitOK || !strings.Contains(out, inst.ID) || !strings.Contains(out, "active") {
				t.Errorf("status by name (exit %d):\n%s", code, out)
			}

			out, errOut, code = spuffctl(t, env, "down", "--provider", b.name, "--json", inst.ID)
			if code != exitOK {
				t.Fatalf("down exited %d: %s", code, errOut)
			}
			var down struct{ Destroyed []string }
			if err := json.Unmarshal([]byte(out), &down); err != nil || len(down.Destroyed) != 1 {
				t.Errorf("down --json printed %q (%v)", out, err)
			}
			// Destroying again succeeds: the machine is already gone.
			if _, errOut, code := spuffctl(t, env, "down", "--provider", b.name, inst.ID); code != exitOK {
				t.Errorf("second down exited %d: %s", code, errOut)
			}
			out, _, _ = spuffctl(t, env, "ls", "--provider", b.name, "--json")
			if strings.TrimSpace(out) != "[]" {
				t.Errorf("ls after down = %s, want []", out)
			}
		})
	}
}

func TestSnapshotAndKeys(t *testing.T) {
	t.Parallel()
	env := simEnv(t)
	out, errOut, code := spuffctl(t, env, "up", "--json", "--name", "snapsrc")
	if code != exitOK {
		t.Fatalf("up: %d %s", code, errOut)
	}
	var inst instanceJSON
	_ = json.Unmarshal([]byte(out), &inst)
	out, errOut, code = spuffctl(t, env, "snapshot", "create", "--json", "--name", "golden", "snapsrc")
	if code != exitOK {
		t.Fatalf("snapshot create: %d %s", code, errOut)
	}
	var snap snapshotJSON
	if err := json.Unmarshal([]byte(out), &snap); err != nil || snap.ID == "" || snap.Name != "golden" {
		t.Fatalf("snapshot create --json = %q (%v)", out, err)
	}
	out, _, code = spuffctl(t, env, "snapshot", "ls")
	if code != exitOK || !strings.Contains(out, snap.ID) {
		t.Errorf("snapshot ls (exit %d):\n%s", code, out)
	}
	if _, errOut, code := spuffctl(t, env, "up", "--image", "snapshot:"+snap.ID, "--name", "restored"); code != exitOK {
		t.Errorf("up from the snapshot: %d %s", code, errOut)
	}
	if _, errOut, code := spuffctl(t, env, "snapshot", "rm", snap.ID); code != exitOK {
		t.Errorf("snapshot rm: %d %s", code, errOut)
	}
	out, _, code = spuffctl(t, env, "keys", "--json")
	var keys []map[string]string
	if code != exitOK || json.Unmarshal([]byte(out), &keys) != nil || len(keys) == 0 {
		t.Errorf("keys --json (exit %d) = %s", code, out)
	}
	if _, errOut, code := spuffctl(t, env, "down", "--all"); code != exitOK {
		t.Errorf("down --all: %d %s", code, errOut)
	}
	if out, _, _ := spuffctl(t, env, "ls", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("ls after down --all = %s", out)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{nil, "Usage"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"up", "--bogus"}, "flag provided but not defined"},
		{[]string{"up", "--label", "novalue"}, "key=value"},
		{[]string{"up", "--image", "windows:11"}, "unknown image kind"},
		{[]string{"up", "--name", "bad_name"}, "Name"},
		{[]string{"up", "extra-arg"}, "no arguments"},
		{[]string{"status"}, "one machine"},
		{[]string{"down"}, "--all"},
		{[]string{"ls", "--provider", "nimbus"}, "unknown provider"},
		{[]string{"snapshot"}, "subcommand"},
		{[]string{"snapshot", "frob"}, "unknown snapshot subcommand"},
		{[]string{"up", "--timeout", "soon"}, "invalid value"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			_, errOut, code := spuffctl(t, simEnv(t), tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d (usage)", code, exitUsage)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range commands() {
		t.Run(cmd.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := spuffctl(t, simEnv(t), cmd.name, "--help")
			if code != exitOK || !strings.Contains(out, "usage: spuffctl "+cmd.name) {
				t.Errorf("%s --help: exit %d\nstdout:\n%s\nstderr:\n%s", cmd.name, code, out, errOut)
			}
		})
	}
	out, _, code := spuffctl(t, simEnv(t), "--help")
	if code != exitOK || !strings.Contains(out, "Commands:") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}

func TestProviders(t *testing.T) {
	t.Parallel()
	env := simEnv(t)
	env["HCLOUD_TOKEN"] = "not-a-real-token"
	out, _, code := spuffctl(t, env, "providers", "--json")
	var rows []struct {
		Name        string
		Credentials bool
	}
	if code != exitOK || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("providers --json (exit %d) = %s", code, out)
	}
	got := map[string]bool{}
	for _, r := range rows {
		got[r.Name] = r.Credentials
	}
	if len(got) != 3 || !got["hetzner"] || got["digitalocean"] || got["aws"] {
		t.Errorf("providers = %+v, want three, with credentials for hetzner only", rows)
	}
}

func TestErrorsNameProviderAndHideToken(t *testing.T) {
	t.Parallel()
	env := simEnv(t)
	env["DIGITALOCEAN_TOKEN"] = "dop_v1_supersecret_token_value"
	// Nothing listens on port 1.
	_, errOut, code := spuffctl(t, env, "ls", "--provider", "digitalocean", "--endpoint", "http://127.0.0.1:1", "--timeout", "2s")
	if code != exitFailed {
		t.Errorf("ls against an unreachable cloud exited %d, want %d", code, exitFailed)
	}
	if strings.Contains(errOut, "supersecret") {
		t.Errorf("the token appears in the error output:\n%s", errOut)
	}
	if !strings.Contains(errOut, "digitalocean") || !strings.Contains(errOut, "ListInstances") {
		t.Errorf("the error does not name the provider and operation:\n%s", errOut)
	}
}

// TestInterruptedUpLeavesNoMachine runs spuffctl as a real process, sends
// it SIGINT while it waits for a machine that never finishes booting, and
// checks that the machine was destroyed.
func TestInterruptedUpLeavesNoMachine(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		name := "destroys"
		if keep {
			name = "keeps with --keep"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := simEnv(t)
			env["SPUFF_SIM_BOOT"] = "1h"
			args := []string{"up", "--name", "interrupted"}
			if keep {
				args = append(args, "--keep")
			}
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = []string{"SPUFFCTL_RUN_MAIN=1", "PATH=" + os.Getenv("PATH")}
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
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
				if strings.HasPrefix(sc.Text(), "waiting for interrupted") {
					break
				}
			}
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(stderr)
			seen.Write(rest)
			err = cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != exitFailed {
				t.Errorf("interrupted up exited %d (%v), want %d\nstderr:\n%s", code, err, exitFailed, seen.String())
			}
			out, _, _ := spuffctl(t, env, "ls", "--json")
			var list []instanceJSON
			_ = json.Unmarshal([]byte(out), &list)
			if keep {
				if len(list) != 1 || !strings.Contains(seen.String(), "keeping the half-made machine "+list[0].ID) {
					t.Errorf("with --keep: machines %+v, stderr:\n%s", list, seen.String())
				}
				spuffctl(t, env, "down", "--all")
				return
			}
			if len(list) != 0 {
				t.Errorf("an interrupted up left %d machines: %s\nstderr:\n%s", len(list), out, seen.String())
			}
			if !strings.Contains(seen.String(), "destroyed the half-made machine") {
				t.Errorf("stderr does not say the machine was destroyed:\n%s", seen.String())
			}
		})
	}
}
