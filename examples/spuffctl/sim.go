package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
)

// simSession is a simulated cloud served on loopback for one spuffctl run,
// loaded from and saved back to a state file so that successive runs see
// the same machines.
type simSession struct {
	path  string
	cloud *simcloud.Cloud
	srv   *simcloud.Server
	boot  time.Duration
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

// openSim loads (or makes) the simulated cloud of b and serves it.
func openSim(b *backend, dir string, boot time.Duration) (*simSession, error) {
	opts := simcloud.Options{BootDelay: boot, SnapshotDelay: boot / 2, Seed: uint64(time.Now().UnixNano())}
	path := simStatePath(dir, b.name)
	var cloud *simcloud.Cloud
	f, err := os.Open(path)
	switch {
	case err == nil:
		cloud, err = simcloud.Load(f, b.sim.defaults(opts))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("simulated cloud state %s is unreadable (reset it with `spuffctl sim reset`): %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		cloud = b.sim.newCloud(opts)
	default:
		return nil, err
	}
	srv := simcloud.NewServer(cloud, b.sim.handler(cloud))
	return &simSession{path: path, cloud: cloud, srv: srv, boot: boot}, nil
}

// config returns the Config that reaches the simulated cloud, with a wait
// policy tuned to its boot time.
func (s *simSession) config(b *backend) provider.Config { return b.sim.config(s.srv) }

// close stops the server and saves the cloud's state atomically.
func (s *simSession) close() error {
	s.srv.Close()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".sim-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := s.cloud.Save(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}
