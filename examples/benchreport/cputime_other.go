//go:build !linux

package main

import "time"

// cpuTime is the process's CPU time so far; measured on Linux only, 0
// elsewhere (the report's CPU figures are then meaningless).
func cpuTime() time.Duration { return 0 }
