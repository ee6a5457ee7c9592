package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// bin is the spuffctl binary the tests run, built once by TestMain.
var bin string

// TestMain builds spuffctl into a temporary directory, so that every test
// runs the real program in its own processes. SPUFFCTL_TEST_BIN names
// another spuffctl to test instead (an older build, to see a test fail).
// Run with SPUFFCTL_TEST_ROLE=sdk-client, the test binary is instead the
// separate SDK program of TestSimServe.
func TestMain(m *testing.M) {
	if os.Getenv("SPUFFCTL_TEST_ROLE") == "sdk-client" {
		os.Exit(sdkClientMain())
	}
	if bin = os.Getenv("SPUFFCTL_TEST_BIN"); bin != "" {
		os.Exit(m.Run())
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "spuffctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "spuffctl")
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command(goCmd, append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building spuffctl: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// env is a private environment for spuffctl processes: no cloud
// credentials, its own HOME and simulated-cloud state directory, fast
// simulated boots.
type env struct {
	t    *testing.T
	home string
	dir  string // SPUFF_SIM_DIR
	vars map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, home: t.TempDir(), dir: t.TempDir()}
	e.vars = map[string]string{
		"PATH":           os.Getenv("PATH"),
		"HOME":           e.home,
		"SPUFF_SIM_DIR":  e.dir,
		"SPUFF_SIM_BOOT": "150ms",
	}
	return e
}

// environ returns the environment as exec wants it.
func (e *env) environ() []string {
	out := make([]string, 0, len(e.vars))
	for k, v := range e.vars {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// command returns spuffctl args as a command in e, run in e.home.
func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.environ()
	cmd.Dir = e.home
	return cmd
}

// result is what a spuffctl process did.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("spuffctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs spuffctl args to its end, with stdin empty.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runInput("", args...)
}

// runInput runs spuffctl args with stdin as its input.
func (e *env) runInput(stdin string, args ...string) result {
	e.t.Helper()
	return e.runAt(e.home, stdin, args...)
}

// runIn runs spuffctl args in the directory dir, with stdin empty.
func (e *env) runIn(dir string, args ...string) result {
	e.t.Helper()
	return e.runAt(dir, "", args...)
}

func (e *env) runAt(dir, stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := e.command(ctx, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		e.t.Fatalf("running spuffctl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// must runs spuffctl args and fails the test unless it exits 0.
func (e *env) must(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != exitOK {
		e.t.Fatalf("%v", r)
	}
	return r
}

// up makes a machine and returns it.
func (e *env) up(args ...string) instanceJSON {
	e.t.Helper()
	r := e.must(append([]string{"up", "--json"}, args...)...)
	var in instanceJSON
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		e.t.Fatalf("up --json printed %q: %v", r.stdout, err)
	}
	return in
}

// ls returns the machines spuffctl lists on providerName.
func (e *env) ls(providerName string) []instanceJSON {
	e.t.Helper()
	r := e.must("ls", "--json", "--provider", providerName)
	var list []instanceJSON
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		e.t.Fatalf("ls --json printed %q: %v", r.stdout, err)
	}
	return list
}

// lsWait is ls repeated until it lists want machines, for a few seconds:
// the simulated clouds' listings lag a create, as the real ones do.
func (e *env) lsWait(providerName string, want int) []instanceJSON {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		list := e.ls(providerName)
		if len(list) == want || time.Now().After(deadline) {
			return list
		}
	}
}

// cloud loads the saved simulated cloud of b (as spuffctl does), lets fn
// look at or change it, and saves it back.
func (e *env) cloud(b *backend, fn func(c *simcloud.Cloud)) {
	e.t.Helper()
	path := simStatePath(e.dir, b.name)
	c, err := loadCloud(b, path, 150*time.Millisecond, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	fn(c)
	if err := saveCloud(c, path); err != nil {
		e.t.Fatal(err)
	}
}

// ids returns the IDs of the machines in list.
func ids(list []instanceJSON) []string {
	out := make([]string, 0, len(list))
	for _, in := range list {
		out = append(out, in.ID)
	}
	return out
}

// regexpFind returns the first submatch of the regular expression re in s
// (the whole match when re has no group), or "".
func regexpFind(re, s string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	switch len(m) {
	case 0:
		return ""
	case 1:
		return m[0]
	}
	return m[1]
}

// parseInstance decodes up's or status's --json output.
func parseInstance(t *testing.T, s string) instanceJSON {
	t.Helper()
	var in instanceJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		t.Fatalf("--json printed %q: %v", s, err)
	}
	return in
}
