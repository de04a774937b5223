// Package lease gives one writer at a time per name — per (table, day), say
// "curated/events/dt=2026-11-24" — across processes and hosts, with nothing
// but an object store (docs/design.md §Leases): the nightly catch-up and a manual
// backfill cannot interleave on one partition.
//
// # The lease object
//
// A lease is the object _state/leases/<name>.json, holding JSON such as
//
//	{"name": "curated/events/dt=2026-11-24",
//	 "holder": "run 01J… on host ip-10-0-0-7, pid 4242",
//	 "token": "9f…", "seq": 3,
//	 "acquired_at": "…", "renewed_at": "…", "expires_at": "…"}
//
// token is random per acquisition and seq counts renewals, so the bytes of a
// lease object never repeat: a *version* of the lease is its exact bytes.
// A process holds the lease while the object's bytes are the ones it wrote.
//
// # Protocol
//
// Acquire is store.Create of the lease object (a conditional create: O_EXCL
// link(2) locally, If-None-Match: * on S3), so of any number of contenders
// for a free lease exactly one wins. Only the holder changes its lease while
// it is unexpired: Renew replaces it (Put) with a later expiry, Release
// deletes it.
//
// A lease whose expiry has passed by more than the clock-skew allowance
// (WithClockSkew) may be taken over. "Read it, delete it, create mine" is
// racy: two contenders that both read the expired version V could both
// delete, and the second Delete would remove the first one's fresh lease. So
// every change to an expired version V — a takeover by a contender, or a late
// Renew or Release by V's own holder — first wins a *claim* on V: the object
//
//	_state/leases/<name>.takeover.<V's expires_at unix>-<hash of V's bytes>.<gen>
//
// made with store.Create. Then, holding the claim, it reads the lease again
// and acts only if the bytes are still V's: a takeover deletes V and Creates
// its own lease; the holder Puts its renewal or deletes. Finally it deletes
// the claim markers of V.
//
// # Why a takeover is safe
//
// Invariant: a version V of the lease is changed (replaced or deleted) only
// by (a) V's holder before V.expires_at by its own clock, or (b) the one
// process holding the live claim on V, after V.expires_at + skew by its
// clock. Given the timing assumption below, (a) and (b) never overlap, and
// (b) has one actor at a time because the claim is a conditional Create.
// Therefore, between the claimant's re-read (still V) and its Delete, nobody
// else can replace or delete V, and a Create cannot overwrite it: the Delete
// removes exactly V, never a successor. After V is gone its bytes never come
// back (token, seq), so a contender that read V long ago and wins a claim on
// V later sees other bytes on its re-read and backs off; that is also why the
// claim markers of a version that is no longer current may be deleted at any
// time. The new lease is a plain conditional Create, so of the claimant and
// any fresh acquirer racing after the Delete, exactly one wins.
//
// A claim itself expires (WithTakeoverTTL), so a claimant that crashes does
// not wedge the lease: once claim <gen> is past its expiry + skew, the next
// contender creates claim <gen+1>. A claimant acts only before its claim
// expires, by the same rule as a holder.
//
// # Limits
//
//   - Timing: safety assumes that clocks of the processes differ by less than
//     the skew allowance, and that a holder's Put or Delete issued before its
//     expiry takes effect before expiry + skew (likewise a claimant's within
//     its claim). A process paused (GC, laptop sleep, SIGSTOP) between its
//     check and its write, or a store write retried long after it was
//     issued, breaks that. Nothing fences writes made under a lease that was
//     lost: keep the work done between Renews well inside the ttl, call Renew
//     (or KeepAlive) well before expiry, and call Check right before a
//     commit point such as publishing a manifest.
//   - Deletes are not conditional: if a store client retries a Delete whose
//     first attempt already landed, and a new holder Created the lease in
//     between, the retry removes the new holder's lease. The new holder sees
//     it at its next Renew or Check (ErrLost).
//   - Renew is Get-compare-Put, not an atomic compare-and-swap: it is safe only
//     under the timing assumption.
//   - A holder that dies keeps the lease until it expires (plus skew); the
//     HeldError message says which object an operator may delete sooner.
//     On a local directory store a holder that is a dead process of this
//     host is taken over at once (see WithDeadHolder).
package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"regexp"
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

