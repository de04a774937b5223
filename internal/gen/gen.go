// Package gen generates deterministic synthetic raw events in the exact layout
// Kinesis Data Firehose writes them (docs/design.md §The raw event), for demos, tests and
// benchmarks.
//
// Objects land under raw/YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>,
// where the hour and the timestamp are the UTC arrival time of the oldest
// record in the object. Every arrival hour of the range gets exactly
// ObjectsPerHour objects (one per buffer window of 60/ObjectsPerHour minutes),
// plus the deliberately bad objects asked for.
//
// Everything comes from a seeded random source, never from a clock: the same
// Config gives the same keys and the same bytes, whatever the number of
// cores.
//
// The model, in short:
//
//   - Users (Config.Users) are ranked; sessions pick users by a Zipf
//     distribution. A user can only start sessions in every third hour, so
//     the sessions of one user are always more than 30 minutes apart
//     (except, rarely, when the population is too small for the load).
//   - A session is a burst of 1..80 events seconds to minutes apart (at most
//     110 minutes long) on the user's device (platform, app_version, country
//     fixed per user) and one product. Sessions that start late in the day
//     run past UTC midnight. A share of sessions (SessionIDRate) carries a
//     client session_id.
//   - Anonymous users (AnonRate) send device_id only; a third of them sign in
//     during the range: from then on the same device_id also carries their
//     user_id, and the session in which they sign in has a login event.
//   - Arrival (received_at) follows a daily curve (busiest around 16:00 UTC).
//     event_time = received_at minus a client delay of 0–5 s, except for the
//     nasty cases below.
//
// Nasty cases, each a fraction of the good events (0 disables):
//
//   - LateRate: event_time 1 hour to 6 days before received_at.
//   - SkewedRate: event_time more than 10 minutes after received_at (15 min
//     to 3 days), or more than 7 days before it (8 to 90 days, and a few at
//     the Unix epoch: a reset clock).
//   - MissingTimeRate: event_time null.
//   - InvalidRate: an extra row with a fresh event_id that has no event_name,
//     or neither user_id nor device_id (half each).
//   - DuplicateRate: an extra exact copy (same event_id) of a good event in
//     the same object or a later object of the same arrival hour (Firehose
//     redelivery); half of the copies have a later received_at (a retry).
//
// The files: rows in an object are sorted by received_at; one row group;
// compression per Config (Snappy by default, as Firehose); low-cardinality
// strings (event_name, user_id, device_id, session_id, product, platform,
// app_version, country) dictionary-encoded as parquet-mr does, event_id and
// properties plain. INT96Objects objects are written like Hive: event_time
// and received_at as physical INT96 (Julian day + nanoseconds of the day),
// every string plain. Bad objects: JSON lines (NotParquet), the first half
// of a valid Parquet file (Truncated), or empty (ZeroByte); they have proper
// raw key names in arrival hours of the range.
//
// An object's name carries the arrival of its oldest record. A duplicate
// redelivered into a later object arrives in that object's window but keeps
// its original received_at, so an object may hold a row whose received_at
// is older than the time in its name (as Firehose redelivery does).
//
// Turning a nasty knob on never changes the good events (ids, names,
// properties, sessions): it only adds rows or moves event_time, so a clean
// and a nasty run of one seed can be compared.
//
// Counts in the Report are exact. Events (the good, distinct events) equals
// days × EventsPerDay, except that every arrival hour gets at least
// ObjectsPerHour events (so no object is empty). Late, Skewed and
// MissingTime count good events (duplicate copies are not counted again).
// The Report is also written to _eventgen/<seed>-<from>-<to>.json in the
// store so tests can tell which objects are deliberately bad.
package gen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// Config says what to generate. The zero value of every field but From, To
// and EventsPerDay means its default.
type Config struct {
	From, To       time.Time // UTC days (inclusive) whose arrival hours get objects
	EventsPerDay   int       // good events per day (before duplicates/invalid are added)
	ObjectsPerHour int       // objects per arrival hour; default 4 (a 15-minute buffer); at most 60
	Seed           int64
	Stream         string   // Firehose delivery stream name; default "events"
	Products       []string // default {"shop","blog","admin"}
	Platforms      []string // default {"web","ios","android"}
	Users          int      // distinct users (Zipf-distributed activity); default EventsPerDay/20, min 10

	// Nasty-case knobs, fractions of the good events (0 disables).
	DuplicateRate, LateRate, SkewedRate, MissingTimeRate, InvalidRate float64

	// StartOnFrom makes the data start on From, as for a service that
	// went live then: no row is dated before From but the clock-skewed
	// ones (which a reader counts at their arrival), so no day before the
	// range holds rows. A late event that would be is dated between From
	// and an hour before its arrival instead (or, arriving in the range's
	// first hour, is on time), and the client delay of an event arriving
	// in From's first seconds ends at From. Off, the first days' late
	// events are dated up to 6 days before From, as in a window cut from a
	// longer stream.
	StartOnFrom bool

	// AnonRate is the share of users that are anonymous (device_id only); a
	// third of them sign in during the range. 0 means the default 0.3; a
	// negative value means no anonymous users.
	AnonRate float64
	// SessionIDRate is the share of sessions (hence, about, of events) that
	// carry a client session_id; the rest must be inferred. 0 means the
	// default 0.5; a negative value means none.
	SessionIDRate float64

	INT96Objects int // objects whose event_time/received_at are physical INT96 (as Hive writes)

	NotParquet, Truncated, ZeroByte int // bad objects to add, in arrival hours of the range

	Compression string // "snappy" (default, as Firehose), "gzip", "zstd", "none"
}

