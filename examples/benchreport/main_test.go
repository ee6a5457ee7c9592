package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain serves a simulated cloud instead of running tests when the
// parent (a benchmark or the smoke test) asks for one through serveEnv.
func TestMain(m *testing.M) {
	if v := os.Getenv(serveEnv); v != "" {
		var args serveArgs
		if err := json.Unmarshal([]byte(v), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := serve(args, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The report command runs end to end with tiny sizes and prints every
// section, every figure next to its target.
func TestReportQuick(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := parseFlags([]string{"-quick"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	o.self, o.asTest = self, true
	if testing.Verbose() {
		o.progress = os.Stderr
	}
	rep, err := measureAll(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.write(&buf)
	out := buf.String()
	for _, want := range []string{
		"## (a) Noticing readiness", "## (b) Fleets under the rate limit", "## (c) Listing many instances",
		"## (d) Cost of one GetInstance", "## Pacer sharing",
		"DigitalOcean", "Hetzner", "AWS EC2",
		"spuff (learning)", "fixed 5 s (original spuff)", "AWS SDK waiter (15-120 s)", "hcloud-go 500 ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Tiny runs are too noisy for the timing targets; the ones that do
	// not depend on timing must hold.
	for _, l := range rep.latency {
		if l.errors > 0 {
			t.Errorf("(a) %s %s: %d waits failed", l.cloud.title, l.strategy.name, l.errors)
		}
	}
	for _, f := range rep.fleets {
		if f.failures > 0 || f.leaks > 0 || f.surfaced > 0 || f.duplicates > 0 {
			t.Errorf("(b) %s fleet of %d, %s: %d failures %v, %d leaks, %d rate-limit errors surfaced, %d duplicates",
				f.cloud.title, f.n, f.strategy.name, f.failures, f.errs, f.leaks, f.surfaced, f.duplicates)
		}
	}
	for _, l := range rep.lists {
		if l.got != l.managed || l.foreign != 0 || l.pages != l.minPages {
			t.Errorf("(c) %s: %d of %d, %d foreign, %d pages (minimum %d)", l.cloud.title, l.got, l.managed, l.foreign, l.pages, l.minPages)
		}
	}
	for _, s := range rep.sharing {
		if !s.shared || !s.separate {
			t.Errorf("%s: pacer shared %v, separate %v", s.cloud.title, s.shared, s.separate)
		}
	}
	if len(rep.gets) != len(clouds) {
		t.Errorf("(d) measured %d clouds, want %d", len(rep.gets), len(clouds))
	}
	if testing.Verbose() {
		t.Log("\n" + out)
	}
}
