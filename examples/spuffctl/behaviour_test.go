package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestFlagsAfterNames: flags after a machine name are flags.
// `down web --provider hetzner` destroys web on Hetzner, not on the default
// provider, and a -word is never taken for a name.
func TestFlagsAfterNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	do := e.up("--provider", "digitalocean", "--name", "web")
	hz := e.up("--name", "web", "--provider", "hetzner")

	r := e.must("down", "web", "--provider", "hetzner")
	if !strings.Contains(r.stdout, "destroyed "+hz.ID+" (web)") || strings.Contains(r.stderr, "already gone") || !strings.Contains(r.stderr, "simulated hetzner") {
		t.Errorf("down web --provider hetzner:\n%v", r)
	}
	if list := e.ls("hetzner"); len(list) != 0 {
		t.Errorf("hetzner's web survived: %v", ids(list))
	}
	if list := e.ls("digitalocean"); !slices.Contains(ids(list), do.ID) {
		t.Errorf("digitalocean's web was destroyed: %v", ids(list))
	}
	if in := parseInstance(t, e.must("status", "web", "--json", "--provider", "digitalocean").stdout); in.ID != do.ID {
		t.Errorf("status web --json --provider digitalocean = %+v", in)
	}
	if r := e.must("snapshot", "create", "web", "--provider", "digitalocean", "--name", "web-snap", "--json"); !strings.Contains(r.stdout, `"name": "web-snap"`) {
		t.Errorf("snapshot create web --provider ... --name ... --json:\n%v", r)
	}
	if r := e.must("snapshot", "--provider", "digitalocean", "ls"); !strings.Contains(r.stdout, "web-snap") {
		t.Errorf("snapshot --provider digitalocean ls:\n%v", r)
	}

	for _, args := range [][]string{
		{"down", "-web"},
		{"down", "web", "-provider", "hetzner", "--bogus"},
		{"down", "web", "--provider"},
		{"status", "--json", "-x"},
	} {
		if r := e.run(args...); r.code != exitUsage || !strings.Contains(r.stderr, "flag") {
			t.Errorf("want a usage error about the flag:\n%v", r)
		}
	}
	// After --, a word is a name even when it starts with "-".
	if r := e.run("down", "--", "-web"); r.code != exitFailed || !strings.Contains(r.stderr, `"-web"`) {
		t.Errorf("down -- -web: want no such machine, exit 1:\n%v", r)
	}
	if list := e.ls("digitalocean"); !slices.Contains(ids(list), do.ID) {
		t.Errorf("a refused command destroyed web: %v", ids(list))
	}
}

// usageToken is one word or [optional group] or <placeholder> of a usage
// line.
var usageToken = regexp.MustCompile(`\[[^\]]+\](\.\.\.)?|<[^>]+>(\.\.\.)?|\S+`)

// TestEveryUsageLineRuns runs every usage line that `spuffctl --help` and
// `spuffctl <command> --help` print, exactly as printed, with each
// placeholder filled in and every optional part given, on every provider.
func TestEveryUsageLineRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var lines []string
	add := func(l string) {
		// Usage lines are indented, or follow "usage:".
		if !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "usage: ") {
			return
		}
		l = strings.TrimSpace(strings.TrimPrefix(l, "usage: "))
		if strings.HasPrefix(l, programName+" ") && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	top := e.must("--help").stdout
	for _, l := range strings.Split(top, "\n") {
		add(l)
	}
	for _, c := range commands() {
		n := len(lines)
		for _, l := range strings.Split(e.must(c.name, "--help").stdout, "\n") {
			add(l)
		}
		for _, u := range c.usages {
			if !strings.Contains(top, programName+" "+u) {
				t.Errorf("spuffctl --help lacks the usage line %q", u)
			}
		}
		if n := len(lines) - n; n != 0 {
			t.Errorf("%s --help shows %d usage lines that --help does not", c.name, n)
		}
	}
	if len(lines) < 13 {
		t.Fatalf("found only %d usage lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if err := os.WriteFile(filepath.Join(e.home, "file"), []byte("#cloud-config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if err := os.WriteFile(filepath.Join(e.home, "file"), []byte("#cloud-config\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			seq := 0
			fresh := func() string { seq++; return fmt.Sprintf("usage-%d", seq) }
			values := map[string]func() string{
				"p": func() string { return b.name }, "r": func() string { return b.region }, "s": func() string { return b.size },
				"r,...": func() string { return b.region }, "s,...": func() string { return b.size },
				"n": fresh, "k=v": func() string { return "env=dev" }, "@file": func() string { return "@file" },
				"k": func() string { return "laptop" },
			}
			for _, l := range lines {
				var args []string
				for _, tok := range usageToken.FindAllString(strings.TrimPrefix(l, programName+" "), -1) {
					tok = strings.TrimSuffix(tok, "...")
					switch {
					case strings.HasPrefix(tok, "["):
						for _, w := range strings.Fields(strings.Trim(tok, "[]")) {
							if v, ok := values[w]; ok && !strings.HasPrefix(w, "-") {
								w = v()
							}
							args = append(args, w)
						}
					case tok == "<id|name>":
						args = append(args, e.up("--provider", b.name, "--name", fresh()).Name)
					case tok == "<snapshot>":
						m := e.up("--provider", b.name, "--name", fresh())
						var s snapshotJSON
						if err := json.Unmarshal([]byte(e.must("snapshot", "create", m.ID, "--provider", b.name, "--json").stdout), &s); err != nil {
							t.Fatal(err)
						}
						args = append(args, s.ID)
					case strings.HasPrefix(tok, "<"):
						t.Fatalf("%s: no value for the placeholder %s", l, tok)
					default:
						args = append(args, tok)
					}
				}
				if slices.Contains(args, "serve") {
					seen, code := interruptWhen(t, e, programName+": serving", args...)
					if code != exitOK {
						t.Errorf("%s\nran as spuffctl %s: exit %d after SIGINT\n%s", l, strings.Join(args, " "), code, seen)
					}
					continue
				}
				if r := e.run(args...); r.code != exitOK {
					t.Errorf("%s\nran as %v", l, r)
				}
			}
		})
	}
}

