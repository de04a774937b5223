package bufpool

import (
	"sync"
	"testing"
)

// A Pool hands back what was put, up to its limit, and nothing once
// dropped; a Get on an empty pool says so.
func TestPoolKeepsUpToItsLimit(t *testing.T) {
	p := New[*[]byte](2)
	if v, ok := p.Get(); ok || v != nil {
		t.Fatalf("empty pool gave %v, %v", v, ok)
	}
	a, b, c := new([]byte), new([]byte), new([]byte)
	p.Put(a)
	p.Put(b)
	p.Put(c) // over the limit: dropped
	if p.Len() != 2 {
		t.Fatalf("keeps %d, want 2", p.Len())
	}
	got := map[*[]byte]bool{}
	for range 2 {
		v, ok := p.Get()
		if !ok {
			t.Fatal("Get found nothing with 2 kept")
		}
		got[v] = true
	}
	if !got[a] || !got[b] || got[c] {
		t.Fatalf("got %v, want a and b", got)
	}
	if _, ok := p.Get(); ok {
		t.Fatal("Get found a third value")
	}
	p.Put(a)
	p.Drop()
	if _, ok := p.Get(); ok || p.Len() != 0 {
		t.Fatal("Get found a value after Drop")
	}
	p.Put(b)
	if v, ok := p.Get(); !ok || v != b {
		t.Fatal("a value put after Drop is not kept")
	}
}

// A pool of limit 0 (or less) keeps nothing.
func TestPoolOfNoneKeepsNothing(t *testing.T) {
	for _, n := range []int{0, -1} {
		p := New[int](n)
		p.Put(1)
		if _, ok := p.Get(); ok {
			t.Errorf("New(%d) kept a value", n)
		}
	}
}

// Concurrent Gets and Puts never hand one value to two holders, and the
// pool never keeps more than its limit.
func TestPoolConcurrent(t *testing.T) {
	const limit = 4
	p := New[*int](limit)
	var mu sync.Mutex
	held := map[*int]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				v, ok := p.Get()
				if !ok {
					v = new(int)
				}
				mu.Lock()
				if held[v] {
					t.Error("one value handed to two holders")
				}
				held[v] = true
				mu.Unlock()
				mu.Lock()
				delete(held, v)
				mu.Unlock()
				p.Put(v)
				if n := p.Len(); n > limit {
					t.Errorf("keeps %d, over its limit %d", n, limit)
				}
			}
		})
	}
	wg.Wait()
}
