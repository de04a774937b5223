package job

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/catalog/gluetest"
	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/erasure"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/segment"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// person is someone to erase: a user_id and the device_id it signed in on.
type person struct {
	user, device string
	rows         int64 // raw rows (of the good objects) holding either id
	days         int   // days of received_at those rows span
	dups, late   int   // rows sharing an event_id with another, rows received an hour or more after event_time
}

// pickPerson finds, among the good objects, the person with the most rows
// whose rows span several days, include duplicates and late events, and
// whose ids appear in no bad object (those cannot be searched; see
// erasure.Verification.Unsearchable).
func pickPerson(t *testing.T, st store.Store, rep gen.Report) person {
	t.Helper()
	ctx := context.Background()
	var rows []raw.Row
	for _, k := range rep.Objects {
		rs, err := raw.Read(ctx, st, k)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, rs...)
	}
	var badBytes [][]byte
	for _, k := range rep.BadObjects {
		b, _ := st.Get(ctx, k)
		badBytes = append(badBytes, b)
	}
	device := map[string]string{}
	for _, r := range rows {
		if r.UserID != "" && r.DeviceID != "" {
			device[r.UserID] = r.DeviceID
		}
	}
	var best person
	for u, d := range device {
		p := person{user: u, device: d}
		ids, days := map[string]int{}, map[int64]bool{}
		for _, r := range rows {
			if r.UserID == u || r.DeviceID == d {
				p.rows++
				ids[r.EventID]++
				days[r.ReceivedAt/86400000] = true
				if r.HasEventTime && r.ReceivedAt-r.EventTime > 3600000 {
					p.late++
				}
			}
		}
		for _, n := range ids {
			if n > 1 {
				p.dups += n
			}
		}
		p.days = len(days)
		inBad := slices.ContainsFunc(badBytes, func(b []byte) bool {
			return bytes.Contains(b, []byte(u)) || bytes.Contains(b, []byte(d))
		})
		if !inBad && p.days >= 3 && p.dups > 0 && p.late > 0 && p.rows > best.rows {
			best = p
		}
	}
	if best.user == "" {
		t.Fatal("no person with rows on several days, duplicates and late events")
	}
	return best
}

