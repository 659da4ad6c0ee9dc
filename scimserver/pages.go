package scimserver

import "sync"

// pageKey names a position in a tenant's id-ordered list: the record at startIndex, valid while
// no record of that kind was deleted (deletes is the order generation).
type pageKey struct {
	tenant     string
	kind       string
	deletes    uint64
	startIndex int
}

// pageCache remembers where list pages start: the id of the record at a startIndex. It is a bounded map, cleared when full: an entry
// only saves a walk, so losing one costs time, never correctness.
type pageCache struct {
	mu sync.Mutex
	m  map[pageKey]string
}

const pageCacheSize = 4096

func (c *pageCache) get(k pageKey) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.m[k]
	return id, ok
}

func (c *pageCache) put(k pageKey, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= pageCacheSize {
		c.m = make(map[pageKey]string)
	}
	c.m[k] = id
}
