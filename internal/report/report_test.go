package report

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

var (
	fixFrom = day.FromDate(2026, 8, 1)
	fixTo   = day.FromDate(2026, 8, 6)
	// restatedDay gets late events after the first build.
	restatedDay = day.FromDate(2026, 8, 3)
	fixNow      = func() time.Time { return time.Date(2026, 8, 7, 6, 0, 0, 0, time.UTC) }
	// builtAt is when the job builds the fixture: 2026-08-01 and 02 are
	// final by then (end + 7 days + 15 minutes), 03 to 06 provisional.
	builtAt = func() time.Time { return time.Date(2026, 8, 10, 0, 30, 0, 0, time.UTC) }
)

var fixture struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// warehouse returns a store built by the real job from generated raw data
// (every nasty case) and the funnels of fixtureFunnels, with one day
// restated by late data. It is shared by the tests, which only read it.
func warehouse(t *testing.T) store.Store {
	t.Helper()
	fixture.once.Do(func() { fixture.dir, fixture.err = buildWarehouse() })
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	st, err := store.OpenDir(fixture.dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func buildWarehouse() (string, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "report-test-")
	if err != nil {
		return "", err
	}
	st, err := store.OpenDir(dir, false)
	if err != nil {
		return dir, err
	}
	g := gen.Nasty(gen.Config{From: fixFrom.UTC(), To: fixTo.UTC(), EventsPerDay: 800, ObjectsPerHour: 1, Seed: 15})
	if _, err := gen.Generate(ctx, st, g); err != nil {
		return dir, err
	}
	if err := st.Put(ctx, rollups.FunnelsKey, []byte(fixtureFunnels)); err != nil {
		return dir, err
	}
	cfg := job.Config{Store: st, From: fixFrom, To: fixTo, Rules: compact.DefaultRules(time.UTC), Now: builtAt}
	if _, err := job.Run(ctx, cfg); err != nil {
		return dir, err
	}
	// Late events for restatedDay, arriving on the last day: a restatement.
	arrive := fixTo.UTC().Add(15 * time.Hour)
	var late []event.Raw
	for i := 0; i < 5; i++ {
		late = append(late, event.Raw{EventID: fmt.Sprintf("late-%d", i), EventTime: restatedDay.UTC().Add(9*time.Hour + time.Duration(i)*time.Minute),
			ReceivedAt: arrive, EventName: "view", UserID: "late-user", Product: "shop", Platform: "ios"})
	}
	w, err := st.NewWriter(ctx, "raw/"+arrive.Format("2006/01/02/15")+"/events-1-late")
	if err != nil {
		return dir, err
	}
	if err := parquet.Write(w, late); err != nil {
		w.Abort()
		return dir, err
	}
	if err := w.Close(); err != nil {
		return dir, err
	}
	_, err = job.Run(ctx, cfg)
	return dir, err
}

// render writes the report of st with opt and returns the page.
func render(t *testing.T, st store.Store, opt Options) string {
	t.Helper()
	if opt.Now == nil {
		opt.Now = fixNow
	}
	var b bytes.Buffer
	if err := Write(context.Background(), st, &b, opt); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// htmlTable is a table of the page: its column names and cell texts.
type htmlTable struct {
	head []string
	rows [][]string
}

var (
	tableRE = regexp.MustCompile(`(?s)<table id="([^"]+)">(.*?)</table>`)
	rowRE   = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	cellRE  = regexp.MustCompile(`(?s)<t[hd][^>]*>(.*?)</t[hd]>`)
)

// tablesOf parses the page's tables by id. The page's markup is the
// package's own template, so a regular parse is exact.
func tablesOf(t *testing.T, page string) map[string]htmlTable {
	t.Helper()
	out := map[string]htmlTable{}
	for _, m := range tableRE.FindAllStringSubmatch(page, -1) {
		var tb htmlTable
		for i, r := range rowRE.FindAllStringSubmatch(m[2], -1) {
			var cells []string
			for _, c := range cellRE.FindAllStringSubmatch(r[1], -1) {
				cells = append(cells, strings.ReplaceAll(html.UnescapeString(c[1]), "\u200b", ""))
			}
			if i == 0 {
				tb.head = cells
			} else {
				tb.rows = append(tb.rows, cells)
			}
		}
		out[m[1]] = tb
	}
	return out
}

// byKey indexes a table's rows by the first n cells joined, and its
// columns by name.
func (tb htmlTable) byKey(t *testing.T, n int) (map[string]map[string]string, []string) {
	t.Helper()
	out := map[string]map[string]string{}
	var keys []string
	for _, r := range tb.rows {
		if len(r) != len(tb.head) {
			t.Fatalf("row %v has %d cells, the header %d", r, len(r), len(tb.head))
		}
		k := strings.Join(r[:n], "|")
		if out[k] != nil {
			t.Fatalf("row %s appears twice", k)
		}
		out[k] = map[string]string{}
		for i, c := range r {
			out[k][tb.head[i]] = c
		}
		keys = append(keys, k)
	}
	return out, keys
}

// curated reads every current partition of a table straight through
// publish.Current and parquet.Read, independently of the package.
func curated[T any](t *testing.T, st store.Store, table string) map[day.Day][]T {
	t.Helper()
	ctx := context.Background()
	out := map[day.Day][]T{}
	for d := fixFrom - 40; d <= fixTo; d++ {
		m, err := publish.Current(ctx, st, table, d)
		if err != nil {
			continue
		}
		out[d] = []T{}
		for _, f := range m.Files {
			b, err := st.Get(ctx, f.Key)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			out[d] = append(out[d], rows...)
		}
	}
	return out
}

// checkInt says whether a cell shows n (with thousands separators).
func checkInt(t *testing.T, where, got string, n int64) {
	t.Helper()
	v, err := strconv.ParseInt(strings.ReplaceAll(got, ",", ""), 10, 64)
	if err != nil || v != n {
		t.Errorf("%s: page shows %q, curated table has %d", where, got, n)
	}
}

// checkFloat says whether a cell shows v (times scale, for percentages)
// rounded to the cell's decimals.
// checkNullInt is checkInt for a nullable column: null shows as an empty cell.
func checkNullInt(t *testing.T, where, got string, n *int64) {
	t.Helper()
	if n == nil {
		if got != "" {
			t.Errorf("%s: page shows %q, curated table has null", where, got)
		}
		return
	}
	checkInt(t, where, got, *n)
}

func checkFloat(t *testing.T, where, got string, v, scale float64) {
	t.Helper()
	s := strings.TrimSuffix(strings.TrimSuffix(strings.ReplaceAll(got, ",", ""), "*"), "%")
	f, err := strconv.ParseFloat(s, 64)
	decimals := 0
	if _, frac, ok := strings.Cut(s, "."); ok {
		decimals = len(frac)
	}
	if err != nil || math.Abs(f-v*scale) > 0.5*math.Pow(10, -float64(decimals))+1e-9 {
		t.Errorf("%s: page shows %q, curated table has %v", where, got, v*scale)
	}
}

func TestPageTablesEqualCuratedRows(t *testing.T) {
	t.Parallel()
	st := warehouse(t)
	tables := tablesOf(t, render(t, st, Options{}))

	t.Run("active_users_daily row for row", func(t *testing.T) {
		rows, keys := tables["t-active"].byKey(t, 2)
		n := 0
		for d, rs := range curated[rollups.ActiveUsersDaily](t, st, "active_users_daily") {
			for _, r := range rs {
				n++
				k := d.String() + "|" + r.Product
				got := rows[k]
				if got == nil {
					t.Errorf("no row %s", k)
					continue
				}
				checkInt(t, k+" dau", got["dau"], r.DAU)
				checkNullInt(t, k+" wau", got["wau"], r.WAU)
				checkNullInt(t, k+" mau", got["mau"], r.MAU)
				checkInt(t, k+" mau_window_days", got["mau_window_days"], r.MAUWindowDays)
				checkInt(t, k+" new_users", got["new_users"], r.NewUsers)
				checkInt(t, k+" returning_users", got["returning_users"], r.ReturningUsers)
				if r.Stickiness == nil {
					if got["stickiness"] != "" {
						t.Errorf("%s stickiness: page shows %q, curated table has null", k, got["stickiness"])
					}
				} else {
					checkFloat(t, k+" stickiness", got["stickiness"], *r.Stickiness, 1)
				}
			}
		}
		if n == 0 || len(keys) != n {
			t.Errorf("page has %d rows, curated table %d", len(keys), n)
		}
	})

	t.Run("retention_daily per cohort and day_n", func(t *testing.T) {
		rows, keys := tables["t-retention"].byKey(t, 2)
		cohorts := map[string]bool{}
		known := 0
		for d, rs := range curated[rollups.RetentionDaily](t, st, "retention_daily") {
			for _, r := range rs {
				k := d.String() + "|" + r.Product
				cohorts[k] = true
				got := rows[k]
				if got == nil {
					t.Errorf("no row %s", k)
					continue
				}
				known++
				checkInt(t, k+" cohort_users", got["cohort_users"], r.CohortUsers)
				checkInt(t, fmt.Sprintf("%s day %d retained", k, r.DayN), got[fmt.Sprintf("day %d retained", r.DayN)], r.RetainedUsers)
				checkFloat(t, fmt.Sprintf("%s day %d %%", k, r.DayN), got[fmt.Sprintf("day %d %%", r.DayN)], r.Retention, 100)
			}
		}
		if known == 0 || len(keys) != len(cohorts) {
			t.Errorf("page has %d cohort rows, curated table %d", len(keys), len(cohorts))
		}
	})

	t.Run("lifecycle_daily row for row", func(t *testing.T) {
		rows, keys := tables["t-lifecycle"].byKey(t, 2)
		n, dormant := 0, 0
		for d, rs := range curated[rollups.LifecycleDaily](t, st, "lifecycle_daily") {
			for _, r := range rs {
				n++
				k := d.String() + "|" + r.Product
				got := rows[k]
				if got == nil {
					t.Errorf("no row %s", k)
					continue
				}
				checkInt(t, k+" new_users", got["new_users"], r.NewUsers)
				checkNullInt(t, k+" returning_users", got["returning_users"], r.ReturningUsers)
				checkNullInt(t, k+" resurrecting_users", got["resurrecting_users"], r.ResurrectingUsers)
				checkNullInt(t, k+" dormant_users", got["dormant_users"], r.DormantUsers)
				if r.DormantUsers != nil && *r.DormantUsers > 0 {
					dormant++
				}
			}
		}
		if n == 0 || len(keys) != n || dormant == 0 {
			t.Errorf("page has %d rows, curated table %d (%d with dormant people)", len(keys), n, dormant)
		}
	})

	t.Run("stickiness_daily over 7 days, row for row", func(t *testing.T) {
		rows, keys := tables["t-stickiness"].byKey(t, 2)
		seen := map[string]bool{}
		for d, rs := range curated[rollups.StickinessDaily](t, st, "stickiness_daily") {
			for _, r := range rs {
				if r.WindowDays != rollups.WAUDays {
					continue
				}
				k := d.String() + "|" + r.Product
				seen[k] = true
				got := rows[k]
				if got == nil {
					t.Errorf("no row %s", k)
					continue
				}
				checkInt(t, fmt.Sprintf("%s %d days", k, r.DaysActive), got[fmt.Sprintf("%d of 7 days", r.DaysActive)], r.People)
			}
		}
		// The people column is the week's active people: wau.
		for d, rs := range curated[rollups.ActiveUsersDaily](t, st, "active_users_daily") {
			for _, r := range rs {
				if k := d.String() + "|" + r.Product; rows[k] != nil && r.WAU != nil {
					checkInt(t, k+" people", rows[k]["people"], *r.WAU)
				}
			}
		}
		if len(seen) == 0 || len(keys) != len(seen) {
			t.Errorf("page has %d rows, curated table %d", len(keys), len(seen))
		}
	})

	eng := curated[rollups.EngagementDaily](t, st, "engagement_daily")
	t.Run("top events are the sums of engagement_daily", func(t *testing.T) {
		total := map[string]int64{}
		for _, rs := range eng {
			for _, r := range rs {
				total[r.EventName] += r.Events
			}
		}
		names := make([]string, 0, len(total))
		for n := range total {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			if total[names[i]] != total[names[j]] {
				return total[names[i]] > total[names[j]]
			}
			return names[i] < names[j]
		})
		tb := tables["t-top-events"]
		if len(tb.rows) != min(len(names), topEvents) {
			t.Fatalf("page ranks %d events, want %d", len(tb.rows), min(len(names), topEvents))
		}
		for i, r := range tb.rows {
			if r[0] != names[i] {
				t.Errorf("rank %d: page has %s, want %s", i+1, r[0], names[i])
			}
			checkInt(t, r[0], r[1], total[names[i]])
		}
	})

	t.Run("events per day are the sums of engagement_daily", func(t *testing.T) {
		tb := tables["t-event-trend"]
		rows, _ := tb.byKey(t, 1)
		for d, rs := range eng {
			var all int64
			per := map[string]int64{}
			for _, r := range rs {
				all += r.Events
				per[r.EventName] += r.Events
			}
			got := rows[d.String()]
			if got == nil {
				t.Errorf("no row for %s", d)
				continue
			}
			checkInt(t, d.String()+" all events", got["all events"], all)
			for _, name := range tb.head[2:] {
				checkInt(t, d.String()+" "+name, got[name], per[name])
			}
		}
	})

	t.Run("sessions_daily row for row", func(t *testing.T) {
		rows, keys := tables["t-sessions"].byKey(t, 3)
		n := 0
		for d, rs := range curated[rollups.SessionsDaily](t, st, "sessions_daily") {
			for _, r := range rs {
				n++
				k := d.String() + "|" + r.Product + "|" + r.Platform
				got := rows[k]
				if got == nil {
					t.Errorf("no row %s", k)
					continue
				}
				checkInt(t, k+" sessions", got["sessions"], r.Sessions)
				checkInt(t, k+" bounced_sessions", got["bounced_sessions"], r.BouncedSessions)
				checkFloat(t, k+" bounce rate", got["bounce rate"], float64(r.BouncedSessions)/float64(r.Sessions), 100)
				checkFloat(t, k+" avg", got["avg_session_seconds"], r.AvgSessionSeconds, 1)
				checkFloat(t, k+" p50", got["p50_session_seconds"], r.P50SessionSeconds, 1)
				checkFloat(t, k+" p90", got["p90_session_seconds"], r.P90SessionSeconds, 1)
				checkFloat(t, k+" events_per_session", got["events_per_session"], r.EventsPerSession, 1)
			}
		}
		if n == 0 || len(keys) != n {
			t.Errorf("page has %d rows, curated table %d", len(keys), n)
		}
	})

	t.Run("data_quality_daily, every column of the struct", func(t *testing.T) {
		tb := tables["t-quality"]
		rows, keys := tb.byKey(t, 1)
		q := curated[rollups.DataQualityDaily](t, st, "data_quality_daily")
		if len(keys) != len(q) || len(q) == 0 {
			t.Errorf("page has %d days, curated table %d", len(keys), len(q))
		}
		typ := reflect.TypeFor[rollups.DataQualityDaily]()
		// dt, and every column but date (dt's copy in the files).
		if len(tb.head) != typ.NumField() {
			t.Errorf("page shows %d columns, data_quality_daily has %d (+ dt, − date)", len(tb.head), typ.NumField())
		}
		restated := 0
		for d, rs := range q {
			for _, r := range rs {
				v := reflect.ValueOf(r)
				for i := 0; i < typ.NumField(); i++ {
					name, _, _ := strings.Cut(typ.Field(i).Tag.Get("parquet"), ",")
					got := rows[d.String()][name]
					switch f := v.Field(i); f.Kind() {
					case reflect.Int64:
						checkInt(t, d.String()+" "+name, got, f.Int())
					case reflect.Bool:
						if want := map[bool]string{true: "yes"}[f.Bool()]; got != want {
							t.Errorf("%s %s: page shows %q, want %q", d, name, got, want)
						}
					}
				}
				if r.Restated {
					restated++
				}
			}
		}
		if rs := q[restatedDay]; restated == 0 || len(rs) != 1 || !rs[0].Restated {
			t.Errorf("fixture: %s is not restated (%d restated days)", restatedDay, restated)
		}
	})

	t.Run("partition build times are the manifests' created_at", func(t *testing.T) {
		rows, _ := tables["t-partitions"].byKey(t, 1)
		ctx := context.Background()
		for d := fixFrom; d <= fixTo; d++ {
			for _, table := range reportTables {
				m, err := publish.Current(ctx, st, table, d)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := rows[d.String()][table], m.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"); got != want {
					t.Errorf("%s %s: page shows %q, manifest says %q", d, table, got, want)
				}
			}
		}
	})
}

