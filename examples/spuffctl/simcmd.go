package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
	"github.com/spuffgo/spuff/providertest/simssh"
)

func cmdSim(a *app, args []string) error {
	probe := a.flags()
	probe.String("listen", "", "")
	sub, rest := splitSubcommand(probe, args)
	switch sub {
	case "":
		if isHelp(args) {
			a.help(a.flags())
			fmt.Fprintf(a.stdout, "\nThe simulated clouds keep their state in $SPUFF_SIM_DIR, else the user cache directory's spuff/ folder.\n")
			return flag.ErrHelp
		}
		return usagef("sim needs a subcommand: path, reset or serve")
	case "path", "reset", "serve":
		a.sub = sub
	case "proxy":
		// Hidden: the ProxyCommand `spuffctl ssh` gives the system ssh
		// on a simulated cloud.
		return a.cmdSimProxy(rest)
	default:
		return usagef("unknown sim subcommand %q (want path, reset or serve)", sub)
	}
	set := a.flags()
	listen := "127.0.0.1:0"
	if sub == "serve" {
		set.StringVar(&listen, "listen", listen, "address of the first server, host:port (host 127.0.0.1 unless given; port 0 picks free ports; with a port, the clouds take it and the next two)")
	}
	rest, err := a.parse(set, rest)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("sim %s takes no arguments", sub)
	}
	chosen, err := a.simBackends()
	if err != nil {
		return err
	}
	dir, err := simStateDir(a.getenv)
	if err != nil {
		return err
	}
	switch sub {
	case "path":
		for _, b := range chosen {
			fmt.Fprintln(a.stdout, simStatePath(dir, b.name))
		}
		return nil
	case "reset":
		for _, b := range chosen {
			p := simStatePath(dir, b.name)
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			lock, _, err := acquire(a.ctx, dir, b.name, a.stderr, false)
			if err != nil {
				return err
			}
			err = os.Remove(p)
			// The seed and the host keys recorded for the cloud's machines
			// go with it: a new cloud's machine 100001 is another machine.
			for _, extra := range []string{simSeedPath(p), simLoginDir(dir, b.name)} {
				if rerr := os.RemoveAll(extra); err == nil {
					err = rerr
				}
			}
			lock.release()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			fmt.Fprintf(a.stderr, "reset the simulated %s cloud (%s)\n", b.name, p)
		}
		return nil
	default:
		return a.simServe(chosen, dir, listen)
	}
}

// simBackends returns the provider named by --provider or SPUFF_PROVIDER,
// else every provider.
func (a *app) simBackends() ([]*backend, error) {
	name := a.providerName
	if name == "" {
		name = a.getenv("SPUFF_PROVIDER")
	}
	if name == "" {
		out := make([]*backend, 0, len(backends))
		for i := range backends {
			out = append(out, &backends[i])
		}
		return out, nil
	}
	b := findBackend(name)
	if b == nil {
		return nil, usagef("unknown provider %q (known: %s)", name, strings.Join(provider.Names(), ", "))
	}
	return []*backend{b}, nil
}

// served is one simulated cloud that `sim serve` serves.
type served struct {
	b     *backend
	path  string
	lock  *stateLock
	cloud *simcloud.Cloud
	srv   *http.Server
	url   string
	calls int // the cloud's API calls at the last save
	sshd  *simssh.Server
	gw    *simGateway
}

// simServe serves the simulated clouds of chosen on loopback (or where
// listen says) until a signal stops it, holding their state the whole
// time, saving it every few seconds after changes and when it stops, and
// prints the environment that points the official SDKs and CLIs at them.
func (a *app) simServe(chosen []*backend, dir, listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = listen, "0"
	}
	if host == "" {
		host = "127.0.0.1"
	}
	first, err := strconv.Atoi(port)
	if err != nil || first < 0 || first+len(chosen)-1 > 65535 {
		return usagef("--listen %q: want host:port, such as 127.0.0.1:4580 (port 0 picks free ports)", listen)
	}
	boot, capacity, err := simKnobs(a.getenv)
	if err != nil {
		return err
	}
	if err := usableDir(dir); err != nil {
		return err
	}
	if rec := readServeRecord(dir); rec != nil {
		return fmt.Errorf("`spuffctl sim serve` (pid %d) is already serving the simulated clouds of %s", rec.PID, dir)
	}
	var clouds []*served
	defer func() {
		for _, s := range clouds {
			s.stop(a)
		}
	}()
	urlHost := host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		urlHost = "127.0.0.1"
	}
	rec := serveRecord{PID: os.Getpid(), Boot: boot, Clouds: map[string]servedCloud{}}
	for i, b := range chosen {
		s := &served{b: b, path: simStatePath(dir, b.name)}
		if s.lock, _, err = acquire(a.ctx, dir, b.name, a.stderr, false); err != nil {
			return err
		}
		clouds = append(clouds, s)
		if s.cloud, err = loadCloud(b, s.path, boot, capacity); err != nil {
			return err
		}
		p := 0
		if first != 0 {
			p = first + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("serving the simulated %s cloud: %w", b.name, err)
		}
		_, lport, _ := net.SplitHostPort(ln.Addr().String())
		s.url = "http://" + net.JoinHostPort(urlHost, lport)
		s.srv = &http.Server{Handler: b.sim.handler(s.cloud), ReadHeaderTimeout: 30 * time.Second}
		go func() { _ = s.srv.Serve(ln) }()
		s.sshd = simssh.New(s.cloud, simssh.Options{})
		if s.gw, err = startGateway(host, s.cloud, s.sshd); err != nil {
			return fmt.Errorf("serving the simulated %s cloud's SSH gateway: %w", b.name, err)
		}
		rec.Clouds[b.name] = servedCloud{URL: s.url, Token: s.cloud.Token(), SSH: s.gw.ln.Addr().String()}
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(serveRecordPath(dir), data); err != nil {
		return fmt.Errorf("recording the servers in %s: %w", dir, err)
	}
	defer os.Remove(serveRecordPath(dir))

	a.printServeEnv(clouds)
	fmt.Fprintf(a.stderr, "%s: serving the simulated clouds (state in %s, machines boot in %s); Ctrl-C saves the state and stops\n", programName, dir, boot)

	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-a.ctx.Done():
			fmt.Fprintf(a.stderr, "%s: stopping; saving the state\n", programName)
			return nil // the deferred stops shut down, save and unlock
		case <-tick.C:
			for _, s := range clouds {
				if err := s.checkpoint(); err != nil {
					fmt.Fprintf(a.stderr, "%s: saving the simulated %s cloud: %v\n", programName, s.b.name, err)
				}
			}
		}
	}
}

