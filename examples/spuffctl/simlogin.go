package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
	"github.com/spuffgo/spuff/providertest/simssh"
)

// A simulated machine's address (198.18.x.y) reaches nothing: its SSH
// server is a simssh server on loopback inside the process that serves
// the simulated cloud. A spuffctl that serves the cloud itself dials it
// through simssh.Server.DialContext (provider.Config.DialContext), so
// WaitSSH runs its real SSH client against it. `spuffctl sim serve` offers
// the same to other processes through a gateway, one loopback listener
// per cloud, which takes one request line
//
//	spuff-sim/1 <token> dial <ip:port>
//	spuff-sim/1 <token> addkey <name> <authorized_keys line>
//
// and answers one line, "ok [<key id>]" or "error <why>"; after an ok to
// dial it carries the connection to the machine's SSH server. The token is
// the simulated account's credential (serve.json, in a directory only its
// owner reads). `spuffctl sim proxy` (the ProxyCommand that `spuffctl ssh`
// gives the system ssh on a simulated cloud) bridges its stdin and stdout
// to a machine's SSH server, through the gateway or its own simssh server.

const gatewayProto = "spuff-sim/1"

// simGateway is the gateway of one cloud served by `sim serve`.
type simGateway struct {
	ln    net.Listener
	token string
	cloud *simcloud.Cloud
	sshd  *simssh.Server
	// dirty is set when the gateway changed the cloud (a key added), for
	// the server's next checkpoint.
	dirty atomic.Bool

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startGateway serves cloud's gateway on host, a free port.
func startGateway(host string, cloud *simcloud.Cloud, sshd *simssh.Server) (*simGateway, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	g := &simGateway{ln: ln, token: cloud.Token(), cloud: cloud, sshd: sshd, conns: map[net.Conn]struct{}{}}
	g.wg.Add(1)
	go g.serve()
	return g, nil
}

func (g *simGateway) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.conns[c] = struct{}{}
		g.mu.Unlock()
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer func() {
				g.mu.Lock()
				delete(g.conns, c)
				g.mu.Unlock()
				c.Close()
			}()
			g.handle(c)
		}()
	}
}

// handle answers one request.
func (g *simGateway) handle(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReaderSize(io.LimitReader(c, 16<<10), 16<<10)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	f := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 4)
	reply := func(format string, args ...any) {
		fmt.Fprintf(c, format+"\n", args...)
	}
	if len(f) != 4 || f[0] != gatewayProto {
		reply("error not a %s request", gatewayProto)
		return
	}
	if subtle.ConstantTimeCompare([]byte(f[1]), []byte(g.token)) != 1 {
		reply("error the simulated account's credential is wrong")
		return
	}
	switch f[2] {
	case "dial":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := g.sshd.DialContext(ctx, "tcp", f[3])
		cancel()
		if err != nil {
			reply("error %s", oneLine(err.Error()))
			return
		}
		defer conn.Close()
		reply("ok")
		_ = c.SetDeadline(time.Time{})
		// What the client sent after its request line is in r.
		pipe(conn, io.MultiReader(r, c), c)
	case "addkey":
		name, key, ok := strings.Cut(f[3], " ")
		if _, _, err := provider.ParseAuthorizedKey(key); !ok || name == "" || err != nil {
			reply("error addkey wants a name and an authorized_keys line")
			return
		}
		k := g.cloud.AddSSHKey(name, key)
		g.dirty.Store(true)
		reply("ok %d", k.ID)
	default:
		reply("error unknown request %q", f[2])
	}
}

// close stops the gateway and its connections.
func (g *simGateway) close() {
	_ = g.ln.Close()
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// pipe carries conn's bytes to w and r's to conn until conn ends (or r
// does), then closes conn.
func pipe(conn net.Conn, r io.Reader, w io.Writer) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(conn, r)
		// The other side is done sending: half-close when the
		// connection can, else end it.
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			conn.Close()
		}
		close(done)
	}()
	_, _ = io.Copy(w, conn)
	conn.Close()
	select {
	case <-done:
	case <-time.After(100 * time.Millisecond):
		// r may be a terminal or a pipe nobody closes: leave its copy
		// behind, the process is about to end.
	}
}

