package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// writeFiles writes one row into a run folder of partition part of table x.
func writeFiles(t *testing.T, st store.Store, part, run string) []File {
	t.Helper()
	files, err := Write(context.Background(), st, RunPrefixAt("x", part, run), []listRow{{ID: run}}, WriterOptions{RowGroupSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func current(t *testing.T, st store.Store, part string) *Manifest {
	t.Helper()
	m, err := CurrentAt(context.Background(), st, "x", part)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCommitIsFenced: a writer that built on generation N and commits
// after another writer committed N+1 loses, publishes nothing, and is told
// who won; the winner stays current.
func TestCommitIsFenced(t *testing.T) {
	ctx := context.Background()
	for _, st := range []store.Store{openStore(t), store.NewMem()} {
		const part = "dt=2026-03-01"
		if err := CommitAfter(ctx, st, &Manifest{Table: "x", Partition: part, Run: "01A", Files: writeFiles(t, st, part, "01A")}, 0); err != nil {
			t.Fatal(err)
		}
		base := current(t, st, part).Generation // both B and C read generation 1
		if err := CommitAfter(ctx, st, &Manifest{Table: "x", Partition: part, Run: "01B", Files: writeFiles(t, st, part, "01B")}, base); err != nil {
			t.Fatal(err)
		}
		err := CommitAfter(ctx, st, &Manifest{Table: "x", Partition: part, Run: "01C", Files: writeFiles(t, st, part, "01C")}, base)
		var lost *CommitLostError
		if !errors.As(err, &lost) || !errors.Is(err, ErrCommitLost) || lost.Generation != 2 || lost.Winner == nil || lost.Winner.Run != "01B" {
			t.Fatalf("stale commit = %v; want a CommitLostError naming run 01B at generation 2", err)
		}
		if m := current(t, st, part); m.Run != "01B" || m.Generation != 2 || m.Parent != 1 {
			t.Errorf("current = run %s generation %d parent %d; want 01B, 2, 1", m.Run, m.Generation, m.Parent)
		}
		if _, err := st.Stat(ctx, RunPrefixAt("x", part, "01C")+ManifestName); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("the losing run has a manifest: %v", err)
		}
		// Its folder is debris: cleanup removes it, and keeps the winner.
		if err := CleanupAt(ctx, st, "x", part, "01B", 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		if objs, _ := st.List(ctx, RunPrefixAt("x", part, "01C")); len(objs) != 0 {
			t.Errorf("the losing run left %d objects after cleanup", len(objs))
		}
		if objs, _ := st.List(ctx, RunPrefixAt("x", part, "01A")); len(objs) != 0 {
			t.Errorf("the superseded run left %d objects after cleanup", len(objs))
		}
	}
}

// TestRacingCommitsOneWinsEachGeneration: writers that all built on the
// same generation commit at once: exactly one commits.
func TestRacingCommitsOneWinsEachGeneration(t *testing.T) {
	stores := map[string]store.Store{"dir": openStore(t), "memory": store.NewMem(), "s3": fakeS3(t)}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) { raceCommits(t, st) })
	}
}

// fakeS3 is a store on an in-memory gofakes3 server on 127.0.0.1, driven
// through the real SDK client.
func fakeS3(t *testing.T) store.Store {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("bucket"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", ""),
	})
	return store.NewS3(c, "bucket", "wh")
}

