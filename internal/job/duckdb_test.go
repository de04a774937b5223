package job

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// nastyData generates 7 days of eventgen data with every nasty case, then,
// after two days with no data at all, a day with a single event. It returns
// the reports and the first and last generated UTC days.
func nastyData(t *testing.T, st store.Store, perDay int) ([]gen.Report, day.Day, day.Day) {
	t.Helper()
	ctx := context.Background()
	d1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	week := gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 6), EventsPerDay: perDay, Seed: 7})
	week.INT96Objects = 3
	r1, err := gen.Generate(ctx, st, week)
	if err != nil {
		t.Fatal(err)
	}
	// One event at noon UTC, which is the same day in UTC and in Auckland.
	single := d1.AddDate(0, 0, 9).Add(12 * time.Hour)
	key := "raw/" + single.Format("2006/01/02/15") + "/events-1-" + single.Format("2006-01-02-15-04-05") + "-single"
	writeRaw(t, st, key, []event.Raw{{EventID: "single-1", EventTime: single.Add(-time.Second), ReceivedAt: single,
		EventName: "app_open", UserID: "lonely", Product: "shop", Platform: "web"}})
	r1.Objects = append(r1.Objects, key)
	return []gen.Report{r1}, day.FromDate(d1.Date()), day.FromDate(single.Date())
}

func sqlList(root string, keys []string) string {
	var b strings.Builder
	b.WriteString("[")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "'%s'", filepath.Join(root, k))
	}
	b.WriteString("]")
	return b.String()
}

// loadReference loads the good raw objects into DuckDB as `raw` (filename
// relative to the store, like our source keys) and computes the reference
// `routed` and `ref_events` tables in time zone tz.
func loadReference(t *testing.T, ctx context.Context, db *duckref.DB, root string, good []string, tz string) {
	t.Helper()
	stmts := []string{
		"SET TimeZone = 'UTC'",
		fmt.Sprintf("CREATE TABLE raw AS SELECT * REPLACE (replace(filename, '%s/', '') AS filename) FROM read_parquet(%s, union_by_name = true, filename = true)", root, sqlList(root, good)),
		fmt.Sprintf("SET TimeZone = '%s'", tz),
		"CREATE TABLE routed AS " + rollups.RefSQL("routed"),
		"CREATE TABLE ref_events AS " + rollups.RefSQL("events"),
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
	}
}

func queryOne[T any](t *testing.T, ctx context.Context, db *duckref.DB, q string) T {
	t.Helper()
	var v T
	if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return v
}

const eventCols = `dt, event_id, epoch_ms(event_time) AS event_time, epoch_ms(client_event_time) AS client_event_time,
	epoch_ms(received_at) AS received_at, event_name, user_id, device_id, session_id, product, platform, app_version, country,
	nullif(list_sort(list_transform(map_entries(properties), x -> x.key || '=' || coalesce(x.value, '<null>'))), []) AS properties,
	user_key, session_key, clock_skewed`