// Defaults of the options.
const (
	DefaultPoll        = time.Second
	DefaultClockSkew   = 5 * time.Second
	DefaultTakeoverTTL = time.Minute
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
	// Expired means the lease is past its expiry: it is within the
	// clock-skew allowance, or another contender is taking it over.
	Expired bool
}

func (e *HeldError) Error() string {
	if e.Expired {
		return fmt.Sprintf("lease %s held by %s expired at %s; it can be taken over from %s "+
			"(another process may be taking it over now); retry", e.Name, e.Holder, stamp(e.ExpiresAt), stamp(e.TakeoverAt))
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

// claimPrefix starts the keys of the takeover claims on name's lease.
func claimPrefix(name string) string { return Prefix + name + ".takeover." }

// claimTail matches what follows claimPrefix in a claim key.
var claimTail = regexp.MustCompile(`^(-?[0-9]+-[0-9a-f]{16})\.([0-9]+)$`)

// checkName accepts slash-separated names of plain segments. ".takeover" is
// reserved for claim objects, so that no lease name's objects can be
// mistaken for another's claims.
func checkName(name string) error {
	bad := name == "" || path.Clean(name) != name || strings.HasPrefix(name, "/") ||
		strings.HasPrefix(name, "../") || name == ".." || name == "." ||
		strings.Contains(name, ".takeover") ||
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
	takeoverTTL time.Duration
	dead        func(holder string) bool
	deadSet     bool // WithDeadHolder was given, even with nil
	report      func(Wait)
	reportEvery time.Duration
}

// Wait is a lease wait in progress, as WithWaitReport reports it.
type Wait struct {
	Held    *HeldError    // the lease, who holds it and until when
	Waited  time.Duration // how long this Acquire has waited so far
	GivesUp time.Time     // when it stops waiting, by Acquire's clock
}

// DefaultWaitReport is how often WithWaitLog logs by default while a wait
// lasts.
const DefaultWaitReport = 5 * time.Second

// WithWaitReport makes Acquire call report when it finds the lease held by
// another process and is going to wait for it, and then again whenever
// every has passed (by Acquire's clock) and it is still waiting, so that
// no wait is silent. Each report names the holder and its expiry as last
// read. A wait of 0 (one try) reports nothing: its HeldError says it all.
// report runs on Acquire's goroutine, between tries.
func WithWaitReport(every time.Duration, report func(Wait)) Option {
	return func(c *config) { c.report, c.reportEvery = report, every }
}

// WithWaitLog is WithWaitReport logging each report to log as a warning
// (so that a text log that shows only warnings shows it too), every
// DefaultWaitReport if every <= 0. A nil log reports nothing.
func WithWaitLog(log *slog.Logger, every time.Duration) Option {
	if log == nil {
		return WithWaitReport(0, nil)
	}
	if every <= 0 {
		every = DefaultWaitReport
	}
	return WithWaitReport(every, func(w Wait) {
		h := w.Held
		msg := "waiting for a lease another process holds"
		if h.Expired {
			msg = "waiting for an expired lease to be taken over"
		}
		log.Warn(msg, "lease", h.Name, "holder", h.Holder, "expires_at", stamp(h.ExpiresAt),
			"takeover_at", stamp(h.TakeoverAt), "waited", w.Waited.Round(time.Second).String(),
			"gives_up_at", stamp(w.GivesUp), "lease_object", h.Key, "store", h.Store)
	})
}

// WithDeadHolder lets Acquire treat a lease as expired, whatever its expiry
// says, when dead reports that its holder cannot be running any more (for
// example a process of this host that no longer exists). The takeover goes
// through the same claim as for an expired lease, so racing acquirers are
// still safe; dead must never say true of a live holder.
//
// Without this option, Acquire on a local directory store (*store.Dir) uses
// DeadLocalProcess, so that a process killed on this host never blocks the
// next one for the rest of its lease; WithDeadHolder(nil) turns that off.
// Other stores check no holder unless told to.
func WithDeadHolder(dead func(holder string) bool) Option {
	return func(c *config) { c.dead, c.deadSet = dead, true }
}

// WithPoll sets how long Acquire sleeps between tries while it waits
// (default DefaultPoll).
func WithPoll(d time.Duration) Option { return func(c *config) { c.poll = d } }

// WithSleep replaces how the package sleeps (while waiting, and between
// KeepAlive renewals). It must return ctx's error if ctx is done first.
// Tests pass one that advances a fake clock.
func WithSleep(f func(ctx context.Context, d time.Duration) error) Option {
	return func(c *config) { c.sleep = f }
}

// WithClockSkew sets the allowance for clock differences between processes
// and for the delay of a write in flight (default DefaultClockSkew): a lease
// is taken over only once its expiry is this far in the past.
func WithClockSkew(d time.Duration) Option { return func(c *config) { c.skew = d } }

// WithTakeoverTTL sets how long a takeover claim is good for (default
// DefaultTakeoverTTL): if its maker crashes, others wait this long (plus
// the skew) before claiming again.
func WithTakeoverTTL(d time.Duration) Option { return func(c *config) { c.takeoverTTL = d } }

func newConfig(now func() time.Time, opts []Option) config {
	c := config{now: now, poll: DefaultPoll, skew: DefaultClockSkew, takeoverTTL: DefaultTakeoverTTL}
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
	if c.skew < 0 {
		c.skew = 0
	}
	if c.takeoverTTL <= 0 {
		c.takeoverTTL = DefaultTakeoverTTL
	}
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

// claimRecord is the content of a takeover claim.
type claimRecord struct {
	Lease     string    `json:"lease"`   // the lease object's key
	Version   string    `json:"version"` // the version claimed
	Holder    string    `json:"holder"`  // who claims it
	Token     string    `json:"token"`   // random, so that a claimant knows its own claim
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func marshal(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // plain structs of strings, ints and times
	}
	return append(b, '\n')
}

// version names the lease version whose bytes are body.
func version(rec record, body []byte) string {
	sum := sha256.Sum256(body)
	return fmt.Sprintf("%d-%s", rec.ExpiresAt.Unix(), hex.EncodeToString(sum[:8]))
}

// Lease is a held lease. Its methods are safe for concurrent use.
type Lease struct {
	st     store.Store
	name   string
	key    string
	holder string
	ttl    time.Duration
	cfg    config

	mu         sync.Mutex
	rec        record
	body       []byte // the bytes we stored: the lease is ours while the object has them
	pendingRec record
	pending    []byte // bytes of a Put that failed: they may have landed
	lost       error  // why the lease is no longer ours, once known
	released   bool
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

// Lost reports whether the lease can no longer be relied on: it was released,
// a Renew, Check or Release found it taken over or gone, or its expiry has
// passed by this process's clock (it may be taken over at any moment; Renew
// may still save it). Lost makes no store request.
func (l *Lease) Lost() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.released || l.lost != nil || !l.cfg.now().Before(l.rec.ExpiresAt)
}

// Acquire takes the lease called name in st for holder (see HolderID) for
// ttl. If another process holds it, Acquire tries again every poll interval
// (WithPoll) until wait has passed by now (nil means time.Now), and then
// returns a *HeldError naming the holder and its expiry; WithWaitLog (or
// WithWaitReport) says so while it waits. A wait of 0 tries once. A lease whose expiry has passed by more than the clock skew is taken
// over (see the package comment). Errors of the store are returned as they
// come; so is ctx's error, wrapped, if ctx ends the wait.
//
// The holder must Renew the lease (or run KeepAlive) before ttl runs out,
// and Release it when done. Names are slash-separated, like
// "curated/events/dt=2026-11-24", and may not contain ".takeover".
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
			// The lease changed under us (released, or a takeover
			// finished): try again at once.
			quick++
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
			l.cfg.report(Wait{Held: held, Waited: t.Sub(started), GivesUp: deadline})
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
func (l *Lease) newRecord(t time.Time) (record, []byte) {
	t = t.UTC()
	rec := record{Name: l.name, Holder: l.holder, Token: token(),
		AcquiredAt: t, RenewedAt: t, ExpiresAt: t.Add(l.ttl)}
	return rec, marshal(rec)
}

// token returns a random hex string.
func token() string {
	var tok [12]byte
	if _, err := rand.Read(tok[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(tok[:])
}

func (l *Lease) adopt(rec record, body []byte) {
	l.rec, l.body = rec, body
	l.pending, l.pendingRec = nil, record{}
}

// try makes one attempt. It returns ok if the lease is now ours, a
// HeldError if someone else has it, or neither if it changed under us.
func (l *Lease) try(ctx context.Context) (ok bool, held *HeldError, err error) {
	rec, body := l.newRecord(l.cfg.now())
	err = l.create(ctx, l.key, body)
	if err == nil {
		l.adopt(rec, body)
		l.sweep(ctx)
		return true, nil, nil
	}
	if !errors.Is(err, store.ErrExists) {
		return false, nil, fmt.Errorf("lease %s: %w", l.name, err)
	}
	cur, curBody, err := l.read(ctx)
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
	// Expired, or its holder is dead: take it over, under a claim on this
	// version.
	c, busy, err := l.claim(ctx, cur, curBody)
	if err != nil {
		return false, nil, err
	}
	if c == nil {
		if busy {
			return false, l.heldError(cur), nil
		}
		return false, nil, nil
	}
	done, err := c.change(ctx, func() error { return l.st.Delete(ctx, l.key) })
	if err != nil {
		return false, nil, fmt.Errorf("lease %s: take over: %w", l.name, err)
	}
	if !done {
		return false, nil, nil
	}
	// The expired version is gone for good. Whoever Creates next holds the
	// lease: us, or a fresh acquirer that came in between.
	rec, body = l.newRecord(l.cfg.now())
	err = l.create(ctx, l.key, body)
	c.clear(ctx)
	switch {
	case err == nil:
		l.adopt(rec, body)
		l.sweep(ctx)
		return true, nil, nil
	case errors.Is(err, store.ErrExists):
		return false, nil, nil
	}
	return false, nil, fmt.Errorf("lease %s: %w", l.name, err)
}

// read returns the current lease object.
func (l *Lease) read(ctx context.Context) (record, []byte, error) {
	b, err := l.st.Get(ctx, l.key)
	if err != nil {
		return record{}, nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil || rec.ExpiresAt.IsZero() {
		return record{}, nil, fmt.Errorf("lease %s: %s in %s is not a lease object (%v); remove it if no process holds the lease",
			l.name, l.key, l.st, err)
	}
	return rec, b, nil
}

func (l *Lease) heldError(cur record) *HeldError {
	return &HeldError{
		Name: l.name, Key: l.key, Store: l.st.String(), Holder: cur.Holder,
		AcquiredAt: cur.AcquiredAt, ExpiresAt: cur.ExpiresAt,
		TakeoverAt: cur.ExpiresAt.Add(l.cfg.skew), Expired: !l.cfg.now().Before(cur.ExpiresAt),
	}
}

// create is store.Create, retried when the local directory store fails it
// transiently: Dir.Delete removes folders it leaves empty, and a Create or
// Put racing it in the same folder can find its folder gone (ENOENT).
func (l *Lease) create(ctx context.Context, key string, b []byte) error {
	return retryENOENT(func() error { return l.st.Create(ctx, key, b) })
}

// put is store.Put, retried as create is.
func (l *Lease) put(ctx context.Context, key string, b []byte) error {
	return retryENOENT(func() error { return l.st.Put(ctx, key, b) })
}

func retryENOENT(f func() error) error {
	for i := 0; ; i++ {
		err := f()
		if err == nil || i == 4 || !errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrExists) {
			return err
		}
	}
}

// claim is a won takeover claim on one version of the lease.
type claim struct {
	l       *Lease
	ver     string
	curBody []byte    // the bytes of the version claimed
	gens    int       // claims 1..gens on ver may exist; gens is ours
	until   time.Time // act only before this
}

// claim tries to win the claim on the lease version cur (bytes curBody). It
// returns the claim; or busy if another live claim on it exists; or neither
// if the version is no longer the lease (a claim on it finished).
func (l *Lease) claim(ctx context.Context, cur record, curBody []byte) (c *claim, busy bool, err error) {
	ver := version(cur, curBody)
	for gen := 1; gen <= 1000; gen++ {
		key := claimPrefix(l.name) + ver + "." + strconv.Itoa(gen)
		t := l.cfg.now().UTC()
		m := claimRecord{Lease: l.key, Version: ver, Holder: l.holder, Token: token(), CreatedAt: t, ExpiresAt: t.Add(l.cfg.takeoverTTL)}
		mine := marshal(m)
		won := &claim{l: l, ver: ver, curBody: curBody, gens: gen, until: m.ExpiresAt}
		// A failed Create may have landed: the retry then finds our own
		// claim (its token says so).
		err := l.retry(ctx, func() error { return l.create(ctx, key, mine) })
		if err == nil {
			return won, false, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return nil, false, fmt.Errorf("lease %s: claim: %w", l.name, err)
		}
		var b []byte
		err = l.retry(ctx, func() (err error) {
			b, err = l.st.Get(ctx, key)
			return err
		})
		if err == nil && bytes.Equal(b, mine) {
			return won, false, nil
		}
		if errors.Is(err, store.ErrNotExist) {
			// Claims are deleted only once their version is gone.
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("lease %s: claim: %w", l.name, err)
		}
		var other claimRecord
		if json.Unmarshal(b, &other) == nil && !l.cfg.now().After(other.ExpiresAt.Add(l.cfg.skew)) {
			return nil, true, nil
		}
		// That claim's maker took too long (or crashed): claim again, one
		// generation up. (An unreadable claim was not made by this package;
		// it is passed over the same way.)
	}
	return nil, false, fmt.Errorf("lease %s: too many stale takeover claims under %s", l.name, claimPrefix(l.name))
}

// change runs f, which replaces or deletes the lease object, if the lease is
// still the claimed version and the claim has not expired. It reports
// whether f ran and succeeded. If the version is gone, the claims on it are
// cleared.
func (c *claim) change(ctx context.Context, f func() error) (bool, error) {
	l := c.l
	var got []byte
	err := l.retry(ctx, func() (err error) {
		got, err = l.st.Get(ctx, l.key)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotExist) || err == nil && !bytes.Equal(got, c.curBody):
		c.clear(ctx)
		return false, nil
	case err != nil:
		return false, err // our claim stays and expires
	case !l.cfg.now().Before(c.until):
		return false, nil // too slow: the claim stays and expires
	}
	if err := f(); err != nil {
		return false, err
	}
	return true, nil
}

// clear deletes the claims on the claimed version, which must no longer be
// the lease. Best effort: a leftover claim is only clutter, removed by the
// next holder's sweep.
func (c *claim) clear(ctx context.Context) {
	for gen := c.gens; gen >= 1; gen-- {
		_ = c.l.st.Delete(ctx, claimPrefix(c.l.name)+c.ver+"."+strconv.Itoa(gen))
	}
}

// sweep deletes the claims on versions of the lease other than ours. Called
// right after we acquired it, while it is ours and unexpired: every other
// version is then gone for good, and so are the claims' purpose. Best
// effort.
func (l *Lease) sweep(ctx context.Context) {
	objs, err := l.st.List(ctx, claimPrefix(l.name))
	if err != nil {
		return
	}
	mine := version(l.rec, l.body)
	for _, o := range objs {
		m := claimTail.FindStringSubmatch(strings.TrimPrefix(o.Key, claimPrefix(l.name)))
		if m == nil || m[1] == mine {
			continue
		}
		_ = l.st.Delete(ctx, o.Key)
	}
	l.sweepTemp(ctx)
}

// staleTemp is how old (by its modification time) a temporary file of an
// in-flight write in a lease folder must be before sweepTemp deletes it as
// left behind by a killed process. Lease objects are a few hundred bytes:
// their writes take milliseconds.
const staleTemp = 10 * time.Minute

// sweepTemp deletes the temporary files that killed processes left in the
// folder of our lease object and below (store.RemoveStaleTemp): those older
// than staleTemp by the real clock, the one file times are written with.
// Best effort.
func (l *Lease) sweepTemp(ctx context.Context) {
	_, _ = store.RemoveStaleTemp(ctx, l.st, path.Dir(l.key)+"/", time.Now().Add(-staleTemp))
}

// ours reports whether b, read from the store, is our lease, adopting the
// bytes of a Put that failed but landed.
func (l *Lease) ours(b []byte) bool {
	if bytes.Equal(b, l.body) {
		return true
	}
	if l.pending != nil && bytes.Equal(b, l.pending) {
		l.adopt(l.pendingRec, l.pending)
		return true
	}
	return false
}

func (l *Lease) lose(reason string) error {
	if l.lost == nil {
		l.lost = fmt.Errorf("lease %s: %s: %w", l.name, reason, ErrLost)
	}
	return l.lost
}

// whoHas describes what the lease object now holds, for ErrLost messages.
func whoHas(b []byte) string {
	var rec record
	if json.Unmarshal(b, &rec) != nil || rec.Holder == "" {
		return "taken over"
	}
	return "taken over by " + rec.Holder
}

// Renew extends the lease to ttl from now. It reads the lease object and, if
// it is still ours, replaces it with one that has the new expiry; if it is
// not, it returns ErrLost (wrapped) and the lease stays lost.
//
// Before the expiry, only the holder changes its lease, so the read-then-Put
// is safe under the package's timing assumption — but it is not an atomic
// compare-and-swap: a Put that takes effect after expiry + skew can overwrite
// a successor's lease (which the successor then finds at its next Renew or
// Check). Renew well before expiry, e.g. every ttl/3. After the expiry,
// Renew goes through a takeover claim like any contender, so it either saves
// a lease nobody took over, or finds it lost. A failed Put leaves the lease
// as it was or renewed; a later call sorts out which.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.stillOurs(ctx, "renew after release", "renew"); err != nil {
		return err
	}
	t := l.cfg.now().UTC()
	rec := l.rec
	rec.Seq++
	rec.RenewedAt, rec.ExpiresAt = t, t.Add(l.ttl)
	body := marshal(rec)
	put := func() error {
		if err := l.put(ctx, l.key, body); err != nil {
			l.pendingRec, l.pending = rec, body
			return fmt.Errorf("lease %s: renew: %w", l.name, err)
		}
		l.adopt(rec, body)
		return nil
	}
	if t.Before(l.rec.ExpiresAt) {
		return put()
	}
	c, busy, err := l.claim(ctx, l.rec, l.body)
	if err != nil {
		return err
	}
	if c == nil {
		if busy {
			return l.lose("expired and being taken over")
		}
		return l.lose("expired and taken over")
	}
	done, err := c.change(ctx, put)
	if err != nil {
		return err
	}
	if !done {
		return l.lose("expired and taken over")
	}
	c.clear(ctx)
	return nil
}

// stillOurs reads the lease object and returns nil if it still holds the
// bytes this holder wrote, else why not (marking the lease lost). released
// and op name the call in errors. l.mu is held.
func (l *Lease) stillOurs(ctx context.Context, released, op string) error {
	if l.released {
		return fmt.Errorf("lease %s: %s: %w", l.name, released, ErrLost)
	}
	if l.lost != nil {
		return l.lost
	}
	got, err := l.st.Get(ctx, l.key)
	if errors.Is(err, store.ErrNotExist) {
		return l.lose("the lease object is gone")
	}
	if err != nil {
		return fmt.Errorf("lease %s: %s: %w", l.name, op, err)
	}
	if !l.ours(got) {
		return l.lose(whoHas(got))
	}
	return nil
}

// Check reports whether the lease is still ours and unexpired, by reading
// the lease object: nil if so, ErrLost (wrapped) if it was taken over or
// removed, ErrExpired (wrapped) if it is ours but past its expiry. Call it
// right before a commit point. It is a snapshot: it guarantees nothing about
// later than now, see the package's timing assumption.
func (l *Lease) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.stillOurs(ctx, "released", "check"); err != nil {
		return err
	}
	if !l.cfg.now().Before(l.rec.ExpiresAt) {
		return fmt.Errorf("lease %s: expired at %s: %w", l.name, stamp(l.rec.ExpiresAt), ErrExpired)
	}
	return nil
}

// Release gives the lease up: it deletes the lease object if it is still
// ours, and leaves it alone if it is not (taken over by someone else, whose
// lease must survive). Releasing twice, or a lost lease, is not an error.
// Like Renew, a Release after the expiry goes through a takeover claim.
//
// Each store request of a Release is tried up to releaseAttempts times,
// with a doubling pause (from releaseBackoff, slept as WithSleep says), so
// that a transient store error does not leave the lease behind; ctx ending
// stops the retries. An error means the object may still be there: its
// message names the lease object and how to clear it (delete it, or wait
// for its takeover time). Release is idempotent: after an error it may be
// called again.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.release(ctx); err != nil {
		return fmt.Errorf("%w; the lease stays until it is released or expires: "+
			"to free it sooner, delete %s from %s, or wait until %s, when it can be taken over",
			err, l.key, l.st, stamp(l.rec.ExpiresAt.Add(l.cfg.skew)))
	}
	return nil
}

