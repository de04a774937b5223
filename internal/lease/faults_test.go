package lease_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/store/s3fault"
)

// flakyStore fails the first n requests of each kind it is told to, with
// errFlaky, and passes everything else to the store it wraps.
type flakyStore struct {
	store.Store
	mu   sync.Mutex
	fail map[string]int // "get", "put", "create", "delete": failures left
	seen map[string]int // requests made, by kind
}

var _ store.Store = (*flakyStore)(nil)

var errFlaky = errors.New("injected store fault")

func flaky(st store.Store, fail map[string]int) *flakyStore {
	return &flakyStore{Store: st, fail: fail, seen: map[string]int{}}
}

func (f *flakyStore) fault(kind string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[kind]++
	if f.fail[kind] > 0 {
		f.fail[kind]--
		return fmt.Errorf("%s: %w", kind, errFlaky)
	}
	return nil
}

func (f *flakyStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := f.fault("get"); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, key)
}

func (f *flakyStore) Put(ctx context.Context, key string, b []byte) error {
	if err := f.fault("put"); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, b)
}

func (f *flakyStore) Create(ctx context.Context, key string, b []byte) error {
	if err := f.fault("create"); err != nil {
		return err
	}
	return f.Store.Create(ctx, key, b)
}

func (f *flakyStore) Delete(ctx context.Context, key string) error {
	if err := f.fault("delete"); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *flakyStore) GetTag(ctx context.Context, key string) ([]byte, string, error) {
	if err := f.fault("get"); err != nil {
		return nil, "", err
	}
	return f.Store.GetTag(ctx, key)
}

func (f *flakyStore) Replace(ctx context.Context, key string, b []byte, tag string) (string, error) {
	if err := f.fault("put"); err != nil {
		return "", err
	}
	return f.Store.Replace(ctx, key, b, tag)
}

func (f *flakyStore) DeleteIf(ctx context.Context, key, tag string) error {
	if err := f.fault("delete"); err != nil {
		return err
	}
	return f.Store.DeleteIf(ctx, key, tag)
}

func TestReleaseRetries(t *testing.T) {
	tests := []struct {
		name    string
		fail    map[string]int
		expired bool // Release after the expiry
	}{
		{"through failed deletes", map[string]int{"delete": 3}, false},
		{"after the expiry, through failed deletes", map[string]int{"delete": 4}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				ctx := t.Context()
				c := newClock()
				fs := flaky(st, nil)
				a, err := lease.Acquire(ctx, fs, day, "run A", time.Minute, 0, c.Now, lease.WithSleep(c.Sleep))
				if err != nil {
					t.Fatal(err)
				}
				if tc.expired {
					c.Advance(2 * time.Minute)
				}
				fs.mu.Lock()
				fs.fail = tc.fail
				fs.mu.Unlock()
				if err := a.Release(ctx); err != nil {
					t.Fatalf("Release = %v", err)
				}
				absent(t, st, day)
				onlyLeases(t, st)
				for kind, left := range fs.fail {
					if left != 0 {
						t.Errorf("%d injected %s faults not reached", left, kind)
					}
				}
			})
		})
	}
}

func TestReleaseGivesUpWithAWayOut(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		fs := flaky(st, nil)
		a, err := lease.Acquire(ctx, fs, day, "run A", time.Minute, 0, c.Now, lease.WithSleep(c.Sleep))
		if err != nil {
			t.Fatal(err)
		}
		fs.mu.Lock()
		fs.fail = map[string]int{"delete": 1000}
		fs.mu.Unlock()
		err = a.Release(ctx)
		if !errors.Is(err, errFlaky) {
			t.Fatalf("Release = %v; want the store's error", err)
		}
		// The lease expires at t0+1m (and the sleeps of the retries have
		// moved the clock on): takeover from t0+1m05s.
		for _, want := range []string{
			"delete " + lease.Key(day) + " from " + st.String(),
			"wait until " + t0.Add(time.Minute+lease.DefaultClockSkew).Format(time.RFC3339),
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Release error %q does not say %q", err, want)
			}
		}
		fs.mu.Lock()
		tries := fs.seen["delete"]
		fs.fail = nil
		fs.mu.Unlock()
		if tries < 2 || tries > 10 {
			t.Errorf("%d deletes tried; want a few", tries)
		}
		// Once the store is back, Release again frees it.
		if err := a.Release(ctx); err != nil {
			t.Fatalf("second Release = %v", err)
		}
		absent(t, st, day)
	})
}

