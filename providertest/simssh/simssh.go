// Package simssh boots real SSH servers on the machines of a simulated
// cloud (package simcloud), so that SSH client code — provider.WaitSSH,
// or any x/crypto/ssh client — runs against them unmodified.
//
// Each machine of the cloud gets an x/crypto/ssh server on its own
// loopback listener, reached through Server.DialContext, which maps the
// machine's public address (its simulated IP and port 22) to that
// listener: set it as provider.Config.DialContext, or SSHOptions.Dial.
// A machine's SSH comes up as a real one does, on the cloud's clock:
//
//   - until Options.PortDelay after the cloud shows it active, the port
//     is closed (connection refused);
//   - then sshd answers, with the machine's stable host key
//     (simcloud.Cloud.HostKey, whose fingerprint the cloud's console
//     output shows);
//   - from Options.KeysDelay later, it accepts the public keys the create
//     request installed (the instance's SSHKeyIDs, looked up among the
//     account's keys) and no others: before, every key is refused, as
//     when sshd starts before cloud-init has written authorized_keys;
//   - Options.CloudInitDelay after that, cloud-init has run the user
//     data: "cloud-init status --wait" (which blocks until then) answers
//     "status: done", or "status: error" with exit status 1 for a machine
//     Options.FailCloudInit picks (by default one whose user data holds
//     FailMarker); /var/lib/cloud/instance/boot-finished and
//     /var/lib/cloud/data/result.json appear.
//
// Faults are injected on demand (Inject): a connection reset as it is
// accepted, a server that never sends its banner, keys refused, another
// machine's host key (a man in the middle), a port that drops every
// packet. A Server holds no global state; each test starts its own.
//
//	cloud := srv.Cloud // a dialect's simulated cloud
//	sshd := simssh.Start(t, cloud, simssh.Options{})
//	signer, key := simssh.AddUserKey(cloud, "me", 1)
//	cfg.DialContext = sshd.DialContext
package simssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/spuffgo/spuff/providertest/simcloud"
)

// FailMarker, in a machine's user data, makes its cloud-init fail (the
// default Options.FailCloudInit).
const FailMarker = "#simssh:fail-cloud-init"

// Options configure a Server. Durations are the cloud's time, scaled to
// wall-clock time by the cloud's Options.TimeScale (simcloud.Cloud.Scale),
// as every duration of the simulated clouds; zero takes the world's
// default, a negative duration is none.
type Options struct {
	// PortDelay is the time from the machine being active (its ReadyAt)
	// to sshd listening: 20 ms in the simple world; 8 s in the realistic
	// one (an Ubuntu cloud image starts ssh.service after cloud-init's
	// network stage, seconds after the cloud reports it running).
	PortDelay time.Duration
	// KeysDelay is the time from sshd listening to the installed keys
	// being accepted: 0 in the simple world; 2 s in the realistic one
	// (cloud-init writes authorized_keys in its init stage, which may end
	// after sshd has started: the "auth refused before keys land" race).
	KeysDelay time.Duration
	// CloudInitDelay is the time from the keys landing to cloud-init
	// finishing (the user data "runs"): 30 ms in the simple world; 25 s in
	// the realistic one (the config and final stages, package updates
	// and the user data of a small machine).
	CloudInitDelay time.Duration
	// FailCloudInit reports whether a machine's cloud-init fails; nil
	// means one whose user data contains FailMarker.
	FailCloudInit func(in simcloud.Instance) bool
	// OldCloudInit makes the machines' cloud-init predate its status
	// command (before 18.x): "cloud-init status" is a usage error (exit
	// status 2), and clients read the boot-finished marker instead.
	OldCloudInit bool
	// Port is the SSH port machines listen on; default 22.
	Port int
}

// The worlds' default delays, in cloud time (see Options).
var (
	simpleDelays    = [3]time.Duration{20 * time.Millisecond, 0, 30 * time.Millisecond}
	realisticDelays = [3]time.Duration{8 * time.Second, 2 * time.Second, 25 * time.Second}
)

// FaultKind is a misbehaviour of a machine's SSH server.
type FaultKind int

// The faults a Server can inject.
const (
	// FaultNone is no fault.
	FaultNone FaultKind = iota
	// FaultReset resets the connection as soon as it is accepted.
	FaultReset
	// FaultBannerTimeout accepts the connection and never sends the SSH
	// banner, until the client gives up.
	FaultBannerTimeout
	// FaultAuthRefused refuses every key on the connection, installed or
	// not.
	FaultAuthRefused
	// FaultHostKey shows another host key than the machine's (a man in
	// the middle).
	FaultHostKey
	// FaultBlackhole drops the connection attempt: the dial hangs until
	// its context ends (a filtered port).
	FaultBlackhole
	faultKinds
)

var faultNames = [...]string{"none", "reset", "banner-timeout", "auth-refused", "host-key", "blackhole"}

// String names the fault ("reset").
func (k FaultKind) String() string {
	if k < 0 || k >= faultKinds {
		return "FaultKind(" + strconv.Itoa(int(k)) + ")"
	}
	return faultNames[k]
}

