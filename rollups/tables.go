// Package rollups defines every curated table of the warehouse: one Parquet
// struct per table (the only place its schema is written down), its grain, the
// meaning of each column, the Go computation, and — beside it in <table>.sql —
// the reference SQL that computes the same table from the events table in
// DuckDB (and, where the dialects agree, Athena).
//
// Every table is partitioned by dt, the reporting day (docs/design.md §What every number means), as a
// Hive-style folder (curated/<table>/dt=YYYY-MM-DD/); dt is not stored inside
// the files. Dimension columns are never null: an empty product or platform
// is written "(none)". Timestamps are INT64 milliseconds, UTC.
//
// Provisional or final. A day is provisional until its late events can no
// longer arrive (FinalAt: its end + max_lateness + Firehose's 15-minute
// buffer), then final. engagement_daily, user_daily, sessions_daily,
// paths_daily and data_quality_daily carry the mark of the day as built in a
// boolean column provisional; events and quarantine carry it only in their
// manifests (config "status": "provisional" or "final"); the windowed tables
// (active_users_daily, retention_daily, lifecycle_daily, stickiness_daily)
// mark a row provisional when a day it counts is. The mark
// is part of a day's fingerprint, so the first run over the day after
// FinalAt rebuilds it as final (from its segments; nothing is restated).
package rollups

import (
	"cmp"
	"embed"
	"reflect"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/day"
)

// None stands for an empty product or platform in rollup dimension columns.
const None = "(none)"

