package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// otherSize is a size of each provider other than its default one.
var otherSize = map[string]string{"digitalocean": "s-2vcpu-2gb", "hetzner": "cx33", "aws": "t3.small"}

// TestUpNeverDestroysWhatItDidNotMake: a machine named prod-db that spuff
// does not manage, and one that it manages with another size, both survive
// `up --name prod-db`, whatever that up does (fail on the name, or make
// another machine), on every provider. The drivers may report the
// machine in the way in Error.ID (as they did) or Error.Existing: spuffctl
// destroys only Error.Leftover.
func TestUpNeverDestroysWhatItDidNotMake(t *testing.T) {
	t.Parallel()
	for i := range backends {
		b := &backends[i]
		t.Run(b.name+"/foreign", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var foreign int64
			e.cloud(b, func(c *simcloud.Cloud) {
				foreign = c.AddInstances(1, func(int) simcloud.InstanceSpec {
					return simcloud.InstanceSpec{Name: "prod-db", Region: b.region, Size: b.size, Labels: map[string]string{"team": "db"}}
				})[0]
			})
			r := e.run("up", "--provider", b.name, "--name", "prod-db")
			t.Logf("%v", r)
			if strings.Contains(r.stderr, "destroyed") {
				t.Errorf("up destroyed something:\n%v", r)
			}
			e.cloud(b, func(c *simcloud.Cloud) {
				if _, err := c.LookupInstance(foreign); err != nil || !live(c, foreign) {
					t.Errorf("the foreign prod-db (%d) did not survive up: %v\n%v", foreign, err, r)
				}
			})
		})
		t.Run(b.name+"/managed-other-size", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			first := e.up("--provider", b.name, "--name", "prod-db", "--size", otherSize[b.name])
			r := e.run("up", "--provider", b.name, "--name", "prod-db")
			t.Logf("%v", r)
			if strings.Contains(r.stderr, "destroyed") {
				t.Errorf("up destroyed something:\n%v", r)
			}
			if list := e.ls(b.name); !slices.Contains(ids(list), first.ID) {
				t.Errorf("the managed prod-db %s of size %s did not survive up: machines now %v\n%v", first.ID, otherSize[b.name], ids(list), r)
			}
		})
	}
}

// live reports whether the model's instance id is live.
func live(c *simcloud.Cloud, id int64) bool {
	for _, in := range c.LiveInstances() {
		if in.ID == id {
			return true
		}
	}
	return false
}

