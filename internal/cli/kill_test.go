package cli

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// buildRollup builds cmd/rollup into a temporary folder.
func buildRollup(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rollup")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/rollup").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKilledRunConverges kills the rollup process with SIGKILL at random
// moments, again and again, then lets it finish: the published data must
// equal a clean run's, byte for byte, with one run per partition and no
// debris of the killed writers left in curated/.
func TestKilledRunConverges(t *testing.T) {
	bin := buildRollup(t)
	ctx := context.Background()
	raw := t.TempDir()
	st, err := store.OpenDir(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 5), EventsPerDay: 40000, Seed: 11})); err != nil {
		t.Fatal(err)
	}
	clean, killed := t.TempDir(), t.TempDir()
	copyDir(t, raw, clean)
	copyDir(t, raw, killed)
	args := []string{"--from", "2026-06-01", "--to", "2026-06-06", "--tz", "Pacific/Auckland", "--quiet", "--parallel", "4"}

	start := time.Now()
	if out, err := exec.Command(bin, append(args, "--store", clean)...).CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	full := time.Since(start)

	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for i := 0; i < 6; i++ {
		cmd := exec.Command(bin, append(args, "--store", killed)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill somewhere in the first 90% of a full run's time.
		time.Sleep(time.Duration(rng.Float64() * 0.9 * float64(full)))
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			kills++
		}
		cmd.Wait()
	}
	out, err := exec.Command(bin, append(args, "--store", killed)...).CombinedOutput()
	if err != nil {
		t.Fatalf("run after %d kills: %v\n%s", kills, err, out)
	}
	t.Logf("killed %d times (a full run takes %v)", kills, full)

	from, to := day.FromDate(2026, 6, 1), day.FromDate(2026, 6, 6)
	want := snapshot(t, clean, from, to)
	got := snapshot(t, killed, from, to)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after kills and a re-run (-clean +killed):\n%s", diff)
	}
	filepath.WalkDir(filepath.Join(killed, "curated"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("debris of a killed writer left: %s", p)
		}
		return nil
	})
}

func snapshot(t *testing.T, root string, from, to day.Day) map[string]string {
	t.Helper()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := job.Snapshot(context.Background(), st, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) == 0 {
		t.Fatal("nothing published")
	}
	return s
}

// TestKilledRebuildIsInvisible kills `rollup --force` rebuilds of published
// days at random moments: after each kill, the readers we ship (the views
// lwsql and the DuckDB reference use) count every event once, since a run
// folder without a manifest is invisible; and the next ordinary run, which
// finds the days up to date, removes the killed runs' folders.
func TestKilledRebuildIsInvisible(t *testing.T) {
	bin := buildRollup(t)
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 40000, Seed: 12})); err != nil {
		t.Fatal(err)
	}
	args := []string{"--store", root, "--from", "2026-06-01", "--to", "2026-06-03", "--quiet", "--parallel", "4"}
	start := time.Now()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	full := time.Since(start)
	from, to := day.FromDate(2026, 6, 1), day.FromDate(2026, 6, 3)
	want := snapshot(t, root, from, to)

	count := func() (events, distinct int64) {
		db, err := duckref.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.ViewCurated(ctx, root, "events"); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "SELECT count(*), count(DISTINCT event_id) FROM events").Scan(&events, &distinct); err != nil {
			t.Fatal(err)
		}
		return events, distinct
	}
	wantEvents, _ := count()
	runFolders := func() map[string]bool {
		m, _ := filepath.Glob(filepath.Join(root, "curated", "*", "dt=*", "run=*"))
		out := map[string]bool{}
		for _, p := range m {
			out[p] = true
		}
		return out
	}
	rng := rand.New(rand.NewPCG(3, 4))
	debris := 0
	for i := 0; i < 4; i++ {
		before := runFolders()
		cmd := exec.Command(bin, append(args, "--force")...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill while the rebuild writes: once a new run folder appears.
		for deadline := time.Now().Add(2 * full); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if len(runFolders()) > len(before) {
				break
			}
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if events, distinct := count(); events != wantEvents || distinct != wantEvents {
			t.Errorf("after kill %d: the views count %d events, %d distinct; want %d each", i+1, events, distinct, wantEvents)
		}
		debris += len(runFolders()) - len(before)
	}
	if debris == 0 {
		t.Fatal("no kill left a run folder behind: the test checked nothing")
	}
	t.Logf("the killed rebuilds left %d run folders", debris)
	// An ordinary run: every day is up to date, and the killed runs' folders go.
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("run after the kills: %v\n%s", err, out)
	}
	if diff := cmp.Diff(want, snapshot(t, root, from, to)); diff != "" {
		t.Errorf("after the kills and an ordinary run (-first run +now):\n%s", diff)
	}
}
