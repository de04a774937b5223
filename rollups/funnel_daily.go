package rollups

import (
	"slices"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
)

// FunnelDaily says how far the people who entered a funnel on a day got.
// Grain: dt (the entry day) × product × funnel × step.
//
// A person (user_key, in one product) enters a funnel on dt with their
// first event of dt that matches step 1 (at most once a day). From there
// each next step is their first event, in that product, that matches it,
// strictly later than the step before (by event_time; an event at the same
// millisecond does not advance) and at most the funnel's window after step
// 1 (inclusive), over dt and the days after it that the window reaches.
// A (dt, product, funnel) has rows only if someone entered it, one per
// step.
type FunnelDaily struct {
	Product       string   `parquet:"product" doc:"app or site; (none) if empty"`
	Funnel        string   `parquet:"funnel" doc:"the funnel's name in funnels.json"`
	Step          int64    `parquet:"step" doc:"the step's number, from 1"`
	StepName      string   `parquet:"step_name" doc:"the step: its event name, and the property it requires if any"`
	People        int64    `parquet:"people" doc:"people who entered the funnel on dt (their first step-1 event that day) and reached this step, each step strictly after the one before and within the window from step 1"`
	Conversion    float64  `parquet:"conversion" doc:"people / the people at step 1 (between 0 and 1)"`
	MedianSeconds *float64 `parquet:"median_seconds,optional" doc:"median time from step 1 to this step in seconds over the people who reached it (linear interpolation); null if nobody did"`
	WindowSeconds int64    `parquet:"window_seconds" doc:"the funnel's conversion window in seconds"`
	Provisional   bool     `parquet:"provisional" doc:"true until every entry's window has closed in final data: while dt, or a day the window reaches, is provisional or not built"`
	Date          int32    `parquet:"date,date" doc:"the entry day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// FunnelReach is the number of days after d that a window of w starting on
// d (in loc) reaches: those starting before d's end plus w.
func FunnelReach(d day.Day, loc *time.Location, w time.Duration) int {
	end, k := d.End(loc).Add(w), 0
	for (d + day.Day(k+1)).Start(loc).Before(end) {
		k++
	}
	return k
}

// FunnelInput is what funnel_daily of one day is computed from.
type FunnelInput struct {
	Day day.Day
	Loc *time.Location
	// Events[k] are the funnel events of day Day+k, for k from 0 to the
	// reach of the longest window (FunnelReach); nil for a day not built.
	Events []*FunnelEvents
	// Open[k] is true if day Day+k is provisional or not built.
	Open []bool
}

// ComputeFunnels returns funnel_daily of in.Day for f's funnels, sorted by
// product, funnel name and step.
func ComputeFunnels(f *Funnels, in FunnelInput) []FunnelDaily {
	out := []FunnelDaily{}
	if f.Empty() || len(in.Events) == 0 || in.Events[0] == nil {
		return out
	}
	c := newFunnelCounter(f, in)
	cursors := make([]int, len(in.Events))
	var seq funnelSeq
	for _, p := range in.Events[0].Persons {
		if p.Product != c.product {
			out = c.flush(out)
			c.product = p.Product
		}
		seq.reset()
		for k, fe := range in.Events {
			if fe == nil {
				continue
			}
			// Persons are sorted alike on every day: advance day k's
			// cursor to this person.
			ps := fe.Persons
			for cursors[k] < len(ps) && comparePersons(ps[cursors[k]], p) < 0 {
				cursors[k]++
			}
			if cursors[k] < len(ps) && comparePersons(ps[cursors[k]], p) == 0 {
				q := ps[cursors[k]]
				seq.add(fe.Times[q.Lo:q.Hi], fe.Steps[q.Lo:q.Hi], k == 0)
			}
		}
		c.count(&seq)
	}
	return c.flush(out)
}

// funnelSeq is one person's funnel events over the days read, in time
// order; the first n0 are of the entry day.
type funnelSeq struct {
	times []int64
	steps []uint64
	n0    int
}

func (s *funnelSeq) reset() { s.times, s.steps, s.n0 = s.times[:0], s.steps[:0], 0 }

func (s *funnelSeq) add(ts []int64, ss []uint64, entryDay bool) {
	s.times = append(s.times, ts...)
	s.steps = append(s.steps, ss...)
	if entryDay {
		s.n0 = len(s.times)
	}
}

// funnelCounter counts one product's people per funnel and step.
type funnelCounter struct {
	f       *Funnels
	order   []int  // the funnels by name: the order of their rows
	open    []bool // by funnel: a day its window reaches is open (its rows are provisional)
	product string
	people  [][]int64     // [funnel][step]
	seconds [][][]float64 // [funnel][step]: each person's seconds from step 1
}

func newFunnelCounter(f *Funnels, in FunnelInput) *funnelCounter {
	n := len(f.Funnels)
	c := &funnelCounter{f: f, order: make([]int, n), open: make([]bool, n), people: make([][]int64, n), seconds: make([][][]float64, n)}
	for i, fn := range f.Funnels {
		c.order[i] = i
		for k := 0; k <= FunnelReach(in.Day, in.Loc, fn.window) && k < len(in.Open); k++ {
			c.open[i] = c.open[i] || in.Open[k]
		}
		c.people[i] = make([]int64, len(fn.Steps))
		c.seconds[i] = make([][]float64, len(fn.Steps))
	}
	slices.SortFunc(c.order, func(a, b int) int { return strings.Compare(f.Funnels[a].Name, f.Funnels[b].Name) })
	return c
}

// count walks each funnel for one person: the entry is their first step-1
// event of the entry day, each next step the first later event within the
// window that matches it.
func (c *funnelCounter) count(s *funnelSeq) {
	for i, fn := range c.f.Funnels {
		first := c.f.bit(i, 0)
		e := slices.IndexFunc(s.steps[:s.n0], func(m uint64) bool { return m&first != 0 })
		if e < 0 {
			continue
		}
		t1, prev, limit := s.times[e], s.times[e], s.times[e]+fn.window.Milliseconds()
		c.people[i][0]++
		c.seconds[i][0] = append(c.seconds[i][0], 0)
		pos := e + 1
		for j := 1; j < len(fn.Steps); j++ {
			bit := c.f.bit(i, j)
			for pos < len(s.times) && (s.times[pos] <= prev || s.steps[pos]&bit == 0) && s.times[pos] <= limit {
				pos++
			}
			if pos == len(s.times) || s.times[pos] > limit {
				break
			}
			prev = s.times[pos]
			c.people[i][j]++
			c.seconds[i][j] = append(c.seconds[i][j], float64(prev-t1)/1000)
			pos++
		}
	}
}

// flush appends the product's rows (funnels by name) and resets the counts.
func (c *funnelCounter) flush(out []FunnelDaily) []FunnelDaily {
	for _, i := range c.order {
		fn := c.f.Funnels[i]
		entered := c.people[i][0]
		if entered == 0 {
			continue
		}
		for j, s := range fn.Steps {
			r := FunnelDaily{Product: c.product, Funnel: fn.Name, Step: int64(j + 1), StepName: s.Name(),
				People: c.people[i][j], Conversion: ratio(c.people[i][j], entered),
				WindowSeconds: fn.window.Milliseconds() / 1000, Provisional: c.open[i]}
			if secs := c.seconds[i][j]; len(secs) > 0 {
				slices.Sort(secs)
				m := QuantileCont(secs, 0.5)
				r.MedianSeconds = &m
			}
			out = append(out, r)
			c.people[i][j], c.seconds[i][j] = 0, c.seconds[i][j][:0]
		}
	}
	return out
}