// TestDownSaysWhatHappened: a name that matches nothing is an error (and
// then nothing is destroyed); a well-formed ID of a machine that does not
// exist is "already gone".
func TestDownSaysWhatHappened(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	web := e.up("--name", "web")
	r := e.run("down", "nosuch")
	if r.code != exitFailed || !strings.Contains(r.stderr, "no such machine") || strings.Contains(r.stderr, "already gone") {
		t.Errorf("down nosuch: want exit 1 and no such machine:\n%v", r)
	}
	r = e.run("down", "web", "nosuch")
	if r.code != exitFailed || strings.Contains(r.stdout, "destroyed") {
		t.Errorf("down web nosuch: want exit 1 and nothing destroyed:\n%v", r)
	}
	if list := e.ls("digitalocean"); !slices.Contains(ids(list), web.ID) {
		t.Errorf("web was destroyed by a command that named a machine that does not exist")
	}
	for _, args := range [][]string{{"down", "987654"}, {"down", "--provider", "aws", "i-0123456789abcdef0"}, {"down", "987654", "--provider", "hetzner"}} {
		if r := e.run(args...); r.code != exitOK || !strings.Contains(r.stderr, "already gone") {
			t.Errorf("want exit 0, already gone:\n%v", r)
		}
	}
	if r := e.run("down", "--provider", "aws", "web"); r.code != exitFailed {
		t.Errorf("down --provider aws web (web is on digitalocean): want exit 1\n%v", r)
	}
}

