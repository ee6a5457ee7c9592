package simcloud

// Room returns how many more machines of size the cloud takes in region
// now: -1 for no bound, 0 when the placement is full (its Capacity) or
// the region is disabled. Dialects whose catalogue shows availability (a
// DigitalOcean size's regions, a Hetzner datacenter's available server
// types) read it, as the real clouds stop listing what they cannot place.
func (c *Cloud) Room(region, size string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disabled[region] {
		return 0
	}
	return c.roomLocked(region, size, c.now())
}

// Available reports whether a create of size in region would find room
// now (Room is not 0).
func (c *Cloud) Available(region, size string) bool { return c.Room(region, size) != 0 }
