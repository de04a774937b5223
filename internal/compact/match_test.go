package compact

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/raw"
)

// object is one raw object's rows, as the job reads them.
type object struct {
	key     string
	arrival int64 // the arrival hour, Route's fallback
	rows    []raw.Row
}

// pick returns a random element of xs.
func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

// Small pools, so that strings repeat, differ in case and prefix (byte
// order), and product|user_key pairs can collide ("a|b"+"c", "a"+"b|c").
var (
	genNames     = []string{"view", "click", "Buy", "buy", "a", "ab", "é", ""}
	genUsers     = []string{"", "", "", "u1", "u2", "U1", "u10", "b|c", "c", "anon:d1", "ü"}
	genDevices   = []string{"", "d1", "d2", "d3", "D1", "d10"}
	genSessions  = []string{"", "", "", "s1", "s2", "S1", "s10"}
	genProducts  = []string{"", "shop", "app", "a|b", "a"}
	genPlatforms = []string{"", "web", "ios"}
	genVersions  = []string{"", "1.0", "1.10", "1.2"}
	genCountries = []string{"", "US", "FR"}
	genPropKeys  = []string{"", "k", "K", "k2", "z", "é"}
	genPropVals  = []string{"", "v", "w", "v2", "V"}
)

func genProps(rng *rand.Rand) map[string]string {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return map[string]string{}
	}
	m := map[string]string{}
	for range 1 + rng.IntN(3) {
		m[pick(rng, genPropKeys...)] = pick(rng, genPropVals...)
	}
	return m
}

// tooLarge are raw.Row.TooLarge values (the quarantine rows' detail).
var tooLarge = []string{"user_id: 1048577 bytes", "properties[k]: 2000000 bytes", "country: 1048600 bytes"}

// genObjects makes random objects around base: duplicates across and
// within objects (some identical, some differing in one column, received
// at the same instant or not), missing fields, skewed and missing client
// clocks, implausible received_at, values too large, anonymous users,
// properties. Times are on a minute grid so that equal times and gaps of
// exactly 30 minutes are common.
func genObjects(rng *rand.Rand, base int64, nObjects, maxRows int) []object {
	const minute, hour = int64(60000), int64(3600000)
	var all []raw.Row // every row so far, to copy as duplicates
	ids := 1 + rng.IntN(maxRows*nObjects/2+1)
	// Event ids: all text, all canonical UUIDs (packed by Route), or
	// UUIDs but for some objects (a day of both forms).
	idForm := rng.IntN(3)
	objs := make([]object, nObjects)
	for o := range objs {
		arrival := base + int64(rng.IntN(60))*hour
		// Keys are unique, as object keys are: quarantine rows equal in all
		// they are sorted on keep their order in the object, not across two.
		obj := object{key: fmt.Sprintf("raw/%03d-%d", rng.IntN(1000), o), arrival: arrival}
		idFormat := "%08x-0000-7000-8000-00000000000%x"
		if idForm == 0 || idForm == 2 && rng.IntN(3) == 0 {
			idFormat = "e%d-%d"
		}
		for range rng.IntN(maxRows + 1) {
			if len(all) > 0 && rng.IntN(4) == 0 {
				// A copy of an earlier row (another delivery of it).
				r := all[rng.IntN(len(all))]
				r.Source = obj.key
				for range rng.IntN(3) {
					mutate(rng, &r)
				}
				if r.TooLarge != "" && rng.IntN(2) == 0 {
					// Quarantine rows that differ only in detail.
					r.TooLarge = pick(rng, tooLarge...)
				}
				obj.rows = append(obj.rows, r)
				all = append(all, r)
				continue
			}
			r := raw.Row{
				EventID:   fmt.Sprintf(idFormat, rng.IntN(ids), rng.IntN(2)),
				EventName: pick(rng, genNames...), UserID: pick(rng, genUsers...), DeviceID: pick(rng, genDevices...),
				SessionID: pick(rng, genSessions...), Product: pick(rng, genProducts...), Platform: pick(rng, genPlatforms...),
				AppVersion: pick(rng, genVersions...), Country: pick(rng, genCountries...),
				Properties: genProps(rng), Source: obj.key, InvalidUTF8: rng.IntN(20) == 0,
			}
			if rng.IntN(30) == 0 {
				r.EventID = ""
			}
			if rng.IntN(40) == 0 {
				// A value over raw.MaxValueBytes, held cut (raw.Row.TooLarge).
				r.TooLarge = pick(rng, tooLarge...)
			}
			if rng.IntN(4) == 0 {
				// Columns Route caches, with many values: slots collide.
				r.EventName, r.Country = fmt.Sprintf("n%d", rng.IntN(500)), fmt.Sprintf("c%d", rng.IntN(500))
				r.Properties = map[string]string{fmt.Sprintf("k%d", rng.IntN(500)): fmt.Sprintf("v%d", rng.IntN(500))}
			}
			r.ReceivedAt, r.HasReceivedAt = arrival+int64(rng.IntN(90)-30)*minute, true
			switch rng.IntN(40) {
			case 0:
				r.HasReceivedAt = false
			case 1:
				r.ReceivedAt = arrival - 25*hour - int64(rng.IntN(2)) // the limit, or just past it
			case 2:
				r.ReceivedAt = arrival + 3*hour + int64(rng.IntN(2))
			case 3:
				r.ReceivedAt = 1000
			}
			r.EventTime, r.HasEventTime = r.ReceivedAt-int64(rng.IntN(40))*minute, true
			switch rng.IntN(12) {
			case 0:
				r.HasEventTime = false
			case 1:
				r.EventTime = r.ReceivedAt - 7*24*hour - int64(rng.IntN(2)) // 7 days late, or just more
			case 2:
				r.EventTime = r.ReceivedAt + 10*minute + int64(rng.IntN(2)) // 10 minutes ahead, or just more
			case 3:
				r.EventTime = r.ReceivedAt - int64(rng.IntN(3))*24*hour // days late: other days
			}
			if rng.IntN(20) == 0 {
				r.EventTime = 0
			}
			obj.rows = append(obj.rows, r)
			all = append(all, r)
		}
		objs[o] = obj
	}
	return objs
}