func (l *Lease) release(ctx context.Context) error {
	if l.released {
		return nil
	}
	if l.lost != nil {
		l.released = true
		return nil
	}
	var got []byte
	err := l.retry(ctx, func() (err error) {
		got, err = l.st.Get(ctx, l.key)
		return err
	})
	if errors.Is(err, store.ErrNotExist) {
		l.lose("the lease object is gone")
		l.released = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("lease %s: release: %w", l.name, err)
	}
	if !l.ours(got) {
		l.lose(whoHas(got))
		l.released = true
		return nil
	}
	del := func() error {
		if err := l.retry(ctx, func() error { return l.st.Delete(ctx, l.key) }); err != nil {
			return fmt.Errorf("lease %s: release: %w", l.name, err)
		}
		return nil
	}
	if l.cfg.now().Before(l.rec.ExpiresAt) {
		if err := del(); err != nil {
			return err
		}
		l.released = true
		return nil
	}
	c, _, err := l.claim(ctx, l.rec, l.body)
	if err != nil {
		return err
	}
	if c == nil {
		// Someone else is taking it over, or has: it is not ours to delete.
		l.lose("expired and taken over")
		l.released = true
		return nil
	}
	done, err := c.change(ctx, del)
	if err != nil {
		return err
	}
	if done {
		c.clear(ctx)
	} else {
		l.lose("expired and taken over")
	}
	l.released = true
	return nil
}

