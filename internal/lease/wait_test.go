package lease_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/lease"
)

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