// noIDAnywhere fails if any file under root holds one of ids: every file
// is scanned byte by byte, every Parquet file is read whole with DuckDB,
// and every segment is decoded (its strings are compressed).
func noIDAnywhere(t *testing.T, root string, ids ...string) {
	t.Helper()
	ctx := context.Background()
	db := openDuck(t)
	files, parquets := 0, 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, id := range ids {
			if bytes.Contains(b, []byte(id)) {
				t.Errorf("%s holds %q", p, id)
			}
		}
		switch {
		case strings.Contains(p, funnelEventsPrefix):
			fe, err := rollups.DecodeFunnelEvents(b)
			if err != nil {
				t.Errorf("funnel events %s: %v", p, err)
				return nil
			}
			for _, x := range fe.Persons {
				if slices.Contains(ids, strings.TrimPrefix(x.UserKey, "anon:")) {
					t.Errorf("funnel events %s hold the person %s", p, x.UserKey)
				}
			}
		case strings.HasSuffix(p, ".lwseg"):
			s, err := segment.Decode(b)
			if err != nil {
				t.Errorf("segment %s: %v", p, err)
				return nil
			}
			for i := range s.Events.Dict.Len() {
				if slices.Contains(ids, s.Events.Dict.Str(uint32(i))) {
					t.Errorf("segment %s holds one of the ids", p)
				}
			}
			for _, q := range s.Quarantine {
				if slices.Contains(ids, q.UserID) || slices.Contains(ids, q.DeviceID) {
					t.Errorf("segment %s quarantines a row of the person", p)
				}
			}
		case bytes.HasPrefix(b, []byte("PAR1")) && bytes.HasSuffix(b, []byte("PAR1")):
			var cond []string
			for _, id := range ids {
				cond = append(cond, fmt.Sprintf("contains(t::VARCHAR, '%s')", id))
			}
			rows, err := db.Query(ctx, fmt.Sprintf("SELECT count(*) AS n FROM read_parquet('%s') AS t WHERE %s", p, strings.Join(cond, " OR ")))
			if err != nil {
				return nil // not readable as Parquet (a bad object): scanned byte by byte above
			}
			parquets++
			if n := rows[0]["n"].(int64); n > 0 {
				t.Errorf("%s: DuckDB reads %d rows holding the person's ids", p, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if parquets < 10 {
		t.Fatalf("only %d Parquet files of %d read", parquets, files)
	}
}

// copyPrefixes copies the objects under prefixes from one store to another.
func copyPrefixes(t *testing.T, from, to store.Store, prefixes ...string) {
	t.Helper()
	ctx := context.Background()
	for _, p := range prefixes {
		objs, err := from.List(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			b, err := from.Get(ctx, o.Key)
			if err != nil {
				t.Fatal(err)
			}
			if err := to.Put(ctx, o.Key, b); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestEraseAPerson erases a person with events on several days, some late
// and some duplicated, signed in and anonymous: no file of the store holds
// their ids after it; the raw objects hold exactly the other rows; every
// table equals a clean build of them, and DuckDB's reference SQL over the
// original rows minus the person's; a forced rebuild does not bring them
// back; the receipt's counts match.
func TestEraseAPerson(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	rep, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 4), EventsPerDay: 1500, Users: 40, Seed: 3}))
	if err != nil {
		t.Fatal(err)
	}
	from, to := day.FromDate(2026, 3, 31), day.FromDate(2026, 4, 6)
	now := d1.AddDate(0, 0, 8)
	cfg := Config{Store: st, From: from, To: to, Rules: compact.DefaultRules(time.UTC), Parallel: 4, Now: func() time.Time { return now }}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := pickPerson(t, st, rep)
	t.Logf("erasing a person with %d raw rows on %d days, %d duplicated, %d late", p.rows, p.days, p.dups, p.late)
	origDir := t.TempDir()
	orig, err := store.OpenDir(origDir, false)
	if err != nil {
		t.Fatal(err)
	}
	copyPrefixes(t, st, orig, "raw/")
	before := personRowsInTables(t, root, p)
	t.Logf("their rows in the tables before: %v", before)

	req, err := erasure.Record(ctx, st, "", []string{p.user, "anon:" + p.device}, now)
	if err != nil {
		t.Fatal(err)
	}
	rcs, err := Erase(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rcs) != 1 || rcs[0].Request != req.ID {
		t.Fatalf("receipts %+v, want one for %s", rcs, req.ID)
	}
	rc := rcs[0]
	noIDAnywhere(t, root, p.user, p.device)

	t.Run("its restatements name the request", func(t *testing.T) {
		// The data was built once before the erase (no restatement): every
		// restatement now is the erase's.
		n := 0
		for d := from; d <= to; d++ {
			m, err := publish.Current(ctx, st, rollups.RestatementsTable.Name, d)
			if errors.Is(err, store.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			rows, err := manifestRows[rollups.Restatement](ctx, st, m)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				n++
				if r.Cause != "erasure "+req.ID {
					t.Errorf("%s %s.%s restated by run %s with cause %q; want %q", d, r.TableName, r.ColumnName, r.Run, r.Cause, "erasure "+req.ID)
				}
			}
		}
		if n == 0 {
			t.Error("the erase restated nothing: the test does not test what it should")
		}
	})

	t.Run("the receipt's counts match", func(t *testing.T) {
		want := map[string]int64{"raw": p.rows}
		for k, v := range before {
			if v > 0 {
				want[k] = v
			}
		}
		if diff := cmp.Diff(want, rc.RowsRemoved); diff != "" {
			t.Errorf("rows removed (-want +receipt):\n%s", diff)
		}
		if rc.Verification.RowsFound != 0 || rc.Verification.RawObjects == 0 || rc.Verification.TableFiles == 0 || rc.Verification.Segments == 0 {
			t.Errorf("verification %+v", rc.Verification)
		}
		if len(rc.DaysRebuilt) < p.days {
			t.Errorf("days rebuilt %v, want at least %d", rc.DaysRebuilt, p.days)
		}
		st, err := erasure.List(ctx, st)
		if err != nil || len(st) != 1 || !st[0].Done() {
			t.Errorf("status %+v, %v: want one request, done", st, err)
		}
	})

	t.Run("the raw objects hold every other row, unchanged", func(t *testing.T) {
		rawRowsWithout(t, orig, st, p)
	})

	t.Run("tables equal a clean build of the raw objects left", func(t *testing.T) {
		clean := store.NewMem()
		copyPrefixes(t, st, clean, "raw/", "raw-errors/")
		ccfg := cfg
		ccfg.Store = clean
		if _, err := Run(ctx, ccfg); err != nil {
			t.Fatal(err)
		}
		if diff := tablesDiff(t, clean, st, from, to); diff != "" {
			t.Errorf("(-clean +erased):\n%s", diff)
		}
		// data_quality_daily too, but for restated: the erase changed the days.
		for d := from; d <= to; d++ {
			if diff := cmp.Diff(qualityOf(t, clean, d), qualityOf(t, st, d)); diff != "" {
				t.Errorf("data_quality_daily %s (-clean +erased):\n%s", d, diff)
			}
		}
	})

	t.Run("tables equal DuckDB's reference SQL over the original rows minus the person's", func(t *testing.T) {
		tablesAgainstReference(t, root, origDir, rep, p, from, to)
	})

	t.Run("a forced rebuild does not bring the person back", func(t *testing.T) {
		fcfg := cfg
		fcfg.Force = true
		if _, err := Run(ctx, fcfg); err != nil {
			t.Fatal(err)
		}
		noIDAnywhere(t, root, p.user, p.device)
		tablesAgainstReference(t, root, origDir, rep, p, from, to)
	})
}

// personRowsInTables counts the person's rows in the curated tables that
// hold ids (as the receipt counts them).
func personRowsInTables(t *testing.T, root string, p person) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	db := openDuck(t)
	if err := db.ViewCurated(ctx, root, "events", "quarantine", "user_daily", "users"); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for table, cond := range map[string]string{
		"events":     "user_id = '%[1]s' OR device_id = '%[2]s'",
		"quarantine": "user_id = '%[1]s' OR device_id = '%[2]s'",
		"user_daily": "user_key IN ('%[1]s', 'anon:%[2]s')",
		"users":      "user_key IN ('%[1]s', 'anon:%[2]s')",
	} {
		out[table] = queryOne[int64](t, ctx, db, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", table, fmt.Sprintf(cond, p.user, p.device)))
	}
	// users_state: one row per person and bucket run, as users.
	out["users_state"] = out["users"]
	if out["events"] == 0 || out["user_daily"] == 0 || out["quarantine"] == 0 {
		t.Fatalf("the person is in events, user_daily or quarantine before the erase: %v", out)
	}
	return out
}

// rawRowsWithout checks that the raw objects of st hold exactly the rows
// of orig's but the people's, each object's in order.
func rawRowsWithout(t *testing.T, orig, st store.Store, ps ...person) {
	t.Helper()
	ctx := context.Background()
	objs, err := orig.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	now, err := st.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, o := range now {
		have[o.Key] = true
	}
	rewritten := 0
	for _, o := range objs {
		want, err := raw.Read(ctx, orig, o.Key)
		if err != nil {
			continue // a bad object: left as it is
		}
		want = slices.DeleteFunc(want, func(r raw.Row) bool {
			return slices.ContainsFunc(ps, func(p person) bool { return r.UserID == p.user || r.DeviceID == p.device })
		})
		key := o.Key
		if !have[key] {
			rewritten++
			key = o.Key + "~erased-"
			for _, n := range now {
				if strings.HasPrefix(n.Key, key) {
					key = n.Key
				}
			}
		}
		got, err := raw.Read(ctx, st, key)
		if len(want) == 0 && err != nil {
			continue // every row was the person's: the object is gone
		}
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		for i := range got {
			got[i].Source = o.Key
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-original without the person +now):\n%s", key, diff)
		}
	}
	if rewritten == 0 {
		t.Error("no raw object was rewritten")
	}
}

// tablesAgainstReference checks the tables of the store at root against
// DuckDB: events against the reference SQL over the original good raw
// objects (a copy at origDir) minus the person's rows, and every rollup
// against its reference SQL over those events.
func tablesAgainstReference(t *testing.T, root, origDir string, rep gen.Report, p person, from, to day.Day) {
	t.Helper()
	ctx := context.Background()
	db := openDuck(t)
	loadReference(t, ctx, db, origDir, rep.Objects, "UTC")
	for _, q := range []string{
		fmt.Sprintf("DELETE FROM raw WHERE user_id = '%s' OR device_id = '%s'", p.user, p.device),
		"CREATE OR REPLACE TABLE routed AS " + rollups.RefSQL("routed"),
		"CREATE OR REPLACE TABLE ref_events AS " + rollups.RefSQL("events"),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	if err := db.ViewCurated(ctx, root, tableNames()...); err != nil {
		t.Fatal(err)
	}
	inRange := fmt.Sprintf("dt BETWEEN DATE '%s' AND DATE '%s'", from, to)
	for _, q := range []string{
		fmt.Sprintf("SELECT count(*) FROM (SELECT %s FROM ref_events WHERE %s EXCEPT ALL SELECT %s FROM events)", eventCols, inRange, eventCols),
		fmt.Sprintf("SELECT count(*) FROM (SELECT %s FROM events EXCEPT ALL SELECT %s FROM ref_events WHERE %s)", eventCols, eventCols, inRange),
	} {
		if n := queryOne[int64](t, ctx, db, q); n != 0 {
			t.Errorf("events: %d rows differ from the reference", n)
		}
	}
	for _, q := range []string{
		fmt.Sprintf("CREATE TABLE days AS SELECT unnest(range(DATE '%s', DATE '%s' + 1, INTERVAL 1 DAY))::DATE AS dt", from, to),
		"CREATE TABLE built AS SELECT dt, provisional FROM data_quality_daily",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	grains := map[string]string{
		"engagement_daily": "dt, product, platform, event_name", "user_daily": "dt, product, user_key",
		"sessions_daily": "dt, product, platform", "paths_daily": "dt, product, from_event, to_event", "active_users_daily": "dt, product",
		"retention_daily": "dt, product, day_n", "users": "product, user_key",
	}
	for _, tbl := range rollups.All() {
		order := grains[tbl.Name]
		if tbl.SQL == "" || order == "" {
			continue
		}
		ref, err := db.Query(ctx, fmt.Sprintf("SELECT * FROM (%s) ORDER BY %s", tbl.SQL, order))
		if err != nil {
			t.Fatal(err)
		}
		// date (dt's copy inside the files) and a day table's provisional
		// mark are not functions of the rows: duckdb_test checks them.
		var exclude []string
		if hasDate(tbl) {
			exclude = append(exclude, "date")
		}
		if slices.ContainsFunc(rollups.Daily, func(d rollups.Table) bool { return d.Name == tbl.Name }) {
			exclude = append(exclude, "provisional")
		}
		cols := "*"
		if len(exclude) > 0 {
			cols = "* EXCLUDE (" + strings.Join(exclude, ", ") + ")"
		}
		q := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s", cols, tbl.Name, inRange, order)
		if tbl.PartitionKey() != "dt" {
			q = fmt.Sprintf("SELECT * EXCLUDE (%s) FROM %s ORDER BY %s", tbl.PartitionKey(), tbl.Name, order)
		}
		ours, err := db.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) == 0 {
			t.Fatalf("%s: no rows", tbl.Name)
		}
		if diff := cmp.Diff(ref, ours, cmpopts.EquateApprox(1e-9, 0)); diff != "" {
			t.Errorf("%s (-reference +ours):\n%s", tbl.Name, diff)
		}
	}
}

// TestEraseRowsDeliveredLate: an object Firehose delivers after the erase,
// holding rows received before the request, is erased by the next run's
// late check, with a late receipt; rows received after the request are
// new data and stay; once no such object can arrive any more, a run
// closes the request, and later runs leave it alone.
func TestEraseRowsDeliveredLate(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	at := func(hm string) time.Time { return parseTime(t, "2026-07-01T"+hm+":00Z") }
	row := func(id, user string, received time.Time) event.Raw {
		return event.Raw{EventID: id, EventTime: received.Add(-time.Second), ReceivedAt: received, EventName: "open", UserID: user, Product: "shop", Platform: "web"}
	}
	key := func(h time.Time, name string) string { return "raw/" + h.Format("2006/01/02/15") + "/events-1-" + name }
	writeRaw(t, st, key(at("10:00"), "a"), []event.Raw{row("a1", "gone", at("10:00")), row("a2", "stays", at("10:01"))})
	d := day.FromDate(2026, 7, 1)
	clock := at("12:00")
	cfg := Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC), Parallel: 2, Now: func() time.Time { return clock }}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	req, err := erasure.Record(ctx, st, "shop", []string{"gone"}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if rcs, err := Erase(ctx, cfg); err != nil || len(rcs) != 1 || rcs[0].RowsRemoved["raw"] != 1 {
		t.Fatalf("erase: %+v, %v", rcs, err)
	}
	// Delivered late: a retry of 11:30's records, and the person coming back at 13:00.
	writeRaw(t, st, key(at("11:00"), "b"), []event.Raw{row("b1", "gone", at("11:30")), row("b2", "stays", at("11:31"))})
	writeRaw(t, st, key(at("13:00"), "c"), []event.Raw{row("c1", "gone", at("13:00"))})
	clock = at("14:00")
	rcs, err := Erase(ctx, cfg)
	if err != nil || len(rcs) != 1 || !rcs[0].Late || rcs[0].RowsRemoved["raw"] != 1 || len(rcs[0].DaysRebuilt) != 1 {
		t.Fatalf("late check: %+v, %v; want a late receipt of one row", rcs, err)
	}
	list, err := erasure.List(ctx, st)
	if err != nil || len(list) != 1 || len(list[0].Late) != 1 || !list[0].CheckedAt().Before(req.WatchUntil()) {
		t.Fatalf("status %+v, %v: want one late receipt, still watching", list, err)
	}
	clock = req.WatchUntil().Add(time.Minute)
	if rcs, err := Erase(ctx, cfg); err != nil || len(rcs) != 1 || !rcs[0].Late || len(rcs[0].Objects) != 0 {
		t.Fatalf("closing check: %+v, %v", rcs, err)
	}
	if rcs, err := Erase(ctx, cfg); err != nil || len(rcs) != 0 {
		t.Fatalf("after closing: %+v, %v; want nothing done", rcs, err)
	}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range readRows[rollups.Event](t, st, "events", d) {
		ids = append(ids, e.EventID)
	}
	slices.Sort(ids)
	if diff := cmp.Diff([]string{"a2", "b2", "c1"}, ids); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	clean := store.NewMem()
	copyPrefixes(t, st, clean, "raw/")
	ccfg := cfg
	ccfg.Store = clean
	if _, err := Run(ctx, ccfg); err != nil {
		t.Fatal(err)
	}
	if diff := tablesDiff(t, clean, st, d, d); diff != "" {
		t.Errorf("(-clean +erased):\n%s", diff)
	}
}

// TestEraseOnS3WithGlue erases a person on an S3 store (gofakes3, through
// the real SDK) registered in Glue: the tables equal a local erase's; the
// receipt names the superseded runs kept for the grace period, and once
// it has passed and a run cleaned up, no object of the bucket holds the
// person's ids (every object scanned byte by byte, every Parquet file read
// with DuckDB, every segment decoded, on a local copy).
func TestEraseOnS3WithGlue(t *testing.T) {
	ctx := context.Background()
	s3st := s3Store(t)
	localRoot := t.TempDir()
	local, err := store.OpenDir(localRoot, false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	gcfg := gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 800, ObjectsPerHour: 1, Users: 30, Seed: 23})
	var rep gen.Report
	for _, st := range []store.Store{s3st, local} {
		if rep, err = gen.Generate(ctx, st, gcfg); err != nil {
			t.Fatal(err)
		}
		putFunnels(t, st, testFunnels) // funnel events beside the events, to erase too
	}
	glueSrv := gluetest.NewT(t)
	now := time.Now().UTC() // S3 object times come from the real clock
	clock := func() time.Time { return now }
	cat := catalog.NewGlue(glueSrv.Client(), catalog.GlueOptions{Database: "warehouse", Now: clock})
	from, to := mustDay(t, "2026-07-01"), mustDay(t, "2026-07-03")
	cfg := Config{Store: s3st, From: from, To: to, Rules: compact.DefaultRules(time.UTC), Catalog: cat, GracePeriod: 6 * time.Hour, Now: clock, Parallel: 4}
	lcfg := Config{Store: local, From: from, To: to, Rules: cfg.Rules, Now: clock}
	for _, c := range []Config{cfg, lcfg} {
		if _, err := Run(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	p := pickPerson(t, local, rep)
	now = now.Add(time.Hour)
	var rcs [2][]*erasure.Receipt
	for i, c := range []Config{cfg, lcfg} {
		if _, err := erasure.Record(ctx, c.Store, "", []string{p.user, "anon:" + p.device}, now); err != nil {
			t.Fatal(err)
		}
		if rcs[i], err = Erase(ctx, c); err != nil || len(rcs[i]) != 1 {
			t.Fatalf("erase: %v, %v", rcs[i], err)
		}
	}
	if diff := cmp.Diff(rcs[1][0].RowsRemoved, rcs[0][0].RowsRemoved); diff != "" {
		t.Errorf("rows removed (-local +s3):\n%s", diff)
	}
	if len(rcs[0][0].Verification.AwaitingCleanup) == 0 {
		t.Error("the receipt names no superseded run kept for the grace period")
	}
	if !slices.ContainsFunc(rcs[0][0].Verification.AwaitingCleanup, func(k string) bool { return strings.Contains(k, funnelEventsPrefix) }) {
		t.Errorf("the receipt names no superseded funnel events file: %v", rcs[0][0].Verification.AwaitingCleanup)
	}
	now = now.Add(7 * time.Hour)
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if diff := tablesDiff(t, local, s3st, from, to); diff != "" {
		t.Errorf("tables after the erase and the grace period (-local +s3):\n%s", diff)
	}
	copyRoot := t.TempDir()
	cp, err := store.OpenDir(copyRoot, false)
	if err != nil {
		t.Fatal(err)
	}
	copyPrefixes(t, s3st, cp, "")
	noIDAnywhere(t, copyRoot, p.user, p.device)
}

// TestEraseFirehoseErrorRecords: records Firehose could not convert that
// are the person's are removed from the error file (the others kept byte
// for byte), so quarantine counts one conversion failure less per record,
// and no object holds the person's id.
func TestEraseFirehoseErrorRecords(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	h := parseTime(t, "2026-07-01T10:00:00Z")
	writeRaw(t, st, "raw/2026/07/01/10/events-1-a", []event.Raw{{EventID: "a1", EventTime: h, ReceivedAt: h, EventName: "open", UserID: "stays", Product: "shop", Platform: "web"}})
	line := func(user string) string {
		data := base64.StdEncoding.EncodeToString([]byte(`{"event_name":"open","user_id":"` + user + `","product":"shop","event_time":"not a time"}`))
		return fmt.Sprintf(`{"attemptsMade":1,"arrivalTimestamp":%d,"errorCode":"DataFormatConversion.InvalidSchema","errorMessage":"bad","rawData":"%s"}`, h.UnixMilli(), data)
	}
	errKey := "raw-errors/format-conversion-failed/2026/07/01/10/x-1"
	other := line("stays")
	if err := st.Put(ctx, errKey, []byte(line("gone")+"\n"+other+"\n"+line("gone")+"\n")); err != nil {
		t.Fatal(err)
	}
	d := day.FromDate(2026, 7, 1)
	now := h.Add(48 * time.Hour)
	cfg := Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC), Now: func() time.Time { return now }}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	failures := func() int {
		n := 0
		for _, q := range readRows[rollups.Quarantine](t, st, "quarantine", d) {
			if q.Reason == "conversion_failed" {
				n++
			}
		}
		return n
	}
	if n := failures(); n != 3 {
		t.Fatalf("%d conversion failures quarantined before, want 3", n)
	}
	if _, err := erasure.Record(ctx, st, "shop", []string{"gone"}, now); err != nil {
		t.Fatal(err)
	}
	rcs, err := Erase(ctx, cfg)
	if err != nil || len(rcs) != 1 || rcs[0].RowsRemoved["raw-errors"] != 2 || len(rcs[0].Objects) != 1 {
		t.Fatalf("erase: %+v, %v; want one error file rewritten, two records removed", rcs, err)
	}
	if n := failures(); n != 1 {
		t.Errorf("%d conversion failures quarantined after, want 1", n)
	}
	b, err := st.Get(ctx, rcs[0].Objects[0].NewKey)
	if err != nil || string(b) != other+"\n" {
		t.Errorf("the error file now holds %q (%v), want the other record as it was", b, err)
	}
	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs { // the error file's records are base64: checked above, whole
		b, _ := st.Get(ctx, o.Key)
		if bytes.Contains(b, []byte(`"gone"`)) {
			t.Errorf("%s holds the id", o.Key)
		}
	}
}

