package provider

import (
	"sync"
	"time"
)

// ConsistencyWindow is how long after a driver created a resource a "not
// found" for it is taken to mean "not visible yet" (clouds are eventually
// consistent: EC2 documents it, and a load balancer may route a read to a
// replica that has not seen the create) rather than "gone".
const ConsistencyWindow = time.Minute

// maxRecent bounds the keys a Recent holds.
const maxRecent = 4096

// Recent remembers keys for a while: the resources a driver created lately,
// or the creates whose outcome is unknown. It holds at most a few thousand
// keys, forgetting the oldest first. The zero value is ready to use; safe
// for concurrent use.
type Recent struct {
	// TTL is how long a key is remembered; 0 means ConsistencyWindow.
	TTL time.Duration

	mu sync.Mutex
	at map[string]time.Time
}

func (r *Recent) ttl() time.Duration {
	if r.TTL > 0 {
		return r.TTL
	}
	return ConsistencyWindow
}

// Add remembers key from now on.
func (r *Recent) Add(key string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = make(map[string]time.Time)
	}
	if len(r.at) >= maxRecent {
		ttl := r.ttl()
		for k, t := range r.at {
			if now.Sub(t) >= ttl {
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
	r.at[key] = now
}

// Age returns how long ago key was added, and whether that is within the
// TTL.
func (r *Recent) Age(key string) (time.Duration, bool) {
	r.mu.Lock()
	t, ok := r.at[key]
	r.mu.Unlock()
	if !ok {
		return 0, false
	}
	age := time.Since(t)
	return age, age < r.ttl()
}

// Remove forgets key.
func (r *Recent) Remove(key string) {
	r.mu.Lock()
	delete(r.at, key)
	r.mu.Unlock()
}

// Has reports whether key was added within the TTL.
func (r *Recent) Has(key string) bool {
	_, ok := r.Age(key)
	return ok
}