// Retries of one store request in Release and in takeover claims.
const (
	releaseAttempts = 6
	releaseBackoff  = 100 * time.Millisecond
)

// retry runs op, one store request, until it succeeds, fails with
// ErrNotExist or ErrExists (answers, not faults), or has been tried
// releaseAttempts times. It sleeps between tries, doubling from
// releaseBackoff, and gives up early if ctx ends.
func (l *Lease) retry(ctx context.Context, op func() error) error {
	wait := releaseBackoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || errors.Is(err, store.ErrNotExist) || errors.Is(err, store.ErrExists) || attempt == releaseAttempts {
			return err
		}
		if serr := l.cfg.sleep(ctx, wait); serr != nil {
			return err
		}
		wait *= 2
	}
}

// KeepAlive renews the lease every interval (ttl/3 if interval <= 0) in a
// goroutine, sleeping as WithSleep says, until ctx is done, stop is called,
// or a Renew returns ErrLost; other Renew errors are tried again at the next
// interval. stop ends the goroutine (letting a Renew in progress finish),
// waits for it, and returns the error that ended it (wrapping ErrLost; nil
// if stopped or ctx ended it). Meanwhile Lost reports a lost or expired
// lease. Stop it before Release. It is the group KeepAlive of one lease.
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

// Renew renews every lease of the group, and returns the errors joined.
func (g Group) Renew(ctx context.Context) error {
	var errs []error
	for _, l := range g {
		errs = append(errs, l.Renew(ctx))
	}
	return errors.Join(errs...)
}

