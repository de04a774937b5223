package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// checkIndex fails unless the current entries of ix are exactly the slow
// entries of the listed objects of st under rules.
func checkIndex(t *testing.T, st store.Store, ix *Index, rules compact.Rules) {
	t.Helper()
	ctx := context.Background()
	var want []Entry
	for _, o := range listRaw(t, st) {
		data, err := st.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		e := slowEntry(t, data, o.Key, o.Hour, rules)
		e.ETag = o.ETag
		want = append(want, e)
	}
	if diff := cmp.Diff(want, ix.Entries()); diff != "" {
		t.Fatalf("index (-slow +index):\n%s", diff)
	}
}

// run is one run of the job's indexing: load, update, save.
func run(t *testing.T, st store.Store, rules compact.Rules) (*Index, int) {
	t.Helper()
	ctx := context.Background()
	ix, err := Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ix.Update(ctx, st, listRaw(t, st), rules, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	return ix, n
}

// objectsOn returns the raw objects arriving on UTC day d.
func objectsOn(t *testing.T, st store.Store, d string) []ObjectRef {
	t.Helper()
	var out []ObjectRef
	for _, o := range listRaw(t, st) {
		if o.Hour.Format(time.DateOnly) == d {
			out = append(out, o)
		}
	}
	return out
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	dir := copyStore(t)
	st := &countingStore{Store: dir}
	utc := compact.DefaultRules(time.UTC)
	auckland := compact.DefaultRules(mustLoc(t, "Pacific/Auckland"))
	all := len(listRaw(t, st))
	first := listRaw(t, st)[0]
	second := listRaw(t, st)[1]
	day4 := len(objectsOn(t, st, "2026-04-04"))

	steps := []struct {
		name    string
		change  func(t *testing.T)
		rules   compact.Rules
		scanned int
		puts    int64 // index files written, -1: don't check
		warn    bool
	}{
		{"the first run scans every object and writes one file per arrival day", nil, utc, all, 4, false},
		{"a second run scans nothing and writes nothing", nil, utc, 0, 0, false},
		{"a new object is scanned alone", func(t *testing.T) {
			b, _ := st.Get(ctx, first.Key)
			if err := st.Put(ctx, strings.Replace(first.Key, "events-1-", "events-1-copy-", 1), b); err != nil {
				t.Fatal(err)
			}
		}, utc, 1, 1, false},
		{"a changed object is scanned again", func(t *testing.T) {
			b, _ := st.Get(ctx, second.Key)
			if err := st.Put(ctx, first.Key, b); err != nil {
				t.Fatal(err)
			}
		}, utc, 1, 1, false},
		{"a deleted object is dropped", func(t *testing.T) {
			if err := st.Delete(ctx, second.Key); err != nil {
				t.Fatal(err)
			}
		}, utc, 0, 1, false},
		{"a missing index file costs a rescan of its day", func(t *testing.T) {
			if err := st.Delete(ctx, Prefix+"2026-04-04.json"); err != nil {
				t.Fatal(err)
			}
		}, utc, day4, 1, false},
		{"a corrupt index file costs a rescan of its day, with a warning", func(t *testing.T) {
			if err := st.Put(ctx, Prefix+"2026-04-04.json", []byte(`{"version": 1, "entries": [{"key": tru`)); err != nil {
				t.Fatal(err)
			}
		}, utc, day4, 1, true},
		{"a file of another version costs a rescan of its day", func(t *testing.T) {
			b, _ := st.Get(ctx, Prefix+"2026-04-04.json")
			b = []byte(strings.Replace(string(b), fmt.Sprintf(`"version": %d`, Version), `"version": 0`, 1))
			if err := st.Put(ctx, Prefix+"2026-04-04.json", b); err != nil {
				t.Fatal(err)
			}
		}, utc, day4, 1, true},
		{"another time zone rescans everything", nil, auckland, all, 4, false},
		{"the same zone again scans nothing", nil, auckland, 0, 0, false},
		{"another max lateness rescans everything", nil, func() compact.Rules { r := auckland; r.MaxLateness = 3 * 24 * time.Hour; return r }(), all, 4, false},
		{"another session gap changes no entry", nil, func() compact.Rules {
			r := auckland
			r.MaxLateness, r.SessionGap = 3*24*time.Hour, time.Hour
			return r
		}(), 0, 0, false},
	}
	for _, step := range steps {
		if !t.Run(step.name, func(t *testing.T) {
			if step.change != nil {
				step.change(t)
			}
			st.reset()
			ix, n := run(t, st, step.rules)
			if n != step.scanned {
				t.Errorf("scanned %d objects, want %d", n, step.scanned)
			}
			if st.opens.Load() != int64(step.scanned) {
				t.Errorf("opened %d raw objects, scanned %d", st.opens.Load(), step.scanned)
			}
			if st.puts.Load() != step.puts {
				t.Errorf("wrote %d index files, want %d", st.puts.Load(), step.puts)
			}
			if (len(ix.Warnings()) > 0) != step.warn {
				t.Errorf("warnings %q", ix.Warnings())
			}
			checkIndex(t, st, ix, step.rules)
			// What was saved loads back the same.
			again, err := Load(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Warnings()) > 0 {
				t.Errorf("saved index has warnings: %q", again.Warnings())
			}
			if diff := cmp.Diff(ix.Entries(), again.Entries()); diff != "" {
				t.Errorf("saved and loaded index differ (-saved +loaded):\n%s", diff)
			}
		}) {
			t.FailNow()
		}
	}
}

func TestSavedFiles(t *testing.T) {
	ctx := context.Background()
	st := copyStore(t)
	rules := compact.DefaultRules(mustLoc(t, "Pacific/Auckland"))
	run(t, st, rules)
	objs, err := st.List(ctx, Prefix)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	want := []string{Prefix + "2026-04-03.json", Prefix + "2026-04-04.json", Prefix + "2026-04-05.json", Prefix + "2026-04-06.json"}
	if !slices.Equal(keys, want) {
		t.Fatalf("index files %v, want %v", keys, want)
	}
	b, err := st.Get(ctx, want[1])
	if err != nil {
		t.Fatal(err)
	}
	var f fileJSON
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if f.Version != Version || f.ArrivalDay != "2026-04-04" || f.Rules != (ruleSet{"Pacific/Auckland", "168h0m0s", "10m0s"}) {
		t.Fatalf("header %d %s %+v", f.Version, f.ArrivalDay, f.Rules)
	}
	if len(f.Entries) != len(objectsOn(t, st, "2026-04-04")) ||
		!slices.IsSortedFunc(f.Entries, func(a, b entryJSON) int { return strings.Compare(a.Key, b.Key) }) {
		t.Fatalf("%d entries, not one per object sorted by key", len(f.Entries))
	}
	t.Logf("%s: %d bytes for %d objects", want[1], len(b), len(f.Entries))
}

func TestLoadHoursReadsOnlyTheDaysNeeded(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: copyStore(t)}
	rules := compact.DefaultRules(time.UTC)
	full, _ := run(t, st, rules)

	from, to := time.Date(2026, 4, 4, 22, 0, 0, 0, time.UTC), time.Date(2026, 4, 5, 3, 0, 0, 0, time.UTC)
	listed := func() []ObjectRef {
		var out []ObjectRef
		for _, o := range listRaw(t, st) {
			if !o.Hour.Before(from) && o.Hour.Before(to) {
				out = append(out, o)
			}
		}
		return out
	}
	inWindow := listed()[0]
	outside := objectsOn(t, st, "2026-04-04")[0] // 04-04 00:00, in a loaded file but not a listed hour
	earlier := objectsOn(t, st, "2026-04-03")[5] // in a file that is not loaded
	for _, key := range []string{inWindow.Key, outside.Key} {
		if err := st.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}

	st.reset()
	ix, err := LoadHours(ctx, st, from, to)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(st.got)
	if want := []string{Prefix + "2026-04-04.json", Prefix + "2026-04-05.json"}; !slices.Equal(st.got, want) {
		t.Fatalf("read %v, want %v", st.got, want)
	}
	// earlier is listed too (outside the hours): its day file is loaded on
	// demand, and nothing of that day is dropped.
	n, err := ix.Update(ctx, st, append(listed(), earlier), rules, 2)
	if err != nil || n != 0 {
		t.Fatalf("scanned %d, %v; want 0", n, err)
	}
	if _, ok := ix.Lookup(inWindow.Key); ok {
		t.Error("a vanished object of a listed hour is still in the index")
	}
	if _, ok := ix.Lookup(outside.Key); !ok {
		t.Error("an object of an hour that was not listed was dropped")
	}
	st.reset()
	if err := ix.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	if st.puts.Load() != 1 {
		t.Errorf("saved %d files, want only the one that lost an object", st.puts.Load())
	}
	reloaded, err := Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(full.Entries(), func(e Entry) bool { return e.Key == inWindow.Key })
	if diff := cmp.Diff(want, reloaded.Entries()); diff != "" {
		t.Fatalf("index after a partial update (-want +got):\n%s", diff)
	}
}

