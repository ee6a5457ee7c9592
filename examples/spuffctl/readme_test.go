package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmeCommands returns the spuffctl command lines of the README's shell
// examples ("go run ./examples/spuffctl ..."), as arguments, in order.
func readmeCommands(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "go run ./examples/spuffctl"
	var out [][]string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, prefix+" ") && l != prefix {
			continue
		}
		l, _, _ = strings.Cut(l, "#")
		out = append(out, strings.Fields(strings.TrimPrefix(l, prefix)))
	}
	if len(out) < 5 {
		t.Fatalf("found only %d spuffctl commands in the README", len(out))
	}
	return out
}

// TestREADMECommands runs every spuffctl command of the README, in order,
// as a new user without credentials would: each works as written.
func TestREADMECommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cmds := readmeCommands(t)
	if first := strings.Join(cmds[0], " "); first != "up" {
		t.Errorf("the README's first command is now %q; TestFirstCommandStaysSimulated runs it", first)
	}
	for _, args := range cmds {
		r := e.run(args...)
		if r.code != exitOK || !strings.Contains(r.stderr, "simulated") {
			t.Errorf("README command failed or did not say it is simulated:\n%v", r)
		}
	}
}
