package simssh

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// run runs one command on machine m for user and returns its exit status.
// done closes when the client goes away. The commands a machine knows:
// cloud-init status [--wait] [--long], test -f PATH, cat PATH (the
// cloud-init result file), true, hostname, whoami, echo; any other is
// "command not found" (127).
func (s *Server) run(m *machine, user, cmd string, stdout, stderr io.Writer, done <-chan struct{}) uint32 {
	in, ok := s.instance(m.id)
	if !ok {
		fmt.Fprintln(stderr, "simssh: the machine is gone")
		return 255
	}
	tl := s.Timeline(in)
	finished := func() bool { return !s.cloud.Now().Before(tl.CloudInit) }
	failed := s.opts.FailCloudInit(in)
	args := strings.Fields(cmd)
	if len(args) == 0 {
		return 0
	}
	switch args[0] {
	case "cloud-init":
		if s.opts.OldCloudInit || len(args) < 2 || args[1] != "status" {
			fmt.Fprintln(stderr, "usage: /usr/bin/cloud-init [-h] [--version] [--file FILES] [--debug] [--force]")
			fmt.Fprintln(stderr, "                           {init,modules,single,query,dhclient-hook,features,analyze,devel,collect-logs,clean} ...")
			if len(args) > 1 {
				fmt.Fprintf(stderr, "/usr/bin/cloud-init: error: argument subcommand: invalid choice: '%s'\n", args[1])
			}
			return 2
		}
		if contains(args[2:], "--wait") || contains(args[2:], "-w") {
			// cloud-init prints a dot while it waits.
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for !finished() {
				select {
				case <-done:
					return 130
				case <-t.C:
					_, _ = io.WriteString(stdout, ".")
				}
			}
			_, _ = io.WriteString(stdout, "\n")
		}
		switch {
		case !finished():
			fmt.Fprintln(stdout, "status: running")
			return 0
		case failed:
			fmt.Fprintln(stdout, "status: error")
			return 1
		}
		fmt.Fprintln(stdout, "status: done")
		return 0
	case "test":
		if len(args) == 3 && args[1] == "-f" && args[2] == "/var/lib/cloud/instance/boot-finished" && finished() {
			return 0 // cloud-init writes it at the end of its run, failed or not
		}
		return 1
	case "cat":
		if len(args) == 2 && args[1] == "/var/lib/cloud/data/result.json" && finished() {
			errs := []string{}
			if failed {
				errs = append(errs, "('scripts_user', RuntimeError('Runparts: 1 failures (part-001) in /var/lib/cloud/instance/scripts'))")
			}
			res := map[string]any{"v1": map[string]any{"datasource": "DataSourceSim", "errors": errs}}
			b, _ := json.Marshal(res)
			_, _ = stdout.Write(append(b, '\n'))
			return 0
		}
		if len(args) >= 2 {
			fmt.Fprintf(stderr, "cat: %s: No such file or directory\n", args[1])
		}
		return 1
	case "true":
		return 0
	case "hostname":
		fmt.Fprintln(stdout, in.Name)
		return 0
	case "whoami":
		fmt.Fprintln(stdout, user)
		return 0
	case "echo":
		fmt.Fprintln(stdout, strings.Join(args[1:], " "))
		return 0
	}
	fmt.Fprintf(stderr, "bash: line 1: %s: command not found\n", args[0])
	return 127
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// UserKey returns the n-th user key of a simulated account whose cloud
// has seed (Options.Seed): an ed25519 signer derived from them, the same
// every run.
func UserKey(seed uint64, n int64) ssh.Signer {
	s, err := ssh.NewSignerFromKey(simcloud.DeriveKey(seed, "user", n))
	if err != nil {
		panic("simssh: " + err.Error()) // an ed25519 key always makes a signer
	}
	return s
}

// AddUserKey registers the public key of UserKey(seed of cloud, n) on
// cloud's account under name, and returns the signer and the account's
// record of the key (whose ID, name or fingerprint InstanceRequest.SSHKeys
// can name, as the dialect spells it).
func AddUserKey(cloud *simcloud.Cloud, name string, n int64) (ssh.Signer, simcloud.SSHKey) {
	priv := simcloud.DeriveKey(cloud.Options().Seed, "user", n)
	s := UserKey(cloud.Options().Seed, n)
	return s, cloud.AddSSHKey(name, simcloud.AuthorizedKey(priv.Public().(ed25519.PublicKey), name+"@simssh"))
}

// HostKey returns machine id's public host key, as its server shows it
// (without FaultHostKey).
func HostKey(cloud *simcloud.Cloud, id int64) ssh.PublicKey {
	pub, err := ssh.NewPublicKey(cloud.HostKey(id).Public())
	if err != nil {
		panic("simssh: " + err.Error())
	}
	return pub
}

// HostKeyFor returns the host key of the machine whose public address is
// addr ("198.18.0.7:22" or the bare IP), as its server shows it: what a
// test that cannot map the provider's instance IDs to the model's pins.
func (s *Server) HostKeyFor(addr string) (ssh.PublicKey, bool) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, false
		}
		ip = ap.Addr()
	}
	in, ok := s.find(ip.Unmap())
	if !ok {
		return nil, false
	}
	return HostKey(s.cloud, in.ID), true
}