// Event is one row of the events table: one deduplicated, valid event.
// Grain: dt × event_id. Files are sorted by (event_name, user_key,
// event_time, event_id).
// Times are DELTA_BINARY_PACKED: within a (event_name, user_key) run they
// rise by seconds, so they take about 28 bits each instead of 64 and need
// no zstd (which took a tenth of the time of writing a day on PLAIN times).
type Event struct {
	EventID string `parquet:"event_id" doc:"unique id of the event (given by the collector)"`
	// EventTime is the time the event is counted at: the client's clock, or
	// received_at when the client's clock was missing or skewed.
	EventTime       int64  `parquet:"event_time,timestamp(millisecond),delta" doc:"when the event happened (client clock, or received_at if the client clock was missing or off)"`
	ClientEventTime int64  `parquet:"client_event_time,optional,timestamp(millisecond),delta" doc:"the client's timestamp as sent; null if none"`
	ReceivedAt      int64  `parquet:"received_at,timestamp(millisecond),delta" doc:"when the collector received the event"`
	EventName       string `parquet:"event_name,dict" doc:"what happened"`
	UserID          string `parquet:"user_id,optional" doc:"signed-in user id; null if anonymous"`
	DeviceID        string `parquet:"device_id,optional" doc:"anonymous install or browser id"`
	SessionID       string `parquet:"session_id,optional" doc:"the client's session id, if sent"`
	Product         string `parquet:"product,optional,dict" doc:"app or site"`
	Platform        string `parquet:"platform,optional,dict" doc:"web, ios, android, ..."`
	AppVersion      string `parquet:"app_version,optional,dict" doc:"app version"`
	Country         string `parquet:"country,optional,dict" doc:"country code"`
	// Properties are the event's free-form string properties.
	Properties map[string]string `parquet:"properties,optional" doc:"free-form properties"`
	// UserKey is user_id if set, else "anon:" + device_id.
	UserKey string `parquet:"user_key" doc:"who: user_id, or anon:<device_id> for anonymous users"`
	// SessionKey identifies the session within the day: "s:" + session_id
	// when the client sent one, else "i:<product>|<user_key>|<start ms>" for
	// a session inferred from 30 minutes of inactivity.
	SessionKey  string `parquet:"session_key" doc:"session: the client's session id, or one inferred after 30 minutes of inactivity; split at midnight"`
	ClockSkewed bool   `parquet:"clock_skewed" doc:"true if event_time is received_at because the client's event_time was missing (client_event_time null) or off; data_quality_daily counts the two apart (missing_event_time_rows, clock_skewed_rows)"`
	Date        int32  `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// EngagementDaily counts events, people and sessions.
// Grain: dt × product × platform × event_name.
type EngagementDaily struct {
	Product     string `parquet:"product" doc:"app or site; (none) if empty"`
	Platform    string `parquet:"platform" doc:"web, ios, android...; (none) if empty"`
	EventName   string `parquet:"event_name" doc:"what happened"`
	Events      int64  `parquet:"events" doc:"number of events"`
	Users       int64  `parquet:"users" doc:"distinct people (user_key) who did it"`
	Sessions    int64  `parquet:"sessions" doc:"distinct sessions in which it happened"`
	Provisional bool   `parquet:"provisional" doc:"true if the day was built before it was final (its end + max_lateness + 15 minutes): late events may still arrive and change this row; a later run rebuilds it as final"`
	Date        int32  `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// UserDaily is one row per person per product per day.
// Grain: dt × product × user_key.
type UserDaily struct {
	Product      string `parquet:"product" doc:"app or site; (none) if empty"`
	UserKey      string `parquet:"user_key" doc:"who: user_id, or anon:<device_id>"`
	Platform     string `parquet:"platform" doc:"the platform this person used most that day (ties: alphabetically first)"`
	Country      string `parquet:"country" doc:"the country this person's events came from most that day (ties: alphabetically first); (none) if not sent"`
	Events       int64  `parquet:"events" doc:"events this person sent that day"`
	Sessions     int64  `parquet:"sessions" doc:"distinct sessions this person had that day"`
	FirstEventAt int64  `parquet:"first_event_at,timestamp(millisecond)" doc:"time of the person's first event that day"`
	LastEventAt  int64  `parquet:"last_event_at,timestamp(millisecond)" doc:"time of the person's last event that day"`
	Provisional  bool   `parquet:"provisional" doc:"true if the day was built before it was final (its end + max_lateness + 15 minutes): late events may still arrive and change this row; a later run rebuilds it as final"`
	Date         int32  `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// User is one person in one product, over every day of user_daily: the
// dimension Power BI joins on, and what new users and retention cohorts
// derive from. Grain: product × user_key; partitioned by bucket (a hash of
// product and user_key, see UserBucket), never by day.
type User struct {
	Product       string `parquet:"product" doc:"app or site; (none) if empty"`
	UserKey       string `parquet:"user_key" doc:"who: user_id, or anon:<device_id>"`
	FirstSeenDt   int32  `parquet:"first_seen_dt,date" doc:"the first day this person was seen in this product (over the current user_daily partitions)"`
	LastSeenDt    int32  `parquet:"last_seen_dt,date" doc:"the last day this person was seen in this product"`
	DaysActive    int64  `parquet:"days_active" doc:"days with at least one event from this person in this product"`
	FirstPlatform string `parquet:"first_platform" doc:"user_daily.platform on the first day"`
	FirstCountry  string `parquet:"first_country" doc:"user_daily.country on the first day"`
}

// Restatement is one number of a published partition that a later run
// changed: late data, an object removed or unreadable, a person's first day
// moving. Grain: dt (the day whose partition changed) × run × table_name ×
// row_key × column_name. Rows are only ever added: a run that restates a
// day appends to its partition.
type Restatement struct {
	Run        string `parquet:"run" doc:"the rollup run that published the new numbers"`
	RestatedAt int64  `parquet:"restated_at,timestamp(millisecond)" doc:"when that run published them"`
	TableName  string `parquet:"table_name" doc:"the table whose partition for dt changed"`
	RowKey     string `parquet:"row_key" doc:"which row: the product (and day_n for retention_daily, the window and days active for stickiness_daily); empty for a table of one row per day"`
	ColumnName string `parquet:"column_name" doc:"the column that changed"`
	OldValue   int64  `parquet:"old_value" doc:"the number before"`
	NewValue   int64  `parquet:"new_value" doc:"the number after"`
	Date       int32  `parquet:"date,date" doc:"the day whose partition changed (dt) as a DATE inside the files"`
	Cause      string `parquet:"cause" doc:"why the run rebuilt: erasure <request id> when it carried out an erasure (rollup erase), empty for new, late or removed data"`
}

// SessionsDaily describes sessions. A session is counted on its day, under
// the product and platform of its first event.
// Grain: dt × product × platform.
type SessionsDaily struct {
	Product           string  `parquet:"product" doc:"app or site of the session's first event; (none) if empty"`
	Platform          string  `parquet:"platform" doc:"platform of the session's first event; (none) if empty"`
	Sessions          int64   `parquet:"sessions" doc:"number of sessions"`
	BouncedSessions   int64   `parquet:"bounced_sessions" doc:"sessions with exactly one event"`
	AvgSessionSeconds float64 `parquet:"avg_session_seconds" doc:"mean session length in seconds (last event time minus first)"`
	P50SessionSeconds float64 `parquet:"p50_session_seconds" doc:"median session length in seconds (linear interpolation)"`
	P90SessionSeconds float64 `parquet:"p90_session_seconds" doc:"90th percentile of session length in seconds (linear interpolation)"`
	EventsPerSession  float64 `parquet:"events_per_session" doc:"mean events per session"`
	Provisional       bool    `parquet:"provisional" doc:"true if the day was built before it was final (its end + max_lateness + 15 minutes): late events may still arrive and change this row; a later run rebuilds it as final"`
	Date              int32   `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// DataQualityDaily is one row per day saying what came in and what became
// of it. raw_rows = valid_rows + invalid_rows and valid_rows = kept_rows +
// duplicates_dropped always hold. clock_skewed_rows + missing_event_time_rows
// are the kept events counted at received_at (events.clock_skewed).
type DataQualityDaily struct {
	RawRows                 int64 `parquet:"raw_rows" doc:"rows read from raw objects that belong to this day"`
	ValidRows               int64 `parquet:"valid_rows" doc:"rows that passed validation (kept plus duplicates)"`
	KeptRows                int64 `parquet:"kept_rows" doc:"distinct events kept in the events table"`
	DuplicatesDropped       int64 `parquet:"duplicates_dropped" doc:"repeated deliveries of an event_id, dropped"`
	InvalidRows             int64 `parquet:"invalid_rows" doc:"rows sent to quarantine (no event name, no user or device, ...)"`
	ClockSkewedRows         int64 `parquet:"clock_skewed_rows" doc:"kept events whose event_time was present but off (more than max_lateness before received_at or more than 10 minutes after), counted at received_at"`
	MissingEventTimeRows    int64 `parquet:"missing_event_time_rows" doc:"kept events sent without an event_time (normal for server-side events), counted at received_at"`
	LateRows                int64 `parquet:"late_rows" doc:"kept events that arrived after the day had ended (received_at on a later day)"`
	BadFiles                int64 `parquet:"bad_files" doc:"raw objects that arrived this day and could not be read (see quarantine)"`
	ConversionFailedRecords int64 `parquet:"conversion_failed_records" doc:"records Firehose could not convert to Parquet that arrived this day"`
	InputObjects            int64 `parquet:"input_objects" doc:"raw objects read that hold rows of this day"`
	OutputFiles             int64 `parquet:"output_files" doc:"events files written for this day"`
	Restated                bool  `parquet:"restated" doc:"true if the day had been published before and this build changed its numbers (late data, fixed inputs)"`
	InvalidUTF8Rows         int64 `parquet:"invalid_utf8_rows" doc:"rows whose strings held invalid UTF-8, kept with each bad sequence replaced by U+FFFD"`
	Provisional             bool  `parquet:"provisional" doc:"true if the day was built before it was final (its end + max_lateness + 15 minutes): late events may still arrive and change this row; a later run rebuilds it as final"`
	// LateRows6h, 24h and 72h, with LateRows, are the day's arrival
	// profile: how many of its events came in after its end plus 0, 6, 24
	// and 72 hours. Over final days they say what share of a day's events
	// has usually arrived by a given age (the report's expected
	// completeness of a provisional day).
	LateRows6h  int64 `parquet:"late_rows_6h" doc:"kept events received more than 6 hours after the day ended"`
	LateRows24h int64 `parquet:"late_rows_24h" doc:"kept events received more than 24 hours after the day ended"`
	LateRows72h int64 `parquet:"late_rows_72h" doc:"kept events received more than 72 hours after the day ended"`
	Date        int32 `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// LateHours are the ages after a day's end, in hours, at which
// DataQualityDaily counts the events still to come (late_rows, then
// late_rows_6h, 24h and 72h).
var LateHours = [...]int{0, 6, 24, 72}

// Late returns the day's count of events received more than LateHours[i]
// hours after its end.
func (q DataQualityDaily) Late(i int) int64 {
	return [...]int64{q.LateRows, q.LateRows6h, q.LateRows24h, q.LateRows72h}[i]
}

// Quarantine holds what could not be used, with the reason: invalid rows as
// read, and one row per bad raw object and per Firehose conversion failure.
// Its times are pointers: nil is null, and a time of exactly the epoch (0)
// is a time. Grain: dt × reason × row.
type Quarantine struct {
	Reason       string            `parquet:"reason" doc:"why: missing_event_id, missing_received_at, missing_event_name, missing_user, implausible_received_at, value_too_large, bad_object_<why>, conversion_failed"`
	SourceObject string            `parquet:"source_object" doc:"key of the raw object the row came from"`
	Detail       string            `parquet:"detail,optional" doc:"more detail (the reader's error for a bad object, the error code for a conversion failure, each value too large and its size)"`
	EventID      string            `parquet:"event_id,optional" doc:"as read"`
	EventTime    *int64            `parquet:"event_time,optional,timestamp(millisecond)" doc:"as read"`
	ReceivedAt   *int64            `parquet:"received_at,optional,timestamp(millisecond)" doc:"as read"`
	EventName    string            `parquet:"event_name,optional" doc:"as read"`
	UserID       string            `parquet:"user_id,optional" doc:"as read"`
	DeviceID     string            `parquet:"device_id,optional" doc:"as read"`
	SessionID    string            `parquet:"session_id,optional" doc:"as read"`
	Product      string            `parquet:"product,optional" doc:"as read"`
	Platform     string            `parquet:"platform,optional" doc:"as read"`
	AppVersion   string            `parquet:"app_version,optional" doc:"as read"`
	Country      string            `parquet:"country,optional" doc:"as read"`
	Properties   map[string]string `parquet:"properties,optional" doc:"as read"`
	Date         int32             `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// Table describes one curated table.
type Table struct {
	Name  string
	Grain string
	Doc   string
	Row   reflect.Type // the Parquet struct
	// SQL is the reference query (rollups/<name>.sql); empty for events and
	// the tables only the job itself can know (quality, quarantine).
	SQL string
	// PartKey is the Hive partition column: "dt" (the reporting day) for
	// every table but users, which is split by "bucket" (see UserBucket).
	PartKey string
	// History marks a table that records what runs did (restatements):
	// it depends on the order of the runs by design, so it is not part of
	// the invariant that every table equals a clean build.
	History bool
}

// PartitionKey returns t's partition column ("dt" unless set).
func (t Table) PartitionKey() string {
	if t.PartKey == "" {
		return "dt"
	}
	return t.PartKey
}

//go:embed *.sql
var sqlFiles embed.FS

// RefSQL returns the reference SQL rollups/<name>.sql: the daily rollups,
// plus "routed" and "events" (raw rows to events, for tests and benchmarks).
func RefSQL(name string) string { return sqlOf(name) }

func sqlOf(name string) string {
	b, err := sqlFiles.ReadFile(name + ".sql")
	if err != nil {
		return ""
	}
	return string(b)
}

// Daily lists the tables written by the per-day stage, in publish order.
var Daily = []Table{
	{Name: "events", Grain: "dt × event_id", Doc: "one row per deduplicated valid event", Row: reflect.TypeOf(Event{})},
	{Name: "engagement_daily", Grain: "dt × product × platform × event_name", Doc: "events, people and sessions per event name", Row: reflect.TypeOf(EngagementDaily{}), SQL: sqlOf("engagement_daily")},
	{Name: "user_daily", Grain: "dt × product × user_key", Doc: "one row per person per product per day", Row: reflect.TypeOf(UserDaily{}), SQL: sqlOf("user_daily")},
	{Name: "sessions_daily", Grain: "dt × product × platform", Doc: "session counts, bounces and lengths", Row: reflect.TypeOf(SessionsDaily{}), SQL: sqlOf("sessions_daily")},
	{Name: "paths_daily", Grain: "dt × product × from_event × to_event", Doc: "transitions from one event to the next within people's sessions: the top 200 pairs per product, the rest as one (other) row", Row: reflect.TypeOf(PathsDaily{}), SQL: sqlOf("paths_daily")},
	{Name: "data_quality_daily", Grain: "dt", Doc: "what came in each day and what became of it", Row: reflect.TypeOf(DataQualityDaily{})},
	{Name: "quarantine", Grain: "dt × reason × row", Doc: "rows and objects that could not be used, with the reason", Row: reflect.TypeOf(Quarantine{})},
}

// Windowed lists the tables computed from user_daily over a window of days
// (stage 2), in publish order. retention_daily's dt is the cohort day.
var Windowed = []Table{
	{Name: "active_users_daily", Grain: "dt × product", Doc: "daily, weekly and monthly active people, new and returning", Row: reflect.TypeOf(ActiveUsersDaily{}), SQL: sqlOf("active_users_daily")},
	{Name: "retention_daily", Grain: "cohort dt × product × day_n", Doc: "of the people first seen on dt, how many came back on day 1, 7, 14 and 28", Row: reflect.TypeOf(RetentionDaily{}), SQL: sqlOf("retention_daily")},
	{Name: "lifecycle_daily", Grain: "dt × product", Doc: "people new, returning, resurrecting and dormant, against the day before", Row: reflect.TypeOf(LifecycleDaily{}), SQL: sqlOf("lifecycle_daily")},
	{Name: "stickiness_daily", Grain: "dt × product × window_days × days_active", Doc: "of the people active in the 7 (28) days ending dt, how many were active on 1, 2, ... of those days", Row: reflect.TypeOf(StickinessDaily{}), SQL: sqlOf("stickiness_daily")},
	{Name: "funnel_daily", Grain: "dt (entry day) × product × funnel × step", Doc: "of the people who entered each funnel of funnels.json on dt, how many reached each step within its window, and how long it took", Row: reflect.TypeOf(FunnelDaily{}), SQL: sqlOf("funnel_daily")},
}

// UsersTable is the users dimension (stage 2), partitioned by bucket.
var UsersTable = Table{Name: "users", Grain: "product × user_key", Doc: "one row per person per product: first and last day seen, days active, first platform and country",
	Row: reflect.TypeOf(User{}), SQL: sqlOf("users"), PartKey: "bucket"}

// DimDateTable is the date dimension (stage 2): one row per calendar day
// from the first built day through the last, in dt partitions of one row.
var DimDateTable = Table{Name: "dim_date", Grain: "dt (one row per calendar day)", Doc: "one row per calendar day from the first built day through the last: year, quarter, month, ISO week and weekday, weekend, built and provisional",
	Row: reflect.TypeOf(DimDate{}), SQL: sqlOf("dim_date")}

// RestatementsTable records every number a run changed in a published
// partition (docs/design.md §The windowed stage: say what moved).
var RestatementsTable = Table{Name: "restatements", Grain: "dt × run × table_name × row_key × column_name",
	Doc: "every published number a later run changed: which table, day, row and column, from what to what", Row: reflect.TypeOf(Restatement{}), History: true}

// All lists every curated table: Daily, then Windowed, then users,
// dim_date and restatements.
func All() []Table {
	return append(append(append([]Table(nil), Daily...), Windowed...), UsersTable, DimDateTable, RestatementsTable)
}

// ByName returns the table called name.
func ByName(name string) (Table, bool) {
	for _, t := range All() {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// Column is one column of a table, for catalogs and docs.
type Column struct {
	Name string
	Type string // Hive/Athena type
	Doc  string
}

// Columns lists t's columns in file order with their Athena types.
func (t Table) Columns() []Column {
	var cols []Column
	for i := 0; i < t.Row.NumField(); i++ {
		f := t.Row.Field(i)
		tag := f.Tag.Get("parquet")
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer { // optional: null when not computed
			ft = ft.Elem()
		}
		typ := ""
		switch {
		case strings.Contains(opts, "timestamp"):
			typ = "timestamp"
		case strings.Contains(opts, "date"):
			typ = "date"
		case ft.Kind() == reflect.String:
			typ = "string"
		case ft.Kind() == reflect.Int64:
			typ = "bigint"
		case ft.Kind() == reflect.Float64:
			typ = "double"
		case ft.Kind() == reflect.Bool:
			typ = "boolean"
		case ft.Kind() == reflect.Map:
			typ = "map<string,string>"
		default:
			panic("rollups: no Athena type for " + t.Name + "." + name)
		}
		cols = append(cols, Column{Name: name, Type: typ, Doc: f.Tag.Get("doc")})
	}
	return cols
}

// CompareTimes orders two optional times (Quarantine's): null first.
func CompareTimes(a, b *int64) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(*a, *b)
}

// SetDate sets the date column (the Date field) of every row of rows, a
// slice of a day-partitioned table's row structs, to d: the day of the
// partition they are written to. It panics if T has no Date field.
func SetDate[T any](rows []T, d day.Day) {
	f, ok := reflect.TypeFor[T]().FieldByName("Date")
	if !ok || f.Type.Kind() != reflect.Int32 {
		panic("rollups: no date column in " + reflect.TypeFor[T]().Name())
	}
	v := reflect.ValueOf(rows)
	for i := range rows {
		v.Index(i).FieldByIndex(f.Index).SetInt(int64(d))
	}
}
