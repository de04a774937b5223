package report

import (
	"context"
	"strings"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// commit publishes rows as the partition (table, d) of st, run run.
func commit[T any](t *testing.T, st store.Store, table string, d day.Day, run string, rows []T) *publish.Manifest {
	t.Helper()
	ctx := context.Background()
	files, err := publish.Write(ctx, st, publish.RunPrefix(table, d, run), rows, publish.WriterOptions{RowGroupSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	m := &publish.Manifest{Table: table, Day: d.String(), Run: run, TimeZone: "Pacific/Auckland", Files: files, Rows: int64(len(rows)), CreatedAt: fixNow()}
	if err := publish.Commit(ctx, st, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// writeLoose writes rows as a data file that no manifest lists.
func writeLoose[T any](t *testing.T, st store.Store, prefix string, rows []T) {
	t.Helper()
	if _, err := publish.Write(context.Background(), st, prefix, rows, publish.WriterOptions{RowGroupSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
}

func TestReadsOnlyWhatManifestsList(t *testing.T) {
	t.Parallel()
	st := store.NewMem()
	d := day.FromDate(2026, 11, 20)
	good := []rollups.ActiveUsersDaily{{Product: "shop", DAU: 111, WAU: ptr[int64](222), MAU: ptr[int64](333), NewUsers: 11, ReturningUsers: 100}}
	bogus := []rollups.ActiveUsersDaily{{Product: "ghost", DAU: 999_001}}
	// An older committed run, superseded: not read.
	commit(t, st, "active_users_daily", d, "01A", []rollups.ActiveUsersDaily{{Product: "old", DAU: 999_002}})
	m := commit(t, st, "active_users_daily", d, "01B", good)
	// A newer run without a manifest (a build in flight): invisible.
	writeLoose(t, st, publish.RunPrefix("active_users_daily", d, "01C"), bogus)
	// A stray file inside the current run folder, not in its manifest.
	writeLoose(t, st, publish.RunPrefix("active_users_daily", d, "01B")+"stray-", bogus)
	// A day folder with only an uncommitted run: no partition at all.
	writeLoose(t, st, publish.RunPrefix("active_users_daily", d+1, "01D"), bogus)

	page := render(t, st, Options{})
	for _, s := range []string{"999,001", "999,002", "ghost", ">old<", d.String() + " to " + (d + 1).String()} {
		if strings.Contains(page, s) {
			t.Errorf("the page shows %q, which no current manifest lists", s)
		}
	}
	tb := tablesOf(t, page)["t-active"]
	if len(tb.rows) != 1 || tb.rows[0][1] != "shop" || tb.rows[0][2] != "111" {
		t.Errorf("active table = %v, want the one row of run %s", tb.rows, m.Run)
	}
	if !strings.Contains(page, "Pacific/Auckland") {
		t.Error("the page does not name the manifests' time zone")
	}
}

// qualityV1 is data_quality_daily as first written, before late_rows and
// restated: files of that age must still read, the new columns as zero.
type qualityV1 struct {
	RawRows   int64 `parquet:"raw_rows"`
	KeptRows  int64 `parquet:"kept_rows"`
	Extra     int64 `parquet:"a_column_the_struct_lacks"`
	BadFiles  int64 `parquet:"bad_files"`
	ValidRows int64 `parquet:"valid_rows"`
}

func TestReadsFilesOfAnOlderOrNewerSchema(t *testing.T) {
	t.Parallel()
	st := store.NewMem()
	d := day.FromDate(2026, 11, 20)
	commit(t, st, "data_quality_daily", d, "01A", []qualityV1{{RawRows: 1234, KeptRows: 1200, Extra: 77, BadFiles: 2, ValidRows: 1210}})
	rows, _ := tablesOf(t, render(t, st, Options{}))["t-quality"].byKey(t, 1)
	got := rows[d.String()]
	for col, want := range map[string]string{"raw_rows": "1,234", "kept_rows": "1,200", "bad_files": "2", "late_rows": "0", "restated": ""} {
		if got[col] != want {
			t.Errorf("%s = %q, want %q", col, got[col], want)
		}
	}
}

func TestProductFilter(t *testing.T) {
	t.Parallel()
	st := warehouse(t)
	tables := tablesOf(t, render(t, st, Options{Product: "blog", From: fixFrom + 1, To: fixTo - 1}))
	for _, id := range []string{"t-active", "t-sessions", "t-retention"} {
		tb := tables[id]
		if len(tb.rows) == 0 {
			t.Errorf("%s: no rows for blog", id)
		}
		for _, r := range tb.rows {
			if r[1] != "blog" {
				t.Errorf("%s: row of product %s", id, r[1])
			}
			if r[0] < (fixFrom+1).String() || r[0] > (fixTo-1).String() {
				t.Errorf("%s: row of %s, outside the range", id, r[0])
			}
		}
	}
}

func TestEscapesEverything(t *testing.T) {
	t.Parallel()
	st := store.NewMem()
	d := day.FromDate(2026, 11, 20)
	evil := `<script>alert("x")</script><img src=x onerror=alert(1)>`
	commit(t, st, "active_users_daily", d, "01A", []rollups.ActiveUsersDaily{{Product: evil, DAU: 3, WAU: ptr[int64](3), MAU: ptr[int64](3)}})
	commit(t, st, "engagement_daily", d, "01A", []rollups.EngagementDaily{{Product: evil, Platform: evil, EventName: evil, Events: 5}})
	commit(t, st, "sessions_daily", d, "01A", []rollups.SessionsDaily{{Product: evil, Platform: evil, Sessions: 2, BouncedSessions: 1}})
	page := render(t, st, Options{})
	for _, s := range []string{"<script", "<img"} { // an escaped "onerror=" is only text
		if strings.Contains(strings.ToLower(page), s) {
			t.Errorf("the page holds %q unescaped", s)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;") {
		t.Error("the product name does not appear escaped")
	}
}

func TestEmptyStore(t *testing.T) {
	t.Parallel()
	page := render(t, store.NewMem(), Options{})
	if !strings.Contains(page, "No curated partition was found") {
		t.Error("an empty store's page does not say there is no data")
	}
}

func TestFromAfterTo(t *testing.T) {
	t.Parallel()
	err := Write(context.Background(), store.NewMem(), &strings.Builder{}, Options{From: 10, To: 9})
	if err == nil || !strings.Contains(err.Error(), "after") {
		t.Fatalf("err = %v, want one saying from is after to", err)
	}
}

func ptr[T any](v T) *T { return &v }