// Defaults of Config.
const (
	DefaultObjectsPerHour = 4
	DefaultStream         = "events"
	DefaultAnonRate       = 0.3
	DefaultSessionIDRate  = 0.5
	DefaultCompression    = "snappy"
)

// Bad object kinds, as named in Report.BadObjectKinds.
const (
	KindNotParquet = "not-parquet"
	KindTruncated  = "truncated"
	KindZeroByte   = "zero-byte"
)

// ReportPrefix is the folder, at the store's root, that holds the reports.
const ReportPrefix = "_eventgen/"

// Report says exactly what Generate wrote.
type Report struct {
	Key         string `json:"report_key"` // where this report is stored
	Seed        int64  `json:"seed"`
	From        string `json:"from"` // YYYY-MM-DD
	To          string `json:"to"`
	Stream      string `json:"stream"`
	Compression string `json:"compression"`

	EventsPerDay   int `json:"events_per_day"`
	ObjectsPerHour int `json:"objects_per_hour"`
	Users          int `json:"users"`

	// Objects are the readable Parquet objects (INT96 ones included), sorted.
	Objects []string `json:"objects"`
	// INT96Objects are the objects whose time columns are physical INT96.
	INT96Objects []string `json:"int96_objects"`
	// BadObjects are the deliberately unreadable objects, sorted, and
	// BadObjectKinds says what each is (KindNotParquet, ...).
	BadObjects     []string          `json:"bad_objects"`
	BadObjectKinds map[string]string `json:"bad_object_kinds"`
	// ObjectRows is the number of rows in each readable object.
	ObjectRows map[string]int64 `json:"object_rows"`
	Bytes      int64            `json:"bytes"` // total size of all objects written

	RawRows        int64 `json:"raw_rows"`         // rows in readable objects = Events + Invalid + Duplicates
	Events         int64 `json:"events"`           // good (valid, distinct) events
	Duplicates     int64 `json:"duplicates"`       // extra copies of good events (same event_id)
	DupLaterTime   int64 `json:"dup_later_time"`   // of which with a later received_at
	DupOtherObject int64 `json:"dup_other_object"` // of which in a later object than the original
	Invalid        int64 `json:"invalid"`          // invalid rows = InvalidNoName + InvalidNoWho
	InvalidNoName  int64 `json:"invalid_no_name"`
	InvalidNoWho   int64 `json:"invalid_no_who"` // neither user_id nor device_id
	Late           int64 `json:"late"`           // good events with event_time 1 h .. 6 d before received_at
	Skewed         int64 `json:"skewed"`         // = SkewedFuture + SkewedPast
	SkewedFuture   int64 `json:"skewed_future"`
	SkewedPast     int64 `json:"skewed_past"`
	MissingTime    int64 `json:"missing_time"`    // good events with null event_time
	AnonEvents     int64 `json:"anon_events"`     // good events with device_id only
	SessionIDs     int64 `json:"session_ids"`     // good events carrying a session_id
	WithProperties int64 `json:"with_properties"` // good events with a properties map
	Sessions       int64 `json:"sessions"`        // generated client sessions with an event in the range
	SignIns        int64 `json:"sign_ins"`        // anonymous users who sign in during the range
}

