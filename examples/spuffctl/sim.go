package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/ec2sim"
	"github.com/spuffgo/spuff/providertest/simcloud"
	"github.com/spuffgo/spuff/providertest/simssh"
)

// A simulated cloud's state lives in <dir>/sim-<provider>.json, a saved
// simcloud.Cloud. A spuffctl process that uses it holds an advisory lock on
// <dir>/sim-<provider>.lock for the whole command, from loading the state
// to saving it (written to a temporary file, then renamed over the old
// one), so concurrent processes run one after the other and lose nothing.
// `spuffctl sim serve` holds the locks while it serves and records where
// in <dir>/serve.json; a spuffctl that finds the lock taken by a server
// uses the server instead of waiting.

// simSession is a simulated cloud for one spuffctl run: served on loopback
// from the saved state (and saved back), or reached at a running `sim
// serve`.
type simSession struct {
	path  string
	lock  *stateLock
	cloud *simcloud.Cloud
	srv   *simcloud.Server
	// remote is the `sim serve` process serving the cloud, when the
	// session uses one (cloud and srv are then nil).
	remote *serveRecord
	boot   time.Duration
	// sshd serves the SSH of the cloud's machines, when the session
	// serves the cloud itself.
	sshd *simssh.Server
}

// simStateDir is where simulated clouds keep their state: $SPUFF_SIM_DIR,
// else the user cache directory's spuff/ folder.
func simStateDir(getenv func(string) string) (string, error) {
	if d := getenv("SPUFF_SIM_DIR"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the simulated cloud's state (set SPUFF_SIM_DIR): %w", err)
	}
	return filepath.Join(base, "spuff"), nil
}

func simStatePath(dir, providerName string) string {
	return filepath.Join(dir, "sim-"+providerName+".json")
}

// simReferenceBoot is the real clouds' boot time the simulated ones are
// scaled from: a machine that boots in boot on the simulated cloud runs
// its whole world (listing lag, destroy windows, throttles) that much
// faster than the real one.
const simReferenceBoot = 45 * time.Second

// simOptions is the simulated clouds' world: the realistic one (throttles,
// listing lag, destroy windows, locks, late addresses, as the real clouds
// do), sped up so that a machine boots in boot — at least 15 times faster
// than the real clouds, however long boot is.
func simOptions(boot time.Duration) simcloud.Options {
	scale := min(float64(boot)/float64(simReferenceBoot), 1.0/15)
	if scale <= 0 {
		scale = 1e-6
	}
	opts := simcloud.Realistic(scale)
	cloud := time.Duration(float64(boot) / scale) // boot, in the cloud's time
	opts.BootDelay, opts.SnapshotDelay = cloud, cloud/2
	opts.SnapshotFailRate = -1                // a demonstration's snapshots do not fail at random
	opts.Seed = uint64(time.Now().UnixNano()) // loadCloud sets the state's own
	return opts
}

// simKnobs reads the simulated clouds' environment knobs, SPUFF_SIM_BOOT
// and SPUFF_SIM_CAPACITY; an ill-formed one is a usage error.
func simKnobs(getenv func(string) string) (time.Duration, []simcloud.Capacity, error) {
	boot, err := simBoot(getenv)
	if err != nil {
		return 0, nil, usagef("%v", err)
	}
	capacity, err := simCapacity(getenv)
	if err != nil {
		return 0, nil, usagef("%v", err)
	}
	return boot, capacity, nil
}

// simBoot is the simulated boot time: $SPUFF_SIM_BOOT (a Go duration), else
// 3 s — long enough to watch, short enough not to wait for.
func simBoot(getenv func(string) string) (time.Duration, error) {
	v := getenv("SPUFF_SIM_BOOT")
	if v == "" {
		return 3 * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("SPUFF_SIM_BOOT=%q is not a duration such as 3s", v)
	}
	return d, nil
}