// TestAgainstDuckDB builds nasty eventgen data in UTC and Pacific/Auckland
// and checks every table against DuckDB running the reference SQL in
// rollups/ on the same data: events from the raw objects, quality and
// quarantine counts from the routed raw rows, each rollup from our events.
func TestAgainstDuckDB(t *testing.T) {
	for _, tz := range []string{"UTC", "Pacific/Auckland"} {
		t.Run(tz, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			loc, err := time.LoadLocation(tz)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			st, err := store.OpenDir(root, false)
			if err != nil {
				t.Fatal(err)
			}
			reports, first, last := nastyData(t, st, 2000)
			putFunnels(t, st, testFunnels)
			from, to := first-1, last+1
			// Built two days after the last day: the days within max_lateness
			// of that are provisional, the others final.
			now := last.End(loc).Add(48 * time.Hour)
			rules := compact.DefaultRules(loc)
			sum, err := Run(ctx, Config{Store: st, From: from, To: to, Rules: rules, Parallel: 4, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			var good, bad []string
			for _, r := range reports {
				good = append(good, r.Objects...)
				bad = append(bad, r.BadObjects...)
			}
			sort.Strings(bad)

			db := openDuck(t)
			loadReference(t, ctx, db, root, good, tz)
			if err := db.ViewCurated(ctx, root, tableNames()...); err != nil {
				t.Fatal(err)
			}
			inRange := fmt.Sprintf("dt BETWEEN DATE '%s' AND DATE '%s'", from, to)

			t.Run("every nasty case is present", func(t *testing.T) {
				checks := map[string]string{
					"duplicates":        "SELECT sum(duplicates_dropped) FROM data_quality_daily",
					"invalid rows":      "SELECT sum(invalid_rows) FROM data_quality_daily",
					"clock skew":        "SELECT count(*) FROM events WHERE clock_skewed AND client_event_time IS NOT NULL",
					"missing times":     "SELECT count(*) FROM events WHERE client_event_time IS NULL",
					"late events":       "SELECT count(*) FROM events WHERE received_at >= (dt + 1)::TIMESTAMPTZ",
					"inferred session":  "SELECT count(*) FROM events WHERE session_key LIKE 'i:%'",
					"client session":    "SELECT count(*) FROM events WHERE session_key LIKE 's:%'",
					"anonymous users":   "SELECT count(*) FROM events WHERE user_key LIKE 'anon:%'",
					"properties":        "SELECT count(*) FROM events WHERE properties IS NOT NULL",
					"funnel conversion": "SELECT count(*) FROM funnel_daily WHERE step > 1 AND people > 0",
					"INT96 rows":        fmt.Sprintf("SELECT count(*) FROM raw WHERE filename IN (%s)", strings.Trim(sqlList("", reports[0].INT96Objects), "[]")),
				}
				for name, q := range checks {
					if n := queryOne[int64](t, ctx, db, q); n == 0 {
						t.Errorf("%s: none in the data (%s)", name, q)
					}
				}
				if len(bad) < 3 {
					t.Errorf("bad objects = %v, want one of each kind", bad)
				}
				counts := queryOne[string](t, ctx, db, `SELECT string_agg(kept_rows::VARCHAR, ',' ORDER BY dt) FROM data_quality_daily`)
				if !strings.Contains(","+counts+",", ",0,") || !strings.Contains(","+counts+",", ",1,") {
					t.Errorf("kept rows per day %s: want a day with no events and a day with one", counts)
				}
			})

			t.Run("events equal the reference", func(t *testing.T) {
				for _, q := range []string{
					fmt.Sprintf("SELECT count(*) FROM (SELECT %s FROM ref_events WHERE %s EXCEPT ALL SELECT %s FROM events)", eventCols, inRange, eventCols),
					fmt.Sprintf("SELECT count(*) FROM (SELECT %s FROM events EXCEPT ALL SELECT %s FROM ref_events WHERE %s)", eventCols, eventCols, inRange),
				} {
					if n := queryOne[int64](t, ctx, db, q); n != 0 {
						rows, _ := db.Query(ctx, strings.Replace(q, "SELECT count(*) FROM", "SELECT * FROM", 1)+" LIMIT 5")
						t.Errorf("%d rows differ, e.g. %v", n, rows)
					}
				}
				if n := queryOne[int64](t, ctx, db, "SELECT count(*) FROM events"); n < 10000 {
					t.Errorf("only %d events", n)
				}
			})

			t.Run("data quality equals the reference", func(t *testing.T) {
				ours, err := db.Query(ctx, `SELECT dt, raw_rows, valid_rows, kept_rows, duplicates_dropped, invalid_rows, clock_skewed_rows, missing_event_time_rows, late_rows, late_rows_6h, late_rows_24h, late_rows_72h FROM data_quality_daily ORDER BY dt`)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := db.Query(ctx, fmt.Sprintf(`
					WITH days AS (SELECT unnest(range(DATE '%s', DATE '%s' + 1, INTERVAL 1 DAY))::DATE AS dt),
					r AS (SELECT dt, count(*) AS raw_rows, count(*) FILTER (WHERE invalid_reason IS NULL) AS valid_rows,
					             count(*) FILTER (WHERE invalid_reason IS NOT NULL) AS invalid_rows FROM routed GROUP BY dt),
					k AS (SELECT dt, count(*) AS kept_rows, count(*) FILTER (WHERE clock_skewed AND client_event_time IS NOT NULL) AS clock_skewed_rows,
					             count(*) FILTER (WHERE client_event_time IS NULL) AS missing_event_time_rows,
					             count(*) FILTER (WHERE received_at >= (dt + 1)::TIMESTAMP AT TIME ZONE '%[3]s') AS late_rows,
					             count(*) FILTER (WHERE received_at >= (dt + 1)::TIMESTAMP AT TIME ZONE '%[3]s' + INTERVAL 6 HOUR) AS late_rows_6h,
					             count(*) FILTER (WHERE received_at >= (dt + 1)::TIMESTAMP AT TIME ZONE '%[3]s' + INTERVAL 24 HOUR) AS late_rows_24h,
					             count(*) FILTER (WHERE received_at >= (dt + 1)::TIMESTAMP AT TIME ZONE '%[3]s' + INTERVAL 72 HOUR) AS late_rows_72h
					      FROM ref_events GROUP BY dt)
					SELECT days.dt, coalesce(raw_rows, 0) AS raw_rows, coalesce(valid_rows, 0) AS valid_rows, coalesce(kept_rows, 0) AS kept_rows,
					       coalesce(valid_rows, 0) - coalesce(kept_rows, 0) AS duplicates_dropped, coalesce(invalid_rows, 0) AS invalid_rows,
					       coalesce(clock_skewed_rows, 0) AS clock_skewed_rows, coalesce(missing_event_time_rows, 0) AS missing_event_time_rows,
					       coalesce(late_rows, 0) AS late_rows,
					       coalesce(late_rows_6h, 0) AS late_rows_6h, coalesce(late_rows_24h, 0) AS late_rows_24h, coalesce(late_rows_72h, 0) AS late_rows_72h
					FROM days LEFT JOIN r USING (dt) LEFT JOIN k USING (dt) ORDER BY dt`, from, to, tz))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(ref, ours); diff != "" {
					t.Errorf("data_quality_daily (-reference +ours):\n%s", diff)
				}
				if queryOne[int64](t, ctx, db, "SELECT sum(late_rows_24h) FROM data_quality_daily") == 0 {
					t.Error("no event arrived a day late: the arrival profile is not exercised")
				}
				for _, r := range ours {
					if r["raw_rows"].(int64) != r["kept_rows"].(int64)+r["duplicates_dropped"].(int64)+r["invalid_rows"].(int64) {
						t.Errorf("%v: raw rows != kept + duplicates + invalid", r)
					}
				}
				// The split: events counted at received_at are either
				// without an event_time or with one that was off.
				for _, q := range []string{
					"SELECT sum(missing_event_time_rows) FROM data_quality_daily",
					"SELECT sum(clock_skewed_rows) FROM data_quality_daily",
				} {
					if queryOne[int64](t, ctx, db, q) == 0 {
						t.Errorf("none in the data: %s", q)
					}
				}
				if n := queryOne[int64](t, ctx, db, `SELECT (SELECT count(*) FROM events WHERE clock_skewed) -
					(SELECT sum(clock_skewed_rows + missing_event_time_rows) FROM data_quality_daily)`); n != 0 {
					t.Errorf("events.clock_skewed counts %d more than clock_skewed_rows + missing_event_time_rows", n)
				}
			})

			t.Run("quarantine holds every invalid row and bad object", func(t *testing.T) {
				ours, err := db.Query(ctx, `SELECT dt, reason, count(*) AS n FROM quarantine WHERE reason NOT LIKE 'bad_object%' GROUP BY ALL ORDER BY ALL`)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := db.Query(ctx, fmt.Sprintf(`SELECT dt, invalid_reason AS reason, count(*) AS n FROM routed WHERE invalid_reason IS NOT NULL AND %s GROUP BY ALL ORDER BY ALL`, inRange))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(ref, ours); diff != "" {
					t.Errorf("invalid rows in quarantine (-reference +ours):\n%s", diff)
				}
				got := strings.Split(queryOne[string](t, ctx, db, `SELECT coalesce(string_agg(source_object, ',' ORDER BY source_object), '') FROM quarantine WHERE reason LIKE 'bad_object%'`), ",")
				if diff := cmp.Diff(bad, got); diff != "" {
					t.Errorf("bad objects in quarantine (-eventgen +ours):\n%s", diff)
				}
				if n := queryOne[int64](t, ctx, db, "SELECT sum(bad_files) FROM data_quality_daily"); n != int64(len(bad)) {
					t.Errorf("bad_files = %d, want %d", n, len(bad))
				}
				if len(sum.BadObjects) != len(bad) {
					t.Errorf("summary names %d bad objects, want %d", len(sum.BadObjects), len(bad))
				}
			})

			grains := map[string]string{
				"engagement_daily":   "dt, product, platform, event_name",
				"user_daily":         "dt, product, user_key",
				"sessions_daily":     "dt, product, platform",
				"paths_daily":        "dt, product, from_event, to_event, is_other",
				"active_users_daily": "dt, product",
				"retention_daily":    "dt, product, day_n",
				"lifecycle_daily":    "dt, product",
				"stickiness_daily":   "dt, product, window_days, days_active",
				"funnel_daily":       "dt, product, funnel, step",
				"dim_date":           "dt",
				"users":              "product, user_key",
			}
			// Inputs of the windowed SQL: the days computed and the as-of day.
			for _, q := range []string{
				fmt.Sprintf("CREATE TABLE days AS SELECT unnest(range(DATE '%s', DATE '%s' + 1, INTERVAL 1 DAY))::DATE AS dt", from, to),
				"CREATE TABLE built AS SELECT dt, provisional FROM data_quality_daily",
				"CREATE TABLE funnel_steps AS " + mustParseFunnels(t, testFunnels).FunnelStepsSQL(),
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if sum.Windowed == nil || sum.Windowed.AsOf != to {
				t.Fatalf("windowed stage: %+v, want as of %s", sum.Windowed, to)
			}
			t.Run("every day table's date is its dt", func(t *testing.T) {
				for _, tbl := range rollups.All() {
					if !hasDate(tbl) || tbl.History { // a clean build has no restatements
						continue
					}
					q := fmt.Sprintf("SELECT count(*) FILTER (WHERE date IS DISTINCT FROM dt), count(*) FROM %s", tbl.Name)
					var bad, n int64
					if err := db.QueryRowContext(ctx, q).Scan(&bad, &n); err != nil {
						t.Fatalf("%v\n%s", err, q)
					}
					if bad != 0 || n == 0 {
						t.Errorf("%s: %d of %d rows have a date other than their dt", tbl.Name, bad, n)
					}
				}
			})
			for _, tbl := range rollups.All() {
				if tbl.SQL == "" {
					continue
				}
				t.Run(tbl.Name+" equals its reference SQL", func(t *testing.T) {
					order := grains[tbl.Name]
					if order == "" {
						t.Fatalf("no grain for %s in this test", tbl.Name)
					}
					ref, err := db.Query(ctx, fmt.Sprintf("SELECT * FROM (%s) ORDER BY %s", tbl.SQL, order))
					if err != nil {
						t.Fatal(err)
					}
					// The date column is dt's copy inside the files: checked
					// by "every day table's date is its dt", not by the SQL.
					var exclude []string
					if hasDate(tbl) && tbl.Name != rollups.DimDateTable.Name {
						exclude = append(exclude, "date")
					}
					if slices.ContainsFunc(rollups.Daily, func(d rollups.Table) bool { return d.Name == tbl.Name }) {
						// A day table's mark is the day's, not a function of
						// its events: checked below, not by its reference SQL.
						exclude = append(exclude, "provisional")
						marks, err := db.Query(ctx, fmt.Sprintf("SELECT DISTINCT dt, provisional FROM %s WHERE %s ORDER BY dt", tbl.Name, inRange))
						if err != nil {
							t.Fatal(err)
						}
						var provisional int
						for _, m := range marks {
							d, err := day.Parse(m["dt"].(string))
							if err != nil {
								t.Fatal(err)
							}
							if want := rollups.Provisional(d, loc, rules.MaxLateness, now); m["provisional"] != want {
								t.Errorf("%s %s: provisional %v, want %t", tbl.Name, d, m["provisional"], want)
							}
							if m["provisional"] == true {
								provisional++
							}
						}
						if provisional == 0 || provisional == len(marks) {
							t.Errorf("%s: %d of %d days provisional; the test wants both kinds", tbl.Name, provisional, len(marks))
						}
					}
					q := fmt.Sprintf("SELECT * %s FROM %s WHERE %s ORDER BY %s", excluding(exclude), tbl.Name, inRange, order)
					if tbl.PartitionKey() != "dt" {
						q = fmt.Sprintf("SELECT * EXCLUDE (%s) FROM %s ORDER BY %s", tbl.PartitionKey(), tbl.Name, order)
					}
					ours, err := db.Query(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if len(ours) == 0 {
						t.Fatal("no rows")
					}
					if diff := cmp.Diff(ref, ours, cmpopts.EquateApprox(1e-9, 0)); diff != "" {
						t.Errorf("%s (-reference +ours):\n%s", tbl.Name, diff)
					}
				})
			}
		})
	}
}

// hasDate reports whether t has the date column (dt inside its files).
func hasDate(t rollups.Table) bool {
	return slices.ContainsFunc(t.Columns(), func(c rollups.Column) bool { return c.Name == "date" })
}

// excluding is the EXCLUDE clause of SELECT * for cols ("" for none).
func excluding(cols []string) string {
	if len(cols) == 0 {
		return ""
	}
	return "EXCLUDE (" + strings.Join(cols, ", ") + ")"
}