func TestInputsOfAndBadIn(t *testing.T) {
	ctx := context.Background()
	st := copyStore(t)
	for _, zone := range zones {
		t.Run(zone, func(t *testing.T) {
			rules := compact.DefaultRules(mustLoc(t, zone))
			ix, _ := run(t, st, rules)
			inputs := map[day.Day][]string{}
			bad := map[day.Day][]string{}
			for _, o := range listRaw(t, st) {
				data, err := st.Get(ctx, o.Key)
				if err != nil {
					t.Fatal(err)
				}
				e := slowEntry(t, data, o.Key, o.Hour, rules)
				if e.Bad != "" {
					d := day.Of(o.Hour.UnixMilli(), rules.Loc)
					bad[d] = append(bad[d], o.Key)
				}
				for _, d := range e.Days {
					inputs[d] = append(inputs[d], o.Key)
				}
			}
			keys := func(es []Entry) []string {
				var out []string
				for _, e := range es {
					out = append(out, e.Key)
				}
				return out
			}
			days := day.Range(day.FromDate(2026, 3, 1), day.FromDate(2026, 4, 20))
			for d := range inputs {
				days = append(days, d-1, d, d+1)
			}
			for _, d := range days {
				if got := keys(ix.InputsOf(d)); !slices.Equal(got, inputs[d]) {
					t.Errorf("InputsOf(%s) = %d objects, want %d", d, len(got), len(inputs[d]))
				}
				if got := keys(ix.BadIn(d, rules.Loc)); !slices.Equal(got, bad[d]) {
					t.Errorf("BadIn(%s) = %v, want %v", d, got, bad[d])
				}
			}
			t.Logf("%d days have inputs", len(inputs))
		})
	}
}

