//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

// stateLock does nothing on this platform: flock is not available through
// the standard library, so concurrent spuffctl processes on one simulated
// cloud are not serialized here.
type stateLock struct{}

func tryLock(string) (*stateLock, error) { return &stateLock{}, nil }

func (l *stateLock) release() {}

func lockHolder(string) int { return 0 }

func processAlive(int) bool { return false }
