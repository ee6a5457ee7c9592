package simcloud

import (
	"math"
	"strconv"
	"time"
)

// World picks the defaults of every behaviour an Options leaves zero.
//
// The simple world is the fast, forgiving cloud spuff's tests were first
// written against: machines boot in 100 ms and get their address before
// they run, destroy is instant, every 429 says when to retry, listings
// are never stale and capacity is endless. The realistic world turns on
// everything the real clouds always do, with the numbers they document
// (each Options field says where its number comes from), scaled by
// Options.TimeScale: per-action throttling without Retry-After on EC2,
// per-request timers on DigitalOcean's hourly limit, Hetzner's locked
// servers, destroy windows, late public IPs, slow and sometimes failing
// snapshots, listing lag and eventual consistency.
type World int8

// The worlds.
const (
	// WorldDefault is DefaultWorld.
	WorldDefault World = iota
	// WorldSimple is the fast, forgiving world.
	WorldSimple
	// WorldRealistic is the world as the real clouds behave.
	WorldRealistic
)

// DefaultWorld is the world of an Options whose World is WorldDefault (the
// zero value). It is the one switch that makes every simulated cloud
// realistic by default: change it to WorldRealistic once the drivers cope.
const DefaultWorld = WorldRealistic

// String names the world.
func (w World) String() string {
	switch w {
	case WorldDefault:
		return "default"
	case WorldSimple:
		return "simple"
	case WorldRealistic:
		return "realistic"
	}
	return "World(" + strconv.Itoa(int(w)) + ")"
}

// Realistic returns the options of the realistic world at the given time
// scale (1 is real time; tests use 1/100 or less): pass them to a dialect's
// NewCloud, Start or NewServer to get that cloud as it behaves in
// production, with every documented number scaled by scale. Fields set on
// the result before use override single behaviours.
func Realistic(scale float64) Options {
	return Options{World: WorldRealistic, TimeScale: scale}
}

// IsRealistic reports whether o describes the realistic world (World, or
// DefaultWorld for WorldDefault).
func (o Options) IsRealistic() bool {
	w := o.World
	if w == WorldDefault {
		w = DefaultWorld
	}
	return w == WorldRealistic
}

// Switch is a behaviour that is on or off, or left to the world's default.
type Switch int8

// The values of a Switch.
const (
	// Auto leaves the behaviour to the world: on in the realistic world
	// where the cloud does it, off in the simple world.
	Auto Switch = iota
	// On turns the behaviour on in every world.
	On
	// Off turns the behaviour off in every world.
	Off
)

// Enabled reports whether s is on, def being the world's default.
func (s Switch) Enabled(def bool) bool {
	switch s {
	case On:
		return true
	case Off:
		return false
	}
	return def
}

// pickDuration resolves a duration option: zero takes def (the world's
// default), a negative value is off (zero).
func pickDuration(d, def time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return def
	}
	return d
}

// SetDefault sets *d to def when it is zero; a negative duration (off)
// stays. The dialects' Defaults fill their cloud's realistic numbers with
// it.
func SetDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// pickFraction resolves a fraction option like pickDuration.
func pickFraction(f, def float64) float64 {
	switch {
	case f < 0:
		return 0
	case f == 0:
		return def
	}
	return f
}

// RetryAfterStyle is how a cloud sends Retry-After with its rate-limit
// answers.
type RetryAfterStyle int8

// The Retry-After styles.
const (
	// RetryAfterAuto is RetryAfterFractional in the simple world and
	// RetryAfterWholeSeconds in the realistic one (the dialects pick
	// RetryAfterNever for the clouds that send none).
	RetryAfterAuto RetryAfterStyle = iota
	// RetryAfterFractional sends whole seconds, rounded up, from one second
	// on and a decimal below it (scaled time makes waits far shorter than a
	// second); no real cloud does this.
	RetryAfterFractional
	// RetryAfterWholeSeconds sends whole seconds, rounded up and at least 1,
	// as DigitalOcean does ("retry-after: 29"): under a scaled clock a
	// client waits longer than it needs, as it does against the real API
	// between refills.
	RetryAfterWholeSeconds
	// RetryAfterNever sends no Retry-After at all, as EC2 and Hetzner.
	RetryAfterNever
)

// formatRetryAfter writes wait (wall-clock) as the style's header value.
func formatRetryAfter(style RetryAfterStyle, wait time.Duration) string {
	if style == RetryAfterWholeSeconds {
		return strconv.FormatInt(max(1, int64(math.Ceil(wait.Seconds()))), 10)
	}
	return FormatSeconds(wait)
}

// Scale converts a duration of the cloud's time (the real cloud's) into
// wall-clock time: d times Options.TimeScale. Every duration of Options
// and of faults goes through it.
func (c *Cloud) Scale(d time.Duration) time.Duration {
	if c.scale == 1 {
		return d
	}
	return time.Duration(float64(d) * c.scale)
}

// realisticGeneric are the realistic defaults of a cloud that is none of
// the three (a bare simcloud.New); each dialect's Defaults fills in its own
// cloud's numbers before New sees them.
var realisticGeneric = struct {
	boot, lateIPDelay, snapshot, destroy time.Duration
	bootJitter, lateIP, snapJitter       float64
}{
	boot:        30 * time.Second,
	bootJitter:  0.3,
	lateIP:      0.05,
	lateIPDelay: 10 * time.Second,
	snapshot:    2 * time.Minute,
	snapJitter:  0.5,
	destroy:     10 * time.Second,
}
