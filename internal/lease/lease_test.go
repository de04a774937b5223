package lease_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
)

const day = "curated/events/dt=2026-11-24"

// ---- stores ----------------------------------------------------------------

// fakeS3URL serves an in-memory gofakes3 with a bucket "bucket" on
// 127.0.0.1 for the test, and returns its URL.
func fakeS3URL(t *testing.T) string {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("bucket"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

// s3Store opens the bucket of the gofakes3 server at url, under prefix.
func s3Store(url, prefix string) store.Store {
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(url),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", ""),
	})
	return store.NewS3(c, "bucket", prefix)
}

func dirStore(t *testing.T, root string) store.Store {
	t.Helper()
	d, err := store.OpenDir(root, true)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// stores are the stores every behaviour is checked on.
var stores = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"dir", func(t *testing.T) store.Store { return dirStore(t, t.TempDir()) }},
	{"s3", func(t *testing.T) store.Store { return s3Store(fakeS3URL(t), "wh") }},
}

// eachStore runs f as a subtest on every store.
func eachStore(t *testing.T, f func(t *testing.T, st store.Store)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { f(t, s.open(t)) })
	}
}

// ---- a fake clock ------------------------------------------------------------

var t0 = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps int
	// onSleep, if set, runs after the n-th sleep (1-based) has advanced
	// the clock.
	onSleep func(n int)
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.sleeps++
	n, f := c.sleeps, c.onSleep
	c.mu.Unlock()
	if f != nil {
		f(n)
	}
	return nil
}

// acquire is Acquire on the fake clock, polling every 5 s.
func (c *fakeClock) acquire(ctx context.Context, st store.Store, name, holder string, ttl, wait time.Duration) (*lease.Lease, error) {
	return lease.Acquire(ctx, st, name, holder, ttl, wait, c.Now, lease.WithSleep(c.Sleep), lease.WithPoll(5*time.Second))
}

// ---- helpers -------------------------------------------------------------------

