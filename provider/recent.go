package provider

import (
	"sync"
	"time"
)

// consistencyWindow is how long after a driver created a resource a "not
// found" for it is taken to mean "not visible yet" (clouds are eventually
// consistent: EC2 documents it, and a load balancer may route a read to a
// replica that has not seen the create) rather than "gone".
const consistencyWindow = time.Minute

// maxRecent bounds the keys a recent holds.
const maxRecent = 4096

// recent remembers keys for a while: the resources a driver created lately,
// or the creates whose outcome is unknown. It holds at most a few thousand
// keys, forgetting the oldest first. The zero value is ready to use; safe
// for concurrent use.
type recent struct {
	// life is how long a key is remembered; 0 means consistencyWindow.
	life time.Duration

	mu sync.Mutex
	at map[string]entry
}

type entry struct {
	at  time.Time
	val string
}

func (r *recent) ttl() time.Duration {
	if r.life > 0 {
		return r.life
	}
	return consistencyWindow
}

// add remembers key from now on.
func (r *recent) add(key string) { r.addValue(key, "") }

// value returns what key was added with, and whether it is remembered.
func (r *recent) value(key string) (string, bool) {
	r.mu.Lock()
	e, ok := r.at[key]
	r.mu.Unlock()
	if !ok || time.Since(e.at) >= r.ttl() {
		return "", false
	}
	return e.val, true
}

// addValue remembers key, with val, from now on.
func (r *recent) addValue(key, val string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = make(map[string]entry)
	}
	if len(r.at) >= maxRecent {
		ttl := r.ttl()
		for k, e := range r.at {
			if now.Sub(e.at) >= ttl {
				delete(r.at, k)
			}
		}
		for k := range r.at { // still full: forget any half
			if len(r.at) < maxRecent/2 {
				break
			}
			delete(r.at, k)
		}
	}
	r.at[key] = entry{at: now, val: val}
}

// age returns how long ago key was added, and whether that is within the
// TTL.
func (r *recent) age(key string) (time.Duration, bool) {
	r.mu.Lock()
	e, ok := r.at[key]
	r.mu.Unlock()
	if !ok {
		return 0, false
	}
	age := time.Since(e.at)
	return age, age < r.ttl()
}

// remove forgets key.
func (r *recent) remove(key string) {
	r.mu.Lock()
	delete(r.at, key)
	r.mu.Unlock()
}

// has reports whether key was added within the TTL.
func (r *recent) has(key string) bool {
	_, ok := r.age(key)
	return ok
}

// keys returns the keys added within the TTL.
func (r *recent) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ttl := r.ttl()
	out := make([]string, 0, len(r.at))
	for k, e := range r.at {
		if time.Since(e.at) < ttl {
			out = append(out, k)
		}
	}
	return out
}
