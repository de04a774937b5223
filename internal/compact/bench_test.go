package compact

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/raw"
)

// benchEvents is the size of the benchmarks' day: 1M events, or
// $COMPACT_BENCH_EVENTS.
func benchEvents(b *testing.B) int {
	if s := os.Getenv("COMPACT_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1_000_000
}

const benchObjectRows = 10_000 // rows per raw object

// benchObjects makes a day of n events of a realistic shape, as objects of
// benchObjectRows rows, one object per arrival hour or so: n/8 users (a
// fifth anonymous), sessions of 8 events on average within 20 minutes, half
// of them with a session_id, 40 event names, 3 products, 0 to 3 properties,
// 36-byte event ids, 2% duplicates (another delivery of an earlier row, a
// second later). Rows of an object are made only when asked for, to keep
// memory low.
func benchObjects(n int) (count int, objectAt func(o int) object) {
	start := ms("2026-03-10T00:00:00Z")
	users := max(n/8, 1)
	count = (n + benchObjectRows - 1) / benchObjectRows
	return count, func(o int) object {
		rng := rand.New(rand.NewPCG(uint64(o), 1))
		arrival := start + int64(o*24/count)*3_600_000
		obj := object{key: fmt.Sprintf("raw/2026/03/10/%05d.parquet", o), arrival: arrival}
		rows := min(benchObjectRows, n-o*benchObjectRows)
		obj.rows = make([]raw.Row, 0, rows)
		type session struct {
			user          int
			at            int64
			id, product   string
			platform, ver string
		}
		sessions := make([]session, max(rows/8, 1))
		for j := range sessions {
			s := &sessions[j]
			s.user = rng.IntN(users)
			s.at = arrival + 5000 + rng.Int64N(2_300_000)
			if s.user%2 == 0 {
				s.id = fmt.Sprintf("session-%05d-%06d", o, j)
			}
			s.product = pick(rng, "shop", "app", "docs")
			s.platform, s.ver = pick(rng, "web", "ios", "android"), fmt.Sprintf("1.%d", rng.IntN(10))
		}
		for len(obj.rows) < rows {
			if len(obj.rows) > 0 && rng.IntN(50) == 0 {
				r := obj.rows[rng.IntN(len(obj.rows))]
				r.ReceivedAt += 1000
				obj.rows = append(obj.rows, r)
				continue
			}
			s := &sessions[rng.IntN(len(sessions))]
			at := s.at + rng.Int64N(1_200_000)
			r := raw.Row{
				EventID:   fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff),
				EventTime: at - rng.Int64N(5000), HasEventTime: true, ReceivedAt: at, HasReceivedAt: true,
				EventName: fmt.Sprintf("event_%02d", rng.IntN(40)), SessionID: s.id, Product: s.product,
				Platform: s.platform, AppVersion: s.ver, Country: pick(rng, "US", "FR", "DE", "JP", "BR", "IN"), Source: obj.key,
			}
			if s.user%5 == 0 {
				r.DeviceID = fmt.Sprintf("device-%08d", s.user)
			} else {
				r.UserID, r.DeviceID = fmt.Sprintf("user-%08d", s.user), fmt.Sprintf("device-%08d", s.user)
			}
			if np := rng.IntN(4); np > 0 {
				r.Properties = make(map[string]string, np)
				for range np {
					k := rng.IntN(8)
					v := strconv.Itoa(rng.IntN(20))
					if k == 0 {
						v = fmt.Sprintf("/page/%d", rng.IntN(10_000))
					}
					r.Properties[fmt.Sprintf("prop_%d", k)] = v
				}
			}
			obj.rows = append(obj.rows, r)
		}
		return obj
	}
}

// benchParts routes a day of n events, an object at a time, as the job does.
func benchParts(b *testing.B, n int, rules Rules) []*Part {
	count, objectAt := benchObjects(n)
	var parts []*Part
	for o := range count {
		obj := objectAt(o)
		for _, p := range rules.Route(obj.rows, obj.arrival, func(day.Day) bool { return true }) {
			parts = append(parts, p)
		}
	}
	return parts
}

