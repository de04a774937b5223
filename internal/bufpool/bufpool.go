// Package bufpool keeps memory a task grew (buffers, encoders, column
// sets) for the next task of its kind: a typed free list of a fixed
// number of idle values.
package bufpool

// Pool keeps at most a fixed number of idle values of type T, safe for
// concurrent use. Unlike a sync.Pool it is bounded, and a garbage
// collection does not empty it: what it keeps stays live until a Get
// takes it or Drop forgets it. The zero Pool keeps nothing; use New.
type Pool[T any] struct {
	idle chan T
}

// New returns a Pool that keeps up to n idle values (none if n <= 0).
func New[T any](n int) *Pool[T] {
	return &Pool[T]{idle: make(chan T, max(n, 0))}
}

// Get takes an idle value: it returns it and true, or the zero T and
// false if the pool has none. It never blocks.
func (p *Pool[T]) Get() (T, bool) {
	select {
	case v := <-p.idle:
		return v, true
	default:
		var zero T
		return zero, false
	}
}

// Put keeps v, which its caller must no longer use, for a later Get; if
// the pool already keeps its limit, v is dropped (left to the garbage
// collector). It never blocks.
func (p *Pool[T]) Put(v T) {
	select {
	case p.idle <- v:
	default:
	}
}

// Drop forgets every idle value, so that the garbage collector may take
// their memory: for a caller done with this kind of task for a while.
// Values Put afterwards are kept again.
func (p *Pool[T]) Drop() {
	for {
		select {
		case <-p.idle:
		default:
			return
		}
	}
}

// Len is the number of idle values kept.
func (p *Pool[T]) Len() int { return len(p.idle) }
