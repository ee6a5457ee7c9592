package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// The CPU and allocation figures must be the client's alone, so the
// simulated cloud they call runs in a child process: this program run with
// -serve (or the test binary with serveEnv set).

// serveEnv, when set in the environment of a test binary, makes it serve a
// simulated cloud instead of running tests (see TestMain). Its value is the
// serve arguments, as JSON.
const serveEnv = "SPUFF_BENCHREPORT_SERVE"

// serveArgs describe the simulated cloud a child serves.
type serveArgs struct {
	// Cloud is the driver name of the dialect.
	Cloud string `json:"cloud"`
	// Managed and Unmanaged are the instances to seed, ready at once:
	// managed ones carry the ownership label.
	Managed   int `json:"managed"`
	Unmanaged int `json:"unmanaged"`
}

// served is what a child prints once it serves: where, with which
// credential, and the driver ID of the first managed instance.
type served struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	ID    string `json:"id"`
}

// unlimited is a rate limit no benchmark reaches (Hetzner's dialect puts
// its own limit in place of an empty list).
var unlimited = []simcloud.RateLimit{{Requests: 1 << 30, Per: time.Second}}

// serve serves the simulated cloud args describe, prints a served line to
// out, and returns when in reaches EOF (the parent closed it or died).
func serve(args serveArgs, in io.Reader, out io.Writer) error {
	c := cloudNamed(args.Cloud)
	if c == nil {
		return fmt.Errorf("no cloud %q", args.Cloud)
	}
	// Not closed: the process ends when serve returns, and a graceful
	// close would wait for the parent's idle connections.
	srv := c.newServer(simcloud.Options{Seed: 1, RateLimits: unlimited})
	ids := seed(srv.Cloud, c, args.Managed, args.Unmanaged)
	s := served{URL: srv.URL, Token: srv.Cloud.Token()}
	if len(ids) > 0 {
		s.ID = c.instanceID(ids[0])
	}
	if err := json.NewEncoder(out).Encode(s); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, in)
	return nil
}

// seed adds managed and unmanaged instances, interleaved in creation
// order, and returns the managed ones' model IDs.
func seed(cl *simcloud.Cloud, c *cloud, managed, unmanaged int) []int64 {
	tmpl := c.request("x")
	var ids []int64
	for i := 0; i < managed || i < unmanaged; i++ {
		if i < managed {
			ids = append(ids, cl.AddInstances(1, func(int) simcloud.InstanceSpec {
				return simcloud.InstanceSpec{Name: "managed-" + strconv.Itoa(i), Region: tmpl.Region, Size: tmpl.Size,
					Labels: map[string]string{provider.OwnerLabel: provider.DefaultOwner, "env": "bench"}}
			})...)
		}
		if i < unmanaged {
			cl.AddInstances(1, func(int) simcloud.InstanceSpec {
				return simcloud.InstanceSpec{Name: "unmanaged-" + strconv.Itoa(i), Region: tmpl.Region, Size: tmpl.Size,
					Labels: map[string]string{"env": "prod"}}
			})
		}
	}
	return ids
}

// child is a simulated cloud served by a child process.
type child struct {
	served
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startChild starts a child process serving args. self is the executable
// to run; asTest runs it as a test binary (through serveEnv) rather than
// with -serve.
func startChild(self string, asTest bool, args serveArgs) (*child, error) {
	js, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if asTest {
		cmd = exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), serveEnv+"="+string(js))
	} else {
		cmd = exec.Command(self, "-serve", string(js))
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &ch.served)
	}
	if err != nil {
		ch.stop()
		return nil, fmt.Errorf("simulated cloud child process: %w", err)
	}
	return ch, nil
}

// stop ends the child. It has nothing to save: it is killed rather than
// asked to exit (a race-detector build would sleep a second on exit).
func (c *child) stop() {
	c.stdin.Close()
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}
