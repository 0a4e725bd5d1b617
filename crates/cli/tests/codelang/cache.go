package cache

import (
	"errors"
	"sync"
	"time"
)

// ErrMissing is returned when a key is absent or expired.
var ErrMissing = errors.New("cache: key missing")

type entry struct {
	value   []byte
	expires time.Time
}

// Cache is a map of byte slices whose entries expire, safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	entries map[string]entry
	ttl     time.Duration
}

// New returns an empty cache whose entries live for ttl.
func New(ttl time.Duration) *Cache {
	return &Cache{entries: make(map[string]entry), ttl: ttl}
}

// Put stores value under key.
func (c *Cache) Put(key string, value []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = entry{value: value, expires: time.Now().Add(c.ttl)}
}

// Get returns the value under key, or ErrMissing.
func (c *Cache) Get(key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || time.Now().After(e.expires) {
		delete(c.entries, key)
		return nil, ErrMissing
	}
	return e.value, nil
}
