package lambda

import (
	"context"
	"errors"
	"fmt"
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

// TestRouteStageTwice: the same route event again returns the first
// report and reads nothing, neither raw objects nor its input; a part
// whose input is wrong fails for good before reading anything.
func TestRouteStageTwice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	inputs := storetest.CountReads(f.reads, RunsPrefix+"R1/route-")
	h := f.handler(t, Deps{Store: inputs})
	refs, err := job.Pending(ctx, h.env.jobConfig(mustDay(t, "2026-11-20"), mustDay(t, "2026-11-20")))
	if err != nil || len(refs) < 4 {
		t.Fatalf("pending: %d, %v", len(refs), err)
	}
	rules := routeRules(h.env.jobConfig(0, 0))
	input := func(part int, rules string, refs ...index.ObjectRef) {
		t.Helper()
		in := RouteInput{Run: "R1", Part: part, Rules: rules}
		for _, r := range refs {
			in.Route = append(in.Route, routeRefOf(r))
		}
		if err := writeJSON(ctx, f.st, RouteInputKey("R1", part), in); err != nil {
			t.Fatal(err)
		}
	}
	input(2, rules, refs[:3]...)
	ev := StageEvent{Stage: StageRoute, Run: "R1", Part: 2}
	first, err := call[RouteResult](t, ctx, h, ev)
	if err != nil || first.Status != StatusRouted || first.Objects != 3 || first.Routed != 3 || first.Entries != nil {
		t.Fatalf("first: %+v, %v; want 3 objects routed, the entries in the report only", first, err)
	}
	rep, err := readRouteReport(ctx, f.st, "R1", 2)
	if err != nil || rep == nil || len(rep.Entries) != 3 {
		t.Fatalf("report: %+v, %v", rep, err)
	}
	for i, e := range rep.Entries {
		if e.Key != refs[i].Key || e.ETag != refs[i].ETag || len(e.Days) == 0 {
			t.Errorf("entry %d: %+v; want %s's", i, e, refs[i].Key)
		}
	}
	second, err := call[RouteResult](t, ctx, h, ev)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("the second answer is not the first report (-first +second):\n%s", diff)
	}
	for _, r := range refs[:3] {
		if n := f.reads.Snapshot()[r.Key]; n != 1 {
			t.Errorf("%s read %d times", r.Key, n)
		}
	}
	if n := inputs.Snapshot()[RouteInputKey("R1", 2)]; n != 1 {
		t.Errorf("the part's input read %d times; want once", n)
	}

	// Inputs the stage refuses, reading no raw object and reporting so: an
	// object whose hour is not its key's; a start configured otherwise;
	// an object outside the raw prefix.
	bad := refs[0]
	bad.Hour = bad.Hour.Add(time.Hour)
	input(3, rules, bad)
	input(4, strings.Replace(rules, "tz=UTC", "tz=Europe/Paris", 1), refs[3])
	other := refs[3]
	other.Key = "elsewhere/" + strings.TrimPrefix(other.Key, "raw/")
	input(5, rules, other)
	for part, why := range map[int]string{
		3: "not the one its key names",
		4: "configured differently",
		5: "not a raw object under raw/",
	} {
		_, err := call[RouteResult](t, ctx, h, StageEvent{Stage: StageRoute, Run: "R1", Part: part})
		var p *PermanentError
		if !errors.As(err, &p) || !strings.Contains(err.Error(), why) {
			t.Errorf("part %d: %v; want a *PermanentError saying %q", part, err, why)
		}
		if rep, err := readRouteReport(ctx, f.st, "R1", part); err != nil || rep == nil || rep.Status != StatusFailed ||
			rep.ErrorClass != "permanent" || !strings.Contains(rep.Error, why) || rep.Entries != nil {
			t.Errorf("part %d: report %+v, %v; want failed, permanent", part, rep, err)
		}
	}
	// An input that is not about its part fails it for good too.
	b, err := f.st.Get(ctx, RouteInputKey("R1", 5))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Put(ctx, RouteInputKey("R1", 6), b); err != nil {
		t.Fatal(err)
	}
	_, err = call[RouteResult](t, ctx, h, StageEvent{Stage: StageRoute, Run: "R1", Part: 6})
	if p := (*PermanentError)(nil); !errors.As(err, &p) || !strings.Contains(err.Error(), "its input is about part 5") {
		t.Errorf("part 6 with part 5's input: %v; want a *PermanentError", err)
	}
	if n := f.reads.Snapshot()[refs[3].Key]; n != 0 {
		t.Errorf("%s read %d times", refs[3].Key, n)
	}
	// A part without an input fails, leaving no report.
	if _, err := call[RouteResult](t, ctx, h, StageEvent{Stage: StageRoute, Run: "R1", Part: 9}); err == nil || !strings.Contains(err.Error(), RouteInputKey("R1", 9)) {
		t.Errorf("a part without an input: %v; want an error naming its input", err)
	}
	if rep, err := readRouteReport(ctx, f.st, "R1", 9); rep != nil || err != nil {
		t.Errorf("a part without an input reported %+v, %v", rep, err)
	}
}