// TestMatchesReference checks Route and Build against the struct-based
// implementation they replace (reference_test.go) on random rows: the same
// days, events (in order, session keys included), quarantine and stats,
// whatever the order of the parts.
func TestMatchesReference(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	bases := []int64{ms("2026-03-07T00:00:00Z"), ms("2026-06-15T00:00:00Z"), ms("2026-10-31T00:00:00Z"), ms("2026-12-31T00:00:00Z")}
	iterations := 300
	if testing.Short() {
		iterations = 50
	}
	days := 0
	for it := range iterations {
		rng := rand.New(rand.NewPCG(uint64(it), 7))
		rules := DefaultRules(pick(rng, time.UTC, la))
		if rng.IntN(5) == 0 {
			rules.SessionGap = time.Duration(rng.IntN(10)) * time.Minute
		}
		maxRows := pick(rng, 5, 40, 200, 1500)
		objs := genObjects(rng, pick(rng, bases...), 1+rng.IntN(6), maxRows)
		var skip day.Day = -1 // a day no run wants, sometimes
		if rng.IntN(3) == 0 {
			skip = day.Of(objs[0].arrival, rules.Loc)
		}
		want := func(d day.Day) bool { return d != skip }

		refParts := map[day.Day][]*refPart{}
		parts := map[day.Day][]*Part{}
		for _, o := range objs {
			for d, p := range refRoute(rules, o.rows, o.arrival, want) {
				refParts[d] = append(refParts[d], p)
			}
			for d, p := range rules.Route(o.rows, o.arrival, want) {
				parts[d] = append(parts[d], p)
			}
		}
		if diff := cmp.Diff(slices.Sorted(maps.Keys(refParts)), slices.Sorted(maps.Keys(parts))); diff != "" {
			t.Fatalf("iteration %d: days differ (-reference +new):\n%s", it, diff)
		}
		for d, rps := range refParts {
			ref := refBuild(rps, rules)
			ps := parts[d]
			rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
			if rng.IntN(2) == 0 {
				// As the job gives them: one dictionary for the day.
				shared := frame.NewDict(0)
				for _, p := range ps {
					p.Events.Rebase(shared)
				}
			}
			got := dayOf(Build(ps, rules))
			for _, p := range ps {
				if p.Events != nil || p.Quarantine != nil {
					t.Fatalf("iteration %d, %s: Build did not consume its parts", it, d)
				}
			}
			if want := normal(plainDay(ref)); reflect.DeepEqual(want, normal(got)) { // cmp.Diff is slow
				days++
				continue
			}
			if diff := cmp.Diff(plainDay(ref), got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("iteration %d (%s, %s, gap %s), %s: day differs (-reference +new):\n%s",
					it, rules.Loc, time.UnixMilli(objs[0].arrival).UTC(), rules.SessionGap, d, diff)
			}
			days++
		}
	}
	t.Logf("%d days compared", days)
}

// normal returns d with empty slices and maps nil.
func normal(d plainDay) plainDay {
	if len(d.Events) == 0 {
		d.Events = nil
	}
	if len(d.Quarantine) == 0 {
		d.Quarantine = nil
	}
	for i := range d.Events {
		if len(d.Events[i].Properties) == 0 {
			d.Events[i].Properties = nil
		}
	}
	for i := range d.Quarantine {
		if len(d.Quarantine[i].Properties) == 0 {
			d.Quarantine[i].Properties = nil
		}
	}
	return d
}

