package gen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/pqrows"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// createdBy is the writer named in every file's footer.
const createdBy = "littlewarehouse eventgen version 1 (build firehose-layout)"

func codecOf(name string) (compress.Codec, error) {
	switch name {
	case "snappy":
		return fastSnappy{}, nil
	case "gzip":
		return &parquet.Gzip, nil
	case "zstd":
		return &parquet.Zstd, nil
	case "none", "uncompressed":
		return &parquet.Uncompressed, nil
	}
	return nil, fmt.Errorf("compression %q: want snappy, gzip, zstd or none", name)
}

// fastSnappy is Snappy block compression at the default speed of
// klauspost/compress (parquet-go's codec uses its slower "better" mode).
// Any Snappy reader decodes it.
type fastSnappy struct{}

func (fastSnappy) String() string                            { return "SNAPPY" }
func (fastSnappy) CompressionCodec() format.CompressionCodec { return format.Snappy }
func (fastSnappy) Encode(dst, src []byte) ([]byte, error) {
	return s2.EncodeSnappy(dst[:cap(dst)], src), nil
}
func (fastSnappy) Decode(dst, src []byte) ([]byte, error) { return parquet.Snappy.Decode(dst, src) }

// dictColumns are written dictionary-encoded in the INT64 objects, as
// Firehose's Parquet writer (parquet-mr) does for repetitive strings. The
// INT96 objects keep every string plain, so readers see both.
var dictColumns = []string{"event_name", "user_id", "device_id", "session_id", "product", "platform", "app_version", "country"}

// dictOptions add ",dict" to the parquet tags of event.Raw's dictColumns
// (tag replacements are addressed by Go field name).
var dictOptions = func() []parquet.WriterOption {
	var opts []parquet.WriterOption
	t := reflect.TypeOf(event.Raw{})
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("parquet")
		name, _, _ := strings.Cut(tag, ",")
		if slices.Contains(dictColumns, name) {
			nt := reflect.StructTag(fmt.Sprintf(`parquet:%q`, tag+",dict"))
			opts = append(opts, parquet.StructTag(nt, f.Name).(parquet.WriterOption))
		}
	}
	if len(opts) != len(dictColumns) {
		panic("gen: dictColumns out of step with event.Raw")
	}
	return opts
}()

// raw96 is event.Raw with the two time columns as physical INT96, as Hive
// and Impala (and Firehose writers configured like them) write timestamps.
// The times are pointers, nil for null: parquet-go v0.32.0 does not always
// write a zero Int96 of an optional field as null (the last row of a batch
// came out as a non-null Julian day 0).
type raw96 struct {
	EventID    string            `parquet:"event_id,optional"`
	EventTime  *deprecated.Int96 `parquet:"event_time,optional"`
	ReceivedAt *deprecated.Int96 `parquet:"received_at,optional"`
	EventName  string            `parquet:"event_name,optional"`
	UserID     string            `parquet:"user_id,optional"`
	DeviceID   string            `parquet:"device_id,optional"`
	SessionID  string            `parquet:"session_id,optional"`
	Product    string            `parquet:"product,optional"`
	Platform   string            `parquet:"platform,optional"`
	AppVersion string            `parquet:"app_version,optional"`
	Country    string            `parquet:"country,optional"`
	Properties map[string]string `parquet:"properties,optional"`
}

// julianUnixEpoch is the Julian day number of 1970-01-01.
const julianUnixEpoch = 2440588

// ToInt96 encodes t as an INT96 timestamp: nanoseconds of the day in the
// first 8 bytes, the Julian day in the last 4 (all little-endian). The zero
// time gives the zero Int96 (raw96 writes null as a nil pointer instead).
func ToInt96(t time.Time) deprecated.Int96 {
	if t.IsZero() {
		return deprecated.Int96{}
	}
	ns := t.UnixNano()
	days := ns / int64(24*time.Hour)
	nod := ns % int64(24*time.Hour)
	if nod < 0 {
		nod += int64(24 * time.Hour)
		days--
	}
	return deprecated.Int96{uint32(nod), uint32(uint64(nod) >> 32), uint32(days + julianUnixEpoch)}
}

func int96Ptr(t time.Time) *deprecated.Int96 {
	if t.IsZero() {
		return nil
	}
	v := ToInt96(t)
	return &v
}

// FromInt96 decodes an INT96 timestamp (see ToInt96). It is what readers
// must do instead of letting parquet-go's reflection decode the column.
func FromInt96(v deprecated.Int96) time.Time {
	nod := int64(uint64(v[1])<<32 | uint64(v[0]))
	days := int64(v[2]) - julianUnixEpoch
	return time.Unix(0, days*int64(24*time.Hour)+nod).UTC()
}