func TestUpdateIsTheSameAtAnyParallelism(t *testing.T) {
	ctx := context.Background()
	dir, _ := nastyStore(t)
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	rules := compact.DefaultRules(mustLoc(t, "Pacific/Auckland"))
	objs := listRaw(t, st)
	var prev []Entry
	for _, p := range []int{0, 1, 3, 64} {
		ix := &Index{}
		n, err := ix.Update(ctx, st, append(objs, objs[:10]...), rules, p) // duplicates are scanned once
		if err != nil || n != len(objs) {
			t.Fatalf("parallel %d: scanned %d, %v; want %d", p, n, err, len(objs))
		}
		if prev != nil {
			if diff := cmp.Diff(prev, ix.Entries()); diff != "" {
				t.Fatalf("parallel %d differs:\n%s", p, diff)
			}
		}
		prev = ix.Entries()
	}
}

func TestUpdateStoreFailure(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: copyStore(t)}
	rules := compact.DefaultRules(time.UTC)
	objs := listRaw(t, st)
	failing := objs[7].Key
	reset := errors.New("connection reset by peer")
	st.failRead = func(key string) error {
		if key == failing {
			return reset
		}
		return nil
	}
	ix, err := Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ix.Update(ctx, st, objs, rules, 1)
	if !errors.Is(err, reset) {
		t.Fatalf("err = %v, want the store's error", err)
	}
	if _, ok := ix.Lookup(failing); ok {
		t.Fatal("an object the store failed to read is in the index (as bad?)")
	}
	if err := ix.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	st.failRead = nil
	_, m := run(t, st, rules)
	if n+m != len(objs) {
		t.Fatalf("scanned %d, then %d: want %d in all (progress kept, nothing twice)", n, m, len(objs))
	}
}