// trap is an HTTP server that records every request (a direct call, or a
// proxy's CONNECT) and refuses it as a cloud refuses a bad credential.
type trap struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newTrap(t *testing.T) *trap {
	tr := &trap{}
	tr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.seen = append(tr.seen, r.Method+" "+r.Host+r.URL.Path)
		tr.mu.Unlock()
		_ = r.ParseForm()
		if r.Form.Get("Action") != "" { // EC2 Query API
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>trap</RequestID></Response>`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		// DigitalOcean's and Hetzner's error bodies at once.
		_, _ = w.Write([]byte(`{"id":"unauthorized","message":"Unable to authenticate you","error":{"code":"unauthorized","message":"unable to authenticate"}}`))
	}))
	t.Cleanup(tr.Close)
	return tr
}

func (tr *trap) requests() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.seen)
}

// TestFirstCommandStaysSimulated: on a machine with credentials for every
// cloud (an AWS profile file, DIGITALOCEAN_TOKEN, HCLOUD_TOKEN), the
// README's first command and the commands after it run on the simulated
// cloud, say so, and make no request to any real endpoint: every real
// endpoint (and the HTTP proxy every other host would go through) is a
// trap that records requests. Naming the provider does reach the trap,
// which shows that the trap catches what it should; the authentication
// error then names the variable to set.
func TestFirstCommandStaysSimulated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := newTrap(t)
	if err := os.MkdirAll(filepath.Join(e.home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	creds := "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
	if err := os.WriteFile(filepath.Join(e.home, ".aws", "credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"DIGITALOCEAN_TOKEN": "dop_v1_trap_token_value", "HCLOUD_TOKEN": "hcloud_trap_token_value",
		"DIGITALOCEAN_API_URL": tr.URL, "HCLOUD_ENDPOINT": tr.URL, "AWS_ENDPOINT_URL": tr.URL,
		"HTTPS_PROXY": tr.URL, "HTTP_PROXY": tr.URL, "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1",
	} {
		e.vars[k] = v
	}

	r := e.must(readmeCommands(t)[0]...) // go run ./examples/spuffctl up
	if !strings.Contains(r.stderr, "simulated digitalocean cloud") || !strings.Contains(r.stderr, "no provider named") {
		t.Errorf("up did not say that it uses the simulated cloud, and why:\n%v", r)
	}
	e.must("ls")
	e.must("down", "--all", "--yes")
	e.must("up", "--size", "s-2vcpu-2gb", "--json")
	if seen := tr.requests(); len(seen) > 0 {
		t.Fatalf("commands that named no provider made requests to real endpoints: %v", seen)
	}

	r = e.must("providers")
	aws := line(r.stdout, "aws")
	if !strings.Contains(aws, "profile file ~/.aws/credentials") || strings.Contains(aws, "AWS_ACCESS_KEY_ID") {
		t.Errorf("providers says for aws %q, want the profile file as the source", aws)
	}
	if !strings.Contains(line(r.stdout, "digitalocean"), "DIGITALOCEAN_TOKEN") {
		t.Errorf("providers does not name DIGITALOCEAN_TOKEN:\n%s", r.stdout)
	}

	// The control: a named provider with credentials is the real cloud.
	for p, envVar := range map[string]string{"digitalocean": "DIGITALOCEAN_TOKEN", "hetzner": "HCLOUD_TOKEN", "aws": "AWS_ACCESS_KEY_ID"} {
		before := len(tr.requests())
		r := e.run("ls", "--provider", p, "--timeout", "20s")
		if len(tr.requests()) == before {
			t.Errorf("ls --provider %s did not reach the trap: the test cannot see a real-cloud call\n%v", p, r)
		}
		if r.code != exitFailed || !strings.Contains(r.stderr, "set "+envVar) {
			t.Errorf("ls --provider %s with refused credentials: want exit 1 and a hint to set %s\n%v", p, envVar, r)
		}
		if strings.Contains(r.stderr, "trap_token") || strings.Contains(r.stderr, "EXAMPLEKEY") {
			t.Errorf("a credential appears in the output:\n%v", r)
		}
	}
}

// line returns the first line of s that starts with prefix.
func line(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestConcurrentUps: five `up` processes started at once on the same
// simulated state make five machines with five addresses.
func TestConcurrentUps(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"digitalocean", "hetzner", "aws"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			const n = 5
			results := make([]result, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { results[i] = e.run("up", "--provider", p, "--json", "--name", "box-"+strconv.Itoa(i)) })
			}
			wg.Wait()
			idSet, ipSet := map[string]bool{}, map[string]bool{}
			for _, r := range results {
				if r.code != exitOK {
					t.Errorf("%v", r)
					continue
				}
				in := parseInstance(t, r.stdout)
				idSet[in.ID], ipSet[in.IPv4] = true, true
			}
			list := e.ls(p)
			if len(idSet) != n || len(ipSet) != n || len(list) != n {
				t.Errorf("five concurrent ups made IDs %v, IPs %v; ls lists %v", idSet, ipSet, ids(list))
			}
		})
	}
}

// TestMissingTokenNamesTheVariable: a named provider pointed at an
// endpoint without a token fails at once, naming the variable to set.
func TestMissingTokenNamesTheVariable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for p, envVar := range map[string]string{"digitalocean": "DIGITALOCEAN_TOKEN", "hetzner": "HCLOUD_TOKEN"} {
		r := e.run("ls", "--provider", p, "--endpoint", "http://127.0.0.1:1")
		if r.code != exitFailed || !strings.Contains(r.stderr, "set "+envVar) {
			t.Errorf("want exit 1 and a hint to set %s:\n%v", envVar, r)
		}
	}
}
