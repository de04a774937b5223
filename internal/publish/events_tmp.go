package publish

import (
	"context"

	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// WriteEvents is a temporary bridge (replaced by the columnar writer).
func WriteEvents(ctx context.Context, st store.Store, prefix string, ev *frame.Events, opt WriterOptions) ([]File, error) {
	rows := make([]rollups.Event, ev.Len())
	for i := range rows {
		r := ev.Row(i)
		rows[i] = rollups.Event{EventID: r.EventID, EventTime: r.EventTime, ClientEventTime: r.ClientTime, ReceivedAt: r.ReceivedAt,
			EventName: r.Str[frame.EventName], UserID: r.Str[frame.UserID], DeviceID: r.Str[frame.DeviceID], SessionID: r.Str[frame.SessionID],
			Product: r.Str[frame.Product], Platform: r.Str[frame.Platform], AppVersion: r.Str[frame.AppVersion], Country: r.Str[frame.Country],
			Properties: r.Props, UserKey: r.Str[frame.UserKey], SessionKey: r.Str[frame.SessionKey], ClockSkewed: r.Skewed}
	}
	return Write(ctx, st, prefix, rows, opt)
}
