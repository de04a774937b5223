// Package lease keeps two writers off the same name — a (table, day), say
// "events/dt=2026-11-24" — across processes and hosts, with nothing but an
// object store (docs/design.md §Leases), so that the nightly catch-up and a
// manual backfill do not build one day twice. It saves work; it is not
// what keeps the tables right: a writer that lost its lease cannot publish
// over another, because every commit is fenced by the store (package
// publish, CommitAfter).
//
// A lease is the object _state/leases/<name>.json, holding JSON such as
//
//	{"name": "events/dt=2026-11-24",
//	 "holder": "run 01J… on host ip-10-0-0-7, pid 4242",
//	 "token": "9f…", "seq": 3,
//	 "acquired_at": "…", "renewed_at": "…", "expires_at": "…"}
//
// token is random per acquisition and seq counts renewals, so its bytes
// never repeat and its tag (store.Store.GetTag) names one version. Acquire
// creates the object (store.Create: put-if-absent), or replaces an expired
// one with a compare-and-swap on the tag it read (store.Replace, If-Match
// on S3): of any number of contenders exactly one wins. Renew is the same
// compare-and-swap on the holder's own tag, and Release a conditional
// delete (store.DeleteIf), so a holder whose lease was taken over finds it
// out at its next Renew or Check (ErrLost) and never touches its
// successor's lease. A lease is taken over once its expiry has passed by
// the clock-skew allowance (WithClockSkew), or at once if its holder is a
// dead process of this host (WithDeadHolder).
package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/wait"
)

// Prefix is the folder of lease objects in a store.
const Prefix = "_state/leases/"

// Defaults of the options.
const (
	DefaultPoll      = time.Second
	DefaultClockSkew = 5 * time.Second
)

// ErrLost is returned (wrapped) by Renew and Check once the lease is known
// to be no longer ours: taken over, deleted by hand, or released.
var ErrLost = errors.New("lease lost")

// ErrExpired is returned (wrapped) by Check when the lease is still ours in
// the store but its expiry has passed, so it may be taken over at any
// moment. Renew may still save it.
var ErrExpired = errors.New("lease expired")