type item struct {
	ra  int64 // received_at, Unix ms
	row int32 // index into the hour's rows
}

type objResult struct {
	key   string
	rows  int64
	int96 bool
}

type hourResult struct {
	objects []objResult
	rep     Report // counts only
}

// genHour generates and writes the ObjectsPerHour objects of absolute
// arrival hour h.
func (g *generator) genHour(ctx context.Context, st store.Store, h int64) (hourResult, error) {
	c := g.cfg
	hourStart, hourEnd := h*msHour, (h+1)*msHour
	var res hourResult
	rep := &res.rep

	// The events arriving in h come from sessions that started in h-2..h.
	var sess [lookbackHours + 1][]session
	var evs []cev
	for lb := lookbackHours; lb >= 0; lb-- {
		m := g.acquire(h - int64(lb))
		defer g.release(h-int64(lb), m)
		sess[lb] = m.sessions
		for _, e := range m.events {
			if e.at >= hourStart && e.at < hourEnd {
				e.hour = uint8(lb)
				evs = append(evs, e)
			}
		}
	}
	rep.Sessions = int64(len(sess[0]))
	// Sort by arrival; ties keep the order above (start hour, session,
	// position), so the order is total. Sorting packed keys is much faster
	// than sorting the structs.
	keys := make([]uint64, len(evs))
	for i, e := range evs {
		keys[i] = uint64(e.at-hourStart)<<40 | uint64(i)
	}
	slices.Sort(keys)
	sorted := make([]cev, len(evs))
	for i, k := range keys {
		sorted[i] = evs[k&(1<<40-1)]
	}
	evs = sorted

	// r decides the data, q the nasty cases, so turning a knob on leaves
	// every event's id, names and properties as they were.
	r := newRNG(c.Seed, streamHour, h)
	q := newRNG(c.Seed, streamNasty, h)
	opw := c.ObjectsPerHour
	// allRows holds every row of the hour; objs says which rows go to which
	// object, with their received_at for sorting.
	allRows := make([]event.Raw, 0, len(evs)+len(evs)/8+16)
	objs := make([][]item, opw)
	first := make([]int64, opw) // arrival of the oldest record in each object
	for i := range first {
		first[i] = math.MaxInt64
	}
	for i := range objs {
		objs[i] = make([]item, 0, len(evs)/opw+len(evs)/opw/8+16)
	}
	add := func(w int, ra int64, e event.Raw) {
		objs[w] = append(objs[w], item{ra: ra, row: int32(len(allRows))})
		allRows = append(allRows, e)
	}
	start := g.firstHour * msHour // the range's first instant (Config.StartOnFrom)
	late, skew := c.LateRate, c.LateRate+c.SkewedRate
	missing := skew + c.MissingTimeRate

	for i := range evs {
		e := &evs[i]
		w := int((e.at - hourStart) / g.winLen)
		s := &sess[e.hour][e.sess]
		u := &g.users[s.user]
		platform := c.Platforms[u.platform]
		name := e.name
		if name == 0 && platform == "web" {
			name = namePageView
		}
		raw := event.Raw{
			EventID:    uuidString(uuidV7(e.at, r)),
			ReceivedAt: time.UnixMilli(e.at).UTC(),
			EventName:  eventName(name),
			DeviceID:   u.deviceID,
			Product:    c.Products[s.product],
			Platform:   platform,
			AppVersion: u.appVersion,
			Country:    u.country,
		}
		if e.seq >= s.signInSeq {
			raw.UserID = u.userID
		} else {
			rep.AnonEvents++
		}
		if s.sessionID != "" {
			raw.SessionID = s.sessionID
			rep.SessionIDs++
		}
		onTime := e.at - r.Int64N(5*msSec+1)
		if c.StartOnFrom {
			onTime = max(onTime, start)
		}
		et := onTime
		if r.Float64() < 0.2 {
			raw.Properties = properties(r, raw.EventName)
			rep.WithProperties++
		}
		hasTime := true
		switch x := q.Float64(); {
		case x < late:
			if q.IntN(2) == 0 {
				et = e.at - msHour - q.Int64N(23*msHour) // hours late
			} else {
				et = e.at - msDay - q.Int64N(5*msDay) // days late, at most 6
			}
			switch {
			case !c.StartOnFrom || et >= start:
				rep.Late++
			case e.at-start >= msHour:
				et = start + q.Int64N(e.at-start-msHour+1)
				rep.Late++
			default:
				et = onTime
			}
		case x < skew:
			rep.Skewed++
			switch q.IntN(10) {
			case 0, 1, 2, 3:
				rep.SkewedFuture++
				et = e.at + 15*msMin + q.Int64N(3*msDay-15*msMin)
			case 4:
				rep.SkewedPast++
				et = msSec + q.Int64N(msMin) // a reset clock: 1970-01-01
			default:
				rep.SkewedPast++
				et = e.at - 8*msDay - q.Int64N(82*msDay)
			}
		case x < missing:
			rep.MissingTime++
			hasTime = false
		}
		if hasTime {
			raw.EventTime = time.UnixMilli(et).UTC()
		}
		add(w, e.at, raw)
		first[w] = min(first[w], e.at)
		rep.Events++

		if c.InvalidRate > 0 && q.Float64() < c.InvalidRate {
			inv := raw
			inv.EventID = uuidString(uuidV7(e.at, q))
			invTime := e.at - q.Int64N(5*msSec+1)
			if c.StartOnFrom {
				invTime = max(invTime, start)
			}
			inv.EventTime = time.UnixMilli(invTime).UTC()
			inv.Properties = nil
			if q.IntN(2) == 0 {
				inv.EventName = ""
				rep.InvalidNoName++
			} else {
				inv.UserID, inv.DeviceID = "", ""
				rep.InvalidNoWho++
			}
			rep.Invalid++
			add(w, e.at, inv)
		}

		if c.DuplicateRate > 0 && q.Float64() < c.DuplicateRate {
			dup := raw
			j := w + q.IntN(opw-w)
			later := q.IntN(2) == 0
			arrival := e.at
			if j == w {
				if ra := e.at + msSec + q.Int64N(29*msSec); later && ra < hourStart+int64(w+1)*g.winLen {
					dup.ReceivedAt = time.UnixMilli(ra).UTC()
					rep.DupLaterTime++
				}
			} else {
				arrival = hourStart + int64(j)*g.winLen + q.Int64N(g.winLen)
				if later {
					dup.ReceivedAt = time.UnixMilli(arrival).UTC()
					rep.DupLaterTime++
				}
				rep.DupOtherObject++
			}
			rep.Duplicates++
			add(j, dup.ReceivedAt.UnixMilli(), dup)
			first[j] = min(first[j], arrival)
		}
	}
	rep.RawRows = rep.Events + rep.Invalid + rep.Duplicates

	codec, _ := codecOf(c.Compression)
	var ordered []event.Raw
	for w := range objs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		// Rows sorted by received_at; ties keep the order they were made in.
		items := objs[w]
		slices.SortFunc(items, func(a, b item) int {
			if a.ra != b.ra {
				return cmpInt(a.ra, b.ra)
			}
			return int(a.row - b.row)
		})
		var rows []event.Raw
		if contiguous(items) {
			rows = allRows[items[0].row : int(items[0].row)+len(items)] // already in order
		} else {
			ordered = ordered[:0]
			for _, it := range items {
				ordered = append(ordered, allRows[it.row])
			}
			rows = ordered
		}
		var id [16]byte
		fillRandom(r, id[:])
		key := objectKey(c.Stream, first[w], uuidV4(id))
		idx := int(h-g.firstHour)*opw + w
		int96 := g.int96[idx]
		n, err := g.writeObject(ctx, st, key, func(wr io.Writer) error { return writeParquet(wr, rows, int96, codec) })
		if err != nil {
			return res, err
		}
		rep.Bytes += n
		res.objects = append(res.objects, objResult{key: key, rows: int64(len(rows)), int96: int96})
	}
	return res, nil
}