// TestBuildWhileAnObjectIsRewritten: a build that runs after an erase
// wrote an object's rewrite and before it deleted the object (a rollup
// that found the erase lease held and built without it, or a night whose
// Erase state ran out of time there) reads the rewrite alone, never both.
// A day first built then has the data_quality_daily and quarantine of a
// clean build of the objects with the rewrite in place of the original; a
// day built before from the original is left as it was (its build covers
// an object still there), for the erase to rebuild.
func TestBuildWhileAnObjectIsRewritten(t *testing.T) {
	for _, builtBefore := range []bool{false, true} {
		t.Run(fmt.Sprintf("built before %t", builtBefore), func(t *testing.T) {
			buildWhileRewritten(t, builtBefore)
		})
	}
}

func buildWhileRewritten(t *testing.T, builtBefore bool) {
	ctx := context.Background()
	st := store.NewMem()
	h := parseTime(t, "2026-07-01T10:00:00Z")
	row := func(id, user, name string, min int) event.Raw {
		at := h.Add(time.Duration(min) * time.Minute)
		return event.Raw{EventID: id, EventTime: at.Add(-time.Second), ReceivedAt: at, EventName: name, UserID: user, Product: "shop", Platform: "web"}
	}
	key := "raw/2026/07/01/10/events-1-a"
	writeRaw(t, st, key, []event.Raw{
		row("a1", "gone", "open", 1), row("a2", "stays", "open", 2), row("a2", "stays", "open", 2), // a duplicate
		row("a3", "stays", "", 3), row("a4", "gone", "", 4), // invalid: quarantined
		row("a5", "stays", "buy", 5),
	})
	writeRaw(t, st, "raw/2026/07/01/10/events-1-b", []event.Raw{row("b1", "other", "open", 6), row("b1", "other", "open", 6)})
	d := day.FromDate(2026, 7, 1)
	now := h.Add(48 * time.Hour)
	cfg := Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC), Parallel: 2, Now: func() time.Time { return now }}
	var before *rollups.DataQualityDaily
	if builtBefore {
		if _, err := Run(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		before = qualityOf(t, st, d)
	}
	if _, err := erasure.Record(ctx, st, "shop", []string{"gone"}, now); err != nil {
		t.Fatal(err)
	}
	quarantine := func(st store.Store) []rollups.Quarantine {
		q := readRows[rollups.Quarantine](t, st, "quarantine", d)
		slices.SortFunc(q, func(a, b rollups.Quarantine) int { return strings.Compare(a.EventID+a.Reason, b.EventID+b.Reason) })
		return q
	}
	checked := false
	hook := withEraseHook(func(step string) error {
		if step != "delete "+key {
			return nil
		}
		objs, err := st.List(ctx, "raw/")
		if err != nil {
			return err
		}
		if len(objs) != 3 {
			t.Fatalf("before the delete, %d raw objects, want the original, its rewrite and the other", len(objs))
		}
		now = now.Add(time.Hour)
		if _, err := Run(ctx, cfg); err != nil {
			t.Fatalf("a build between the rewrite and the delete: %v", err)
		}
		clean := store.NewMem()
		for _, o := range objs {
			if o.Key == key {
				continue // what a build may read: the rewrite in its place
			}
			b, err := st.Get(ctx, o.Key)
			if err != nil {
				t.Fatal(err)
			}
			if err := clean.Put(ctx, o.Key, b); err != nil {
				t.Fatal(err)
			}
		}
		ccfg := cfg
		ccfg.Store = clean
		if _, err := Run(ctx, ccfg); err != nil {
			t.Fatal(err)
		}
		got := qualityOf(t, st, d)
		if builtBefore {
			if diff := cmp.Diff(before, got); diff != "" {
				t.Errorf("data_quality_daily after a build between rewrite and delete (-before +got):\n%s", diff)
			}
		} else {
			if diff := cmp.Diff(qualityOf(t, clean, d), got); diff != "" {
				t.Errorf("data_quality_daily of a build between rewrite and delete (-clean +got):\n%s", diff)
			}
			if diff := cmp.Diff(quarantine(clean), quarantine(st)); diff != "" {
				t.Errorf("quarantine of a build between rewrite and delete (-clean +got):\n%s", diff)
			}
		}
		checked = true
		return nil
	})
	rcs, err := Erase(ctx, cfg, hook)
	if err != nil || len(rcs) != 1 || rcs[0].RowsRemoved["raw"] != 2 {
		t.Fatalf("erase: %+v, %v", rcs, err)
	}
	if !checked {
		t.Fatal("the erase never reached the delete of the rewritten object")
	}
	// After the erase, the day equals a clean build of what is left.
	clean := store.NewMem()
	copyPrefixes(t, st, clean, "raw/")
	ccfg := cfg
	ccfg.Store = clean
	if _, err := Run(ctx, ccfg); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(qualityOf(t, clean, d), qualityOf(t, st, d)); diff != "" {
		t.Errorf("data_quality_daily after the erase (-clean +got):\n%s", diff)
	}
	if diff := cmp.Diff(quarantine(clean), quarantine(st)); diff != "" {
		t.Errorf("quarantine after the erase (-clean +got):\n%s", diff)
	}
}