// clonePart is a deep copy of p (Build consumes its parts).
func clonePart(p *Part) *Part {
	d := frame.NewDict(p.Events.Dict.Len())
	for _, s := range p.Events.Dict.Strings().All() {
		d.ID(s)
	}
	e := frame.New(d, 0)
	c := func(x []uint32) []uint32 { return append([]uint32(nil), x...) }
	e.IDBytes, e.UUIDs = append([]byte(nil), p.Events.IDBytes...), p.Events.UUIDs
	e.IDOff, e.PropOff, e.PropKey, e.PropVal = c(p.Events.IDOff), c(p.Events.PropOff), c(p.Events.PropKey), c(p.Events.PropVal)
	e.EventTime = append([]int64(nil), p.Events.EventTime...)
	e.ClientTime = append([]int64(nil), p.Events.ClientTime...)
	e.ReceivedAt = append([]int64(nil), p.Events.ReceivedAt...)
	e.Skewed = append([]bool(nil), p.Events.Skewed...)
	for col := range e.Str {
		e.Str[col] = c(p.Events.Str[col])
	}
	return &Part{Events: e, Quarantine: append(p.Quarantine[:0:0], p.Quarantine...), RepairedUTF8: p.RepairedUTF8}
}

// BenchmarkBuild builds a day of benchEvents events from its parts (one
// per object of benchObjectRows rows), e.g.
//
//	COMPACT_BENCH_EVENTS=5000000 go test -run X -bench Build$ -benchtime 1x ./internal/compact
//
// All figures are per routed event: ns/event; B/event allocated by Build;
// and, on Linux, cpu-ns/event (the process's CPU time, all goroutines and
// the collector included), faulted-B/event (minor page faults × 4 KiB: on
// some VMs, fresh memory costs more than the work) and peakRSS-B/event (the
// peak resident set size over the one at the start of Build, when the
// parts are resident already).
func BenchmarkBuild(b *testing.B) {
	rules := DefaultRules(time.UTC)
	n := benchEvents(b)
	parts := benchParts(b, n, rules)
	var ms0, ms1 runtime.MemStats
	var allocated uint64
	peak, faults, cpu := int64(-1), int64(0), time.Duration(0)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ps := make([]*Part, len(parts))
		for i, p := range parts {
			ps[i] = clonePart(p)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		rss0 := resetPeakRSS()
		flt0, cpu0 := procStat()
		b.StartTimer()
		d := Build(ps, rules)
		b.StopTimer()
		if rss0 > 0 {
			peak = max(peak, peakRSS()-rss0)
		}
		flt1, cpu1 := procStat()
		faults += flt1 - flt0
		cpu += cpu1 - cpu0
		runtime.ReadMemStats(&ms1)
		allocated += ms1.TotalAlloc - ms0.TotalAlloc
		if d.Stats.RawRows != int64(n) || d.Events.Len() == 0 {
			b.Fatalf("stats %+v", d.Stats)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
	b.ReportMetric(float64(allocated)/float64(b.N)/float64(n), "B/event")
	if peak >= 0 {
		b.ReportMetric(float64(peak)/float64(n), "peakRSS-B/event")
		b.ReportMetric(float64(faults)*4096/float64(b.N)/float64(n), "faulted-B/event")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/event")
	}
}

// procStat returns the process's minor page faults and CPU time, user
// and system (Linux only; 10 ms steps).
func procStat() (faults int64, cpu time.Duration) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0
	}
	// Fields 10 (minflt), 14 (utime) and 15 (stime), counting from 1, after
	// the command in parentheses (field 2).
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, 0
	}
	faults, _ = strconv.ParseInt(f[7], 10, 64)
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return faults, time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100
}

// resetPeakRSS resets the process's peak resident set size (Linux only)
// and returns the current one in bytes, or 0 if it cannot.
func resetPeakRSS() int64 {
	if os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) != nil {
		return 0
	}
	return procStatus("VmRSS:")
}

// peakRSS is the peak resident set size since resetPeakRSS, in bytes.
func peakRSS() int64 { return procStatus("VmHWM:") }

func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkRoute routes benchEvents events, an object of benchObjectRows
// rows at a time.
func BenchmarkRoute(b *testing.B) {
	rules := DefaultRules(time.UTC)
	n := benchEvents(b)
	count, objectAt := benchObjects(n)
	objs := make([]object, min(count, 10))
	for o := range objs {
		objs[o] = objectAt(o)
	}
	rows := 0
	b.ReportAllocs()
	b.ResetTimer()
	_, cpu0 := procStat()
	for i := range b.N {
		obj := &objs[i%len(objs)]
		rules.Route(obj.rows, obj.arrival, func(day.Day) bool { return true })
		rows += len(obj.rows)
	}
	_, cpu1 := procStat()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/event")
	b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(rows), "cpu-ns/event")
}
