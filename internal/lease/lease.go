// Package lease keeps two writers off the same name, such as
// "events/dt=2026-11-24": one store object, created put-if-absent, renewed,
// taken over and released by compare-and-swap (docs/design.md §Leases). It
// saves work; the fenced commit of package publish keeps the tables right.
package lease

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/wait"
)

// Prefix is the folder of lease objects in a store.
const Prefix = "_state/leases/"

// DefaultClockSkew is how far past its expiry (or a quarter of its ttl, if
// shorter) a lease is taken over, to allow for clock differences.
const DefaultClockSkew = 5 * time.Second

// ErrLost is returned (wrapped) by Renew and Check once the lease is known
// to be no longer ours: taken over, deleted by hand, or released.
var ErrLost = errors.New("lease lost")

// ErrExpired is returned (wrapped) by Check when the lease is still ours
// but past its expiry, so it may be taken over at any moment.
var ErrExpired = errors.New("lease expired")

// HeldError is returned by Acquire when the lease is still held after the wait.
type HeldError struct {
	Name       string    // the lease name
	Key        string    // the lease object, relative to the store
	Store      string    // the store, as store.Store.String names it
	Holder     string    // who holds it, e.g. "run X on host Y, pid Z"
	ExpiresAt  time.Time // its current expiry
	TakeoverAt time.Time // when others may take it over: ExpiresAt + clock skew
	Expired    bool      // past ExpiresAt, within the clock-skew allowance
}