// contiguous reports whether items name consecutive rows, in order.
func contiguous(items []item) bool {
	for i := 1; i < len(items); i++ {
		if items[i].row != items[i-1].row+1 {
			return false
		}
	}
	return len(items) > 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeObject writes one object atomically through fill and returns its
// size. The store's Close (which syncs to disk) runs in the background on
// g.closers, so the next object is made meanwhile; Generate waits for them.
func (g *generator) writeObject(ctx context.Context, st store.Store, key string, fill func(io.Writer) error) (int64, error) {
	sw, err := st.NewWriter(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("gen: write %s: %w", key, err)
	}
	cw := &countWriter{w: sw}
	bw := bufio.NewWriterSize(cw, 1<<20)
	if err := fill(bw); err != nil {
		sw.Abort()
		return 0, fmt.Errorf("gen: write %s: %w", key, err)
	}
	if err := bw.Flush(); err != nil {
		sw.Abort()
		return 0, fmt.Errorf("gen: write %s: %w", key, err)
	}
	g.closers.Go(func() error {
		if err := sw.Close(); err != nil {
			return fmt.Errorf("gen: write %s: %w", key, err)
		}
		return nil
	})
	return cw.n, nil
}

// writeParquet writes rows as one Parquet file (one row group).
func writeParquet(w io.Writer, rows []event.Raw, int96 bool, codec compress.Codec) error {
	opts := []parquet.WriterOption{
		parquet.Compression(codec),
		&parquet.WriterConfig{CreatedBy: createdBy},
		parquet.MaxRowsPerRowGroup(max(int64(len(rows)), 1)),
	}
	if !int96 {
		pw := parquet.NewGenericWriter[event.Raw](w, append(opts, dictOptions...)...)
		if err := pqrows.Write(pw, rows); err != nil {
			return err
		}
		return pw.Close()
	}
	pw := parquet.NewGenericWriter[raw96](w, opts...)
	buf := make([]raw96, 0, 4096)
	for len(rows) > 0 {
		n := min(len(rows), cap(buf))
		buf = buf[:0]
		for _, e := range rows[:n] {
			buf = append(buf, raw96{
				EventID: e.EventID, EventTime: int96Ptr(e.EventTime), ReceivedAt: int96Ptr(e.ReceivedAt),
				EventName: e.EventName, UserID: e.UserID, DeviceID: e.DeviceID, SessionID: e.SessionID,
				Product: e.Product, Platform: e.Platform, AppVersion: e.AppVersion, Country: e.Country,
				Properties: e.Properties,
			})
		}
		if err := pqrows.Write(pw, buf); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return pw.Close()
}

// planINT96 picks which objects (by index in the range) are INT96.
func (g *generator) planINT96() map[int]bool {
	n := g.hours() * g.cfg.ObjectsPerHour
	out := make(map[int]bool, g.cfg.INT96Objects)
	if g.cfg.INT96Objects == 0 {
		return out
	}
	r := newRNG(g.cfg.Seed, streamPlan, 0)
	for len(out) < g.cfg.INT96Objects {
		out[r.IntN(n)] = true
	}
	return out
}

// writeBad writes the deliberately bad objects and records them in rep.
func (g *generator) writeBad(ctx context.Context, st store.Store, rep *Report) error {
	c := g.cfg
	r := newRNG(c.Seed, streamPlan, 1)
	codec, _ := codecOf(c.Compression)
	kinds := []struct {
		kind string
		n    int
	}{{KindNotParquet, c.NotParquet}, {KindTruncated, c.Truncated}, {KindZeroByte, c.ZeroByte}}
	for _, k := range kinds {
		for range k.n {
			at := g.from.UnixMilli() + r.Int64N(int64(g.hours()))*msHour + r.Int64N(msHour)
			var id [16]byte
			fillRandom(r, id[:])
			key := objectKey(c.Stream, at, uuidV4(id))
			rows := g.sampleRows(r, at, 10+r.IntN(40))
			var data []byte
			switch k.kind {
			case KindNotParquet:
				// What a stream without format conversion delivers: JSON lines.
				var b bytes.Buffer
				enc := json.NewEncoder(&b)
				for _, e := range rows {
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
				data = b.Bytes()
			case KindTruncated:
				var b bytes.Buffer
				if err := writeParquet(&b, rows, false, codec); err != nil {
					return fmt.Errorf("gen: write %s: %w", key, err)
				}
				data = b.Bytes()[:b.Len()/2]
			case KindZeroByte:
				data = []byte{}
			}
			if err := st.Put(ctx, key, data); err != nil {
				return fmt.Errorf("gen: write %s: %w", key, err)
			}
			rep.BadObjects = append(rep.BadObjects, key)
			rep.BadObjectKinds[key] = k.kind
			rep.Bytes += int64(len(data))
		}
	}
	return nil
}

// sampleRows makes n plausible events arriving from at on, for bad objects.
func (g *generator) sampleRows(r *rand.Rand, at int64, n int) []event.Raw {
	c := g.cfg
	rows := make([]event.Raw, n)
	for i := range rows {
		u := &g.users[r.IntN(len(g.users))]
		t := at + int64(i)*msSec
		rows[i] = event.Raw{
			EventID:    uuidString(uuidV7(t, r)),
			EventTime:  time.UnixMilli(t - r.Int64N(5*msSec)).UTC(),
			ReceivedAt: time.UnixMilli(t).UTC(),
			EventName:  eventNames[g.names.draw(r)],
			UserID:     u.userID,
			DeviceID:   u.deviceID,
			Product:    c.Products[u.product],
			Platform:   c.Platforms[u.platform],
			AppVersion: u.appVersion,
			Country:    u.country,
		}
	}
	return rows
}