// checkpoint saves the cloud's state when it served calls since the last
// save.
func (s *served) checkpoint() error {
	n := s.cloud.TotalCalls()
	dirty := s.gw != nil && s.gw.dirty.Swap(false)
	if n == s.calls && !dirty {
		return nil
	}
	if err := saveCloud(s.cloud, s.path); err != nil {
		return err
	}
	s.calls = n
	return nil
}

// stop shuts the server down (letting requests in flight finish), saves
// the state and releases it.
func (s *served) stop(a *app) {
	if s.gw != nil {
		s.gw.close()
	}
	if s.sshd != nil {
		_ = s.sshd.Close()
	}
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
	}
	if s.cloud != nil {
		if err := saveCloud(s.cloud, s.path); err != nil {
			fmt.Fprintf(a.stderr, "%s: saving the simulated %s cloud: %v\n", programName, s.b.name, err)
		} else {
			fmt.Fprintf(a.stderr, "saved the simulated %s cloud (%s)\n", s.b.name, s.path)
		}
	}
	s.lock.release()
}

// printServeEnv writes, as shell exports, the environment that points the
// official SDKs and CLIs (and spuffctl --provider ...) at the servers.
func (a *app) printServeEnv(clouds []*served) {
	w := a.stdout
	fmt.Fprintf(w, "# Simulated clouds of spuffctl sim serve (pid %d); export these in another shell.\n", os.Getpid())
	for _, s := range clouds {
		tok := s.cloud.Token()
		switch s.b.name {
		case "digitalocean":
			fmt.Fprintf(w, "# DigitalOcean: godo.New(..., godo.SetBaseURL($DIGITALOCEAN_API_URL)); doctl --api-url \"$DIGITALOCEAN_API_URL\"\n")
			fmt.Fprintf(w, "export DIGITALOCEAN_TOKEN=%s\nexport DIGITALOCEAN_API_URL=%s\n", tok, s.url)
		case "hetzner":
			fmt.Fprintf(w, "# Hetzner Cloud: hcloud-go (hcloud.WithEndpoint) and the hcloud CLI read HCLOUD_ENDPOINT\n")
			fmt.Fprintf(w, "export HCLOUD_TOKEN=%s\nexport HCLOUD_ENDPOINT=%s/v1\n", tok, s.url)
		case "aws":
			region := s.b.defaultRegion(a.getenv)
			fmt.Fprintf(w, "# AWS EC2: aws-sdk-go-v2 (config.LoadDefaultConfig) and the AWS CLI read AWS_ENDPOINT_URL\n")
			fmt.Fprintf(w, "export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=simulated\nexport AWS_ENDPOINT_URL=%s\nexport AWS_REGION=%s\nexport AWS_DEFAULT_REGION=%s\n", tok, s.url, region, region)
		}
	}
}

// cmdSimProxy is `sim proxy --provider p HOST PORT`: see simProxy.
func (a *app) cmdSimProxy(args []string) error {
	a.sub = "proxy"
	rest, err := a.parse(a.flags(), args)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return usagef("sim proxy takes a machine's address and port")
	}
	chosen, err := a.simBackends()
	if err != nil {
		return err
	}
	if len(chosen) != 1 {
		return usagef("sim proxy needs --provider")
	}
	dir, err := simStateDir(a.getenv)
	if err != nil {
		return err
	}
	return a.simProxy(chosen[0], dir, rest[0], rest[1])
}
