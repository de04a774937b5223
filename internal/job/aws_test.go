package job

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/catalog/gluetest"
	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/store/s3fault"
	"github.com/littlewarehouse/warehouse/rollups"
)

// s3Store starts gofakes3 on 127.0.0.1 and returns a store over it, through
// the real aws-sdk-go-v2 S3 client.
func s3Store(t *testing.T) store.Store {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
	})
	return store.NewS3(client, "lake", "warehouse")
}

// TestOnS3WithGlue runs the job on an S3 store (gofakes3) with a Glue
// catalog (the gluetest server, through the real SDK client): the outputs
// equal a local run's, every partition points at its current run, a Glue
// failure half way through is repaired by the next run, and superseded runs
// are deleted only after the grace period.
func TestOnS3WithGlue(t *testing.T) {
	ctx := context.Background()
	s3st := s3Store(t)
	local, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	gcfg := gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 800, ObjectsPerHour: 1, Seed: 21})
	for _, st := range []store.Store{s3st, local} {
		if _, err := gen.Generate(ctx, st, gcfg); err != nil {
			t.Fatal(err)
		}
	}
	glueSrv := gluetest.NewT(t)
	now := time.Now().UTC() // S3 object times come from the real clock
	clock := func() time.Time { return now }
	cat := catalog.NewGlue(glueSrv.Client(), catalog.GlueOptions{Database: "warehouse", Now: clock})
	cfg := Config{Store: s3st, From: mustDay(t, "2026-07-01"), To: mustDay(t, "2026-07-03"), Rules: compact.DefaultRules(time.UTC),
		Catalog: cat, GracePeriod: 6 * time.Hour, Now: clock, Parallel: 4}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, Config{Store: local, From: cfg.From, To: cfg.To, Rules: cfg.Rules}); err != nil {
		t.Fatal(err)
	}
	want, _ := Snapshot(ctx, local, cfg.From, cfg.To)
	got, err := Snapshot(ctx, s3st, cfg.From, cfg.To)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("S3 outputs differ from a local run (-local +s3):\n%s", diff)
	}

	checkPartitions := func(t *testing.T) {
		t.Helper()
		for _, tbl := range rollups.Daily {
			parts := glueSrv.Partitions("warehouse", tbl.Name)
			if len(parts) != 3 {
				t.Errorf("%s: %d partitions in Glue, want 3", tbl.Name, len(parts))
			}
			for _, p := range parts {
				d := mustDay(t, p.Values[0])
				m, err := publish.Current(ctx, s3st, tbl.Name, d)
				if err != nil {
					t.Fatal(err)
				}
				if wantLoc := catalog.RunLocation(catalog.Root(s3st), tbl.Name, d, m.Run); p.StorageDescriptor.Location != wantLoc {
					t.Errorf("%s dt=%s points at %s, want the current run %s", tbl.Name, d, p.StorageDescriptor.Location, wantLoc)
				}
			}
		}
		raw, ok := glueSrv.Table("warehouse", "raw_events")
		if !ok || raw.Parameters["projection.enabled"] != "true" {
			t.Errorf("raw table missing or without partition projection: %+v", raw)
		}
	}
	checkPartitions(t)

	// Rebuild with Glue failing the partition switch: the run fails, the
	// next run repairs the catalog; no partition ever points at a run
	// without a manifest, and the old runs stay for readers.
	now = now.Add(time.Hour)
	glueSrv.FailCalls("BatchUpdatePartition", 20, "InternalServiceException")
	cfg.Force = true
	if _, err := Run(ctx, cfg); err == nil {
		t.Fatal("a run whose Glue calls all failed reported success")
	}
	// Right after the failure: every partition points at a complete run.
	for _, tbl := range rollups.All() {
		var locs []string
		for _, p := range glueSrv.Partitions("warehouse", tbl.Name) {
			locs = append(locs, p.StorageDescriptor.Location)
		}
		if err := catalog.VerifyCommitted(ctx, s3st, locs...); err != nil {
			t.Errorf("%s after a failed registration: %v", tbl.Name, err)
		}
	}
	cfg.Force = false
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatalf("the run after the Glue failure: %v", err)
	}
	checkPartitions(t)
	objs, _ := s3st.List(ctx, publish.PartitionPrefix("events", cfg.From))
	runs := map[string]bool{}
	for _, o := range objs {
		runs[strings.SplitN(strings.TrimPrefix(o.Key, publish.PartitionPrefix("events", cfg.From)), "/", 2)[0]] = true
	}
	if len(runs) != 2 {
		t.Errorf("within the grace period: runs %v, want the old and the new", runs)
	}
	now = now.Add(7 * time.Hour)
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	objs, _ = s3st.List(ctx, publish.PartitionPrefix("events", cfg.From))
	runs = map[string]bool{}
	for _, o := range objs {
		runs[strings.SplitN(strings.TrimPrefix(o.Key, publish.PartitionPrefix("events", cfg.From)), "/", 2)[0]] = true
	}
	if len(runs) != 1 {
		t.Errorf("after the grace period: runs %v, want only the current one", runs)
	}
	checkPartitions(t)
}

// TestOnS3ThroughFaults runs the job on S3 through a proxy that fails a
// share of the requests (500s, SlowDown, connection resets, bodies cut
// short): the SDK's retryer and the store's retries absorb them, and the
// tables equal a clean local run's, byte for byte.
func TestOnS3ThroughFaults(t *testing.T) {
	ctx := context.Background()
	backend := s3mem.New()
	if err := backend.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	proxy := s3fault.Start(t, gofakes3.New(backend).Server(), 0.05, 5)
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(proxy.URL), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
	})
	s3st := store.NewS3(client, "lake", "warehouse")
	local, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	gcfg := gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 800, ObjectsPerHour: 1, Seed: 22})
	for _, st := range []store.Store{s3st, local} {
		if _, err := gen.Generate(ctx, st, gcfg); err != nil {
			t.Fatal(err)
		}
	}
	from, to := mustDay(t, "2026-07-01"), mustDay(t, "2026-07-03")
	for _, st := range []store.Store{s3st, local} {
		if _, err := Run(ctx, Config{Store: st, From: from, To: to, Rules: compact.DefaultRules(time.UTC), Parallel: 4}); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	want, err := Snapshot(ctx, local, from-30, to+30)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Snapshot(ctx, s3st, from-30, to+30)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tables through faults differ from a clean local run (-local +s3):\n%s", diff)
	}
	requests, faults := proxy.Counts()
	n := 0
	for _, c := range faults {
		n += c
	}
	if n == 0 {
		t.Fatalf("the proxy injected no fault in %d requests", requests)
	}
	t.Logf("%d requests, faults injected: %v", requests, faults)
}