func TestMarkBad(t *testing.T) {
	ctx := context.Background()
	st := copyStore(t)
	rules := compact.DefaultRules(time.UTC)
	ix, _ := run(t, st, rules)
	e := ix.InputsOf(day.FromDate(2026, 4, 4))[0]
	bad := &raw.BadObjectError{Key: e.Key, Reason: raw.ReasonCorrupt, Err: errors.New("column user_id: bad page")}
	if ix.MarkBad(e.Key, "other-etag", bad) {
		t.Fatal("marked an entry of another ETag")
	}
	if !ix.MarkBad(e.Key, e.ETag, bad) {
		t.Fatal("entry not found")
	}
	if err := ix.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	ix, n := run(t, st, rules)
	if n != 0 {
		t.Fatalf("rescanned %d objects", n)
	}
	d := day.Of(e.Hour.UnixMilli(), time.UTC)
	if slices.ContainsFunc(ix.InputsOf(d), func(x Entry) bool { return x.Key == e.Key }) ||
		!slices.ContainsFunc(ix.BadIn(d, time.UTC), func(x Entry) bool { return x.Key == e.Key && x.Detail == bad.Err.Error() }) {
		t.Fatal("a marked object is still an input, or not a bad object of its arrival day")
	}
}

func TestLoadEmptyStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, load := range []func() (*Index, error){
		func() (*Index, error) { return Load(ctx, st) },
		func() (*Index, error) { return LoadHours(ctx, st, time.Now().Add(-200*time.Hour), time.Now()) },
	} {
		ix, err := load()
		if err != nil || len(ix.Entries()) != 0 {
			t.Fatalf("%d entries, %v", len(ix.Entries()), err)
		}
		if err := ix.Save(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	if objs, _ := st.List(ctx, ""); len(objs) != 0 {
		t.Fatalf("saving an empty index wrote %v", objs)
	}
}

func TestRulesChangeReachesDaysLoadedOnDemand(t *testing.T) {
	ctx := context.Background()
	st := copyStore(t)
	utc := compact.DefaultRules(time.UTC)
	auckland := compact.DefaultRules(mustLoc(t, "Pacific/Auckland"))
	run(t, st, utc)

	from, to := time.Date(2026, 4, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 5, 6, 0, 0, 0, time.UTC)
	var window []ObjectRef
	for _, o := range listRaw(t, st) {
		if !o.Hour.Before(from) && o.Hour.Before(to) {
			window = append(window, o)
		}
	}
	earlier := objectsOn(t, st, "2026-04-03")[3]
	ix, err := LoadHours(ctx, st, from, to)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		objs    []ObjectRef
		rules   compact.Rules
		scanned int
		found   bool // is earlier in the index afterwards
	}{
		{"an object outside the hours is found in its day's file", append(slices.Clone(window), earlier), utc, 0, true},
		{"new rules rescan the listed hours; the other day's file is not used", window, auckland, len(window), false},
		{"listing the object again rescans it under the new rules", append(slices.Clone(window), earlier), auckland, 1, true},
	}
	for _, step := range steps {
		n, err := ix.Update(ctx, st, step.objs, step.rules, 2)
		if err != nil || n != step.scanned {
			t.Fatalf("%s: scanned %d, %v; want %d", step.name, n, err, step.scanned)
		}
		e, ok := ix.Lookup(earlier.Key)
		if ok != step.found {
			t.Fatalf("%s: found %v", step.name, ok)
		}
		if ok {
			data, _ := st.Get(ctx, earlier.Key)
			want := slowEntry(t, data, earlier.Key, earlier.Hour, step.rules)
			want.ETag = earlier.ETag
			compareEntries(t, want, e)
		}
	}
}