// TestProvisionalAndStartOfData: the provisional days are shaded in every
// time chart and greyed in the tables with until when late events may
// arrive, the retention cells that depend on them are starred, the first
// day of data says everyone is new, and with six days of data WAU and MAU
// are one line named so (not a MAU line hiding WAU).
func TestProvisionalAndStartOfData(t *testing.T) {
	t.Parallel()
	st := warehouse(t)
	page := render(t, st, Options{})
	if !strings.Contains(page, "4 provisional days (shaded in the charts, grey in the tables): 2026-08-03 .. 2026-08-06. "+
		"Late events may still arrive for them (until 2026-08-14 00:15 UTC for the last one;") {
		t.Errorf("no note on the provisional days in:\n%.3000s", page)
	}
	// Expected completeness: every provisional day was built more than 72
	// hours after its end; the final days (08-01, 08-02) had received all
	// but late_rows_72h of their events by then.
	var kept, late int64
	for d, rs := range curated[rollups.DataQualityDaily](t, st, "data_quality_daily") {
		if d < fixFrom+2 {
			kept, late = kept+rs[0].KeptRows, late+rs[0].LateRows72h
		}
	}
	if late == 0 {
		t.Error("no final day received events 72 hours late: the estimate is not exercised")
	}
	expected := fmt.Sprintf("; about %.0f%% of a day's events had arrived by the age this one was built at, over the final days shown", math.Floor(float64(kept-late)/float64(kept)*100))
	for d := fixFrom; d <= fixTo; d++ {
		until := time.Date(2026, 8, 1, 0, 15, 0, 0, time.UTC).AddDate(0, 0, int(d-fixFrom)+8).Format("2006-01-02 15:04")
		row := `provisional"><td title="provisional: late events may still arrive until ` + until + ` UTC` + html.EscapeString(expected) + `">` + d.String() + `</td>`
		n := strings.Count(page, row)
		if provisional := d >= fixFrom+2; provisional && n < 3 || !provisional && n != 0 {
			t.Errorf("%s: %d table rows marked provisional until %s", d, n, until)
		}
	}
	charts := regexp.MustCompile(`(?s)<svg id="(c-[a-z0-9-]+)".*?</svg>`).FindAllStringSubmatch(page, -1)
	shaded := 0
	for _, c := range charts {
		if n := strings.Count(c[0], `fill="`+provisionalFill+`"`); n > 0 {
			shaded++
			if n != 4 {
				t.Errorf("chart %s shades %d days, want 4", c[1], n)
			}
		}
	}
	if shaded < 8 {
		t.Errorf("%d charts shade the provisional days, want every time chart", shaded)
	}
	if !regexp.MustCompile(`\d+\.\d%\*`).MatchString(page) {
		t.Error("no retention cell is starred provisional")
	}
	if !strings.Contains(page, `<tr class="start"><td title="first day of data: everyone is new">2026-08-01</td>`) || !strings.Contains(page, "2026-08-01 is the first day of data") {
		t.Error("the first day of data is not marked")
	}
	if !strings.Contains(page, "WAU = MAU (under 28 days of data)") || strings.Contains(page, ">MAU (28 days)<") {
		t.Error("with six days of data, the chart should draw WAU and MAU as one line named so")
	}
}