func (r *Report) add(o *Report) {
	r.RawRows += o.RawRows
	r.Events += o.Events
	r.Duplicates += o.Duplicates
	r.DupLaterTime += o.DupLaterTime
	r.DupOtherObject += o.DupOtherObject
	r.Invalid += o.Invalid
	r.InvalidNoName += o.InvalidNoName
	r.InvalidNoWho += o.InvalidNoWho
	r.Late += o.Late
	r.Skewed += o.Skewed
	r.SkewedFuture += o.SkewedFuture
	r.SkewedPast += o.SkewedPast
	r.MissingTime += o.MissingTime
	r.AnonEvents += o.AnonEvents
	r.SessionIDs += o.SessionIDs
	r.WithProperties += o.WithProperties
	r.Sessions += o.Sessions
	r.Bytes += o.Bytes
}

// Nasty returns cfg with every nasty knob on at small rates: 2% duplicates,
// 3% late, 1% clock-skewed, 1% missing event_time, 1% invalid, two INT96
// objects and one bad object of each kind. Knobs already set are kept.
func Nasty(cfg Config) Config {
	set := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	set(&cfg.DuplicateRate, 0.02)
	set(&cfg.LateRate, 0.03)
	set(&cfg.SkewedRate, 0.01)
	set(&cfg.MissingTimeRate, 0.01)
	set(&cfg.InvalidRate, 0.01)
	seti := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	seti(&cfg.INT96Objects, 2)
	seti(&cfg.NotParquet, 1)
	seti(&cfg.Truncated, 1)
	seti(&cfg.ZeroByte, 1)
	return cfg
}

// day truncates t to its UTC day.
func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// withDefaults fills in defaults; it does not validate.
func (c Config) withDefaults() Config {
	if c.ObjectsPerHour == 0 {
		c.ObjectsPerHour = DefaultObjectsPerHour
	}
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if len(c.Products) == 0 {
		c.Products = []string{"shop", "blog", "admin"}
	}
	if len(c.Platforms) == 0 {
		c.Platforms = []string{"web", "ios", "android"}
	}
	if c.Users == 0 {
		c.Users = max(c.EventsPerDay/20, 10)
	}
	switch {
	case c.AnonRate == 0:
		c.AnonRate = DefaultAnonRate
	case c.AnonRate < 0:
		c.AnonRate = 0
	}
	switch {
	case c.SessionIDRate == 0:
		c.SessionIDRate = DefaultSessionIDRate
	case c.SessionIDRate < 0:
		c.SessionIDRate = 0
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	c.Compression = strings.ToLower(c.Compression)
	return c
}

// maxDays bounds a range so a typo cannot fill a disk.
const maxDays = 3660

// Validate reports the first thing wrong with cfg (after defaults), in one
// line fit for a usage error.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.From.IsZero() || c.To.IsZero():
		return errors.New("from and to are required")
	case day(c.To).Before(day(c.From)):
		return fmt.Errorf("to (%s) is before from (%s)", day(c.To).Format(time.DateOnly), day(c.From).Format(time.DateOnly))
	case day(c.To).Sub(day(c.From)) >= maxDays*24*time.Hour:
		return fmt.Errorf("range of more than %d days", maxDays)
	case c.EventsPerDay <= 0:
		return fmt.Errorf("events per day must be positive, not %d", c.EventsPerDay)
	case c.EventsPerDay > 1_000_000_000:
		return fmt.Errorf("events per day %d is too many", c.EventsPerDay)
	case c.ObjectsPerHour < 1 || c.ObjectsPerHour > 60:
		return fmt.Errorf("objects per hour must be 1..60, not %d", c.ObjectsPerHour)
	case c.Users < 3 || c.Users > math.MaxInt32:
		return fmt.Errorf("users must be at least 3, not %d", c.Users)
	case len(c.Products) > 255 || len(c.Platforms) > 255:
		return errors.New("at most 255 products and 255 platforms")
	case c.INT96Objects < 0 || c.NotParquet < 0 || c.Truncated < 0 || c.ZeroByte < 0:
		return errors.New("object counts must not be negative")
	}
	if !validStream(c.Stream) {
		return fmt.Errorf("stream name %q: want 1-64 of [A-Za-z0-9_.-]", c.Stream)
	}
	for _, s := range append(slices.Clone(c.Products), c.Platforms...) {
		if s == "" {
			return errors.New("empty product or platform name")
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"duplicate rate", c.DuplicateRate}, {"late rate", c.LateRate}, {"skewed rate", c.SkewedRate},
		{"missing time rate", c.MissingTimeRate}, {"invalid rate", c.InvalidRate},
		{"anon rate", c.AnonRate}, {"session id rate", c.SessionIDRate},
	} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("%s must be in [0,1], not %v", r.name, r.v)
		}
	}
	if s := c.LateRate + c.SkewedRate + c.MissingTimeRate; s > 1 {
		return fmt.Errorf("late + skewed + missing time rates add up to %v > 1", s)
	}
	if _, err := codecOf(c.Compression); err != nil {
		return err
	}
	days := int(day(c.To).Sub(day(c.From))/(24*time.Hour)) + 1
	if n := days * 24 * c.ObjectsPerHour; c.INT96Objects > n {
		return fmt.Errorf("int96 objects %d > the %d objects of the range", c.INT96Objects, n)
	}
	return nil
}