// Fault is an injected misbehaviour: the next Count connections (default
// 1) to machine Instance (the model's ID; 0 for any machine) show Kind.
type Fault struct {
	Kind     FaultKind
	Count    int
	Instance int64
}

// Stats counts what a Server saw.
type Stats struct {
	// Dials is the number of connection attempts; Refused those refused
	// (port closed, or no machine on the port), Unreachable those to an
	// address no machine has.
	Dials, Refused, Unreachable int
	// Accepted is the number of TCP connections accepted.
	Accepted int
	// Logins is the number of successful logins; KeysRefused the number
	// of keys refused.
	Logins, KeysRefused int
	// Commands is the number of commands run.
	Commands int
	// Faults is the number of faults injected, by kind.
	Faults map[FaultKind]int
}

// Timeline is when a machine's SSH comes up, on the cloud's clock
// (wall-clock times, as the model's Instance times are).
type Timeline struct {
	// Port is when sshd starts listening; Keys when the installed keys
	// are accepted; CloudInit when cloud-init has finished.
	Port, Keys, CloudInit time.Time
}

// Server serves the SSH of every machine of one simulated cloud. Safe for
// concurrent use.
type Server struct {
	cloud *simcloud.Cloud
	opts  Options

	mu       sync.Mutex
	machines map[int64]*machine
	conns    map[net.Conn]struct{}
	faults   []*Fault
	stats    Stats
	closed   bool
	wg       sync.WaitGroup
}

// machine is one machine's sshd.
type machine struct {
	id       int64
	ln       net.Listener
	host     ssh.Signer // its own host key
	impostor ssh.Signer // another machine's (FaultHostKey)
}

// New serves the machines of cloud. Close it when done.
func New(cloud *simcloud.Cloud, opts Options) *Server {
	def := simpleDelays
	if cloud.Options().IsRealistic() {
		def = realisticDelays
	}
	for i, d := range []*time.Duration{&opts.PortDelay, &opts.KeysDelay, &opts.CloudInitDelay} {
		switch {
		case *d == 0:
			*d = def[i]
		case *d < 0:
			*d = 0
		}
		*d = cloud.Scale(*d)
	}
	if opts.Port <= 0 {
		opts.Port = 22
	}
	if opts.FailCloudInit == nil {
		opts.FailCloudInit = func(in simcloud.Instance) bool { return strings.Contains(in.UserData, FailMarker) }
	}
	return &Server{cloud: cloud, opts: opts, machines: map[int64]*machine{}, conns: map[net.Conn]struct{}{},
		stats: Stats{Faults: map[FaultKind]int{}}}
}

// Start is New, closed at the end of the test.
func Start(t testing.TB, cloud *simcloud.Cloud, opts Options) *Server {
	t.Helper()
	s := New(cloud, opts)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Cloud returns the cloud whose machines s serves.
func (s *Server) Cloud() *simcloud.Cloud { return s.cloud }

// Inject queues a fault. Faults apply in the order queued.
func (s *Server) Inject(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// take consumes a queued fault of one of kinds for machine id.
func (s *Server) take(id int64, kinds ...FaultKind) FaultKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Instance != 0 && f.Instance != id) || !containsKind(kinds, f.Kind) {
			continue
		}
		f.Count--
		if f.Count <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		s.stats.Faults[f.Kind]++
		return f.Kind
	}
	return FaultNone
}

func containsKind(kinds []FaultKind, k FaultKind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Stats returns what s saw so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Faults = maps.Clone(s.stats.Faults)
	return st
}