// TestEraseRowWithAFutureReceivedAt: a row of the person stamped 2099 by a
// collector's bad clock, in an object stored before the request, was
// received before it: it is erased with the others, and does not pass for
// the person coming back.
func TestEraseRowWithAFutureReceivedAt(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	h := parseTime(t, "2026-07-01T10:00:00Z")
	future := parseTime(t, "2099-01-01T00:00:00Z")
	writeRaw(t, st, "raw/2026/07/01/10/events-1-a", []event.Raw{
		{EventID: "a1", EventTime: h, ReceivedAt: h, EventName: "open", UserID: "gone", Product: "shop", Platform: "web"},
		{EventID: "a2", EventTime: h, ReceivedAt: future, EventName: "open", UserID: "gone", Product: "shop", Platform: "web"},
		{EventID: "a3", EventTime: h, ReceivedAt: h, EventName: "open", UserID: "stays", Product: "shop", Platform: "web"},
	})
	d := day.FromDate(2026, 7, 1)
	now := time.Now().UTC() // after the object was stored (the store's clock)
	cfg := Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC), Parallel: 2, Now: func() time.Time { return now }}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := erasure.Record(ctx, st, "shop", []string{"gone"}, now); err != nil {
		t.Fatal(err)
	}
	rcs, err := Erase(ctx, cfg)
	if err != nil || len(rcs) != 1 {
		t.Fatalf("erase: %+v, %v", rcs, err)
	}
	if n := rcs[0].RowsRemoved["raw"]; n != 2 {
		t.Errorf("%d raw rows removed, want 2 (the 2099 one included)", n)
	}
	objs, err := st.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		rows, err := raw.Read(ctx, st, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.UserID == "gone" {
				t.Errorf("%s still holds the person's row %s (received_at %d)", o.Key, r.EventID, r.ReceivedAt)
			}
		}
	}
	for _, q := range readRows[rollups.Quarantine](t, st, "quarantine", d) {
		if q.UserID == "gone" {
			t.Errorf("quarantine still holds the person's row %s", q.EventID)
		}
	}
}