// oneLine makes s fit on one line of the gateway's protocol.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// gatewayRequest sends one request to the gateway at addr and returns
// the connection (open after a dial, closed otherwise) and the answer
// after "ok".
func gatewayRequest(ctx context.Context, addr, token, verb, args string) (net.Conn, string, error) {
	if addr == "" {
		return nil, "", errors.New("this `spuffctl sim serve` offers no SSH gateway (it predates it): restart it")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("reaching `spuffctl sim serve`: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := fmt.Fprintf(c, "%s %s %s %s\n", gatewayProto, token, verb, args); err != nil {
		c.Close()
		return nil, "", err
	}
	// Read the answer a byte at a time: what follows it is the machine's
	// SSH banner, which belongs to the caller.
	var line []byte
	b := make([]byte, 1)
	for len(line) < 4096 {
		if _, err := c.Read(b); err != nil {
			c.Close()
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			return nil, "", fmt.Errorf("`spuffctl sim serve` hung up: %w", err)
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	answer := string(line)
	if why, ok := strings.CutPrefix(answer, "error "); ok {
		c.Close()
		return nil, "", errors.New(why)
	}
	rest, ok := strings.CutPrefix(answer, "ok")
	if !ok {
		c.Close()
		return nil, "", fmt.Errorf("`spuffctl sim serve` answered %q", answer)
	}
	return c, strings.TrimSpace(rest), nil
}

// dialer returns the DialContext that reaches the cloud's machines
// through the gateway of `sim serve`.
func (c servedCloud) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, _, err := gatewayRequest(ctx, c.SSH, c.Token, "dial", addr)
		if err != nil {
			// The machine's own refusal ("connect: connection refused")
			// reads as one, for WaitSSH and for messages.
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		return conn, nil
	}
}

// addKey registers an authorized_keys line under name in the simulated
// account, and returns the key's model ID.
func (s *simSession) addKey(ctx context.Context, b *backend, name, authorizedKey string) (int64, error) {
	if s.remote == nil {
		return s.cloud.AddSSHKey(name, authorizedKey).ID, nil
	}
	c := s.remote.Clouds[b.name]
	conn, id, err := gatewayRequest(ctx, c.SSH, c.Token, "addkey", name+" "+authorizedKey)
	if err != nil {
		return 0, fmt.Errorf("registering the key in the simulated %s account: %w", b.name, err)
	}
	conn.Close()
	return strconv.ParseInt(id, 10, 64)
}

// simProxy bridges stdin and stdout to the SSH server of the simulated
// machine at host:port: through `sim serve` when it serves the cloud,
// else through an SSH server of its own over a copy of the saved state
// (read, never written: the state is not locked for the session's
// length, so other spuffctl commands go on meanwhile).
func (a *app) simProxy(b *backend, dir, host, port string) error {
	addr := net.JoinHostPort(host, port)
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	var conn net.Conn
	var err error
	if rec := readServeRecord(dir); rec != nil && rec.Clouds[b.name].URL != "" {
		conn, err = rec.Clouds[b.name].dialer()(ctx, "tcp", addr)
	} else {
		path := simStatePath(dir, b.name)
		if _, serr := os.Stat(path); serr != nil {
			return fmt.Errorf("no simulated %s cloud in %s: %w", b.name, dir, serr)
		}
		boot, berr := simBoot(a.getenv)
		if berr != nil {
			return usagef("%v", berr)
		}
		cloud, lerr := loadCloud(b, path, boot, nil)
		if lerr != nil {
			return lerr
		}
		sshd := simssh.New(cloud, simssh.Options{})
		defer sshd.Close()
		conn, err = sshd.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("the simulated machine at %s: %w", addr, err)
	}
	cancel()
	pipe(conn, a.stdin, a.stdout)
	return nil
}
