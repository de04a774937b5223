//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// fenceWorld is a gofakes3 server shared by a test's rollup processes.
type fenceWorld struct {
	url     string
	backend *s3mem.Backend
	bin     string
	env     []string
}

func newFenceWorld(t *testing.T) *fenceWorld {
	t.Helper()
	w := &fenceWorld{backend: s3mem.New(), bin: filepath.Join(t.TempDir(), "rollup")}
	for _, kv := range [][2]string{{"AWS_REGION", "us-east-1"}, {"AWS_ACCESS_KEY_ID", "AKIDTEST"}, {"AWS_SECRET_ACCESS_KEY", "SECRETTEST"}, {"AWS_EC2_METADATA_DISABLED", "true"}} {
		t.Setenv(kv[0], kv[1])
	}
	srv := httptest.NewServer(gofakes3.New(w.backend).Server())
	t.Cleanup(srv.Close)
	w.url = srv.URL
	w.env = os.Environ()
	if out, err := exec.Command("go", "build", "-o", w.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return w
}

// bucket makes a bucket holding the objects of the stores from and returns
// the store at s3://<name>/wh.
func (w *fenceWorld) bucket(t *testing.T, name string, from ...map[string][]byte) store.Store {
	t.Helper()
	if err := w.backend.CreateBucket(name); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "s3://"+name+"/wh", store.Options{S3Endpoint: w.url})
	if err != nil {
		t.Fatal(err)
	}
	for _, objs := range from {
		for k, b := range objs {
			if err := st.Put(t.Context(), k, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

// rollup starts the rollup of fenceDay on bucket name, with the
// environment env (and the test's).
func (w *fenceWorld) rollup(name string, env ...string) *exec.Cmd {
	cmd := exec.Command(w.bin, "--store", "s3://"+name+"/wh", "--s3-endpoint", w.url, "--from", fenceDay, "--to", fenceDay,
		"--tz", "UTC", "--quiet", "--log", "json", "--catalog", "none", "--grace-period", "0", "--lock-wait", "30s", "--parallel", "2")
	cmd.Env = append(w.env, env...)
	return cmd
}

// watch collects a process's output and closes seen once it holds want.
type watch struct {
	mu   sync.Mutex
	b    strings.Builder
	want string
	seen chan struct{}
	once sync.Once
}

func (w *watch) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.b.Write(p)
	has := strings.Contains(w.b.String(), w.want)
	w.mu.Unlock()
	if has {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

const fenceDay = "2026-06-01"

// rawObjects generates a day of raw objects (stream, seed) and returns
// them by key.
func rawObjects(t *testing.T, stream string, seed int64, events, perHour int) map[string][]byte {
	t.Helper()
	ctx := t.Context()
	mem := store.NewMem()
	d := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(ctx, mem, gen.Config{From: d, To: d, EventsPerDay: events, ObjectsPerHour: perHour, Seed: seed, Stream: stream}); err != nil {
		t.Fatal(err)
	}
	objs, err := mem.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, o := range objs {
		b, err := mem.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = b
	}
	return out
}

// tables is what st publishes for fenceDay and the users table, without
// the count of run folders (a paused writer's debris may stay): for each
// table and partition, the current run's rows and files by checksum.
func tables(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	d := day.FromDate(2026, 6, 1)
	s, err := job.Snapshot(context.Background(), st, d, d)
	if err != nil {
		t.Fatal(err)
	}
	runs := regexp.MustCompile(`^runs=[0-9]+ `)
	for k, v := range s {
		s[k] = runs.ReplaceAllString(v, "")
	}
	// data_quality_daily's restated says what the runs did (a build that
	// published the day before the late object came was restated): the
	// row without it.
	m, err := publish.Current(t.Context(), st, "data_quality_daily", d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Get(t.Context(), m.Files[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parquet.Read[rollups.DataQualityDaily](bytes.NewReader(b), int64(len(b)))
	if err != nil || len(rows) != 1 {
		t.Fatalf("data_quality_daily: %d rows, %v", len(rows), err)
	}
	rows[0].Restated = false
	s["data_quality_daily/2026-06-01"] = fmt.Sprintf("%+v", rows[0])
	return s
}

// TestPausedWriterNeverPublishesOverItsSuccessor runs rollup processes on
// an S3 store (gofakes3). Writer A is paused with SIGSTOP at a random point
// of its run; its lease (LW_LEASE_TTL=600ms) expires; in odd trials a late raw
// object arrives; writer B runs to the end; A is resumed and finishes as it
// can. Half the trials pause A anywhere in its run, half within 150 ms
// after its day's events are written: in its commits, past its last lease
// check, where only the fenced commit stops it. Every table must then equal a clean build of the raw objects
// present, every day table's current commit must have been built from
// them (no A published over B), and each partition's committed runs must
// have distinct generations. In even trials A and B have equal inputs and
// both reach their commits: exactly one commit per generation. 20 trials;
// 4 with -short.
func TestPausedWriterNeverPublishesOverItsSuccessor(t *testing.T) {
	w := newFenceWorld(t)
	base := rawObjects(t, "events", 5, 3000, 1)
	var lateKey string
	late := rawObjects(t, "late", 6, 500, 1)
	for k := range late {
		lateKey = max(lateKey, k)
	}
	late = map[string][]byte{lateKey: late[lateKey]}

	// Clean builds, with and without the late object, and how long one takes.
	clean := map[bool]map[string]string{}
	var full time.Duration
	for i, withLate := range []bool{false, true} {
		name := fmt.Sprintf("clean%d", i)
		st := w.bucket(t, name, base, map[string][]byte{})
		if withLate {
			st = w.bucket(t, name+"l", base, late)
			name += "l"
		}
		start := time.Now()
		if out, err := w.rollup(name).CombinedOutput(); err != nil {
			t.Fatalf("clean build: %v\n%s", err, out)
		}
		full = max(full, time.Since(start))
		clean[withLate] = tables(t, st)
	}
	if cmp.Equal(clean[false], clean[true]) {
		t.Fatal("the late object changes nothing; the test would prove nothing")
	}

	trials := 20
	if testing.Short() {
		trials = 4
	}
	rng := rand.New(rand.NewPCG(26, 1))
	for trial := range trials {
		withLate := trial%2 == 1
		name := fmt.Sprintf("trial%d", trial)
		st := w.bucket(t, name, base)
		a := w.rollup(name, "LW_LEASE_TTL=600ms")
		aOut := &watch{want: `"day's events written"`, seen: make(chan struct{})}
		a.Stdout, a.Stderr = aOut, aOut
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		if trial%4 >= 2 {
			select {
			case <-aOut.seen:
			case <-time.After(3 * full):
			}
			time.Sleep(time.Duration(rng.Float64() * float64(150*time.Millisecond)))
		} else {
			time.Sleep(time.Duration(rng.Float64() * 0.9 * float64(full)))
		}
		pause := time.Since(started)
		stopped := a.Process.Signal(syscall.SIGSTOP) == nil
		time.Sleep(900 * time.Millisecond) // past A's lease (600 ms) and the skew allowance (ttl/4)
		if withLate {
			for k, b := range late {
				if err := st.Put(t.Context(), k, b); err != nil {
					t.Fatal(err)
				}
			}
		}
		bOut, err := w.rollup(name).CombinedOutput()
		if err != nil {
			t.Fatalf("trial %d: writer B: %v\n%s", trial, err, bOut)
		}
		if stopped {
			a.Process.Signal(syscall.SIGCONT)
		}
		aErr := a.Wait()
		t.Logf("trial %d (late object: %v): A paused at %v (of %v), then exited with %v", trial, withLate, pause.Round(time.Millisecond), full.Round(time.Millisecond), aErr)

		if diff := cmp.Diff(clean[withLate], tables(t, st)); diff != "" {
			t.Errorf("trial %d: tables differ from a clean build (-clean +got):\n%s\nA's output:\n%s\nB's output:\n%s", trial, diff, aOut.String(), bOut)
		}
		checkCommits(t, st, trial, withLate, lateKey)
	}
}

// checkCommits checks every day table's partition of fenceDay: its current
// commit was built from the late object if there is one, and its committed
// runs have distinct generations.
func checkCommits(t *testing.T, st store.Store, trial int, withLate bool, lateKey string) {
	t.Helper()
	ctx := t.Context()
	part := publish.DayPart(day.FromDate(2026, 6, 1))
	for _, tbl := range rollups.Daily {
		ms, err := publish.Committed(ctx, st, tbl.Name, part)
		if err != nil {
			t.Fatalf("trial %d: %s: %v", trial, tbl.Name, err)
		}
		gens := map[int64]string{}
		for _, m := range ms {
			if other, dup := gens[m.Generation]; dup {
				t.Errorf("trial %d: %s: runs %s and %s both committed generation %d", trial, tbl.Name, other, m.Run, m.Generation)
			}
			gens[m.Generation] = m.Run
		}
		has := false
		for _, in := range ms[0].Inputs {
			has = has || in.Key == "wh/"+lateKey || in.Key == lateKey
		}
		if has != withLate {
			t.Errorf("trial %d: %s: the current commit (run %s, generation %d) has the late object: %v; want %v",
				trial, tbl.Name, ms[0].Run, ms[0].Generation, has, withLate)
		}
	}
}