// HeldError is returned by Acquire when another holder still has the lease
// when the wait is over.
type HeldError struct {
	Name       string    // the lease name
	Key        string    // the lease object, relative to the store
	Store      string    // the store, as store.Store.String names it
	Holder     string    // who holds it, e.g. "run X on host Y, pid Z"
	AcquiredAt time.Time // when the holder acquired it
	ExpiresAt  time.Time // its current expiry
	TakeoverAt time.Time // when others may take it over: ExpiresAt + clock skew
	// Expired means the lease is past its expiry, within the clock-skew
	// allowance.
	Expired bool
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

// DeadLocalProcess reports whether holder (as made by HolderID) is a
// process of this host that no longer exists. It says false whenever it
// cannot be sure: another host, an unparsable holder, or a process that
// exists (even if the pid was reused). Use it only with stores that one
// host's processes share (a local directory).
func DeadLocalProcess(holder string) bool {
	var run, host string
	var pid int
	if _, err := fmt.Sscanf(holder, "run %s on host %s pid %d", &run, &host, &pid); err != nil || pid <= 0 {
		return false
	}
	me, err := os.Hostname()
	if err != nil || strings.TrimSuffix(host, ",") != me {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// HolderID describes this process for the holder field: "run <runID> on
// host <hostname>, pid <pid>".
func HolderID(runID string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("run %s on host %s, pid %d", runID, host, os.Getpid())
}

// Key returns the key of the lease object of name.
func Key(name string) string { return Prefix + name + ".json" }

// checkName accepts slash-separated names of plain segments.
func checkName(name string) error {
	bad := name == "" || path.Clean(name) != name || strings.HasPrefix(name, "/") ||
		strings.HasPrefix(name, "../") || name == ".." || name == "." ||
		strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' })
	if bad {
		return fmt.Errorf("lease: invalid name %q", name)
	}
	return nil
}

// Option tunes Acquire, AcquireAll and the Lease they return.
type Option func(*config)

type config struct {
	now         func() time.Time
	sleep       func(context.Context, time.Duration) error
	poll        time.Duration
	skew        time.Duration
	dead        func(holder string) bool
	deadSet     bool // WithDeadHolder was given, even with nil
	skewSet     bool // WithClockSkew was given
	report      func(h *HeldError, waited time.Duration, givesUp time.Time)
	reportEvery time.Duration
}

// DefaultWaitReport is how often WithWaitLog logs by default while a wait
// lasts.
const DefaultWaitReport = 5 * time.Second

// WithWaitLog makes Acquire log a warning to log when it finds the lease
// held and is going to wait for it, and again every every (by its clock;
// DefaultWaitReport if every <= 0) while it waits, naming the holder and
// its expiry, so that no wait is silent. A wait of 0 logs nothing: its
// HeldError says it all. A nil log logs nothing.
func WithWaitLog(log *slog.Logger, every time.Duration) Option {
	if every <= 0 {
		every = DefaultWaitReport
	}
	return func(c *config) {
		c.reportEvery, c.report = every, nil
		if log == nil {
			return
		}
		c.report = func(h *HeldError, waited time.Duration, givesUp time.Time) {
			msg := "waiting for a lease another process holds"
			if h.Expired {
				msg = "waiting for an expired lease to be taken over"
			}
			log.Warn(msg, "lease", h.Name, "holder", h.Holder, "expires_at", stamp(h.ExpiresAt),
				"takeover_at", stamp(h.TakeoverAt), "waited", waited.Round(time.Second).String(),
				"gives_up_at", stamp(givesUp), "lease_object", h.Key, "store", h.Store)
		}
	}
}

// WithDeadHolder lets Acquire take a lease over, whatever its expiry says,
// when dead reports that its holder cannot be running any more; dead must
// never say true of a live holder. Without this option, Acquire on a local
// directory store (*store.Dir) uses DeadLocalProcess; WithDeadHolder(nil)
// turns that off. Other stores check no holder unless told to.
func WithDeadHolder(dead func(holder string) bool) Option {
	return func(c *config) { c.dead, c.deadSet = dead, true }
}

// WithPoll sets how long Acquire sleeps between tries while it waits
// (default DefaultPoll).
func WithPoll(d time.Duration) Option { return func(c *config) { c.poll = d } }

// WithSleep replaces how the package sleeps (while waiting, and between
// KeepAlive renewals). It must return ctx's error if ctx is done first.
func WithSleep(f func(ctx context.Context, d time.Duration) error) Option {
	return func(c *config) { c.sleep = f }
}

// WithClockSkew sets the allowance for clock differences between processes
// (default DefaultClockSkew, or a quarter of the ttl if that is shorter): a
// lease is taken over only once its expiry is this far in the past.
func WithClockSkew(d time.Duration) Option { return func(c *config) { c.skew, c.skewSet = d, true } }

func newConfig(now func() time.Time, opts []Option) config {
	c := config{now: now, poll: DefaultPoll, skew: DefaultClockSkew}
	if c.now == nil {
		c.now = time.Now
	}
	for _, o := range opts {
		o(&c)
	}
	if c.sleep == nil {
		c.sleep = wait.Sleep
	}
	if c.poll <= 0 {
		c.poll = DefaultPoll
	}
	c.skew = max(c.skew, 0)
	return c
}

// record is the content of a lease object.
type record struct {
	Name       string    `json:"name"`
	Holder     string    `json:"holder"`
	Token      string    `json:"token"`
	Seq        int       `json:"seq"`
	AcquiredAt time.Time `json:"acquired_at"`
	RenewedAt  time.Time `json:"renewed_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (r record) marshal() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic(err) // plain strings, ints and times
	}
	return append(b, '\n')
}

// Lease is a held lease. Its methods are safe for concurrent use.
type Lease struct {
	st     store.Store
	name   string
	key    string
	holder string
	ttl    time.Duration
	cfg    config

	mu       sync.Mutex
	rec      record
	tag      string // the tag of our version of the object
	pending  []byte // the bytes of a Replace that failed: they may have landed
	lost     error  // why the lease is no longer ours, once known
	released bool
}

// Name returns the lease name.
func (l *Lease) Name() string { return l.name }

// Key returns the lease object's key.
func (l *Lease) Key() string { return l.key }

// Holder returns the holder string given to Acquire.
func (l *Lease) Holder() string { return l.holder }

// ExpiresAt returns the expiry of the lease as last stored by this process.
func (l *Lease) ExpiresAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.ExpiresAt
}

// Lost reports whether the lease can no longer be relied on: it was
// released, a Renew, Check or Release found it taken over or gone, or its
// expiry has passed by this process's clock. It makes no store request.
func (l *Lease) Lost() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.released || l.lost != nil || !l.cfg.now().Before(l.rec.ExpiresAt)
}

// Acquire takes the lease called name in st for holder (see HolderID) for
// ttl. If another process holds it, Acquire tries again every poll interval
// (WithPoll) until wait has passed by now (nil means time.Now), and then
// returns a *HeldError naming the holder and its expiry; WithWaitLog (or
// WithWaitReport) says so while it waits. A wait of 0 tries once. Errors of
// the store are returned as they come; so is ctx's error, wrapped, if ctx
// ends the wait. The holder must Renew the lease (or run KeepAlive) before
// ttl runs out, and Release it when done.
func Acquire(ctx context.Context, st store.Store, name, holder string, ttl, wait time.Duration,
	now func() time.Time, opts ...Option) (*Lease, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("lease %s: ttl must be positive, not %v", name, ttl)
	}
	if holder == "" {
		return nil, fmt.Errorf("lease %s: empty holder", name)
	}
	l := &Lease{st: st, name: name, key: Key(name), holder: holder, ttl: ttl, cfg: newConfig(now, opts)}
	if _, local := st.(*store.Dir); local && !l.cfg.deadSet {
		l.cfg.dead = DeadLocalProcess
	}
	if !l.cfg.skewSet {
		l.cfg.skew = min(l.cfg.skew, ttl/4)
	}
	started := l.cfg.now()
	deadline := started.Add(max(wait, 0))
	var held *HeldError
	var reported time.Time // when the wait was last reported
	for quick := 0; ; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("lease %s: %w", name, err)
		}
		ok, h, err := l.try(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			return l, nil
		}
		if h == nil && quick < 10 {
			quick++ // the lease changed under us: try again at once
			continue
		}
		quick = 0
		if h != nil {
			held = h
		}
		t := l.cfg.now()
		if !t.Before(deadline) {
			if held == nil {
				return nil, fmt.Errorf("lease %s in %s: still busy after waiting %v", name, st, wait)
			}
			return nil, held
		}
		if l.cfg.report != nil && held != nil && (reported.IsZero() || t.Sub(reported) >= l.cfg.reportEvery) {
			reported = t
			l.cfg.report(held, t.Sub(started), deadline)
		}
		if err := l.cfg.sleep(ctx, min(l.cfg.poll, deadline.Sub(t))); err != nil {
			if held != nil {
				return nil, fmt.Errorf("lease %s: %w while waiting: %v", name, err, held)
			}
			return nil, fmt.Errorf("lease %s: %w while waiting", name, err)
		}
	}
}

// newRecord returns a fresh lease record for l, acquired at t.
func (l *Lease) newRecord(t time.Time) record {
	t = t.UTC()
	var tok [12]byte
	if _, err := rand.Read(tok[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return record{Name: l.name, Holder: l.holder, Token: hex.EncodeToString(tok[:]),
		AcquiredAt: t, RenewedAt: t, ExpiresAt: t.Add(l.ttl)}
}

// try makes one attempt: it creates the lease object, or replaces an
// expired one (or a dead holder's) by compare-and-swap. It returns ok if
// the lease is now ours, a HeldError if someone else has it, or neither if
// it changed under us.
func (l *Lease) try(ctx context.Context) (ok bool, held *HeldError, err error) {
	rec := l.newRecord(l.cfg.now())
	body := rec.marshal()
	err = l.st.Create(ctx, l.key, body)
	if err == nil {
		// Our bytes are unique: the tag of what we read back is ours.
		got, tag, err := l.st.GetTag(ctx, l.key)
		if err != nil || !bytes.Equal(got, body) {
			return false, nil, err
		}
		l.rec, l.tag = rec, tag
		l.sweepTemp(ctx)
		return true, nil, nil
	}
	if !errors.Is(err, store.ErrExists) {
		return false, nil, fmt.Errorf("lease %s: %w", l.name, err)
	}
	cur, tag, err := l.read(ctx)
	if errors.Is(err, store.ErrNotExist) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	expired := l.cfg.now().After(cur.ExpiresAt.Add(l.cfg.skew))
	if !expired && (l.cfg.dead == nil || !l.cfg.dead(cur.Holder)) {
		return false, l.heldError(cur), nil
	}
	rec = l.newRecord(l.cfg.now())
	newTag, err := l.st.Replace(ctx, l.key, rec.marshal(), tag)
	if errors.Is(err, store.ErrConflict) {
		return false, nil, nil // another contender, or the holder renewing, came first
	}
	if err != nil {
		return false, nil, fmt.Errorf("lease %s: take over: %w", l.name, err)
	}
	l.rec, l.tag = rec, newTag
	return true, nil, nil
}

// read returns the current lease object and its tag.
func (l *Lease) read(ctx context.Context) (record, string, error) {
	b, tag, err := l.st.GetTag(ctx, l.key)
	if err != nil {
		return record{}, "", err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil || rec.ExpiresAt.IsZero() {
		return record{}, "", fmt.Errorf("lease %s: %s in %s is not a lease object (%v); remove it if no process holds the lease",
			l.name, l.key, l.st, err)
	}
	return rec, tag, nil
}

func (l *Lease) heldError(cur record) *HeldError {
	return &HeldError{
		Name: l.name, Key: l.key, Store: l.st.String(), Holder: cur.Holder,
		AcquiredAt: cur.AcquiredAt, ExpiresAt: cur.ExpiresAt,
		TakeoverAt: cur.ExpiresAt.Add(l.cfg.skew), Expired: !l.cfg.now().Before(cur.ExpiresAt),
	}
}

// staleTemp is how old a temporary file of an in-flight write in a lease
// folder must be before sweepTemp deletes it as a killed process's.
const staleTemp = 10 * time.Minute

// sweepTemp deletes the temporary files that killed processes left in the
// folder of our lease object and below (store.RemoveStaleTemp). Best effort.
func (l *Lease) sweepTemp(ctx context.Context) {
	_, _ = store.RemoveStaleTemp(ctx, l.st, path.Dir(l.key)+"/", time.Now().Add(-staleTemp))
}

func (l *Lease) lose(reason string) error {
	if l.lost == nil {
		l.lost = fmt.Errorf("lease %s: %s: %w", l.name, reason, ErrLost)
	}
	return l.lost
}

// conflict says why a compare-and-swap on our tag failed: if the object
// holds the bytes of our earlier write that failed but landed, it adopts
// their tag and reports ok (try again); otherwise the lease is lost. l.mu
// is held.
func (l *Lease) conflict(ctx context.Context) (retry bool, err error) {
	got, tag, err := l.st.GetTag(ctx, l.key)
	switch {
	case errors.Is(err, store.ErrNotExist):
		return false, l.lose("the lease object is gone")
	case err != nil:
		return false, err
	case l.pending != nil && bytes.Equal(got, l.pending):
		l.tag, l.pending = tag, nil
		return true, nil
	}
	var rec record
	if json.Unmarshal(got, &rec) != nil || rec.Holder == "" {
		return false, l.lose("taken over")
	}
	return false, l.lose("taken over by " + rec.Holder)
}

// Renew extends the lease to ttl from now, with a compare-and-swap on the
// version this holder last wrote: if anyone else changed or removed the
// object, it returns ErrLost (wrapped) and the lease stays lost. After the
// expiry it still saves a lease nobody took over. A failed store request
// leaves the lease as it was or renewed; the next call sorts out which.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("lease %s: renew after release: %w", l.name, ErrLost)
	}
	if l.lost != nil {
		return l.lost
	}
	t := l.cfg.now().UTC()
	rec := l.rec
	rec.Seq++
	rec.RenewedAt, rec.ExpiresAt = t, t.Add(l.ttl)
	body := rec.marshal()
	for attempt := 0; ; attempt++ {
		tag, err := l.st.Replace(ctx, l.key, body, l.tag)
		if err == nil {
			l.rec, l.tag, l.pending = rec, tag, nil
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			l.pending = body
			return fmt.Errorf("lease %s: renew: %w", l.name, err)
		}
		if retry, err := l.conflict(ctx); !retry || attempt > 0 {
			return err
		}
	}
}

// Check reports whether the lease is still ours and unexpired, by reading
// the lease object: nil if so, ErrLost (wrapped) if it was taken over or
// removed, ErrExpired (wrapped) if it is ours but past its expiry. It is a
// snapshot; the commit it may precede is fenced by the store, not by it.
func (l *Lease) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("lease %s: released: %w", l.name, ErrLost)
	}
	if l.lost != nil {
		return l.lost
	}
	_, tag, err := l.st.GetTag(ctx, l.key)
	if errors.Is(err, store.ErrNotExist) {
		return l.lose("the lease object is gone")
	}
	if err != nil {
		return fmt.Errorf("lease %s: check: %w", l.name, err)
	}
	if tag != l.tag {
		if _, err := l.conflict(ctx); err != nil {
			return err
		}
	}
	if !l.cfg.now().Before(l.rec.ExpiresAt) {
		return fmt.Errorf("lease %s: expired at %s: %w", l.name, stamp(l.rec.ExpiresAt), ErrExpired)
	}
	return nil
}

// Release gives the lease up: it deletes the lease object if it is still
// our version (store.DeleteIf), and leaves it alone if it is not (taken
// over by someone else, whose lease must survive). Releasing twice, or a
// lost lease, is not an error. Each store request is tried up to
// releaseAttempts times, with a doubling pause (slept as WithSleep says);
// ctx ending stops the retries. An error means the object may still be
// there: its message names it and when it can be taken over. Release may be
// called again after an error.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released || l.lost != nil {
		l.released = true
		return nil
	}
	for attempt := 0; ; attempt++ {
		err := l.retry(ctx, func() error { return l.st.DeleteIf(ctx, l.key, l.tag) })
		if errors.Is(err, store.ErrConflict) {
			var retry bool
			if retry, err = l.conflict(ctx); retry && attempt == 0 {
				continue
			}
			if errors.Is(err, ErrLost) {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("lease %s: release: %w; the lease stays until it is released or expires: "+
				"to free it sooner, delete %s from %s, or wait until %s, when it can be taken over",
				l.name, err, l.key, l.st, stamp(l.rec.ExpiresAt.Add(l.cfg.skew)))
		}
		l.released = true
		return nil
	}
}

// Retries of one store request in Release.
const (
	releaseAttempts = 6
	releaseBackoff  = 100 * time.Millisecond
)

// retry runs op, one store request, until it succeeds, fails with an
// answer (ErrNotExist, ErrExists, ErrConflict) rather than a fault, or has
// been tried releaseAttempts times, sleeping between tries from
// releaseBackoff, doubling; it gives up early if ctx ends.
func (l *Lease) retry(ctx context.Context, op func() error) error {
	wait := releaseBackoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || errors.Is(err, store.ErrNotExist) || errors.Is(err, store.ErrExists) ||
			errors.Is(err, store.ErrConflict) || attempt == releaseAttempts {
			return err
		}
		if l.cfg.sleep(ctx, wait) != nil {
			return err
		}
		wait *= 2
	}
}

// KeepAlive is the group KeepAlive of one lease.
func (l *Lease) KeepAlive(ctx context.Context, interval time.Duration) (stop func() error) {
	return Group{l}.KeepAlive(ctx, interval)
}

// Group is a set of leases held together, in name order.
type Group []*Lease

// AcquireAll takes the leases of all names (duplicates count once), in
// sorted order, so that two processes that want overlapping sets never wait
// for each other in a cycle. wait bounds the whole call, not each lease. On
// any failure it releases what it took and returns the error (a *HeldError
// if one lease stayed held). The arguments are as for Acquire.
func AcquireAll(ctx context.Context, st store.Store, names []string, holder string, ttl, wait time.Duration,
	now func() time.Time, opts ...Option) (Group, error) {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	for _, n := range names {
		if err := checkName(n); err != nil {
			return nil, err
		}
	}
	cfg := newConfig(now, opts)
	deadline := cfg.now().Add(max(wait, 0))
	var g Group
	for _, n := range names {
		l, err := Acquire(ctx, st, n, holder, ttl, max(deadline.Sub(cfg.now()), 0), now, opts...)
		if err != nil {
			_ = g.Release(context.WithoutCancel(ctx))
			return nil, err
		}
		g = append(g, l)
	}
	return g, nil
}

// each calls f on every lease of the group, in order (reverse if back),
// and returns the errors joined.
func (g Group) each(back bool, f func(*Lease) error) error {
	var errs []error
	for i := range g {
		if back {
			i = len(g) - 1 - i
		}
		errs = append(errs, f(g[i]))
	}
	return errors.Join(errs...)
}

// Renew renews every lease of the group, and returns the errors joined.
func (g Group) Renew(ctx context.Context) error {
	return g.each(false, func(l *Lease) error { return l.Renew(ctx) })
}

// Check checks every lease of the group, and returns the errors joined.
func (g Group) Check(ctx context.Context) error {
	return g.each(false, func(l *Lease) error { return l.Check(ctx) })
}

// Release releases every lease of the group, in reverse order, and returns
// the errors joined.
func (g Group) Release(ctx context.Context) error {
	return g.each(true, func(l *Lease) error { return l.Release(ctx) })
}

// KeepAlive renews every lease of the group every interval (a third of the
// shortest ttl if interval <= 0) in one goroutine, sleeping as WithSleep
// says, until ctx is done, stop is called, or a round of renewals finds a
// lease lost. A Renew that fails for another reason (a store fault) is
// tried again next round. stop ends the goroutine (letting a round in
// progress finish), waits for it, and returns the ErrLost errors (wrapped,
// joined) of the round that ended it, or nil if stop or ctx ended it.
// Meanwhile Lost reports a lost or expired lease. Stop it before Release.
func (g Group) KeepAlive(ctx context.Context, interval time.Duration) (stop func() error) {
	if len(g) == 0 {
		return func() error { return nil }
	}
	if interval <= 0 {
		ttl := g[0].ttl
		for _, l := range g[1:] {
			ttl = min(ttl, l.ttl)
		}
		interval = ttl / 3
	}
	sleepCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var result error
	go func() {
		defer close(done)
		for g[0].cfg.sleep(sleepCtx, interval) == nil {
			var lost []error
			for _, l := range g {
				if err := l.Renew(ctx); errors.Is(err, ErrLost) {
					lost = append(lost, err)
				}
			}
			if len(lost) > 0 {
				result = errors.Join(lost...)
				return
			}
		}
	}()
	return func() error {
		cancel()
		<-done
		return result
	}
}

// Lost reports whether any lease of the group is Lost.
func (g Group) Lost() bool {
	return slices.ContainsFunc(g, (*Lease).Lost)
}