// Check checks every lease of the group, and returns the errors joined.
func (g Group) Check(ctx context.Context) error {
	var errs []error
	for _, l := range g {
		errs = append(errs, l.Check(ctx))
	}
	return errors.Join(errs...)
}

// Release releases every lease of the group, in reverse order, and returns
// the errors joined.
func (g Group) Release(ctx context.Context) error {
	var errs []error
	for i := len(g) - 1; i >= 0; i-- {
		errs = append(errs, g[i].Release(ctx))
	}
	return errors.Join(errs...)
}

// KeepAlive renews every lease of the group every interval (a third of the
// shortest ttl if interval <= 0) in one goroutine, sleeping as WithSleep
// says, until ctx is done, stop is called, or a round of renewals finds a
// lease lost. Each round renews every lease; a Renew that fails for another
// reason (a store fault) is tried again next round. stop ends the goroutine
// (letting a round in progress finish), waits for it, and returns the
// ErrLost errors (wrapped, joined) of the round that ended it, or nil if
// stop or ctx ended it. Meanwhile Lost reports a lost or expired lease:
// check it during long work, and call Check right before a commit point.
// Stop it before Release. KeepAlive of an empty group does nothing.
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
	sleep := g[0].cfg.sleep
	sleepCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var result error
	go func() {
		defer close(done)
		for {
			if sleep(sleepCtx, interval) != nil {
				return
			}
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
