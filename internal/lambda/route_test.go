package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/index"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/store/storetest"
)

// indexed returns the raw objects the index holds, and how many of them
// feed two days or more of from..to.
func indexed(t *testing.T, st store.Store, from, to day.Day) (entries []index.Entry, multiDay int) {
	t.Helper()
	ix, err := index.Load(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ix.Entries() {
		if n := len(slices.DeleteFunc(slices.Clone(e.Days), func(d day.Day) bool { return d < from || d > to })); n >= 2 {
			multiDay++
		}
	}
	return ix.Entries(), multiDay
}

// TestRouteOnce: four stale days whose raw objects (one an hour, late rows
// among them) feed several days each. The route workers read every raw
// object exactly once, the day workers read none, the coordinator reads
// none, and the published tables equal a local job.Run's byte for byte.
func TestRouteOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rc := storetest.CountReads(f.st, "raw/")
	f.env.Store = rc
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	workers := &asyncWorkers{env: f.env, timeout: time.Minute}
	sum := coordinate(t, f, from, to, workers, &workers.wg, Options{Concurrency: 4})
	if sum.Status != RunDone || sum.Planned != 4 || sum.Built != 4 {
		t.Fatalf("summary: %+v", sum)
	}

	entries, multiDay := indexed(t, f.st, from, to)
	if multiDay == 0 {
		t.Fatal("no raw object feeds two of the stale days: the data does not test what it should")
	}
	reads := rc.Snapshot()
	t.Logf("%d raw objects indexed, %d feed two days or more; route phase: %+v", len(entries), multiDay, sum.Route)
	for _, e := range entries {
		if reads[e.Key] != 1 {
			t.Errorf("%s (feeds %v, bad %q) read %d times, want once", e.Key, e.Days, e.Bad, reads[e.Key])
		}
		delete(reads, e.Key)
	}
	for k, n := range reads {
		t.Errorf("%s read %d times but not indexed", k, n)
	}

	r := sum.Route
	if r == nil || r.Objects != len(entries) || r.Routed != len(entries) || r.Parts != 4 || r.Workers != 4 ||
		r.Rounds != 1 || r.Failed != 0 || r.Pending != 0 || r.Fallback || r.BadObjects == 0 || r.Bytes == 0 {
		t.Errorf("route summary: %+v; want %d objects in 4 parts", r, len(entries))
	}
	if len(workers.routes) != 4 || len(workers.routed) != 4 {
		t.Errorf("route parts invoked %v, reported %d", workers.routes, len(workers.routed))
	}
	for _, res := range workers.routed {
		if res.Status != StatusRouted {
			t.Errorf("route part %d: %+v", res.Part, res)
		}
	}
	if sum.Totals.RawObjects != 0 || sum.Totals.RawBytes != 0 {
		t.Errorf("the day workers read %d raw objects (%d bytes); want none", sum.Totals.RawObjects, sum.Totals.RawBytes)
	}
	b, err := f.st.Get(ctx, SummaryKey(sum.Run))
	if err != nil || !strings.Contains(string(b), `"route": {`) {
		t.Errorf("stored summary without the route phase: %s, %v", b, err)
	}

	if _, err := job.Run(ctx, job.Config{Store: f.copy, From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	snapshotsEqual(t, f.copy, f.st, from, to)

	// Again: nothing to route, nothing read.
	sum, err = Coordinate(ctx, f.env.jobConfig(from, to), workers, Options{})
	workers.wg.Wait()
	if err != nil || sum.Route != nil || sum.Planned != 0 {
		t.Errorf("second run: %+v, %v", sum, err)
	}
	if after := rc.Snapshot(); len(after) != len(entries) || slices.ContainsFunc(entries, func(e index.Entry) bool { return after[e.Key] != 1 }) {
		t.Errorf("the second run read raw objects")
	}
}

// failingRoutes runs day workers as asyncWorkers does, and route workers
// configured with another raw prefix (they fail for good, reading
// nothing) for the parts fail says.
type failingRoutes struct {
	*asyncWorkers
	bad  *Env
	fail func(part int) bool
}

func (w *failingRoutes) Invoke(ctx context.Context, ev WorkerEvent) error {
	if ev.Part > 0 && w.fail(ev.Part) {
		req, err := parseWorkerEvent(ev)
		if err != nil {
			return err
		}
		res, err := RunRouteWorker(ctx, w.bad, req)
		if err != nil || res.Status != StatusFailed || !strings.Contains(res.Error, "not a raw object under elsewhere/") {
			return fmt.Errorf("route worker with a wrong prefix: %+v, %v", res, err)
		}
		return nil
	}
	return w.asyncWorkers.Invoke(ctx, ev)
}

// TestRouteFallback: route workers that fail cost reads, never
// correctness.
func TestRouteFallback(t *testing.T) {
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	run := func(t *testing.T, fail func(part int) bool) (*RunSummary, *fixture, map[string]int) {
		ctx := context.Background()
		f := newFixture(t)
		rc := storetest.CountReads(f.st, "raw/")
		f.env.Store = rc
		bad := *f.env
		bad.Config.RawPrefix = "elsewhere/"
		workers := &failingRoutes{asyncWorkers: &asyncWorkers{env: f.env, timeout: time.Minute}, bad: &bad, fail: fail}
		sum := coordinate(t, f, from, to, workers, &workers.wg, Options{Concurrency: 4})
		if sum.Status != RunDone || sum.Built != 4 {
			t.Fatalf("summary: %+v", sum)
		}
		if _, err := job.Run(ctx, job.Config{Store: f.copy, From: from, To: to}); err != nil {
			t.Fatal(err)
		}
		snapshotsEqual(t, f.copy, f.st, from, to)
		return sum, f, rc.Snapshot()
	}

	// One part fails: the plan indexes its objects from their time
	// columns, and a second round routes them; the day workers still read
	// nothing.
	t.Run("one part", func(t *testing.T) {
		sum, f, reads := run(t, func(part int) bool { return part == 1 })
		r := sum.Route
		if r == nil || r.Rounds != 2 || r.Failed != 1 || !r.Fallback || r.PartList[0].Status != StatusFailed ||
			!strings.Contains(r.PartList[0].Error, "elsewhere/") {
			t.Fatalf("route summary: %+v", r)
		}
		second := checkSecondRound(t, sum)
		entries, _ := indexed(t, f.st, from, to)
		twice := 0
		for _, e := range entries {
			switch n := reads[e.Key]; n {
			case 1:
			case 2:
				twice++ // its part failed: scanned by the plan, routed in round 2
			default:
				t.Errorf("%s read %d times", e.Key, n)
			}
		}
		if twice != second {
			t.Errorf("%d objects read twice; want the %d of round 2", twice, second)
		}
	})

	// Every part fails, in both rounds: the day workers route what their
	// days need themselves.
	t.Run("every part", func(t *testing.T) {
		sum, _, _ := run(t, func(int) bool { return true })
		r := sum.Route
		if r == nil || r.Rounds != 2 || r.Failed != r.Parts || r.Routed != 0 || !r.Fallback {
			t.Fatalf("route summary: %+v", r)
		}
		if sum.Totals.RawObjects == 0 {
			t.Errorf("the day workers read no raw object; they had to")
		}
	})
}

// badReportRoutes runs workers as asyncWorkers does, except route part
// bad: it reads nothing and writes at once a routed report whose one
// entry (of the part's first object) has two days but one day_rows count.
type badReportRoutes struct {
	*asyncWorkers
	bad int
}

// badEntryOf is an entry of r that index.Entry's checks reject: two days,
// one day_rows count.
func badEntryOf(r index.ObjectRef) index.Entry {
	d := day.Of(r.Hour.UnixMilli(), time.UTC)
	return index.Entry{Key: r.Key, ETag: `"fake"`, Size: r.Size, Hour: r.Hour, Rows: 2,
		Days: []day.Day{d, d + 1}, DayRows: []int64{2}}
}

func (w *badReportRoutes) Invoke(ctx context.Context, ev WorkerEvent) error {
	if ev.Part != w.bad {
		return w.asyncWorkers.Invoke(ctx, ev)
	}
	req, err := parseWorkerEvent(ev)
	if err != nil {
		return err
	}
	res := &RouteResult{Run: req.Run, Part: req.Part, Status: StatusRouted, Objects: len(req.Route), Routed: 1,
		FinishedAt: time.Now().UTC(), Entries: []index.Entry{badEntryOf(req.Route[0])}}
	return writeJSON(ctx, w.env.Store, RouteKey(req.Run, req.Part), res)
}

// TestRouteBadEntryFailsThePart: a route report holding an entry that
// fails index.Entry's checks does not decode; its part fails at once (it
// is not waited for until the route phase's time is over), nothing of it
// reaches the index, its objects take the fallback path (the plan scans
// them, a second round routes them), and the run's tables are right.
// checkSecondRound checks a run whose first route part failed: a second
// round routed its objects (those the stale days need), all its parts
// routed, and the day workers read no raw object. It returns how many
// objects round 2 routed.
func checkSecondRound(t *testing.T, sum *RunSummary) (second int) {
	t.Helper()
	r := sum.Route
	for _, p := range r.PartList {
		if p.Round == 2 {
			second += p.Objects
			if p.Status != StatusRouted {
				t.Errorf("round 2: %+v", p)
			}
		}
	}
	if second == 0 || second > r.PartList[0].Objects {
		t.Errorf("round 2 routed %d objects; want those of the failed part (%d) the stale days need", second, r.PartList[0].Objects)
	}
	if sum.Totals.RawObjects != 0 {
		t.Errorf("the day workers read %d raw objects; want none", sum.Totals.RawObjects)
	}
	return second
}

func TestRouteBadEntryFailsThePart(t *testing.T) {
	ctx := context.Background()
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	f := newFixture(t)
	rc := storetest.CountReads(f.st, "raw/")
	f.env.Store = rc
	workers := &badReportRoutes{asyncWorkers: &asyncWorkers{env: f.env, timeout: time.Minute}, bad: 1}
	// A deadline, so that a part waited for in vain ends as pending (after
	// half the time) rather than hanging the test.
	sum := coordinate(t, f, from, to, workers, &workers.wg, Options{Concurrency: 4})
	if sum.Status != RunDone || sum.Built != 4 {
		t.Fatalf("summary: %+v", sum)
	}
	r := sum.Route
	if r == nil || r.Failed != 1 || r.Pending != 0 || !r.Fallback || r.Rounds != 2 {
		t.Fatalf("route summary: %+v; want part 1 failed, none pending, a second round", r)
	}
	p := r.PartList[0]
	if p.Part != 1 || p.Status != StatusFailed || !strings.Contains(p.Error, "unreadable route report") ||
		!strings.Contains(p.Error, "1 day_rows for 2 days") {
		t.Errorf("part 1: %+v; want failed for its unreadable report", p)
	}
	if p.Seconds > 10 {
		t.Errorf("part 1 failed after %.1fs; want at its first check", p.Seconds)
	}
	checkSecondRound(t, sum)
	entries, _ := indexed(t, f.st, from, to)
	for _, e := range entries {
		if e.ETag == `"fake"` {
			t.Errorf("the bad entry reached the index: %+v", e)
		}
	}
	if _, err := job.Run(ctx, job.Config{Store: f.copy, From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	snapshotsEqual(t, f.copy, f.st, from, to)
}

// failingGets is a store whose Get fails, as a network error would.
type failingGets struct{ store.Store }

func (failingGets) Get(context.Context, string) ([]byte, error) {
	return nil, errors.New("connection reset")
}

// TestCheckRouteReports: checkRoute tells a report not there yet or not
// readable now (keep waiting) from one that is there but does not decode
// (the part failed).
func TestCheckRouteReports(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	ref := index.ObjectRef{Key: "raw/2026/11/20/03/a.parquet", ETag: `"e"`, Size: 100, Hour: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)}
	good := index.Entry{Key: ref.Key, ETag: ref.ETag, Size: ref.Size, Hour: ref.Hour, Rows: 3,
		Days: []day.Day{mustDay(t, "2026-11-20")}, DayRows: []int64{3}}
	put := func(part int, v any) {
		t.Helper()
		if err := writeJSON(ctx, st, RouteKey("R", part), v); err != nil {
			t.Fatal(err)
		}
	}
	put(1, &RouteResult{Run: "R", Part: 1, Status: StatusRouted, Objects: 1, Routed: 1, Entries: []index.Entry{good}})
	put(2, &RouteResult{Run: "R", Part: 2, Status: StatusRouted, Objects: 1, Routed: 1, Entries: []index.Entry{badEntryOf(ref)}})
	if err := st.Put(ctx, RouteKey("R", 3), []byte(`{"run": "R", "part": 3, "status": "routed", "entries": [{"key": "k", "days": ["2026-13-01"], "day_rows": [1]}]}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, RouteKey("R", 4), []byte(`{"run": "R", "par`)); err != nil {
		t.Fatal(err)
	}
	put(5, &RouteResult{Run: "R", Part: 5, Status: StatusRetry, Error: "throttled"})
	put(7, &RouteResult{Run: "R", Part: 1, Status: StatusRouted, Objects: 1, Routed: 1, Entries: []index.Entry{good}})
	put(8, &RouteResult{Run: "R0", Part: 8, Status: StatusRouted, Objects: 1, Routed: 1, Entries: []index.Entry{good}})
	put(9, &RouteResult{Run: "R", Part: 9})

	c := &coordinator{cfg: job.Config{Store: st}}
	for _, tc := range []struct {
		name    string
		st      store.Store
		part    int
		status  string // "" while the part is not finished
		why     string // in the failure's reason
		err     bool   // the store failed: fanOut asks again
		entries []index.Entry
	}{
		{name: "routed", st: st, part: 1, status: StatusRouted, entries: []index.Entry{good}},
		{name: "days and day_rows of different lengths", st: st, part: 2, status: StatusFailed, why: "1 day_rows for 2 days"},
		{name: "a bad day", st: st, part: 3, status: StatusFailed, why: "2026-13-01"},
		{name: "not JSON", st: st, part: 4, status: StatusFailed, why: "unreadable route report"},
		{name: "retry", st: st, part: 5},
		{name: "no report yet", st: st, part: 6},
		{name: "another part", st: st, part: 7, status: StatusFailed, why: "it is about part 1, not 7"},
		{name: "another run", st: st, part: 8, status: StatusFailed, why: `it is about run "R0", not R`},
		{name: "no status", st: st, part: 9, status: StatusFailed, why: `status "" is not one a route worker reports`},
		{name: "store failing", st: failingGets{st}, part: 1, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.cfg.Store = tc.st
			rt := &routeTask{part: tc.part}
			status, why, err := c.checkRoute(ctx, "R", rt)
			if status != tc.status || !strings.Contains(why, tc.why) || (err != nil) != tc.err {
				t.Fatalf("checkRoute = %q, %q, %v; want %q, %q, error %t", status, why, err, tc.status, tc.why, tc.err)
			}
			if status == StatusFailed && !strings.Contains(why, "unreadable route report") {
				t.Errorf("reason %q does not say the report is unreadable", why)
			}
			if diff := cmp.Diff(tc.entries, rt.entries); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRouteWorkerTwice: the same route event again returns the first
// report and reads nothing.
func TestRouteWorkerTwice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rc := storetest.CountReads(f.st, "raw/")
	f.env.Store = rc
	refs, err := job.Pending(ctx, f.env.jobConfig(mustDay(t, "2026-11-20"), mustDay(t, "2026-11-20")))
	if err != nil || len(refs) < 4 {
		t.Fatalf("pending: %d, %v", len(refs), err)
	}
	rules := routeRules(f.env.jobConfig(0, 0))
	req := Request{Kind: KindRoute, Run: "R1", Part: 2, Route: refs[:3], Rules: rules}
	first, err := RunRouteWorker(ctx, f.env, req)
	if err != nil || first.Status != StatusRouted || first.Routed != 3 || len(first.Entries) != 3 {
		t.Fatalf("first: %+v, %v", first, err)
	}
	second, err := RunRouteWorker(ctx, f.env, req)
	if err != nil || second.Status != StatusRouted || len(second.Entries) != 3 {
		t.Fatalf("second: %+v, %v", second, err)
	}
	for _, r := range refs[:3] {
		if n := rc.Snapshot()[r.Key]; n != 1 {
			t.Errorf("%s read %d times", r.Key, n)
		}
	}
	// The entries round-trip through the report.
	if diff := cmp.Diff(first.Entries, second.Entries); diff != "" {
		t.Errorf("entries read back from the report (-written +read):\n%s", diff)
	}
	// An object whose hour is not its key's fails the part, reading nothing.
	bad := refs[0]
	bad.Hour = bad.Hour.Add(time.Hour)
	res, err := RunRouteWorker(ctx, f.env, Request{Kind: KindRoute, Run: "R1", Part: 3, Route: []index.ObjectRef{bad}, Rules: rules})
	if err != nil || res.Status != StatusFailed || res.ErrorClass != "permanent" || !strings.Contains(res.Error, "not the one its key names") {
		t.Errorf("wrong hour: %+v, %v", res, err)
	}
	// A coordinator in another time zone: nothing read either.
	other := refs[3]
	res, err = RunRouteWorker(ctx, f.env, Request{Kind: KindRoute, Run: "R1", Part: 4, Route: []index.ObjectRef{other},
		Rules: strings.Replace(rules, "tz=UTC", "tz=Europe/Paris", 1)})
	if err != nil || res.Status != StatusFailed || res.ErrorClass != "permanent" || !strings.Contains(res.Error, "configured differently") {
		t.Errorf("other rules: %+v, %v", res, err)
	}
	if n := rc.Snapshot()[bad.Key]; n != 1 {
		t.Errorf("%s read %d times", bad.Key, n)
	}
	if n := rc.Snapshot()[other.Key]; n != 0 {
		t.Errorf("%s read %d times", other.Key, n)
	}
}

func TestSplitRoute(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hour := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	var refs []index.ObjectRef
	for i := range 1000 {
		refs = append(refs, index.ObjectRef{Key: fmt.Sprintf("raw/2026/11/20/03/obj-%04d.parquet", i), ETag: `"e"`, Size: rng.Int64N(1 << 20), Hour: hour})
	}
	parts := splitRoute(refs, 8)
	shuffled := slices.Clone(refs)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if diff := cmp.Diff(parts, splitRoute(shuffled, 8)); diff != "" {
		t.Errorf("the order of the refs changes the parts:\n%s", diff)
	}
	seen := map[string]int{}
	var lo, hi int64 = 1 << 62, 0
	for _, p := range parts {
		if len(p) > MaxRouteRefs {
			t.Errorf("a part of %d objects", len(p))
		}
		var b int64
		for _, r := range p {
			seen[r.Key]++
			b += r.Size
		}
		lo, hi = min(lo, b), max(hi, b)
	}
	if len(parts) != 8 || len(seen) != len(refs) {
		t.Errorf("%d parts holding %d objects; want 8 holding %d", len(parts), len(seen), len(refs))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s in %d parts", k, n)
		}
	}
	if hi-lo > 1<<20 {
		t.Errorf("parts of %d to %d bytes: not balanced", lo, hi)
	}

	// Fewer objects than workers: one part each. Long keys: more parts,
	// each event well under Lambda's 256 KB.
	if parts := splitRoute(refs[:3], 8); len(parts) != 3 {
		t.Errorf("3 objects in %d parts", len(parts))
	}
	long := slices.Clone(refs)
	for i := range long {
		long[i].Key = "raw/2026/11/20/03/" + strings.Repeat("x", 990) + fmt.Sprintf("%04d", i)
	}
	parts = splitRoute(long, 2)
	if len(parts) < 8 {
		t.Errorf("1000 keys of 1 KB in %d parts", len(parts))
	}
	n := 0
	for i, p := range parts {
		ev := WorkerEvent{Role: RoleWorker, Run: strings.Repeat("R", 64), Part: i + 1, Rules: routeRules(job.Config{})}
		for _, r := range p {
			ev.Route = append(ev.Route, routeRefOf(r))
		}
		b, _ := json.Marshal(ev)
		if len(b) > 128<<10 {
			t.Errorf("part %d: a %d-byte event", i+1, len(b))
		}
		if _, err := ParseEvent(b, time.UTC, time.Hour); err != nil {
			t.Errorf("part %d: %v", i+1, err)
		}
		n += len(p)
	}
	if n != len(long) {
		t.Errorf("%d objects in the parts, want %d", n, len(long))
	}
}

// TestRouteProgress: the route phase logs and reports
// (Options.RouteProgress) each round as it starts (parts, objects, bytes)
// and each part as it is dispatched and as it finishes or fails (part
// n/N, objects, bytes, seconds), with counts only: no event payload in
// the log, no object key in the progress lines. Part 2 fails, so that
// there is a failed part and a second round.
func TestRouteProgress(t *testing.T) {
	ctx := context.Background()
	from, to := mustDay(t, "2026-11-20"), mustDay(t, "2026-11-21")
	f := newFixture(t)
	bad := *f.env
	bad.Config.RawPrefix = "elsewhere/"
	workers := &failingRoutes{asyncWorkers: &asyncWorkers{env: f.env, timeout: time.Minute}, bad: &bad,
		fail: func(part int) bool { return part == 2 }}
	var logged bytes.Buffer
	var events []RouteProgress
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sum, err := Coordinate(cctx, f.env.jobConfig(from, to), workers, Options{
		Concurrency:   2,
		Log:           slog.New(slog.NewJSONHandler(&logged, nil)),
		RouteProgress: func(ev RouteProgress) { events = append(events, ev) },
	})
	workers.wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	r := sum.Route
	if sum.Status != RunDone || r == nil || r.Rounds != 2 || r.Failed != 1 || r.Pending != 0 || r.Parts < 3 {
		t.Fatalf("summary: %+v, route phase %+v; want part 2 failed and a second round", sum, r)
	}

	// What the progress and the log must say, from the summary.
	type round struct {
		first, last, objects int
		bytes                int64
	}
	rounds := map[int]*round{}
	for _, p := range r.PartList {
		rd := rounds[p.Round]
		if rd == nil {
			rd = &round{first: p.Part}
			rounds[p.Round] = rd
		}
		rd.last = p.Part
		rd.objects += p.Objects
		rd.bytes += p.Bytes
	}

	// Progress: each round's start, then two events per part.
	byPart := map[int][]RouteProgress{}
	started := map[int]bool{}
	for _, ev := range events {
		line := ev.String()
		if strings.Contains(line, "raw/") || strings.Contains(line, "elsewhere/") {
			t.Errorf("a progress line names an object: %q", line)
		}
		rd := rounds[ev.Round]
		if rd == nil {
			t.Fatalf("progress of round %d: %+v", ev.Round, ev)
		}
		if ev.Status == "routing" {
			want := RouteProgress{Round: ev.Round, Status: "routing", Part: rd.first, Parts: rd.last, Objects: rd.objects, Bytes: rd.bytes,
				Done: ev.Done, Failed: ev.Failed}
			if ev != want || rd.bytes == 0 {
				t.Errorf("round %d started: %+v; want %+v", ev.Round, ev, want)
			}
			started[ev.Round] = true
			continue
		}
		if !started[ev.Round] {
			t.Errorf("part %d (%s) before its round started", ev.Part, ev.Status)
		}
		byPart[ev.Part] = append(byPart[ev.Part], ev)
	}
	for _, p := range r.PartList {
		evs := byPart[p.Part]
		if len(evs) != 2 {
			t.Errorf("part %d: progress %+v; want dispatched, then %s", p.Part, evs, p.Status)
			continue
		}
		last := rounds[p.Round].last
		d, e := evs[0], evs[1]
		if d.Status != "dispatched" || d.Parts != last || d.Objects != p.Objects || d.Bytes != p.Bytes || d.Seconds != 0 {
			t.Errorf("part %d dispatched: %+v; want part %d/%d, %d objects, %d bytes", p.Part, d, p.Part, last, p.Objects, p.Bytes)
		}
		if e.Status != p.Status || e.Parts != last || e.Objects != p.Objects || e.Bytes != p.Bytes || e.Seconds != p.Seconds || e.Seconds <= 0 {
			t.Errorf("part %d ended: %+v; want %+v", p.Part, e, p)
		}
	}
	if len(events) == 0 {
		t.Fatal("no route progress")
	}
	end := events[len(events)-1]
	if end.Done+end.Failed != r.Parts || end.Failed != 1 {
		t.Errorf("last progress %+v; want %d parts over, 1 failed", end, r.Parts)
	}
	p2 := byPart[2]
	if want := fmt.Sprintf("route part 2/2 failed: %d raw objects (", r.PartList[1].Objects); len(p2) != 2 || !strings.HasPrefix(p2[1].String(), want) {
		t.Errorf("part 2's progress %v; want a line starting %q", p2, want)
	}
	if want := fmt.Sprintf("route round 1: %d raw objects (", rounds[1].objects); !strings.HasPrefix(events[0].String(), want) ||
		!strings.HasSuffix(events[0].String(), ") in 2 parts") {
		t.Errorf("first progress line %q; want %q...in 2 parts", events[0], want)
	}

	// The log: the same, as attributes.
	if strings.Contains(strings.ToLower(logged.String()), "etag") {
		t.Errorf("the log holds a route event's payload:\n%s", logged.String())
	}
	type line map[string]any
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		var m line
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	find := func(msg string, attrs line) line {
		t.Helper()
		for _, l := range lines {
			if l["msg"] != msg {
				continue
			}
			ok := true
			for k, v := range attrs {
				ok = ok && l[k] == v
			}
			if ok {
				return l
			}
		}
		t.Errorf("no log line %q with %v:\n%s", msg, attrs, logged.String())
		return nil
	}
	for n, rd := range rounds {
		find("routing raw objects", line{"round": float64(n), "parts": float64(rd.last - rd.first + 1), "first_part": float64(rd.first),
			"objects": float64(rd.objects), "bytes": float64(rd.bytes)})
	}
	for _, p := range r.PartList {
		part := line{"route_part": float64(p.Part), "parts": float64(rounds[p.Round].last), "objects": float64(p.Objects), "bytes": float64(p.Bytes)}
		find("worker invoked", part)
		msg := "worker finished"
		if p.Status == StatusFailed {
			msg = "worker failed"
		}
		if l := find(msg, part); l != nil && l["seconds"] != p.Seconds {
			t.Errorf("%s: seconds %v; want %v", msg, l["seconds"], p.Seconds)
		}
	}
	// The warning counts its own round only: round 1 had the failure,
	// round 2 (which routed its objects) none.
	const warned = "route parts failed or unfinished; their objects are routed again by the next round, or by the day workers that need them"
	find(warned, line{"round": float64(1), "failed": float64(1), "pending": float64(0)})
	for _, l := range lines {
		if l["msg"] == warned && l["round"] != float64(1) {
			t.Errorf("a clean round warned: %v", l)
		}
	}
}

func TestRouteProgressString(t *testing.T) {
	for _, tc := range []struct {
		ev   RouteProgress
		want string
	}{
		{RouteProgress{Round: 1, Status: "routing", Part: 1, Parts: 4, Objects: 48, Bytes: 1258291}, "route round 1: 48 raw objects (1.2MiB) in 4 parts"},
		{RouteProgress{Round: 2, Status: "routing", Part: 5, Parts: 6, Objects: 12, Bytes: 900}, "route round 2: 12 raw objects (900B) in parts 5-6"},
		{RouteProgress{Round: 1, Status: "dispatched", Part: 3, Parts: 4, Objects: 12, Bytes: 307200}, "route part 3/4 dispatched: 12 raw objects (300.0KiB)"},
		{RouteProgress{Round: 1, Status: StatusRouted, Part: 3, Parts: 4, Objects: 12, Bytes: 307200, Seconds: 1.26, Done: 2, Failed: 1},
			"route part 3/4 routed: 12 raw objects (300.0KiB) in 1.3s; 2 routed, 1 failed"},
		{RouteProgress{Round: 1, Status: StatusFailed, Part: 1, Parts: 1, Objects: 400, Bytes: 3 << 30, Seconds: 0.04, Failed: 1},
			"route part 1/1 failed: 400 raw objects (3.0GiB) in 0.0s; 0 routed, 1 failed"},
	} {
		if got := tc.ev.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.ev, got, tc.want)
		}
	}
}