// simCapacity is the room of the simulated cloud's placements:
// $SPUFF_SIM_CAPACITY, comma-separated REGION[/SIZE]=N items ("*" for any
// region or size), each bounding how many machines the placement holds at
// once; past it, a create there is refused for capacity, as a real cloud
// refuses when a region runs out of a size. "fsn1=0" leaves no room in
// fsn1, "*/cx22=1" room for one cx22 anywhere. Unset, placements are
// unbounded. The bounds hold for the one process (they are not kept in
// the state), so that `up --region fsn1,nbg1` can be seen to move on.
func simCapacity(getenv func(string) string) ([]simcloud.Capacity, error) {
	v := getenv("SPUFF_SIM_CAPACITY")
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []simcloud.Capacity
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		where, n, ok := strings.Cut(item, "=")
		region, size, _ := strings.Cut(where, "/")
		max, err := strconv.Atoi(strings.TrimSpace(n))
		region, size = strings.TrimSpace(region), strings.TrimSpace(size)
		if !ok || err != nil || max < 0 || region == "" || strings.Contains(size, "/") {
			return nil, fmt.Errorf("SPUFF_SIM_CAPACITY=%q: %q is not REGION[/SIZE]=N, such as fsn1=0 or */cx22=1", v, item)
		}
		if region == "*" {
			region = ""
		}
		if size == "*" {
			size = ""
		}
		out = append(out, simcloud.Capacity{Region: region, Size: size, Max: max})
	}
	return out, nil
}