// mutate changes one column of r, or none.
func mutate(rng *rand.Rand, r *raw.Row) {
	const minute = int64(60000)
	switch rng.IntN(14) {
	case 0:
		r.ReceivedAt += int64(rng.IntN(3)-1) * minute
	case 1:
		r.EventTime += int64(rng.IntN(3) - 1)
	case 2:
		r.HasEventTime = !r.HasEventTime
	case 3:
		r.EventName = pick(rng, genNames...)
	case 4:
		r.UserID = pick(rng, genUsers...)
	case 5:
		r.DeviceID = pick(rng, genDevices...)
	case 6:
		r.SessionID = pick(rng, genSessions...)
	case 7:
		r.Product = pick(rng, genProducts...)
	case 8:
		r.Platform = pick(rng, genPlatforms...)
	case 9:
		r.AppVersion = pick(rng, genVersions...)
	case 10:
		r.Country = pick(rng, genCountries...)
	case 11:
		r.Properties = genProps(rng)
	case 12:
		// As many properties, one key or value changed.
		m := maps.Clone(r.Properties)
		for k, v := range m {
			if rng.IntN(2) == 0 {
				m[k] = pick(rng, genPropVals...)
			} else if k2 := pick(rng, genPropKeys...); m[k2] == "" {
				delete(m, k)
				m[k2] = v
			}
			break
		}
		r.Properties = m
	}
}

// TestDedupeCollisions checks that events whose ids hash alike but differ
// are all kept (one copy of each id), as with real hashes.
func TestDedupeCollisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, size := range []int{2, 10, 300, 3000} {
		var rows []raw.Row
		for len(rows) < size {
			at := ms("2026-03-10T00:00:00Z") + int64(rng.IntN(3))
			rows = append(rows, raw.Row{EventID: fmt.Sprintf("e%d", rng.IntN(size/2+1)), EventTime: at, HasEventTime: true,
				ReceivedAt: at + int64(rng.IntN(2)), HasReceivedAt: true, EventName: pick(rng, "a", "b"), UserID: "u",
				Properties: genProps(rng)})
		}
		rules := DefaultRules(time.UTC)
		e := rules.Route(rows, ms("2026-03-10T00:00:00Z"), func(day.Day) bool { return true })[day.FromDate(2026, 3, 10)].Events
		want, wantDups := dedupe(e, idKeys([]*frame.Events{e}, e.Len()))
		for _, mod := range []uint64{1, 2, 7} {
			hashes := make([]uint64, e.Len())
			for i := range hashes {
				hashes[i] = uint64(len(e.ID(i))) % mod << 60
			}
			got, dups := dedupe(e, sortKeys(hashes))
			// Identical copies are interchangeable: compare what is kept.
			if dups != wantDups || !slices.Equal(keptRows(e, got), keptRows(e, want)) {
				t.Errorf("%d events, hashes mod %d: %d duplicates, want %d, or other copies kept", size, mod, dups, wantDups)
			}
		}
	}
}

// keptRows returns the events not in drop, printed, in order.
func keptRows(e *frame.Events, drop []bool) []string {
	var out []string
	for i := range e.Len() {
		if !drop[i] {
			out = append(out, fmt.Sprint(e.Row(i)))
		}
	}
	slices.Sort(out)
	return out
}

func TestSortUniform(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, n := range []int{0, 1, 2, 25, 1000, 5000, 100_000} {
		for _, skew := range []uint{0, 8, 40} { // uniform keys, or uniform after the top skew bits (all 0)
			keys := make([]uint64, n)
			for i := range keys {
				keys[i] = rng.Uint64() >> skew
				if rng.IntN(10) == 0 && i > 0 {
					keys[i] = keys[rng.IntN(i)] // equal keys
				}
			}
			want := slices.Sorted(slices.Values(keys))
			sortUniform(keys)
			if !slices.Equal(keys, want) {
				t.Errorf("%d keys, skew %d: not sorted", n, skew)
			}
		}
	}
}

func TestDistinctStrings(t *testing.T) {
	for _, n := range []int{0, 10, 1000, 40_000, 100_000} {
		// Three dictionaries holding n distinct strings between them, each
		// string in one to three of them.
		dicts := []*frame.Dict{frame.NewDict(0), frame.NewDict(0), frame.NewDict(0)}
		for i := range n {
			s := fmt.Sprintf("s%d", i)
			for j := range 1 + i%3 {
				dicts[(i+j)%3].ID(s)
			}
		}
		got := distinctStrings(dicts)
		want := n + 1 // "" too
		t.Logf("%d distinct strings: estimated %d", want, got)
		// Within 5%, or 2 for a few strings: the hash is seeded per
		// process, and two of a few strings share a register now and then.
		if tol := max(2, want/20); got < want-tol || got > want+tol {
			t.Errorf("%d distinct strings: estimated %d", want, got)
		}
	}
}