// TestReadRouteReport: readRouteReport tells a report not there (nil) or
// not readable now (a store error) from one that is there but unusable
// (errBadReport: the plan leaves its entries out, the summary counts the
// part failed).
func TestReadRouteReport(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	ref := RouteRef{Key: "raw/2026/11/20/03/a.parquet", ETag: `"e"`, Size: 100, Hour: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)}
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
	put(10, &RouteResult{Run: "R", Part: 10, Status: StatusFailed, Error: "access denied"})

	for _, tc := range []struct {
		name    string
		st      store.Store
		part    int
		status  string // of the report read
		why     string // in an errBadReport
		err     bool   // a store error, not errBadReport
		entries []index.Entry
	}{
		{name: "routed", st: st, part: 1, status: StatusRouted, entries: []index.Entry{good}},
		{name: "days and day_rows of different lengths", st: st, part: 2, why: "1 day_rows for 2 days"},
		{name: "a bad day", st: st, part: 3, why: "2026-13-01"},
		{name: "not JSON", st: st, part: 4, why: "unreadable route report"},
		{name: "retry", st: st, part: 5, status: StatusRetry},
		{name: "no report", st: st, part: 6},
		{name: "another part", st: st, part: 7, why: "it is about part 1, not 7"},
		{name: "another run", st: st, part: 8, why: `it is about run "R0", not R`},
		{name: "no status", st: st, part: 9, why: `status "" is not one a route worker reports`},
		{name: "failed", st: st, part: 10, status: StatusFailed},
		{name: "store failing", st: failingGets{st}, part: 1, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := readRouteReport(ctx, tc.st, "R", tc.part)
			switch {
			case tc.why != "":
				if !errors.Is(err, errBadReport) || !strings.Contains(err.Error(), tc.why) ||
					!strings.Contains(err.Error(), "unreadable route report "+RouteKey("R", tc.part)) || rep != nil || retryableRead(err) {
					t.Errorf("%+v, %v; want errBadReport saying %q", rep, err, tc.why)
				}
			case tc.err:
				if err == nil || errors.Is(err, errBadReport) || !retryableRead(err) {
					t.Errorf("%v; want a store error, read again", err)
				}
			case tc.status == "":
				if rep != nil || err != nil {
					t.Errorf("%+v, %v; want nothing", rep, err)
				}
			default:
				if err != nil || rep == nil || rep.Status != tc.status {
					t.Fatalf("%+v, %v; want status %s", rep, err, tc.status)
				}
				if diff := cmp.Diff(tc.entries, rep.Entries); diff != "" {
					t.Errorf("entries (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestSplitRoute: parts of at most MaxRouteRefs objects, about equal in
// bytes, every object in exactly one, the same whatever the order of the
// objects, each an input the route stage accepts.
func TestSplitRoute(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hour := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	var refs []index.ObjectRef
	for i := range 1000 {
		refs = append(refs, index.ObjectRef{Key: fmt.Sprintf("raw/2026/11/20/03/obj-%04d.parquet", i), ETag: `"e"`, Size: rng.Int64N(1 << 20), Hour: hour})
	}
	check := func(name string, refs []index.ObjectRef, n, wantParts int, balanced bool) [][]index.ObjectRef {
		t.Helper()
		parts := splitRoute(refs, n)
		shuffled := slices.Clone(refs)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if diff := cmp.Diff(parts, splitRoute(shuffled, n)); diff != "" {
			t.Errorf("%s: the order of the objects changes the parts:\n%s", name, diff)
		}
		seen := map[string]int{}
		var lo, hi int64 = 1 << 62, 0
		for i, p := range parts {
			if len(p) == 0 || len(p) > MaxRouteRefs {
				t.Errorf("%s: a part of %d objects", name, len(p))
			}
			in := RouteInput{Run: "R", Part: i + 1}
			var b int64
			for _, r := range p {
				seen[r.Key]++
				b += r.Size
				in.Route = append(in.Route, routeRefOf(r))
			}
			lo, hi = min(lo, b), max(hi, b)
			if got, err := checkRouteInput(in, "R", i+1); err != nil || !slices.Equal(got, p) {
				t.Errorf("%s: part %d is not an input the route stage accepts: %v", name, i+1, err)
			}
		}
		if len(parts) != wantParts || len(seen) != len(refs) {
			t.Errorf("%s: %d parts holding %d objects; want %d holding %d", name, len(parts), len(seen), wantParts, len(refs))
		}
		for k, c := range seen {
			if c != 1 {
				t.Errorf("%s: %s in %d parts", name, k, c)
			}
		}
		if balanced && hi-lo > 1<<20 {
			t.Errorf("%s: parts of %d to %d bytes: not balanced", name, lo, hi)
		}
		return parts
	}
	check("8 groups", refs, 8, 8, true)
	// Fewer objects than groups: one part each.
	check("3 objects", refs[:3], 8, 3, true)
	// Groups of more than MaxRouteRefs objects: split further.
	parts := check("1 group", refs, 1, 3, false)
	if len(parts[0]) != MaxRouteRefs || len(parts[1]) != MaxRouteRefs || len(parts[2]) != 1000-2*MaxRouteRefs {
		t.Errorf("1000 objects in one group: parts of %d, %d, %d", len(parts[0]), len(parts[1]), len(parts[2]))
	}
	// Each part in key order.
	for _, p := range parts {
		if !slices.IsSortedFunc(p, func(a, b index.ObjectRef) int { return strings.Compare(a.Key, b.Key) }) {
			t.Error("a part not in key order")
		}
	}
	if parts := splitRoute(nil, 8); len(parts) != 0 {
		t.Errorf("no objects: %d parts", len(parts))
	}
}
