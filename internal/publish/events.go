package publish

import "github.com/littlewarehouse/warehouse/rollups"

// eventRow is rollups.Event with its optional columns as pointers (nil is
// null), so that parquet-go can write events in batches without the bug
// pqrows describes. Its Parquet schema equals rollups.Event's
// (TestEventRowSchema); the pointers point into the events being written.
type eventRow struct {
	EventID         string            `parquet:"event_id"`
	EventTime       int64             `parquet:"event_time,timestamp(millisecond)"`
	ClientEventTime *int64            `parquet:"client_event_time,optional,timestamp(millisecond)"`
	ReceivedAt      int64             `parquet:"received_at,timestamp(millisecond)"`
	EventName       string            `parquet:"event_name,dict"`
	UserID          *string           `parquet:"user_id,optional"`
	DeviceID        *string           `parquet:"device_id,optional"`
	SessionID       *string           `parquet:"session_id,optional"`
	Product         *string           `parquet:"product,optional,dict"`
	Platform        *string           `parquet:"platform,optional,dict"`
	AppVersion      *string           `parquet:"app_version,optional,dict"`
	Country         *string           `parquet:"country,optional,dict"`
	Properties      map[string]string `parquet:"properties,optional"`
	UserKey         string            `parquet:"user_key"`
	SessionKey      string            `parquet:"session_key"`
	ClockSkewed     bool              `parquet:"clock_skewed"`
}

func opt(s *string) *string {
	if *s == "" {
		return nil
	}
	return s
}

func toEventRows(dst []eventRow, src []rollups.Event) []eventRow {
	for i := range src {
		e := &src[i]
		var ct *int64
		if e.ClientEventTime != 0 {
			ct = &e.ClientEventTime
		}
		var props map[string]string
		if len(e.Properties) > 0 {
			props = e.Properties
		}
		dst = append(dst, eventRow{
			EventID: e.EventID, EventTime: e.EventTime, ClientEventTime: ct, ReceivedAt: e.ReceivedAt,
			EventName: e.EventName, UserID: opt(&e.UserID), DeviceID: opt(&e.DeviceID), SessionID: opt(&e.SessionID),
			Product: opt(&e.Product), Platform: opt(&e.Platform), AppVersion: opt(&e.AppVersion), Country: opt(&e.Country),
			Properties: props, UserKey: e.UserKey, SessionKey: e.SessionKey, ClockSkewed: e.ClockSkewed,
		})
	}
	return dst
}