// raceCommits has 8 writers commit generation 1 of one partition of st at
// once: exactly one wins, and the log holds that one generation.
func raceCommits(t *testing.T, st store.Store) {
	ctx := context.Background()
	const part, n = "dt=2026-03-01", 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		run := fmt.Sprintf("01R%d", i)
		files := writeFiles(t, st, part, run)
		wg.Go(func() {
			errs[i] = CommitAfter(ctx, st, &Manifest{Table: "x", Partition: part, Run: run, Files: files}, 0)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if !errors.Is(err, ErrCommitLost) {
			t.Errorf("commit: %v; want nil or ErrCommitLost", err)
		}
	}
	gens, err := logGens(ctx, st, "x", part)
	if won != 1 || err != nil || len(gens) != 1 || gens[0] != 1 {
		t.Errorf("%d commits won, log holds %v (%v); want exactly one, generation 1", won, gens, err)
	}
}

// TestLegacyPartitionMigratesOnItsNextCommit: a partition written before the
// log existed (manifests only in run folders) reads as before, and its next
// commit continues its generations in the log.
func TestLegacyPartitionMigratesOnItsNextCommit(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	const part = "dt=2026-03-01"
	for i, run := range []string{"02Z", "01A"} { // an old release's commits: 01A is generation 2
		m := &Manifest{Table: "x", Partition: part, Run: run, Generation: int64(i + 1), Files: writeFiles(t, st, part, run)}
		b, _ := json.Marshal(m)
		if err := st.Create(ctx, RunPrefixAt("x", part, run)+ManifestName, b); err != nil {
			t.Fatal(err)
		}
	}
	if m := current(t, st, part); m.Run != "01A" {
		t.Fatalf("legacy current = %s; want 01A", m.Run)
	}
	head, err := Head(ctx, st, "x", part)
	if err != nil || head != 2 {
		t.Fatalf("Head = %d, %v; want 2", head, err)
	}
	if err := CommitAfter(ctx, st, &Manifest{Table: "x", Partition: part, Run: "01B", Files: writeFiles(t, st, part, "01B")}, head); err != nil {
		t.Fatal(err)
	}
	if m := current(t, st, part); m.Run != "01B" || m.Generation != 3 {
		t.Errorf("after migration current = %s generation %d; want 01B, 3", m.Run, m.Generation)
	}
	ms, err := Committed(ctx, st, "x", part)
	if err != nil || len(ms) != 3 || ms[1].Run != "01A" || ms[2].Run != "02Z" {
		t.Errorf("Committed = %d runs, %v; want 01B, 01A, 02Z", len(ms), err)
	}
	// A writer that read the legacy head before the migration loses.
	if err := CommitAfter(ctx, st, &Manifest{Table: "x", Partition: part, Run: "01C", Files: writeFiles(t, st, part, "01C")}, 0); !errors.Is(err, ErrCommitLost) {
		t.Errorf("commit on parent 0 after the migration = %v; want ErrCommitLost", err)
	}
}

// TestPrunedGenerationRecreatedLoses: the log keeps its last two entries; a
// writer paused so long that the generation it commits was pruned finds a
// higher one and loses, leaving the log as it was.
func TestPrunedGenerationRecreatedLoses(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	const part = "dt=2026-03-01"
	for i, run := range []string{"01A", "01B", "01C", "01D"} {
		if err := CommitAfter(ctx, st, &Manifest{Table: "x", Partition: part, Run: run}, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if gens, _ := logGens(ctx, st, "x", part); len(gens) != 2 || gens[0] != 4 {
		t.Fatalf("log = %v; want generations 4 and 3", gens)
	}
	if err := CommitAfter(ctx, st, &Manifest{Table: "x", Partition: part, Run: "01P"}, 0); !errors.Is(err, ErrCommitLost) {
		t.Fatalf("commit of pruned generation 1 = %v; want ErrCommitLost", err)
	}
	if gens, _ := logGens(ctx, st, "x", part); len(gens) != 2 || gens[1] != 3 {
		t.Errorf("log after the lost commit = %v; want 4 and 3", gens)
	}
	if m := current(t, st, part); m.Run != "01D" {
		t.Errorf("current = %s; want 01D", m.Run)
	}
}

// TestCleanupKeepsTheHead: a writer that lost after its own commit (a later
// one superseded it) cleans up with keep = its run: the head stays.
func TestCleanupKeepsTheHead(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	const part = "dt=2026-03-01"
	for i, run := range []string{"01A", "01B"} {
		if err := CommitAfter(ctx, st, &Manifest{Table: "x", Partition: part, Run: run, Files: writeFiles(t, st, part, run)}, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := CleanupAt(ctx, st, "x", part, "01A", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if m := current(t, st, part); m.Run != "01B" {
		t.Fatalf("current = %s; want 01B", m.Run)
	}
	for _, f := range current(t, st, part).Files {
		if _, err := st.Stat(ctx, f.Key); err != nil {
			t.Errorf("the head's file %s: %v", f.Key, err)
		}
	}
}
