package job

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/erasure"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// funnel_daily is a windowed table of its own kind: it reads the events
// table (not user_daily) of the entry day and of the days its windows
// reach. It reads them through each day's funnel events: the events that
// match a step, which the day build writes beside the day's events files
// for the funnels defined when it ran (funnelEventsKey), and which the
// windowed stage makes from the events files when they are missing (the
// funnels changed, or the day was built before). Changing the funnels
// thus recomputes funnel_daily, never the days.

// FunnelTable is funnel_daily's name.
const FunnelTable = "funnel_daily"

// LoadFunnels reads the store's funnel definitions (rollups.FunnelsKey):
// none if the store has no such file, an error naming the problem if it is
// not a valid definition.
func LoadFunnels(ctx context.Context, st store.Store) (*rollups.Funnels, error) {
	b, err := st.Get(ctx, rollups.FunnelsKey)
	if errors.Is(err, store.ErrNotExist) {
		return &rollups.Funnels{}, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := rollups.ParseFunnels(b)
	if err != nil {
		return nil, fmt.Errorf("%s in the store: %w", rollups.FunnelsKey, err)
	}
	return f, nil
}

// funnelEventsKey is where the funnel events of digest's funnels live for
// the events run m: in its run folder, named with a leading underscore so
// that Athena (and Hive) do not read it as part of the events table, and
// deleted with the run.
func funnelEventsKey(m *publish.Manifest, digest string) string {
	return publish.RunPrefixAt(m.Table, "dt="+m.Day, m.Run) + funnelEventsPrefix + digest + ".bin"
}

// funnelEventsPrefix starts the name of every funnel events file.
const funnelEventsPrefix = "_funnel-events-"

// scanFunnelEvents counts the events of the request's people in a funnel
// events file. The file has no received_at: every event of theirs counts.
func scanFunnelEvents(ctx context.Context, st store.Store, key string, m *erasure.Matcher) (erasure.Found, error) {
	b, err := st.Get(ctx, key)
	if err != nil {
		return erasure.Found{}, err
	}
	fe, err := rollups.DecodeFunnelEvents(b)
	if err != nil {
		return erasure.Found{}, fmt.Errorf("scan %s: %w", key, err)
	}
	var f erasure.Found
	for _, p := range fe.Persons {
		n := int64(p.Hi - p.Lo)
		f.Rows += n
		product := p.Product
		if product == rollups.None {
			product = ""
		}
		if (m.Product(p.Product) || m.Product(product)) && m.ID(p.UserKey) {
			f.Matched += n
		}
	}
	return f, nil
}

// writeFunnelEvents writes the funnel events of day d's events, built by
// run, for f (nothing if f defines no funnel).
func (pub *publisher) writeFunnelEvents(ctx context.Context, run string, d day.Day, ev *frame.Events, f *rollups.Funnels) error {
	if f.Empty() {
		return nil
	}
	fe := rollups.FunnelEventsOf(f, ev)
	m := &publish.Manifest{Table: "events", Day: d.String(), Run: run}
	return pub.Store.Put(ctx, funnelEventsKey(m, fe.Digest), fe.Encode())
}

// funnelReader reads days' funnel events for one definition, each day
// once.
type funnelReader struct {
	w      *windowed
	f      *rollups.Funnels
	digest string                        // f.Digest()
	events map[day.Day]*publish.Manifest // each built day's current events run
	cache  map[day.Day]*rollups.FunnelEvents
	remade int // days whose funnel events were made from the events files
}

// of returns the funnel events of the events run m: the file beside it,
// or, if it is missing or of other funnels, made from the events files.
// Those are not written back: only a day build writes into a run folder
// (a run this stage read may be superseded and cleaned up meanwhile, and
// a file written into its folder then would outlive it); the day's next
// build writes them for the new funnels.
func (fr *funnelReader) of(ctx context.Context, d day.Day, m *publish.Manifest) (*rollups.FunnelEvents, error) {
	if fe, ok := fr.cache[d]; ok {
		return fe, nil
	}
	digest := fr.digest
	key := funnelEventsKey(m, digest)
	b, err := fr.w.Store.Get(ctx, key)
	var fe *rollups.FunnelEvents
	if err == nil {
		if fe, err = rollups.DecodeFunnelEvents(b); err != nil || fe.Digest != digest {
			fr.w.Log.Warn("unreadable funnel events; making them again from the events", "key", key, "error", fmt.Sprint(err))
			fe = nil
		}
	} else if !errors.Is(err, store.ErrNotExist) {
		return nil, err
	}
	if fe == nil {
		if fe, err = funnelEventsFromTable(ctx, fr.w.Store, m, fr.f); err != nil {
			return nil, err
		}
		fr.remade++
	}
	fr.cache[d] = fe
	return fe, nil
}

// funnelEventsFromTable makes f's funnel events of the events run m from
// its files.
func funnelEventsFromTable(ctx context.Context, st store.Store, m *publish.Manifest, f *rollups.Funnels) (*rollups.FunnelEvents, error) {
	b := rollups.NewFunnelEvents(f)
	for _, file := range m.Files {
		data, err := st.Get(ctx, file.Key)
		if err != nil {
			return nil, fmt.Errorf("events %s run %s: %w", m.Day, m.Run, err)
		}
		var err2 error
		if b.NeedsProperties() {
			err2 = readFunnelColumns[funnelRowProps](data, func(r *funnelRowProps) { b.Add(r.Product, r.UserKey, r.EventName, r.EventTime, r.Properties) })
		} else {
			err2 = readFunnelColumns[funnelRow](data, func(r *funnelRow) { b.Add(r.Product, r.UserKey, r.EventName, r.EventTime, nil) })
		}
		if err2 != nil {
			return nil, fmt.Errorf("read %s: %w", file.Key, err2)
		}
	}
	return b.Done(), nil
}

// funnelRow and funnelRowProps are the columns of the events table a
// funnel reads.
type funnelRow struct {
	EventName string `parquet:"event_name"`
	UserKey   string `parquet:"user_key"`
	Product   string `parquet:"product,optional"`
	EventTime int64  `parquet:"event_time,timestamp(millisecond)"`
}

type funnelRowProps struct {
	EventName  string            `parquet:"event_name"`
	UserKey    string            `parquet:"user_key"`
	Product    string            `parquet:"product,optional"`
	EventTime  int64             `parquet:"event_time,timestamp(millisecond)"`
	Properties map[string]string `parquet:"properties,optional"`
}

func readFunnelColumns[T any](data []byte, add func(*T)) error {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	r := parquet.NewGenericReader[T](f)
	defer r.Close()
	buf := make([]T, 1024)
	for {
		n, err := r.Read(buf)
		for i := range n {
			add(&buf[i])
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// funnelReserve is the time the windowed stage keeps for itself after
// funnel_daily: when less is left before its deadline (a Lambda
// invocation's), the partitions still stale are left to the next run.
const funnelReserve = 90 * time.Second

// funnelDaily brings funnel_daily up to date for every built day (one
// with a current user_daily, cur). A partition of day d is a pure function
// of the funnels (their digest), of the events runs of d and of the days
// its longest window reaches, and of those days' marks (a day not built
// counts as open); its fingerprint, "<digest>-<hash>", records them.
// Partitions of days not built are withdrawn. It never fails the stage:
// whatever stops it (a funnels.json that is not valid, the stage's time
// running out, a read failing) leaves the partitions it did not reach as
// they were, for the next run, and is said in ws.FunnelsError.
func (w *windowed) funnelDaily(ctx context.Context, run string, cur userDays, days []day.Day, ws *WindowedSummary, opt publish.WriterOptions) {
	err := w.funnelPartitions(ctx, run, days, ws, opt)
	if err == nil {
		err = w.withdrawTable(ctx, run, FunnelTable, cur.has, []rollups.FunnelDaily{}, ws, opt)
	}
	if err != nil {
		ws.FunnelsError, ws.FunnelsFileBad = err.Error(), errors.Is(err, rollups.ErrFunnels)
		w.Log.Error("funnel_daily not brought up to date; the next run carries on", "error", err.Error())
	}
}

// funnelPartitions is funnelDaily but for the withdrawals: days are the
// built days, in order.
func (w *windowed) funnelPartitions(ctx context.Context, run string, days []day.Day, ws *WindowedSummary, opt publish.WriterOptions) error {
	f, err := LoadFunnels(ctx, w.Store)
	if err != nil {
		return err
	}
	events := map[day.Day]*publish.Manifest{}
	for _, d := range days {
		if f.Empty() {
			break // the partitions read no day
		}
		m, err := publish.Current(ctx, w.Store, "events", d)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		events[d] = m
	}
	fr := &funnelReader{w: w, f: f, digest: f.Digest(), events: events, cache: map[day.Day]*rollups.FunnelEvents{}}
	defer func() { ws.FunnelDaysRemade = fr.remade }()
	loc := w.Rules.Loc
	for i, d := range days {
		reach := rollups.FunnelReach(d, loc, f.MaxWindow())
		fp := fr.fingerprint(d, reach)
		stale, err := w.stale(ctx, FunnelTable, d, fp)
		if err != nil {
			return err
		}
		if stale {
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < funnelReserve {
				return fmt.Errorf("the stage's time ran out with funnel_daily partitions from %s on still to compute (%d days)", d, len(days)-i)
			}
			in, err := fr.input(ctx, d, reach)
			if err != nil {
				return err
			}
			moved, err := w.publishWindowed(ctx, run, FunnelTable, d, fp, rollups.ComputeFunnels(f, in), opt, false)
			if err != nil {
				return err
			}
			ws.Restatements = append(ws.Restatements, moved...)
			ws.Others++
		} else if d >= w.From && d <= w.To {
			ws.UpToDate++
		}
		if stale || d >= w.From && d <= w.To {
			ws.Partitions = append(ws.Partitions, Partition{FunnelTable, d})
		}
		for x := range fr.cache {
			if x <= d { // later days start after d's entries: never read again
				delete(fr.cache, x)
			}
		}
	}
	return nil
}

// input gathers the funnel events and marks of day d and the reach days
// after it.
func (fr *funnelReader) input(ctx context.Context, d day.Day, reach int) (rollups.FunnelInput, error) {
	in := rollups.FunnelInput{Day: d, Loc: fr.w.Rules.Loc}
	if fr.f.Empty() {
		return in, nil
	}
	for k := 0; k <= reach; k++ {
		x := d + day.Day(k)
		m := fr.events[x]
		if m == nil {
			in.Events, in.Open = append(in.Events, nil), append(in.Open, true)
			continue
		}
		fe, err := fr.of(ctx, x, m)
		if err != nil {
			return in, err
		}
		in.Events = append(in.Events, fe)
		in.Open = append(in.Open, m.Config[statusKey] != rollups.Status(false))
	}
	return in, nil
}

// fingerprint is "<digest>-<hash>" of what funnel_daily of day d reads.
func (fr *funnelReader) fingerprint(d day.Day, reach int) string {
	h := sha256.New()
	fmt.Fprintf(h, "code=%s table=%s\n", CodeVersion, FunnelTable)
	if !fr.f.Empty() {
		for k := 0; k <= reach; k++ {
			x := d + day.Day(k)
			if m := fr.events[x]; m != nil {
				fmt.Fprintf(h, "%s %s %s\n", x, m.Run, m.Config[statusKey])
			} else {
				fmt.Fprintf(h, "%s none\n", x)
			}
		}
	}
	return fr.digest + "-" + hex.EncodeToString(h.Sum(nil))
}

// sameFunnels reports whether two funnel_daily fingerprints are of the
// same funnel definitions.
func sameFunnels(a, b string) bool {
	da, _, _ := strings.Cut(a, "-")
	db, _, _ := strings.Cut(b, "-")
	return da == db
}
