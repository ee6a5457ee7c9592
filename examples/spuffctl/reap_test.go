package main

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// TestTTLAndReap: up --ttl puts the expiry on the machine, ls and status
// show it, and reap destroys what is past its expiry (a dry run only says
// so), the old machines without one with --older-than, and never a
// machine spuff does not manage. Bad TTLs are usage errors.
func TestTTLAndReap(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"digitalocean", "hetzner", "aws"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for _, bad := range []string{"0", "-1h", "30s", "soon", "9000h"} {
				r := e.run("up", "--provider", p, "--ttl", bad)
				if r.code != exitUsage || !strings.Contains(r.stderr, "ttl") && !strings.Contains(r.stderr, "TTL") {
					t.Errorf("up --ttl %s: want a usage error naming the TTL\n%v", bad, r)
				}
			}
			keep := e.up("--provider", p, "--name", "keep", "--ttl", "2h")
			old := e.up("--provider", p, "--name", "old")
			if keep.ExpiresAt.IsZero() || keep.ExpiresAt.Sub(time.Now().Add(2*time.Hour)).Abs() > time.Minute {
				t.Errorf("up --ttl 2h: expires_at %v, want about two hours from now", keep.ExpiresAt)
			}
			// A machine made by an up an hour ago with --ttl 30m, and one
			// that spuff does not manage.
			b := findBackend(p)
			var expired, foreign int64
			e.cloud(b, func(c *simcloud.Cloud) {
				past := strconv.FormatInt(time.Now().Add(-30*time.Minute).Unix(), 10)
				req := b.region
				ids := c.AddInstances(2, func(i int) simcloud.InstanceSpec {
					labels := map[string]string{"managed-by": "spuff", "spuff-expires": past}
					name := "expired"
					if i == 1 {
						labels, name = map[string]string{"owner": "dba", "spuff-expires": past}, "prod-db"
					}
					return simcloud.InstanceSpec{Name: name, Region: req, Size: b.size, Labels: labels}
				})
				expired, foreign = ids[0], ids[1]
			})
			r := e.must("ls", "--provider", p)
			if !strings.Contains(r.stdout, "EXPIRES") || !strings.Contains(r.stdout, "in 1h59m") && !strings.Contains(r.stdout, "in 2h0m") || !strings.Contains(r.stdout, "expired 30m") {
				t.Errorf("ls does not show the expiries:\n%s", r.stdout)
			}
			dry := e.must("reap", "--provider", p, "--dry-run")
			if !strings.Contains(dry.stdout, "would destroy instance") || !strings.Contains(dry.stdout, "expired") || strings.Contains(dry.stdout, "prod-db") {
				t.Errorf("reap --dry-run:\n%v", dry)
			}
			if list := e.lsWait(p, 3); len(list) != 3 {
				t.Fatalf("a dry run destroyed something: %+v", list)
			}
			r = e.must("reap", "--provider", p, "--json")
			var rep struct {
				Destroyed []struct{ ID string } `json:"destroyed"`
				Kept      int                   `json:"kept"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("reap --json printed %q: %v", r.stdout, err)
			}
			if len(rep.Destroyed) != 1 || rep.Kept != 2 {
				t.Errorf("reap destroyed %+v and kept %d; want the expired one alone, keeping 2", rep.Destroyed, rep.Kept)
			}
			list := e.lsWait(p, 2)
			got := ids(list)
			if !slices.Contains(got, keep.ID) || !slices.Contains(got, old.ID) || len(got) != 2 {
				t.Errorf("after reap: %v, want %s and %s", got, keep.ID, old.ID)
			}
			r = e.must("reap", "--provider", p, "--older-than", "1ms")
			if !strings.Contains(r.stdout, "destroyed instance "+old.ID) || strings.Contains(r.stdout, keep.ID) {
				t.Errorf("reap --older-than 1ms: want %s (no expiry) destroyed and %s kept\n%v", old.ID, keep.ID, r)
			}
			e.cloud(b, func(c *simcloud.Cloud) {
				if _, err := c.GetInstance(foreign); err != nil {
					t.Errorf("the machine spuff does not manage was touched: %v", err)
				}
				_ = expired
			})
		})
	}
}
