package storetest

import (
	"context"
	"strings"
	"sync"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// Reads is a store that counts the reads of the objects under a prefix
// (raw/, say): what the cost rule of docs/design.md §Routing and segments is about. Every reader of a
// raw object (raw.Read routing it, the index scanning its time columns)
// opens it once with Open and makes all its ranged reads through that one
// Reader; Get reads a whole object. So each Open or Get of a key is one
// read of that object, whoever makes it.
type Reads struct {
	store.Store
	prefix string
	mu     sync.Mutex
	reads  map[string]int
}

// CountReads wraps st, counting the reads of keys under prefix.
func CountReads(st store.Store, prefix string) *Reads {
	return &Reads{Store: st, prefix: prefix, reads: map[string]int{}}
}

func (c *Reads) count(key string) {
	if strings.HasPrefix(key, c.prefix) {
		c.mu.Lock()
		c.reads[key]++
		c.mu.Unlock()
	}
}

// Open counts a read of key.
func (c *Reads) Open(ctx context.Context, key string) (store.Reader, error) {
	c.count(key)
	return c.Store.Open(ctx, key)
}

// Get counts a read of key.
func (c *Reads) Get(ctx context.Context, key string) ([]byte, error) {
	c.count(key)
	return c.Store.Get(ctx, key)
}

// Snapshot returns the reads of each key counted so far.
func (c *Reads) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.reads))
	for k, n := range c.reads {
		out[k] = n
	}
	return out
}

// Take returns the reads counted so far and starts counting again.
func (c *Reads) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reads
	c.reads = map[string]int{}
	return out
}