type leaseJSON struct {
	Name       string    `json:"name"`
	Holder     string    `json:"holder"`
	Token      string    `json:"token"`
	Seq        int       `json:"seq"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// stored returns the lease object of name, and its bytes.
func stored(t *testing.T, st store.Store, name string) (leaseJSON, []byte) {
	t.Helper()
	b, err := st.Get(t.Context(), lease.Key(name))
	if err != nil {
		t.Fatalf("lease object of %s: %v", name, err)
	}
	var l leaseJSON
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("lease object of %s: %v\n%s", name, err, b)
	}
	return l, b
}

// absent fails unless name has no lease object.
func absent(t *testing.T, st store.Store, name string) {
	t.Helper()
	if b, err := st.Get(t.Context(), lease.Key(name)); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("lease object of %s: %q, %v; want none", name, b, err)
	}
}

// leaseObjects lists every key under the lease folder.
func leaseObjects(t *testing.T, st store.Store) []string {
	t.Helper()
	objs, err := st.List(t.Context(), lease.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

// onlyLeases fails if anything but the lease objects of names is left.
func onlyLeases(t *testing.T, st store.Store, names ...string) {
	t.Helper()
	var want []string
	for _, n := range names {
		want = append(want, lease.Key(n))
	}
	slices.Sort(want)
	if got := leaseObjects(t, st); !slices.Equal(got, want) {
		t.Errorf("objects under %s = %q; want %q", lease.Prefix, got, want)
	}
}

func heldError(t *testing.T, err error) *lease.HeldError {
	t.Helper()
	var h *lease.HeldError
	if !errors.As(err, &h) {
		t.Fatalf("error = %v; want a *HeldError", err)
	}
	return h
}

// ---- tests ---------------------------------------------------------------------

func TestAcquireRelease(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		l, err := c.acquire(ctx, st, day, "run A on host h, pid 1", 10*time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := stored(t, st, day)
		if got.Name != day || got.Holder != "run A on host h, pid 1" || !got.AcquiredAt.Equal(t0) ||
			!got.ExpiresAt.Equal(t0.Add(10*time.Minute)) || got.Token == "" {
			t.Errorf("lease object = %+v", got)
		}
		if k := lease.Key(day); k != "_state/leases/"+day+".json" {
			t.Errorf("Key = %s", k)
		}
		if err := l.Check(ctx); err != nil {
			t.Errorf("Check = %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		absent(t, st, day)
		if err := l.Release(ctx); err != nil {
			t.Errorf("second Release = %v", err)
		}
		if err := l.Check(ctx); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Check after Release = %v; want ErrLost", err)
		}
		if err := l.Renew(ctx); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Renew after Release = %v; want ErrLost", err)
		}
		l2, err := c.acquire(ctx, st, day, "run B", time.Minute, 0)
		if err != nil {
			t.Fatalf("acquire after release: %v", err)
		}
		if got, _ := stored(t, st, day); got.Holder != "run B" {
			t.Errorf("lease object = %+v", got)
		}
		if err := l2.Check(ctx); err != nil {
			t.Errorf("B's Check = %v", err)
		}
		onlyLeases(t, st, day)
	})
}

func TestHeldAfterWaiting(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		a, err := c.acquire(ctx, st, day, "run A on host h1, pid 11", 10*time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, before := stored(t, st, day)
		_, err = c.acquire(ctx, st, day, "run B on host h2, pid 22", 10*time.Minute, 30*time.Second)
		h := heldError(t, err)
		if h.Name != day || h.Holder != "run A on host h1, pid 11" || !h.ExpiresAt.Equal(t0.Add(10*time.Minute)) ||
			h.Key != lease.Key(day) || h.Store != st.String() || h.Expired ||
			!h.TakeoverAt.Equal(t0.Add(10*time.Minute+lease.DefaultClockSkew)) {
			t.Errorf("HeldError = %+v", h)
		}
		for _, want := range []string{
			day, "run A on host h1, pid 11", "until 2026-11-25T03:10:00Z", "if that process is dead",
			"remove _state/leases/" + day + ".json from " + st.String(), "after 2026-11-25T03:10:05Z",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		}
		if got := c.Now().Sub(t0); got != 30*time.Second || c.sleeps != 6 {
			t.Errorf("waited %v in %d sleeps; want 30s in 6 polls of 5s", got, c.sleeps)
		}
		if _, after := stored(t, st, day); string(after) != string(before) {
			t.Errorf("the held lease changed:\n%s\n%s", before, after)
		}
		if err := a.Check(ctx); err != nil {
			t.Errorf("holder's Check = %v", err)
		}
		// A wait of 0 tries once, without sleeping.
		n := c.sleeps
		if _, err := c.acquire(ctx, st, day, "run C", time.Minute, 0); heldError(t, err) == nil || c.sleeps != n {
			t.Errorf("wait 0 slept %d times", c.sleeps-n)
		}
	})
}

func TestWaitThenAcquire(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		a, err := c.acquire(ctx, st, day, "run A", 10*time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.onSleep = func(n int) {
			if n == 3 {
				if err := a.Release(ctx); err != nil {
					t.Error(err)
				}
			}
		}
		b, err := c.acquire(ctx, st, day, "run B", 10*time.Minute, time.Hour)
		if err != nil {
			t.Fatalf("acquire while A releases: %v", err)
		}
		if c.sleeps != 3 || c.Now() != t0.Add(15*time.Second) {
			t.Errorf("%d sleeps, at %v; want 3, at t0+15s", c.sleeps, c.Now().Sub(t0))
		}
		if got, _ := stored(t, st, day); got.Holder != "run B" || !got.AcquiredAt.Equal(t0.Add(15*time.Second)) {
			t.Errorf("lease object = %+v", got)
		}
		if err := b.Check(ctx); err != nil {
			t.Error(err)
		}
	})
}

func TestDeadHolderIsTakenOverWhileWaiting(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		if _, err := c.acquire(ctx, st, day, "run A (killed)", time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		b, err := c.acquire(ctx, st, day, "run B", time.Minute, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// A expired at t0+1m, can be taken over after t0+1m05s: the first
		// poll after that is at t0+1m10s.
		if got := c.Now().Sub(t0); got != 70*time.Second {
			t.Errorf("took over at t0+%v; want t0+1m10s", got)
		}
		if got, _ := stored(t, st, day); got.Holder != "run B" {
			t.Errorf("holder = %q", got.Holder)
		}
		if err := b.Check(ctx); err != nil {
			t.Error(err)
		}
		onlyLeases(t, st, day)
	})
}

func TestTakeover(t *testing.T) {
	const ttl = time.Minute
	for _, c := range []struct {
		after       time.Duration // after A acquired
		takeover    bool
		heldExpired bool
	}{
		{after: 30 * time.Second},
		{after: ttl - time.Nanosecond},
		{after: ttl, heldExpired: true},                          // expired (A may no longer Put or Delete)...
		{after: ttl + lease.DefaultClockSkew, heldExpired: true}, // ...but within the skew allowance
		{after: ttl + lease.DefaultClockSkew + time.Nanosecond, takeover: true},
		{after: 24 * time.Hour, takeover: true},
	} {
		t.Run(fmt.Sprint(c.after), func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				ctx := t.Context()
				clk := newClock()
				a, err := clk.acquire(ctx, st, day, "run A", ttl, 0)
				if err != nil {
					t.Fatal(err)
				}
				clk.Advance(c.after)
				b, err := clk.acquire(ctx, st, day, "run B", ttl, 0)
				if !c.takeover {
					if h := heldError(t, err); h.Holder != "run A" || h.Expired != c.heldExpired {
						t.Errorf("HeldError = %+v", h)
					}
					if c.heldExpired && !strings.Contains(err.Error(), "can be taken over from") {
						t.Errorf("message = %q", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("takeover: %v", err)
				}
				got, bBytes := stored(t, st, day)
				if got.Holder != "run B" || !got.AcquiredAt.Equal(t0.Add(c.after)) {
					t.Errorf("lease object = %+v", got)
				}
				onlyLeases(t, st, day) // no takeover claims left behind
				// A finds out, and cannot hurt B.
				if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "taken over by run B") {
					t.Errorf("A's Renew = %v; want ErrLost naming run B", err)
				}
				if err := a.Check(ctx); !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "taken over by run B") {
					t.Errorf("A's Check = %v; want ErrLost naming run B", err)
				}
				if err := a.Release(ctx); err != nil {
					t.Errorf("A's Release = %v", err)
				}
				if _, after := stored(t, st, day); string(after) != string(bBytes) {
					t.Errorf("A's Release changed B's lease:\n%s", after)
				}
				if err := b.Check(ctx); err != nil {
					t.Errorf("B's Check = %v", err)
				}
			})
		})
	}
}

// TestReleaseDoesNotDeleteSuccessor: a holder that comes back after its
// lease was taken over must leave the successor's lease alone, whether its
// Release sees the successor or finds the successor mid-takeover.
func TestReleaseDoesNotDeleteSuccessor(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		a, err := c.acquire(ctx, st, day, "run A", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		stored(t, st, day)
		c.Advance(2 * time.Minute)

		c.Advance(2 * time.Minute)
		b, err := c.acquire(ctx, st, day, "run B", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Check(ctx); err != nil {
			t.Errorf("B's Check = %v", err)
		}
		if err := b.Release(ctx); err != nil {
			t.Fatal(err)
		}

		for _, expired := range []bool{false, true} {
			// C holds the lease and has not yet noticed anything when D
			// replaces it: taken over after C expired, or acquired after
			// someone removed C's lease by hand while C was unexpired.
			cl, err := c.acquire(ctx, st, day, "run C", time.Minute, 0)
			if err != nil {
				t.Fatal(err)
			}
			if expired {
				c.Advance(2 * time.Minute)
			} else if err := st.Delete(ctx, lease.Key(day)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.acquire(ctx, st, day, "run D", time.Minute, 0); err != nil {
				t.Fatal(err)
			}
			_, dBytes := stored(t, st, day)
			if err := cl.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if _, after := stored(t, st, day); string(after) != string(dBytes) {
				t.Errorf("expired=%v: C's Release changed D's lease", expired)
			}
			if err := st.Delete(ctx, lease.Key(day)); err != nil {
				t.Fatal(err)
			}
		}
		onlyLeases(t, st)
	})
}

func TestLateReleaseAndRenewWithoutContender(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		a, err := c.acquire(ctx, st, day, "run A", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(10 * time.Minute) // long expired, nobody took it over
		if err := a.Check(ctx); !errors.Is(err, lease.ErrExpired) {
			t.Errorf("Check of an expired lease = %v; want ErrExpired", err)
		}
		if err := a.Renew(ctx); err != nil {
			t.Fatalf("late Renew = %v", err)
		}
		if got, _ := stored(t, st, day); !got.ExpiresAt.Equal(t0.Add(11*time.Minute)) || got.Seq != 1 {
			t.Errorf("after late Renew: %+v", got)
		}
		if err := a.Check(ctx); err != nil {
			t.Errorf("Check after late Renew = %v", err)
		}
		onlyLeases(t, st, day)
		c.Advance(10 * time.Minute)
		if err := a.Release(ctx); err != nil {
			t.Fatalf("late Release = %v", err)
		}
		absent(t, st, day)
		onlyLeases(t, st)
	})
}

func TestRenew(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		a, err := c.acquire(ctx, st, day, "run A", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(40 * time.Second)
		if err := a.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		want := t0.Add(40*time.Second + time.Minute)
		if got, _ := stored(t, st, day); !got.ExpiresAt.Equal(want) || got.Seq != 1 || !got.AcquiredAt.Equal(t0) {
			t.Errorf("after Renew: %+v", got)
		}
		// Past the first expiry + skew, but not the renewed one.
		c.Advance(40 * time.Second)
		if _, err := c.acquire(ctx, st, day, "run B", time.Minute, 0); heldError(t, err).Holder != "run A" {
			t.Errorf("acquire of a renewed lease = %v", err)
		}
		// Someone removes the lease by hand: Renew says it is lost.
		if err := st.Delete(ctx, lease.Key(day)); err != nil {
			t.Fatal(err)
		}
		if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Renew of a deleted lease = %v", err)
		}
		absent(t, st, day) // Renew does not resurrect it
		if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Renew stays lost: %v", err)
		}

		// The same, with a new holder in between: an unexpired holder's
		// Renew must not overwrite the new holder's lease.
		c2, err := c.acquire(ctx, st, "t/other", "run C", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, lease.Key("t/other")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.acquire(ctx, st, "t/other", "run D", time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		_, dBytes := stored(t, st, "t/other")
		if err := c2.Renew(ctx); !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "run D") {
			t.Errorf("C's Renew = %v; want ErrLost naming run D", err)
		}
		if _, after := stored(t, st, "t/other"); string(after) != string(dBytes) {
			t.Error("C's Renew changed D's lease")
		}
	})
}

// TestTakeoverRace: many contenders for one expired lease, at one instant;
// exactly one gets it.
func TestTakeoverRace(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		for round := range 10 {
			if _, err := c.acquire(ctx, st, day, "run dead", time.Minute, 0); err != nil {
				t.Fatal(err)
			}
			c.Advance(time.Hour)
			const n = 12
			var wg sync.WaitGroup
			var won atomic.Int64
			for i := range n {
				wg.Go(func() {
					_, err := c.acquire(ctx, st, day, fmt.Sprintf("run %d", i), time.Minute, 0)
					var h *lease.HeldError
					switch {
					case err == nil:
						won.Add(1)
					case !errors.As(err, &h):
						t.Errorf("contender %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if won.Load() != 1 {
				t.Fatalf("round %d: %d contenders got the lease", round, won.Load())
			}
			onlyLeases(t, st, day)
			c.Advance(time.Hour) // the winner dies too
		}
	})
}

// TestMutualExclusionGoroutines: goroutines racing for one lease on the real
// clock are never inside the critical section together.
func TestMutualExclusionGoroutines(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		const workers, rounds = 8, 6
		var inside, entries atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					l, err := lease.Acquire(ctx, st, day, fmt.Sprintf("worker %d", w), time.Minute, time.Minute, time.Now,
						lease.WithPoll(time.Millisecond))
					if err != nil {
						t.Errorf("worker %d round %d: %v", w, r, err)
						return
					}
					if n := inside.Add(1); n != 1 {
						t.Errorf("%d holders inside at once", n)
					}
					entries.Add(1)
					time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
					inside.Add(-1)
					if err := l.Release(ctx); err != nil {
						t.Errorf("worker %d: release: %v", w, err)
					}
				}
			})
		}
		wg.Wait()
		if entries.Load() != workers*rounds {
			t.Errorf("%d entries; want %d", entries.Load(), workers*rounds)
		}
		onlyLeases(t, st)
	})
}

// TestMutualExclusionProcesses: processes (this test binary, re-executed)
// racing for one lease never both write inside the critical section: each
// appends "start" and "end" lines to a shared log, which must never
// interleave.
func TestMutualExclusionProcesses(t *testing.T) {
	if os.Getenv("LEASE_HELPER_STORE") != "" {
		t.Skip("in a helper process")
	}
	const procs, rounds = 4, 15
	for _, kind := range []string{"dir", "s3"} {
		t.Run(kind, func(t *testing.T) {
			var loc string
			var st store.Store
			switch kind {
			case "dir":
				loc = filepath.Join(t.TempDir(), "store")
				st = dirStore(t, loc)
			case "s3":
				loc = fakeS3URL(t)
				st = s3Store(loc, "wh")
			}
			logPath := filepath.Join(t.TempDir(), "log")
			var cmds []*exec.Cmd
			for p := range procs {
				cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestLeaseHelperProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(),
					"LEASE_HELPER_KIND="+kind, "LEASE_HELPER_STORE="+loc, "LEASE_HELPER_LOG="+logPath,
					"LEASE_HELPER_ID="+strconv.Itoa(p), "LEASE_HELPER_ROUNDS="+strconv.Itoa(rounds))
				cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
				cmds = append(cmds, cmd)
			}
			for _, cmd := range cmds {
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
			}
			for _, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Errorf("helper: %v", err)
				}
			}
			f, err := os.Open(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var lines []string
			for sc := bufio.NewScanner(f); sc.Scan(); {
				lines = append(lines, sc.Text())
			}
			if len(lines) != 2*procs*rounds {
				t.Fatalf("%d log lines; want %d", len(lines), 2*procs*rounds)
			}
			seen := map[string]bool{}
			for i := 0; i < len(lines); i += 2 {
				s, e := lines[i], lines[i+1]
				who, ok := strings.CutPrefix(s, "start ")
				if !ok || e != "end "+who || seen[who] {
					t.Fatalf("log lines %d-%d interleave: %q, %q", i+1, i+2, s, e)
				}
				seen[who] = true
			}
			onlyLeases(t, st)
		})
	}
}

// TestLeaseHelperProcess is the body of TestMutualExclusionProcesses's
// processes; it does nothing in a normal run.
func TestLeaseHelperProcess(t *testing.T) {
	loc := os.Getenv("LEASE_HELPER_STORE")
	if loc == "" {
		t.Skip("run by TestMutualExclusionProcesses")
	}
	ctx := t.Context()
	var st store.Store
	if os.Getenv("LEASE_HELPER_KIND") == "s3" {
		st = s3Store(loc, "wh")
	} else {
		st = dirStore(t, loc)
	}
	id := os.Getenv("LEASE_HELPER_ID")
	rounds, _ := strconv.Atoi(os.Getenv("LEASE_HELPER_ROUNDS"))
	holder := lease.HolderID("helper-" + id)
	for r := range rounds {
		l, err := lease.Acquire(ctx, st, day, holder, time.Minute, 2*time.Minute, time.Now, lease.WithPoll(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		who := fmt.Sprintf("%s/%d", id, r)
		appendLine(t, "start "+who)
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		appendLine(t, "end "+who)
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func appendLine(t *testing.T, line string) {
	f, err := os.OpenFile(os.Getenv("LEASE_HELPER_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAcquireAll(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		b, err := c.acquire(ctx, st, "t/b", "run other", 10*time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = lease.AcquireAll(ctx, st, []string{"t/c", "t/a", "t/b", "t/a"}, "run me", time.Minute, 20*time.Second,
			c.Now, lease.WithSleep(c.Sleep), lease.WithPoll(5*time.Second))
		if h := heldError(t, err); h.Name != "t/b" || h.Holder != "run other" {
			t.Errorf("HeldError = %+v", h)
		}
		if got := c.Now().Sub(t0); got != 20*time.Second {
			t.Errorf("waited %v in all; want 20s", got)
		}
		absent(t, st, "t/a") // taken first, in sorted order, then released
		absent(t, st, "t/c") // never reached
		onlyLeases(t, st, "t/b")

		if err := b.Release(ctx); err != nil {
			t.Fatal(err)
		}
		g, err := lease.AcquireAll(ctx, st, []string{"t/c", "t/a", "t/c"}, "run me", time.Minute, 0, c.Now)
		if err != nil {
			t.Fatal(err)
		}
		if len(g) != 2 {
			t.Errorf("group of %d leases; want 2", len(g))
		}
		onlyLeases(t, st, "t/a", "t/c")
		c.Advance(30 * time.Second)
		for _, l := range g {
			if err := l.Renew(ctx); err != nil {
				t.Error(err)
			}
		}
		for _, n := range []string{"t/a", "t/c"} {
			if got, _ := stored(t, st, n); got.Seq != 1 || !got.ExpiresAt.Equal(c.Now().Add(time.Minute)) {
				t.Errorf("%s after Renew: %+v", n, got)
			}
		}
		if err := g.Check(ctx); err != nil {
			t.Errorf("Check = %v", err)
		}
		if err := g.Release(ctx); err != nil {
			t.Error(err)
		}
		onlyLeases(t, st)
		if err := g.Check(ctx); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Check of a released group = %v; want ErrLost", err)
		}
	})
}

// TestAcquireAllOpposingOrders: two holders that ask for the same names in
// opposite orders both get through, one at a time.
func TestAcquireAllOpposingOrders(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		var inside atomic.Int64
		var wg sync.WaitGroup
		for _, names := range [][]string{{"t/x", "t/y", "t/z"}, {"t/z", "t/y", "t/x"}} {
			wg.Go(func() {
				for range 8 {
					g, err := lease.AcquireAll(ctx, st, names, "run "+names[0], time.Minute, time.Minute, time.Now,
						lease.WithPoll(time.Millisecond))
					if err != nil {
						t.Error(err)
						return
					}
					if inside.Add(1) != 1 {
						t.Error("both groups held at once")
					}
					time.Sleep(200 * time.Microsecond)
					inside.Add(-1)
					if err := g.Release(ctx); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		onlyLeases(t, st)
	})
}

func TestKeepAlive(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		ticks := make(chan struct{})
		tickSleep := func(ctx context.Context, d time.Duration) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ticks:
				c.Advance(d)
				return nil
			}
		}
		a, err := lease.Acquire(ctx, st, day, "run A", time.Minute, 0, c.Now, lease.WithSleep(tickSleep))
		if err != nil {
			t.Fatal(err)
		}
		stop := a.KeepAlive(ctx, 0) // every ttl/3 = 20s
		for range 4 {
			ticks <- struct{}{} // the 4th is taken after the 3rd Renew
		}
		if err := stop(); err != nil {
			t.Errorf("stop = %v", err)
		}
		if got, _ := stored(t, st, day); got.ExpiresAt.Before(t0.Add(60*time.Second+time.Minute)) || got.Seq < 3 {
			t.Errorf("after 3 renewals: %+v", got)
		}
		// At t0+80s the first expiry (t0+1m) is long past, but A kept it.
		if _, err := c.acquire(ctx, st, day, "run B", time.Minute, 0); heldError(t, err).Holder != "run A" {
			t.Errorf("acquire = %v", err)
		}
		c.Advance(5 * time.Minute)
		if _, err := c.acquire(ctx, st, day, "run B", time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		stop = a.KeepAlive(ctx, time.Second)
		ticks <- struct{}{}
		if err := stop(); !errors.Is(err, lease.ErrLost) {
			t.Errorf("KeepAlive of a lost lease ended with %v; want ErrLost", err)
		}
		if err := a.Check(ctx); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Check after KeepAlive found it lost = %v; want ErrLost", err)
		}
	})
}

func TestInvalid(t *testing.T) {
	ctx := t.Context()
	st := dirStore(t, t.TempDir())
	for _, name := range []string{"", "/a", "a/", "a//b", "a/../b", "..", ".", "../a", "a\nb"} {
		if _, err := lease.Acquire(ctx, st, name, "h", time.Minute, 0, nil); err == nil || !strings.Contains(err.Error(), "invalid name") {
			t.Errorf("Acquire(%q) = %v; want an invalid name error", name, err)
		}
		if _, err := lease.AcquireAll(ctx, st, []string{"ok", name}, "h", time.Minute, 0, nil); err == nil {
			t.Errorf("AcquireAll(%q) succeeded", name)
		}
	}
	absent(t, st, "ok")
	if _, err := lease.Acquire(ctx, st, "a", "h", 0, 0, nil); err == nil {
		t.Error("ttl 0 accepted")
	}
	if _, err := lease.Acquire(ctx, st, "a", "", time.Minute, 0, nil); err == nil {
		t.Error("empty holder accepted")
	}
	// Something that is not a lease object under the lease key.
	if err := st.Put(ctx, lease.Key("junk"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, st, "junk", "h", time.Minute, 0, nil); err == nil || !strings.Contains(err.Error(), "not a lease object") {
		t.Errorf("Acquire over junk = %v", err)
	}
}

func TestContextEndsWait(t *testing.T) {
	st := dirStore(t, t.TempDir())
	c := newClock()
	if _, err := c.acquire(t.Context(), st, day, "run A", time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	c.onSleep = func(n int) {
		if n == 2 {
			cancel()
		}
	}
	_, err := c.acquire(ctx, st, day, "run B", time.Hour, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
}

func TestHolderID(t *testing.T) {
	host, _ := os.Hostname()
	want := fmt.Sprintf("run 01JXYZ on host %s, pid %d", host, os.Getpid())
	if got := lease.HolderID("01JXYZ"); got != want {
		t.Errorf("HolderID = %q; want %q", got, want)
	}
}

func TestDeadLocalProcess(t *testing.T) {
	host, _ := os.Hostname()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		holder string
		dead   bool
	}{
		{lease.HolderID("r1"), false}, // this process
		{fmt.Sprintf("run r2 on host %s, pid %d", host, cmd.Process.Pid), true},
		{fmt.Sprintf("run r3 on host other-%s, pid %d", host, cmd.Process.Pid), false},
		{"someone else", false},
	}
	for _, tc := range tests {
		if got := lease.DeadLocalProcess(tc.holder); got != tc.dead {
			t.Errorf("DeadLocalProcess(%q) = %v, want %v", tc.holder, got, tc.dead)
		}
	}
}

func TestDeadHolderIsTakenOverAtOnce(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, st, "x", "ghost", time.Hour, 0, time.Now); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, st, "x", "me", time.Hour, 0, time.Now); err == nil {
		t.Fatal("acquired a live lease")
	}
	if _, err := lease.Acquire(ctx, st, "x", "me", time.Hour, 0, time.Now, lease.WithDeadHolder(func(h string) bool { return h == "ghost" })); err != nil {
		t.Fatalf("a dead holder's lease was not taken over: %v", err)
	}
	if got, _ := stored(t, st, "x"); got.Holder != "me" {
		t.Fatalf("holder %q", got.Holder)
	}
}