func (s *Server) count(f func(st *Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Timeline returns when machine in's SSH comes up.
func (s *Server) Timeline(in simcloud.Instance) Timeline {
	port := in.ReadyAt.Add(s.opts.PortDelay)
	keys := port.Add(s.opts.KeysDelay)
	return Timeline{Port: port, Keys: keys, CloudInit: keys.Add(s.opts.CloudInitDelay)}
}

// Close stops every machine's server and closes their connections.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, m := range s.machines {
		_ = m.ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// DialContext connects to a machine's public address ("198.18.0.7:22"),
// as a net.Dialer would over the Internet: to the machine's SSH server
// once it listens, else with the error a real network gives (connection
// refused for a closed port, no route to host for an address no machine
// has). The connection's RemoteAddr is the address dialled. It has the
// signature of provider.Config.DialContext.
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	s.count(func(st *Stats) { st.Dials++ })
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("simssh: address %q is not an IP and port", addr)}
	}
	remote := net.TCPAddrFromAddrPort(ap)
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: network, Addr: remote, Err: err} }
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, opErr(fmt.Errorf("simssh: network %q is not served", network))
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr(err)
	}
	in, ok := s.find(ap.Addr().Unmap())
	if !ok {
		s.count(func(st *Stats) { st.Unreachable++ })
		return nil, opErr(os.NewSyscallError("connect", syscall.EHOSTUNREACH))
	}
	if s.take(in.ID, FaultBlackhole) == FaultBlackhole {
		<-ctx.Done()
		return nil, opErr(ctx.Err())
	}
	if int(ap.Port()) != s.opts.Port || s.cloud.Now().Before(s.Timeline(in).Port) {
		s.count(func(st *Stats) { st.Refused++ })
		return nil, opErr(os.NewSyscallError("connect", syscall.ECONNREFUSED))
	}
	m, err := s.machine(in.ID)
	if err != nil {
		return nil, opErr(err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", m.ln.Addr().String())
	if err != nil {
		return nil, opErr(err)
	}
	return &addrConn{Conn: c, remote: remote}, nil
}

// addrConn is a loopback connection that says it goes to the address
// dialled.
type addrConn struct {
	net.Conn
	remote net.Addr
}

// RemoteAddr returns the machine's public address.
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// find returns the live machine that has ip as its public address now,
// and closes the servers of machines that are gone.
func (s *Server) find(ip netip.Addr) (simcloud.Instance, bool) {
	now := s.cloud.Now()
	var found simcloud.Instance
	ok := false
	live := map[int64]bool{}
	for _, in := range s.cloud.LiveInstances() {
		live[in.ID] = true
		if in.PublicIPv4(now) == ip || in.PublicIPv6(now) == ip {
			found, ok = in, true
		}
	}
	s.mu.Lock()
	for id, m := range s.machines {
		if !live[id] {
			_ = m.ln.Close()
			delete(s.machines, id)
		}
	}
	s.mu.Unlock()
	return found, ok
}

// instance returns the live machine id.
func (s *Server) instance(id int64) (simcloud.Instance, bool) {
	for _, in := range s.cloud.LiveInstances() {
		if in.ID == id {
			return in, true
		}
	}
	return simcloud.Instance{}, false
}

// machine returns machine id's server, started on first use.
func (s *Server) machine(id int64) (*machine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("simssh: server closed")
	}
	if m, ok := s.machines[id]; ok {
		return m, nil
	}
	host, err := ssh.NewSignerFromKey(s.cloud.HostKey(id))
	if err != nil {
		return nil, err
	}
	impostor, err := ssh.NewSignerFromKey(simcloud.DeriveKey(s.cloud.Options().Seed, "impostor", id))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &machine{id: id, ln: ln, host: host, impostor: impostor}
	s.machines[id] = m
	s.wg.Add(1)
	go s.accept(m)
	return m, nil
}

func (s *Server) accept(m *machine) {
	defer s.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.stats.Accepted++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.serve(m, c)
		}()
	}
}

// serve runs one connection to machine m.
func (s *Server) serve(m *machine, c net.Conn) {
	fault := s.take(m.id, FaultReset, FaultBannerTimeout, FaultAuthRefused, FaultHostKey)
	switch fault {
	case FaultReset:
		// Read the client's version line, then close with a RST: the
		// client sees the reset in the handshake, as from an sshd that
		// drops connections over its MaxStartups.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Read(make([]byte, 256))
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return
	case FaultBannerTimeout:
		_, _ = io.Copy(io.Discard, c) // until the client hangs up
		return
	}
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5",
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if fault == FaultAuthRefused || !s.installed(m.id, key) {
				s.count(func(st *Stats) { st.KeysRefused++ })
				return nil, errors.New("simssh: key not authorized")
			}
			return &ssh.Permissions{}, nil
		},
		// Called before the server says "success": a client that logged
		// in is counted before it knows it.
		AuthLogCallback: func(_ ssh.ConnMetadata, method string, err error) {
			if err == nil && method == "publickey" {
				s.count(func(st *Stats) { st.Logins++ })
			}
		},
	}
	if fault == FaultHostKey {
		cfg.AddHostKey(m.impostor)
	} else {
		cfg.AddHostKey(m.host)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // sshd's LoginGraceTime, shortened
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Go(func() { s.session(m, sc.User(), ch, creqs) })
	}
}

// installed reports whether key is one the machine accepts now: one of
// the account's keys its create installed, once the keys have landed.
func (s *Server) installed(id int64, key ssh.PublicKey) bool {
	in, ok := s.instance(id)
	if !ok || s.cloud.Now().Before(s.Timeline(in).Keys) {
		return false
	}
	for _, k := range s.cloud.SSHKeys() {
		if !containsID(in.SSHKeyIDs, k.ID) {
			continue
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.PublicKey))
		if err == nil && string(pub.Marshal()) == string(key.Marshal()) {
			return true
		}
	}
	return false
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// session serves one session channel: exec requests run a command.
func (s *Server) session(m *machine, user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	done := make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(done) }) }
	defer finish()
	var wg sync.WaitGroup
	defer wg.Wait()
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			s.count(func(st *Stats) { st.Commands++ })
			wg.Go(func() {
				code := s.run(m, user, p.Command, ch, ch.Stderr(), done)
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{code}))
				_ = ch.Close()
			})
		case "env", "pty-req":
			_ = req.Reply(true, nil)
		default:
			_ = req.Reply(false, nil)
		}
	}
	finish() // the client closed the channel: a command waiting ends
}