// TestSnapshotRmSaysWhatHappened: removing a snapshot that never existed
// says so rather than "deleted".
func TestSnapshotRmSaysWhatHappened(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, args := range [][]string{{"snapshot", "rm", "987654"}, {"snapshot", "rm", "--provider", "aws", "ami-0123456789abcdef0"}} {
		r := e.run(args...)
		if r.code != exitOK || strings.Contains(r.stdout, "deleted") || !strings.Contains(r.stderr, "no such snapshot") {
			t.Errorf("want exit 0 and no such snapshot, nothing deleted:\n%v", r)
		}
	}
	r := e.must("snapshot", "rm", "987654", "--json")
	var out struct {
		Deleted  []string `json:"deleted"`
		NotFound []string `json:"not_found"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Deleted) != 0 || !slices.Equal(out.NotFound, []string{"987654"}) {
		t.Errorf("snapshot rm --json of a snapshot that never existed = %s (%v)", r.stdout, err)
	}
	if r := e.run("snapshot", "rm", "nosuch"); r.code != exitFailed || strings.Contains(r.stdout, "deleted") {
		t.Errorf("snapshot rm nosuch: want exit 1:\n%v", r)
	}
}

// TestUnwritableStateDirIsRefusedFirst: a state directory spuffctl cannot
// write to is refused before anything is created (rather than after, when
// the machine it reported could not be saved).
func TestUnwritableStateDirIsRefusedFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	notDir := filepath.Join(e.home, "a-file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{"under a file": filepath.Join(notDir, "state")}
	if os.Geteuid() != 0 {
		ro := filepath.Join(e.home, "read-only")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		dirs["read-only"] = ro
	} else {
		t.Log("running as root, which may write to a read-only directory: checking only a directory under a file")
	}
	for what, dir := range dirs {
		e.vars["SPUFF_SIM_DIR"] = dir
		r := e.run("up", "--name", "never")
		if r.code != exitFailed || r.stdout != "" || strings.Contains(r.stderr, "created") || !strings.Contains(r.stderr, "state directory") {
			t.Errorf("%s: want exit 1 before anything is created:\n%v", what, r)
		}
	}
}

// TestSimPathIsWhatREADMESays: `sim path` prints the state files the
// README describes: spuff/sim-<provider>.json under the user cache
// directory.
func TestSimPathIsWhatREADMESays(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const says = "`spuff/sim-<provider>.json` under the user cache directory (`~/.cache` on Linux; `spuffctl sim path` prints them)"
	if !strings.Contains(strings.Join(strings.Fields(string(readme)), " "), says) {
		t.Fatalf("the README no longer says %q; keep this test in step", says)
	}
	e := newEnv(t)
	delete(e.vars, "SPUFF_SIM_DIR")
	var want []string
	for _, b := range backends {
		want = append(want, filepath.Join(e.home, ".cache", "spuff", "sim-"+b.name+".json"))
	}
	if got := strings.Fields(e.must("sim", "path").stdout); !slices.Equal(got, want) {
		t.Errorf("sim path = %q, want %q", got, want)
	}
	if got := strings.TrimSpace(e.must("sim", "path", "--provider", "aws").stdout); got != want[2] {
		t.Errorf("sim path --provider aws = %q, want %q", got, want[2])
	}
}

// TestSizesAreRounded: snapshot sizes in JSON have at most two decimals
// (the Hetzner API's float32 3.2 is not 3.200000047683716).
func TestSizesAreRounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.up("--provider", "hetzner")
	for _, r := range []result{e.must("snapshot", "create", "--provider", "hetzner", "--json", m.ID), e.must("snapshot", "ls", "--provider", "hetzner", "--json")} {
		sizes := regexp.MustCompile(`"size_gb": ([0-9.]+)`).FindAllStringSubmatch(r.stdout, -1)
		if len(sizes) == 0 {
			t.Errorf("no size_gb in %s", r.stdout)
		}
		for _, s := range sizes {
			if _, dec, ok := strings.Cut(s[1], "."); ok && len(dec) > 2 {
				t.Errorf("size_gb %s has more than two decimals", s[1])
			}
		}
	}
}

// TestAWSRegions: a machine made in another region than the default is
// seen by ls, status, down and down --all of later processes, and down of
// its ID never says "already gone" while it lives. AWS_REGION is the
// default region in simulated mode too.
func TestAWSRegions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	eu := e.up("--provider", "aws", "--region", "eu-west-1", "--name", "euro")
	if eu.Region != "eu-west-1" {
		t.Fatalf("up --region eu-west-1 made %+v", eu)
	}
	if list := e.ls("aws"); !slices.Contains(ids(list), eu.ID) {
		t.Errorf("ls does not see %s in eu-west-1: %v", eu.ID, ids(list))
	}
	if r := e.must("status", "--provider", "aws", eu.ID); !strings.Contains(r.stdout, "eu-west-1") {
		t.Errorf("status by ID:\n%v", r)
	}
	e.must("status", "--provider", "aws", "euro")
	r := e.must("down", "--provider", "aws", eu.ID)
	if strings.Contains(r.stderr, "already gone") || !strings.Contains(r.stdout, "destroyed "+eu.ID) {
		t.Errorf("down of a live machine in eu-west-1:\n%v", r)
	}

	e.vars["AWS_REGION"] = "eu-central-1"
	fra := e.up("--provider", "aws", "--name", "frankfurt")
	if fra.Region != "eu-central-1" {
		t.Errorf("with AWS_REGION=eu-central-1, up made a machine in %q", fra.Region)
	}
	delete(e.vars, "AWS_REGION")
	other := e.up("--provider", "aws", "--region", "us-west-2", "--name", "oregon")
	r = e.must("down", "--all", "--provider", "aws", "--json")
	var down struct{ Destroyed []string }
	if err := json.Unmarshal([]byte(r.stdout), &down); err != nil {
		t.Fatal(err)
	}
	slices.Sort(down.Destroyed)
	want := []string{fra.ID, other.ID}
	slices.Sort(want)
	if !slices.Equal(down.Destroyed, want) {
		t.Errorf("down --all destroyed %v, want %v", down.Destroyed, want)
	}
}