// TestReleaseRetriesStopWithContext: a cancelled context stops the retries
// at once.
func TestReleaseRetriesStopWithContext(t *testing.T) {
	st := dirStore(t, t.TempDir())
	c := newClock()
	fs := flaky(st, nil)
	a, err := lease.Acquire(t.Context(), fs, day, "run A", time.Minute, 0, c.Now, lease.WithSleep(c.Sleep))
	if err != nil {
		t.Fatal(err)
	}
	fs.fail = map[string]int{"delete": 1000}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.Release(ctx); !errors.Is(err, errFlaky) {
		t.Fatalf("Release = %v", err)
	}
	if fs.seen["delete"] != 1 {
		t.Errorf("%d deletes after the context ended; want 1", fs.seen["delete"])
	}
}

func TestGroupKeepAlive(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		ticks := make(chan struct{})
		var slept []time.Duration
		tickSleep := func(ctx context.Context, d time.Duration) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ticks:
				slept = append(slept, d)
				c.Advance(d)
				return nil
			}
		}
		names := []string{day, "curated/user_daily/dt=2026-11-24"}
		g, err := lease.AcquireAll(ctx, st, names, "run A", time.Minute, 0, c.Now, lease.WithSleep(tickSleep))
		if err != nil {
			t.Fatal(err)
		}
		stop := g.KeepAlive(ctx, 0) // every ttl/3 = 20s
		for range 4 {
			ticks <- struct{}{} // the 4th is taken after the 3rd round
		}
		if err := stop(); err != nil {
			t.Errorf("stop = %v", err)
		}
		for _, d := range slept {
			if d != 20*time.Second {
				t.Errorf("slept %v between rounds; want ttl/3 = 20s", d)
			}
		}
		for _, n := range names {
			if got, _ := stored(t, st, n); got.Seq < 3 || got.ExpiresAt.Before(t0.Add(60*time.Second+time.Minute)) {
				t.Errorf("%s after 3 rounds: %+v", n, got)
			}
		}
		if err := g.Check(ctx); err != nil {
			t.Errorf("Check after renewals = %v", err)
		}
		// Someone takes one lease over while A is paused; the next round
		// finds it lost.
		c.Advance(5 * time.Minute)
		if _, err := c.acquire(ctx, st, names[1], "run B", time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		stop = g.KeepAlive(ctx, time.Second)
		ticks <- struct{}{}
		err = stop()
		if !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), names[1]) {
			t.Errorf("KeepAlive with a lost lease ended with %v; want ErrLost naming %s", err, names[1])
		}
		if err := g.Check(ctx); !errors.Is(err, lease.ErrLost) {
			t.Errorf("group Check = %v; want ErrLost", err)
		}
		if got, _ := stored(t, st, names[1]); got.Holder != "run B" {
			t.Errorf("%s holder = %q; want run B", names[1], got.Holder)
		}
	})
}

