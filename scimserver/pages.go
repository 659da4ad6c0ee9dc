package scimserver

import (
	"sync"

	"github.com/scimserver/scimserver/storage"
)

// pageKey names a position in a tenant's id-ordered list: the record just before startIndex,
// valid while no record of that type was deleted (deletes is the order generation).
type pageKey struct {
	tenant     string
	kind       string
	deletes    uint64
	startIndex int
}

// pageCache remembers where list pages ended. It is a bounded map, cleared when full: an entry
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

// anchors are every anchorEvery-th id of a tenant's id order, so that a page anywhere in the
// list is found by stepping over at most anchorEvery ids. Ids grow in commit order, so records
// created later only extend the list; a deletion shifts positions, and the anchors are taken
// again under the new order generation (deletes).
const anchorEvery = 1024

type anchorKey struct {
	tenant  string
	kind    string
	deletes uint64
}

type anchorCache struct {
	mu sync.Mutex
	m  map[anchorKey][]string
}

// position returns where to start scanning for the record at 0-based position pos: the id
// before an anchor at or below pos, and how many ids to step over from there.
func (c *anchorCache) position(tx *storage.Tx, rt *resourceType, pos int) (after string, skip int) {
	k := anchorKey{tenant: tx.Tenant(), kind: rt.name, deletes: rt.deletes(tx)}
	c.mu.Lock()
	ids, ok := c.m[k]
	c.mu.Unlock()
	if !ok {
		ids = rt.sample(tx, anchorEvery)
		c.mu.Lock()
		if c.m == nil || len(c.m) >= pageCacheSize {
			c.m = map[anchorKey][]string{}
		}
		c.m[k] = ids
		c.mu.Unlock()
	}
	i := min(pos/anchorEvery, len(ids)-1)
	if i <= 0 {
		return "", pos
	}
	return rt.before(tx, ids[i]), pos - i*anchorEvery
}