func validStream(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// ReportKey is where Generate stores the report of cfg.
func ReportKey(cfg Config) string {
	return fmt.Sprintf("%s%d-%s-%s.json", ReportPrefix, cfg.Seed,
		day(cfg.From).Format(time.DateOnly), day(cfg.To).Format(time.DateOnly))
}

// Generate writes the raw objects of cfg to st, then the report, and
// returns the report. Objects are generated concurrently (GOMAXPROCS arrival
// hours at a time); the output does not depend on the concurrency.
func Generate(ctx context.Context, st store.Store, cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, fmt.Errorf("gen: %w", err)
	}
	g := newGenerator(cfg.withDefaults())
	c := g.cfg

	rep := Report{
		Key:            ReportKey(c),
		Seed:           c.Seed,
		From:           g.from.Format(time.DateOnly),
		To:             g.to.Format(time.DateOnly),
		Stream:         c.Stream,
		Compression:    c.Compression,
		EventsPerDay:   c.EventsPerDay,
		ObjectsPerHour: c.ObjectsPerHour,
		Users:          c.Users,
		Objects:        []string{},
		INT96Objects:   []string{},
		BadObjects:     []string{},
		BadObjectKinds: map[string]string{},
		ObjectRows:     map[string]int64{},
		SignIns:        g.signIns,
	}

	hours := g.hours()
	results := make([]hourResult, hours)
	// Not errgroup.WithContext: its context ends when Wait returns, and the
	// writers' Close (on g.closers, after Wait) still uses it (an S3
	// upload would be canceled). A failure cancels the rest by hand.
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	var eg errgroup.Group
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for i := range hours {
		eg.Go(func() error {
			if err := ectx.Err(); err != nil {
				return err
			}
			r, err := g.genHour(ectx, st, g.firstHour+int64(i))
			results[i] = r
			if err != nil {
				cancel()
			}
			return err
		})
	}
	badErr := make(chan error, 1)
	go func() { badErr <- g.writeBad(ctx, st, &rep) }()
	err := eg.Wait()
	if e := <-badErr; err == nil {
		err = e
	}
	if e := g.closers.Wait(); err == nil {
		err = e
	}
	if err != nil {
		return Report{}, err
	}

	for i := range results {
		r := &results[i]
		rep.add(&r.rep)
		for _, o := range r.objects {
			rep.Objects = append(rep.Objects, o.key)
			rep.ObjectRows[o.key] = o.rows
			if o.int96 {
				rep.INT96Objects = append(rep.INT96Objects, o.key)
			}
		}
	}
	sort.Strings(rep.Objects)
	sort.Strings(rep.INT96Objects)
	sort.Strings(rep.BadObjects)

	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return Report{}, fmt.Errorf("gen: report: %w", err)
	}
	if err := st.Put(ctx, rep.Key, append(js, '\n')); err != nil {
		return Report{}, fmt.Errorf("gen: write report %s: %w", rep.Key, err)
	}
	return rep, nil
}

// objectKey names an object as Firehose does, from the arrival time (ms) of
// its oldest record and a uuid.
func objectKey(stream string, arrivalMs int64, id [16]byte) string {
	t := time.UnixMilli(arrivalMs).UTC()
	var b bytes.Buffer
	b.Grow(96)
	b.WriteString("raw/")
	b.WriteString(t.Format("2006/01/02/15/"))
	b.WriteString(stream)
	b.WriteString("-1-")
	b.WriteString(t.Format("2006-01-02-15-04-05-"))
	b.WriteString(uuidString(id))
	return b.String()
}