func (e *HeldError) Error() string {
	if e.Expired {
		return fmt.Sprintf("lease %s held by %s expired at %s; it can be taken over from %s; retry",
			e.Name, e.Holder, stamp(e.ExpiresAt), stamp(e.TakeoverAt))
	}
	return fmt.Sprintf("lease %s is held by %s until %s; wait for it and retry, or, if that process is dead, "+
		"remove %s from %s (an expired lease is taken over automatically after %s)",
		e.Name, e.Holder, stamp(e.ExpiresAt), e.Key, e.Store, stamp(e.TakeoverAt))
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// DeadLocalProcess reports whether holder (see HolderID) is a process of
// this host that no longer exists; false whenever it cannot be sure.
func DeadLocalProcess(holder string) bool {
	_, hostPID, _ := strings.Cut(holder, " on host ")
	host, p, _ := strings.Cut(hostPID, ", pid ")
	pid, err := strconv.Atoi(p)
	me, _ := os.Hostname()
	return err == nil && pid > 0 && host == me && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// HolderID names this process as a holder: "run <runID> on host <host>, pid <pid>".
func HolderID(runID string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("run %s on host %s, pid %d", runID, cmp.Or(host, "unknown"), os.Getpid())
}

// Key returns the key of the lease object of name.
func Key(name string) string { return Prefix + name + ".json" }

// Option tunes Acquire, AcquireAll and the leases they return.
type Option func(*Lease)

// WithWaitLog makes Acquire log a warning when it finds the lease held and
// is going to wait, and again every every (5 s if every <= 0) while it
// waits, naming the holder and its expiry. A nil log logs nothing.
func WithWaitLog(log *slog.Logger, every time.Duration) Option {
	return func(l *Lease) { l.log, l.logEvery = log, every }
}

// WithDeadHolder lets Acquire take a lease over at once if dead (never true
// of a live holder) says its holder is dead. The default is
// DeadLocalProcess on a *store.Dir, nil elsewhere.
func WithDeadHolder(dead func(holder string) bool) Option {
	return func(l *Lease) { l.dead = dead }
}

// WithPoll sets how often Acquire tries while it waits (default 1 s).
func WithPoll(d time.Duration) Option { return func(l *Lease) { l.poll = d } }

// WithSleep replaces how the package sleeps; f returns ctx's error if it ends.
func WithSleep(f func(ctx context.Context, d time.Duration) error) Option {
	return func(l *Lease) { l.sleep = f }
}

// record is a lease object. Token (random per acquisition) and Seq (the
// renewals) make each version's bytes, and so its tag, unique.
type record struct {
	Name       string    `json:"name"`
	Holder     string    `json:"holder"`
	Token      string    `json:"token"`
	Seq        int       `json:"seq"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Lease is a held lease. Its methods are safe for concurrent use.
type Lease struct {
	st                        store.Store
	key                       string
	now                       func() time.Time
	sleep                     func(context.Context, time.Duration) error
	dead                      func(holder string) bool
	log                       *slog.Logger
	ttl, poll, skew, logEvery time.Duration

	mu   sync.Mutex
	rec  record // our version of the object
	tag  string // its tag
	lost error  // why the lease is no longer ours (ErrLost), once known
}

// Acquire takes the lease called name in st for holder (see HolderID) for
// ttl. While another holds it, Acquire tries again until waitFor has passed
// by now (nil means time.Now), then returns a *HeldError. The holder must
// Renew the lease (or run KeepAlive) within ttl, and Release it when done.
func Acquire(ctx context.Context, st store.Store, name, holder string, ttl, waitFor time.Duration,
	now func() time.Time, opts ...Option) (*Lease, error) {
	if name == "." || !fs.ValidPath(name) ||
		strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return nil, fmt.Errorf("lease: invalid name %q", name)
	}
	if ttl <= 0 || holder == "" {
		return nil, fmt.Errorf("lease %s: need a positive ttl (not %v) and a holder (not %q)", name, ttl, holder)
	}
	l := &Lease{st: st, key: Key(name), ttl: ttl, now: now, sleep: wait.Sleep, skew: min(DefaultClockSkew, ttl/4),
		rec: record{Name: name, Holder: holder}}
	if now == nil {
		l.now = time.Now
	}
	if _, local := st.(*store.Dir); local {
		l.dead = DeadLocalProcess
	}
	for _, o := range opts {
		o(l)
	}
	l.poll, l.logEvery = cmp.Or(max(l.poll, 0), time.Second), cmp.Or(max(l.logEvery, 0), 5*time.Second)
	started := l.now()
	deadline := started.Add(max(waitFor, 0))
	var logged time.Time
	for {
		held, err := l.try(ctx)
		if err != nil {
			return nil, err
		} else if held == nil {
			// Best effort: the temporary files of killed processes' writes.
			_, _ = store.RemoveStaleTemp(ctx, st, Prefix, time.Now().Add(-10*time.Minute))
			return l, nil
		}
		t := l.now()
		if !t.Before(deadline) {
			return nil, held
		}
		if l.log != nil && (logged.IsZero() || t.Sub(logged) >= l.logEvery) {
			logged = t
			msg := "waiting for a lease another process holds"
			if held.Expired {
				msg = "waiting for an expired lease to be taken over"
			}
			l.log.Warn(msg, "lease", name, "holder", held.Holder, "expires_at", stamp(held.ExpiresAt),
				"takeover_at", stamp(held.TakeoverAt), "waited", t.Sub(started).Round(time.Second).String(),
				"gives_up_at", stamp(deadline), "lease_object", l.key, "store", st.String())
		}
		if err := l.sleep(ctx, min(l.poll, deadline.Sub(t))); err != nil {
			return nil, fmt.Errorf("lease %s: %w while waiting: %v", name, err, held)
		}
	}
}

// try creates the lease object, or takes over an expired or dead holder's,
// until it is ours (nil) or another's (a HeldError).
func (l *Lease) try(ctx context.Context) (*HeldError, error) {
	for {
		cur, tag, err := l.read(ctx)
		t := l.now().UTC()
		switch {
		case errors.Is(err, store.ErrNotExist):
			tag = "" // free: create it
		case err != nil:
			return nil, err
		case !t.After(cur.ExpiresAt.Add(l.skew)) && (l.dead == nil || !l.dead(cur.Holder)):
			return &HeldError{Name: l.rec.Name, Key: l.key, Store: l.st.String(), Holder: cur.Holder,
				ExpiresAt: cur.ExpiresAt, TakeoverAt: cur.ExpiresAt.Add(l.skew), Expired: !t.Before(cur.ExpiresAt)}, nil
		}
		rec := record{Name: l.rec.Name, Holder: l.rec.Holder, Token: rand.Text(), AcquiredAt: t, ExpiresAt: t.Add(l.ttl)}
		if ok, err := l.write(ctx, rec, tag); err != nil || ok {
			return nil, err
		}
	}
}

// write replaces the version tag by rec, or creates rec if tag is "", and
// reports false if the object was not as expected. l.mu is held or unshared.
func (l *Lease) write(ctx context.Context, rec record, tag string) (bool, error) {
	body, _ := json.Marshal(rec) // strings, ints and times: it cannot fail
	var err error
	if tag != "" {
		tag, err = l.st.Replace(ctx, l.key, body, tag)
	} else if err = l.st.Create(ctx, l.key, body); err == nil {
		// Our bytes are unique: if we read them back, the tag is ours.
		var got []byte
		if got, tag, err = l.st.GetTag(ctx, l.key); err == nil && string(got) != string(body) {
			err = store.ErrConflict
		}
	}
	switch {
	case errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("lease %s: %w", rec.Name, err)
	}
	l.rec, l.tag = rec, tag
	return true, nil
}

// read returns the current lease object and its tag.
func (l *Lease) read(ctx context.Context) (record, string, error) {
	b, tag, err := l.st.GetTag(ctx, l.key)
	var rec record
	if err == nil && (json.Unmarshal(b, &rec) != nil || rec.ExpiresAt.IsZero()) {
		err = fmt.Errorf("lease %s: %s in %s is not a lease object; remove it if no process holds the lease", l.rec.Name, l.key, l.st)
	}
	return rec, tag, err
}

// verdict judges the lease object read returned: nil if ours, ErrExpired if
// ours but expired, ErrLost (for good) if gone or another's. l.mu is held.
func (l *Lease) verdict(cur record, tag string, err error) error {
	why := "taken over by " + cur.Holder
	switch {
	case errors.Is(err, store.ErrNotExist):
		why = "the lease object is gone"
	case err != nil:
		return err
	case tag == l.tag && !l.now().Before(l.rec.ExpiresAt):
		return fmt.Errorf("lease %s: expired at %s: %w", l.rec.Name, stamp(l.rec.ExpiresAt), ErrExpired)
	case tag == l.tag:
		return nil
	}
	l.lost = fmt.Errorf("lease %s: %s: %w", l.rec.Name, why, ErrLost)
	return l.lost
}

// Renew extends the lease to ttl from now, by a compare-and-swap on the
// version this holder last wrote, so it returns ErrLost (wrapped) if anyone
// else changed or removed it. It saves an expired lease nobody took over.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	rec := l.rec
	rec.Seq++
	rec.ExpiresAt = l.now().UTC().Add(l.ttl)
	if ok, err := l.write(ctx, rec, l.tag); ok || err != nil {
		return err
	}
	return l.verdict(l.read(ctx))
}

// Check reads the lease object and returns nil if it is still ours and
// unexpired, else ErrExpired or ErrLost (wrapped). It fences nothing.
func (l *Lease) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	return l.verdict(l.read(ctx))
}

// Release deletes the lease object if it is still ours (a lost or released
// lease is no error), retrying store faults a few times until ctx ends; its
// error says how to free the lease, and Release may be called again.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return nil
	}
	var err error
	for attempt, pause := 1, 100*time.Millisecond; ; attempt, pause = attempt+1, pause*2 {
		err = l.st.DeleteIf(ctx, l.key, l.tag)
		if err == nil || errors.Is(err, store.ErrConflict) || attempt == 6 || l.sleep(ctx, pause) != nil {
			break
		}
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("lease %s: release: %w; the lease stays until it is released or expires: "+
			"to free it sooner, delete %s from %s, or wait until %s, when it can be taken over",
			l.rec.Name, err, l.key, l.st, stamp(l.rec.ExpiresAt.Add(l.skew)))
	}
	l.lost = fmt.Errorf("lease %s: released: %w", l.rec.Name, ErrLost)
	return nil
}

// KeepAlive is the group KeepAlive of one lease.
func (l *Lease) KeepAlive(ctx context.Context, interval time.Duration) (stop func() error) {
	return Group{l}.KeepAlive(ctx, interval)
}

// Group is a set of leases held together, in name order.
type Group []*Lease

// AcquireAll is Acquire of all names in sorted order (so that no two
// callers wait for each other in a cycle), waiting at most wait in all. On
// any failure it releases what it took.
func AcquireAll(ctx context.Context, st store.Store, names []string, holder string, ttl, wait time.Duration,
	now func() time.Time, opts ...Option) (Group, error) {
	if now == nil {
		now = time.Now
	}
	deadline := now().Add(wait)
	var g Group
	for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
		l, err := Acquire(ctx, st, n, holder, ttl, max(deadline.Sub(now()), 0), now, opts...)
		if err != nil {
			_ = g.Release(context.WithoutCancel(ctx))
			return nil, err
		}
		g = append(g, l)
	}
	return g, nil
}

// each calls f on every lease of the group and returns the errors joined.
func (g Group) each(f func(*Lease) error) error {
	errs := make([]error, len(g))
	for i, l := range g {
		errs[i] = f(l)
	}
	return errors.Join(errs...)
}

// Check checks every lease of the group, and returns the errors joined.
func (g Group) Check(ctx context.Context) error {
	return g.each(func(l *Lease) error { return l.Check(ctx) })
}

// Release releases every lease of the group, and returns the errors joined.
func (g Group) Release(ctx context.Context) error {
	return g.each(func(l *Lease) error { return l.Release(ctx) })
}

// KeepAlive renews every lease of the group every interval (a third of the
// shortest ttl if interval <= 0) until ctx is done, stop is called, or a
// round finds a lease lost; a store fault is retried next round. stop
// returns the ErrLost errors of that round, if any. Stop it before Release.
func (g Group) KeepAlive(ctx context.Context, interval time.Duration) (stop func() error) {
	if len(g) == 0 {
		return func() error { return nil }
	}
	if interval <= 0 {
		interval = slices.MinFunc(g, func(a, b *Lease) int { return cmp.Compare(a.ttl, b.ttl) }).ttl / 3
	}
	sleepCtx, cancel := context.WithCancel(ctx)
	result := make(chan error, 1)
	go func() {
		var lost error
		for lost == nil && g[0].sleep(sleepCtx, interval) == nil {
			for _, l := range g {
				if err := l.Renew(ctx); errors.Is(err, ErrLost) {
					lost = errors.Join(lost, err)
				}
			}
		}
		result <- lost
	}()
	return sync.OnceValue(func() error {
		cancel()
		return <-result
	})
}