func TestGroupKeepAliveOfNothing(t *testing.T) {
	var g lease.Group
	if err := g.KeepAlive(t.Context(), 0)(); err != nil {
		t.Error(err)
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestDeadLocalHolderByDefault: on a local directory a lease of a killed
// process of this host is taken over at once, with no option; on S3, and
// with WithDeadHolder(nil), it is not.
func TestDeadLocalHolderByDefault(t *testing.T) {
	host, _ := os.Hostname()
	ghost := fmt.Sprintf("run killed on host %s, pid %d", host, deadPID(t))
	for _, tc := range []struct {
		name     string
		open     func(t *testing.T) store.Store
		opts     []lease.Option
		takeover bool
	}{
		{"dir", stores[0].open, nil, true},
		{"dir, turned off", stores[0].open, []lease.Option{lease.WithDeadHolder(nil)}, false},
		{"s3", stores[1].open, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			st := tc.open(t)
			c := newClock()
			if _, err := c.acquire(ctx, st, day, ghost, time.Hour, 0); err != nil {
				t.Fatal(err)
			}
			_, err := lease.Acquire(ctx, st, day, lease.HolderID("next"), time.Hour, 0, c.Now, tc.opts...)
			if !tc.takeover {
				heldError(t, err)
				return
			}
			if err != nil {
				t.Fatalf("a dead local holder's lease was not taken over: %v", err)
			}
			if got, _ := stored(t, st, day); got.Holder != lease.HolderID("next") {
				t.Errorf("holder = %q", got.Holder)
			}
			onlyLeases(t, st, day)
		})
	}
}

// tempFiles lists the temporary files of in-flight writes under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), store.TempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNoTempFilesLeft: no lease operation, failed or not, leaves a
// temporary file in the lease folders, and an acquirer removes old ones a
// killed process left.
func TestNoTempFilesLeft(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	st := dirStore(t, root)
	c := newClock()
	// A killed process's write, long ago, and one in flight now.
	folder := filepath.Join(root, filepath.FromSlash(filepath.Dir(lease.Key(day))))
	if err := os.MkdirAll(folder, 0o777); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(folder, store.TempPrefix+"killed"), filepath.Join(folder, store.TempPrefix+"inflight")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("{"), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-24 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}

	a, err := c.acquire(ctx, st, day, "run A", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := tempFiles(t, root); len(got) != 1 || got[0] != fresh {
		t.Fatalf("temporary files after Acquire: %q; want only %s", got, fresh)
	}
	if err := os.Remove(fresh); err != nil {
		t.Fatal(err)
	}
	// Failed and successful operations of every kind.
	if _, err := c.acquire(ctx, st, day, "run B", time.Minute, 0); err == nil {
		t.Fatal("B acquired a held lease")
	}
	fs := flaky(st, map[string]int{"put": 1})
	b, err := c.acquire(ctx, fs, "other", "run B", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Renew(ctx); err == nil {
		t.Error("Renew through a failing Put succeeded")
	}
	if err := b.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	c.Advance(10 * time.Minute)
	if _, err := c.acquire(ctx, st, day, "run C", time.Minute, 0); err != nil {
		t.Fatal(err) // a takeover
	}
	if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Errorf("Renew of a lost lease = %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tempFiles(t, root); len(got) != 0 {
		t.Errorf("temporary files left: %q", got)
	}
	onlyLeases(t, st, day)
}

// TestThroughS3Faults: leases on S3 behind a proxy that fails one request
// in five (s3fault) still exclude each other and leave nothing behind.
func TestThroughS3Faults(t *testing.T) {
	ctx := t.Context()
	backend := s3mem.New()
	if err := backend.CreateBucket("bucket"); err != nil {
		t.Fatal(err)
	}
	url := s3fault.New(t, gofakes3.New(backend).Server(), 0.2, 7)
	st := s3Store(url, "wh")
	c := newClock()
	opts := []lease.Option{lease.WithSleep(c.Sleep)}
	for i := range 10 {
		g, err := lease.AcquireAll(ctx, st, []string{day, "curated/user_daily/dt=2026-11-24"}, fmt.Sprintf("run %d", i), time.Minute, 0, c.Now, opts...)
		if err != nil {
			t.Fatalf("round %d: AcquireAll: %v", i, err)
		}
		if _, err := lease.Acquire(ctx, st, day, "intruder", time.Minute, 0, c.Now, opts...); heldError(t, err).Holder != fmt.Sprintf("run %d", i) {
			t.Fatalf("round %d: Acquire of a held lease = %v", i, err)
		}
		for _, l := range g {
			if err := l.Renew(ctx); err != nil {
				t.Fatalf("round %d: Renew: %v", i, err)
			}
		}
		if err := g.Check(ctx); err != nil {
			t.Fatalf("round %d: Check: %v", i, err)
		}
		if err := g.Release(ctx); err != nil {
			t.Fatalf("round %d: Release: %v", i, err)
		}
	}
	onlyLeases(t, st)
}
