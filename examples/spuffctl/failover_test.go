package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// failoverRegions are two regions of each simulated cloud, the first tried
// first.
var failoverRegions = map[string][2]string{
	"digitalocean": {"nyc3", "ams3"},
	"hetzner":      {"fsn1", "nbg1"},
	"aws":          {"us-east-1", "eu-west-1"},
}

// TestUpFailsOverOnCapacity: with the first region out of room
// (SPUFF_SIM_CAPACITY), `up --region r1,r2` makes exactly one machine, in
// r2, and says which placements it tried; with every placement out of
// room, up fails naming each placement it tried, and leaves no machine.
func TestUpFailsOverOnCapacity(t *testing.T) {
	t.Parallel()
	for i := range backends {
		b := &backends[i]
		r1, r2 := failoverRegions[b.name][0], failoverRegions[b.name][1]
		s1, s2 := b.size, otherSize[b.name]
		t.Run(b.name+"/second-region", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.vars["SPUFF_SIM_CAPACITY"] = r1 + "=0"
			r := e.must("up", "--json", "--provider", b.name, "--region", r1+","+r2, "--name", "fo")
			in := parseInstance(t, r.stdout)
			if in.Region != r2 {
				t.Errorf("up --region %s,%s with %s full made a machine in %q, want %s\n%v", r1, r2, r1, in.Region, r2, r)
			}
			if len(in.Failover) != 2 || in.Failover[0].Region != r1 || !strings.Contains(in.Failover[0].Error, "capacity") ||
				in.Failover[1].Region != r2 || in.Failover[1].Error != "" {
				t.Errorf("--json failover = %+v, want %s refused for capacity, then %s", in.Failover, r1, r2)
			}
			for _, want := range []string{
				fmt.Sprintf("trying 2 placements in order, moving on when one has no room: %s %s, %s %s", r1, s1, r2, s1),
				fmt.Sprintf("1/2 %s %s: no room", r1, s1),
				fmt.Sprintf("2/2 %s %s: created", r2, s1),
				fmt.Sprintf("created fo (%s) in %s as %s on %s", in.ID, r2, s1, b.name),
			} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%v", want, r)
				}
			}
			list := e.lsWait(b.name, 1)
			if len(list) != 1 || list[0].ID != in.ID || list[0].Region != r2 {
				t.Errorf("after the failover the machines are %+v, want only %s in %s", list, in.ID, r2)
			}
		})
		t.Run(b.name+"/all-full", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.vars["SPUFF_SIM_CAPACITY"] = r1 + "=0," + r2 + "=0"
			r := e.run("up", "--provider", b.name, "--region", r1+","+r2, "--size", s1+","+s2, "--name", "nowhere")
			if r.code != exitFailed || r.stdout != "" || strings.Contains(r.stderr, "created") {
				t.Fatalf("up with every placement full: want exit 1 and nothing made:\n%v", r)
			}
			if !strings.Contains(r.stderr, `CreateWithFailover "nowhere": no placement had room (4 tried)`) {
				t.Errorf("the error does not say that no placement had room:\n%v", r)
			}
			n := 0
			for _, reg := range []string{r1, r2} {
				for _, sz := range []string{s1, s2} {
					n++
					if want := fmt.Sprintf("\n  %d. %s %s %s: ", n, b.name, reg, sz); !strings.Contains(r.stderr, want) {
						t.Errorf("the error does not name placement %d (%s %s) as %q:\n%v", n, reg, sz, want, r)
					}
				}
			}
			if list := e.lsWait(b.name, 0); len(list) != 0 {
				t.Errorf("a failed failover left machines: %v", ids(list))
			}
		})
	}
}

// TestSimCapacityKnob: SPUFF_SIM_CAPACITY bounds one placement (a size in
// a region) and no other; a malformed value is a usage error.
func TestSimCapacityKnob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["SPUFF_SIM_CAPACITY"] = "fsn1/cx22=1"
	e.up("--provider", "hetzner", "--region", "fsn1", "--size", "cx22", "--name", "one")
	if r := e.run("up", "--provider", "hetzner", "--region", "fsn1", "--size", "cx22", "--name", "two"); r.code != exitFailed || !strings.Contains(r.stderr, "no capacity") {
		t.Errorf("a second cx22 in fsn1 with room for one: want a capacity error:\n%v", r)
	}
	e.up("--provider", "hetzner", "--region", "fsn1", "--size", "cx23", "--name", "three")
	e.up("--provider", "hetzner", "--region", "nbg1", "--size", "cx22", "--name", "four")
	if names := names(e.lsWait("hetzner", 3)); !slices.Equal(names, []string{"four", "one", "three"}) {
		t.Errorf("machines %v, want four, one and three", names)
	}
	for _, bad := range []string{"fsn1", "fsn1=x", "fsn1=-1", "=0", "fsn1/cx22/x=0"} {
		e.vars["SPUFF_SIM_CAPACITY"] = bad
		if r := e.run("ls", "--provider", "hetzner"); r.code != exitUsage || !strings.Contains(r.stderr, "SPUFF_SIM_CAPACITY") {
			t.Errorf("SPUFF_SIM_CAPACITY=%s: want a usage error naming it:\n%v", bad, r)
		}
	}
}

// names returns the sorted names of the machines in list.
func names(list []instanceJSON) []string {
	out := make([]string, 0, len(list))
	for _, in := range list {
		out = append(out, in.Name)
	}
	slices.Sort(out)
	return out
}
