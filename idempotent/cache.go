package idempotent

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// recordCache keeps completed records of this instance, bounded by count and by time. The LRU library handles
// eviction and locking; expiry is checked against the engine's clock on every read so tests can move time.
type recordCache struct {
	lru *lru.Cache[string, cacheEntry]
	ttl time.Duration
}

type cacheEntry struct {
	rec   *Record
	until time.Time
}

func newRecordCache(size int, ttl time.Duration) *recordCache {
	if size <= 0 {
		return nil
	}
	c, err := lru.New[string, cacheEntry](size)
	if err != nil { // only for size <= 0, excluded above
		return nil
	}
	return &recordCache{lru: c, ttl: ttl}
}

func (c *recordCache) get(id string, now time.Time) *Record {
	if c == nil {
		return nil
	}
	e, ok := c.lru.Get(id)
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		c.lru.Remove(id)
		return nil
	}
	return e.rec
}

func (c *recordCache) put(rec *Record, now time.Time) {
	if c == nil || rec.Status != StatusCompleted {
		return
	}
	until := rec.ExpiresAt
	if c.ttl > 0 && now.Add(c.ttl).Before(until) {
		until = now.Add(c.ttl)
	}
	c.lru.Add(rec.ID, cacheEntry{rec: rec, until: until})
}