// TestEraseVerificationIgnoresOnlyLaterDays: a person who came back after
// the request (rows received after it, on a later day) rightly stays in
// that day's user_daily and in users; but a user_daily partition of a day
// before the request that still holds them (here: its rebuild lost, as by
// a run killed between the day's tables) fails the verification, and no
// receipt is written until a run rebuilds it.
func TestEraseVerificationIgnoresOnlyLaterDays(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	at := func(s string) time.Time { return parseTime(t, s) }
	row := func(id, user string, received time.Time) event.Raw {
		return event.Raw{EventID: id, EventTime: received.Add(-time.Second), ReceivedAt: received, EventName: "open", UserID: user, Product: "shop", Platform: "web"}
	}
	writeRaw(t, st, "raw/2026/07/01/10/events-1-a", []event.Raw{row("a1", "gone", at("2026-07-01T10:00:00Z")), row("a2", "stays", at("2026-07-01T10:01:00Z"))})
	requested := at("2026-07-02T12:00:00Z")
	writeRaw(t, st, "raw/2026/07/03/10/events-1-c", []event.Raw{row("c1", "gone", at("2026-07-03T10:00:00Z")), row("c2", "stays", at("2026-07-03T10:01:00Z"))})
	from, to := day.FromDate(2026, 7, 1), day.FromDate(2026, 7, 3)
	now := at("2026-07-06T00:00:00Z")
	cfg := Config{Store: st, From: from, To: to, Rules: compact.DefaultRules(time.UTC), Parallel: 2, Now: func() time.Time { return now }}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// The day's user_daily as built before the erase: its files and its
	// commit log.
	early := []string{"curated/user_daily/dt=2026-07-01/", publish.LogPrefix("user_daily", "dt=2026-07-01")}
	old := map[string][]byte{}
	for _, p := range early {
		objs, err := st.List(ctx, p)
		if err != nil || len(objs) == 0 {
			t.Fatalf("%s: %v, %v", p, objs, err)
		}
		for _, o := range objs {
			if old[o.Key], err = st.Get(ctx, o.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	req, err := erasure.Record(ctx, st, "shop", []string{"gone"}, requested)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	lose := withEraseHook(func(step string) error {
		if step != "verify" {
			return nil
		}
		for _, p := range early {
			objs, err := st.List(ctx, p)
			if err != nil {
				return err
			}
			for _, o := range objs {
				if err := st.Delete(ctx, o.Key); err != nil {
					return err
				}
			}
		}
		for k, b := range old {
			if err := st.Put(ctx, k, b); err != nil {
				return err
			}
		}
		return nil
	})
	if _, err := Erase(ctx, cfg, lose); err == nil {
		t.Error("the erase succeeded while user_daily of 2026-07-01, before the request, holds the person")
	}
	if _, err := erasure.ReadReceipt(ctx, st, req.ID); err == nil {
		t.Error("a receipt was written")
	}
	// Run again, the erase rebuilds the day and finishes; the person who
	// came back on 2026-07-03 stays there.
	rcs, err := Erase(ctx, cfg)
	if err != nil || len(rcs) != 1 {
		t.Fatalf("erase run again: %+v, %v", rcs, err)
	}
	for d, want := range map[day.Day]bool{from: false, to: true} {
		var users []string
		for _, u := range readRows[rollups.UserDaily](t, st, "user_daily", d) {
			users = append(users, u.UserKey)
		}
		if slices.Contains(users, "gone") != want {
			t.Errorf("user_daily of %s holds %v; want the person there %t", d, users, want)
		}
	}
}

// TestEraseErrorRecordsOfAnyType: a Firehose error record whose user_id
// is a number (why Firehose rejected it) is erased; a record that cannot
// be decoded is kept and its file named unsearchable in the receipt, not
// counted clean.
func TestEraseErrorRecordsOfAnyType(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	h := parseTime(t, "2026-07-01T10:00:00Z")
	writeRaw(t, st, "raw/2026/07/01/10/events-1-a", []event.Raw{{EventID: "a1", EventTime: h, ReceivedAt: h, EventName: "open", UserID: "stays", Product: "shop", Platform: "web"}})
	rec := func(event string) string {
		return fmt.Sprintf(`{"attemptsMade":1,"arrivalTimestamp":%d,"errorCode":"DataFormatConversion.InvalidSchema","errorMessage":"bad","rawData":"%s"}`,
			h.UnixMilli(), base64.StdEncoding.EncodeToString([]byte(event)))
	}
	numbered := "raw-errors/format-conversion-failed/2026/07/01/10/x-1"
	other := rec(`{"event_name":"open","user_id":"stays","product":"shop"}`)
	if err := st.Put(ctx, numbered, []byte(rec(`{"event_name":"open","user_id":12345,"product":"shop"}`)+"\n"+other+"\n")); err != nil {
		t.Fatal(err)
	}
	garbled := "raw-errors/format-conversion-failed/2026/07/01/10/x-2"
	if err := st.Put(ctx, garbled, []byte(rec(`user_id=12345`)+"\n")); err != nil {
		t.Fatal(err)
	}
	d := day.FromDate(2026, 7, 1)
	now := h.Add(48 * time.Hour)
	cfg := Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC), Now: func() time.Time { return now }}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := erasure.Record(ctx, st, "shop", []string{"12345"}, now); err != nil {
		t.Fatal(err)
	}
	rcs, err := Erase(ctx, cfg)
	if err != nil || len(rcs) != 1 {
		t.Fatalf("erase: %+v, %v", rcs, err)
	}
	if n := rcs[0].RowsRemoved["raw-errors"]; n != 1 {
		t.Errorf("%d error records removed, want 1", n)
	}
	if !slices.Contains(rcs[0].Verification.Unsearchable, garbled) {
		t.Errorf("unsearchable %v: want %s named", rcs[0].Verification.Unsearchable, garbled)
	}
	objs, err := st.List(ctx, "raw-errors/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, _ := st.Get(ctx, o.Key)
		if o.Key != garbled && strings.Contains(string(b), base64.StdEncoding.EncodeToString([]byte(`"user_id":12345`))[:8]) && !strings.Contains(string(b), other) {
			t.Errorf("%s: %q", o.Key, b)
		}
		if strings.HasPrefix(o.Key, numbered) && string(b) != other+"\n" {
			t.Errorf("%s holds %q, want the other record alone", o.Key, b)
		}
	}
}

// TestWithoutRewritten: a listing leaves out every object an erase has
// rewritten and not deleted yet, of every generation, and nothing else.
func TestWithoutRewritten(t *testing.T) {
	var objs []rawObject
	for _, k := range []string{
		"raw/2026/07/01/10/a", "raw/2026/07/01/10/a~erased-1", "raw/2026/07/01/10/a~erased-1~erased-2",
		"raw/2026/07/01/10/b", "raw/2026/07/01/10/b~erased-3", "raw/2026/07/01/10/c", "raw/2026/07/01/10/ab",
	} {
		objs = append(objs, rawObject{Object: store.Object{Key: k}})
	}
	var got []string
	for _, o := range withoutRewritten(objs) {
		got = append(got, o.Key)
	}
	want := []string{"raw/2026/07/01/10/a~erased-1~erased-2", "raw/2026/07/01/10/b~erased-3", "raw/2026/07/01/10/c", "raw/2026/07/01/10/ab"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}
}
