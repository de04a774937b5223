package lease_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestWaitIsReported: a wait for a lease another process holds is reported
// when it starts and then every report interval, naming the holder and its
// expiry, until Acquire gives up; a wait of 0 reports nothing.
func TestWaitIsReported(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newClock()
		if _, err := c.acquire(ctx, st, day, "run A on host h1, pid 11", 10*time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		var got []lease.Wait
		report := lease.WithWaitReport(5*time.Second, func(w lease.Wait) { got = append(got, w) })
		_, err := lease.Acquire(ctx, st, day, "run B", time.Minute, 30*time.Second, c.Now,
			lease.WithSleep(c.Sleep), lease.WithPoll(time.Second), report)
		heldError(t, err)
		if len(got) != 6 {
			t.Fatalf("%d reports in a wait of 30s; want 6, one every 5s: %+v", len(got), got)
		}
		for i, w := range got {
			if w.Waited != time.Duration(i)*5*time.Second || !w.GivesUp.Equal(t0.Add(30*time.Second)) ||
				w.Held.Holder != "run A on host h1, pid 11" || !w.Held.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
				t.Errorf("report %d = %+v, held %+v", i, w, w.Held)
			}
		}
		got = nil
		if _, err := lease.Acquire(ctx, st, day, "run C", time.Minute, 0, c.Now, lease.WithSleep(c.Sleep), report); heldError(t, err) == nil || len(got) != 0 {
			t.Errorf("a wait of 0 reported %d times", len(got))
		}
	})
}

// TestWaitLog: WithWaitLog logs each report as a warning with the lease,
// its holder, until when it holds it and when the wait gives up.
func TestWaitLog(t *testing.T) {
	st := dirStore(t, t.TempDir())
	ctx := t.Context()
	c := newClock()
	if _, err := c.acquire(ctx, st, day, "run A on host h1, pid 11", 10*time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, err := lease.Acquire(ctx, st, day, "run B", time.Minute, 12*time.Second, c.Now,
		lease.WithSleep(c.Sleep), lease.WithPoll(time.Second), lease.WithWaitLog(log, 0), lease.WithDeadHolder(nil))
	heldError(t, err)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines in a wait of 12s; want 3 (at 0, 5 and 10s):\n%s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"level": "WARN", "msg": "waiting for a lease another process holds", "lease": day,
		"holder": "run A on host h1, pid 11", "expires_at": "2026-11-25T03:10:00Z", "takeover_at": "2026-11-25T03:10:05Z",
		"waited": "5s", "gives_up_at": "2026-11-25T03:00:12Z", "lease_object": lease.Key(day),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v; want %v (%s)", k, rec[k], v, lines[1])
		}
	}
}