// usableDir makes dir if needed and checks that files can be created in
// it, so that a command is refused before it changes anything it could not
// save.
func usableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("the simulated cloud's state directory %s cannot be made (set SPUFF_SIM_DIR to a writable directory): %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("the simulated cloud's state directory %s is not writable (set SPUFF_SIM_DIR to a writable directory): %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// openSim takes the state of b's simulated cloud in dir and serves it, or
// finds the `sim serve` process serving it. It waits, saying so on
// stderr, while another spuffctl holds the state.
func openSim(ctx context.Context, b *backend, dir string, boot time.Duration, capacity []simcloud.Capacity, stderr io.Writer) (*simSession, error) {
	if err := usableDir(dir); err != nil {
		return nil, err
	}
	path := simStatePath(dir, b.name)
	lock, remote, err := acquire(ctx, dir, b.name, stderr, true)
	if err != nil {
		return nil, err
	}
	if remote != nil {
		return &simSession{path: path, remote: remote, boot: remote.Boot}, nil
	}
	cloud, err := loadCloud(b, path, boot, capacity)
	if err != nil {
		lock.release()
		return nil, err
	}
	srv := simcloud.NewServer(cloud, b.sim.handler(cloud))
	return &simSession{path: path, lock: lock, cloud: cloud, srv: srv, boot: boot, sshd: simssh.New(cloud, simssh.Options{})}, nil
}

// acquire takes the lock of provider name's state in dir, waiting while
// another spuffctl holds it. With useServer, a lock held by a running `sim
// serve` that serves the provider yields that server's record instead.
func acquire(ctx context.Context, dir, name string, stderr io.Writer, useServer bool) (*stateLock, *serveRecord, error) {
	lockPath := filepath.Join(dir, "sim-"+name+".lock")
	said := false
	for {
		lock, err := tryLock(lockPath)
		if err != nil {
			return nil, nil, fmt.Errorf("locking the simulated cloud's state: %w", err)
		}
		if lock != nil {
			return lock, nil, nil
		}
		rec := readServeRecord(dir)
		if rec != nil && rec.Clouds[name].URL != "" {
			if useServer {
				return nil, rec, nil
			}
			return nil, nil, fmt.Errorf("the simulated %s cloud is being served by `spuffctl sim serve` (pid %d); stop it first", name, rec.PID)
		}
		if !said {
			holder := "another spuffctl"
			if pid := lockHolder(lockPath); pid > 0 {
				holder += " (pid " + strconv.Itoa(pid) + ")"
			}
			fmt.Fprintf(stderr, "%s: waiting for %s to finish with the simulated %s cloud\n", programName, holder, name)
			said = true
		}
		t := time.NewTimer(25 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("waiting for the simulated %s cloud: %w", name, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// simSeedPath is where the seed of a simulated cloud's world is kept,
// beside its state: the machines' host keys derive from it (and the
// cloud's console output shows their fingerprints), so a machine shows
// the same host key to every spuffctl process, as a real one does.
func simSeedPath(statePath string) string {
	return strings.TrimSuffix(statePath, ".json") + ".seed"
}

// simSeed returns the seed kept for the state at statePath, making and
// keeping a new one when there is none (a new cloud, or a state saved
// before seeds were kept).
func simSeed(statePath string) (uint64, error) {
	p := simSeedPath(statePath)
	if b, err := os.ReadFile(p); err == nil {
		if seed, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 64); err == nil {
			return seed, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("reading the simulated cloud's seed: %w", err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	seed := binary.BigEndian.Uint64(b[:])
	if err := writeFileAtomic(p, []byte(strconv.FormatUint(seed, 16)+"\n")); err != nil {
		return 0, fmt.Errorf("keeping the simulated cloud's seed: %w", err)
	}
	return seed, nil
}

// loadCloud reads the saved state at path, or makes a new cloud when there
// is none. The cloud's seed is the one kept beside the state (simSeed);
// capacity bounds its placements (simCapacity).
func loadCloud(b *backend, path string, boot time.Duration, capacity []simcloud.Capacity) (*simcloud.Cloud, error) {
	opts := simOptions(boot)
	opts.Capacity = append(opts.Capacity, capacity...)
	seed, err := simSeed(path)
	if err != nil {
		return nil, err
	}
	opts.Seed = seed
	f, err := os.Open(path)
	switch {
	case err == nil:
		defer f.Close()
		cloud, err := simcloud.Load(f, b.sim.defaults(opts))
		if err != nil {
			return nil, fmt.Errorf("simulated cloud state %s is unreadable (reset it with `spuffctl sim reset --provider %s`): %w", path, b.name, err)
		}
		return cloud, nil
	case errors.Is(err, fs.ErrNotExist):
		return b.sim.newCloud(opts), nil
	default:
		return nil, fmt.Errorf("reading the simulated cloud's state: %w", err)
	}
}

// saveCloud writes cloud's state to path atomically: a temporary file in
// the same directory, synced, then renamed over path.
func saveCloud(cloud *simcloud.Cloud, path string) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".sim-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	if err := cloud.Save(w); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// config returns the Config that reaches the simulated cloud, with a wait
// policy tuned to its boot time.
// Its DialContext reaches the machines' SSH servers.
func (s *simSession) config(b *backend) provider.Config {
	if s.remote != nil {
		c := s.remote.Clouds[b.name]
		cfg := b.remoteSimConfig(c.URL, c.Token, s.remote.Boot)
		cfg.DialContext = c.dialer()
		return cfg
	}
	cfg := b.sim.config(s.srv)
	cfg.DialContext = s.sshd.DialContext
	return cfg
}

// regions lists the simulated cloud's regions.
func (s *simSession) regions() []string {
	if s.cloud != nil {
		return slices.Clone(s.cloud.Options().Regions)
	}
	return slices.Clone(ec2sim.Regions)
}

// close stops the server, saves the cloud's state and releases it.
func (s *simSession) close() error {
	if s.remote != nil {
		return nil
	}
	_ = s.sshd.Close()
	s.srv.Close()
	defer s.lock.release()
	return saveCloud(s.cloud, s.path)
}

// serveRecord is what `sim serve` writes to <dir>/serve.json while it
// runs.
type serveRecord struct {
	PID    int                    `json:"pid"`
	Boot   time.Duration          `json:"boot"`
	Clouds map[string]servedCloud `json:"clouds"`
}

// servedCloud is one simulated cloud a `sim serve` process serves.
type servedCloud struct {
	URL   string `json:"url"`
	Token string `json:"token"` // the simulated account's credential
	// SSH is the address of the server's gateway to the SSH of the
	// cloud's machines and its account's keys (see simGateway).
	SSH string `json:"ssh,omitempty"`
}

func serveRecordPath(dir string) string { return filepath.Join(dir, "serve.json") }

// readServeRecord returns the record of a running `sim serve` in dir, or
// nil when there is none (or its process is gone).
func readServeRecord(dir string) *serveRecord {
	b, err := os.ReadFile(serveRecordPath(dir))
	if err != nil {
		return nil
	}
	var rec serveRecord
	if json.Unmarshal(b, &rec) != nil || rec.PID <= 0 || !processAlive(rec.PID) {
		return nil
	}
	return &rec
}

// writeFileAtomic writes data to path through a temporary file and a
// rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// regionsPath is where spuffctl records the regions it made machines in on
// a real regional cloud, so later commands look there too.
func regionsPath(dir, providerName string) string {
	return filepath.Join(dir, "regions-"+providerName+".txt")
}

// readRegions returns the recorded regions of providerName.
func readRegions(dir, providerName string) []string {
	b, err := os.ReadFile(regionsPath(dir, providerName))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// recordRegion adds region to the recorded regions of providerName.
func recordRegion(dir, providerName, region string) error {
	regions := readRegions(dir, providerName)
	if slices.Contains(regions, region) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	regions = append(regions, region)
	return writeFileAtomic(regionsPath(dir, providerName), []byte(strings.Join(regions, "\n")+"\n"))
}
