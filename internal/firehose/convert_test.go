package firehose

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/event"
)

func TestConvert(t *testing.T) {
	t.Parallel()
	ms := func(v int64) time.Time { return time.UnixMilli(v).UTC() }
	tests := []struct {
		name   string
		record string
		want   []event.Raw
	}{
		{"an ISO time with nine fraction digits keeps milliseconds",
			`{"event_name":"a","event_time":"2017-02-07T15:13:01.392567891Z"}`,
			[]event.Raw{{EventName: "a", EventTime: time.Date(2017, 2, 7, 15, 13, 1, 392_000_000, time.UTC)}}},
		{"an ISO time without a fraction converts",
			`{"event_time":"2017-02-07T15:13:01Z"}`,
			[]event.Raw{{EventTime: time.Date(2017, 2, 7, 15, 13, 1, 0, time.UTC)}}},
		{"a Hive space-separated time with short month and day is UTC",
			`{"event_time":"2017-2-7 15:13:01.14"}`,
			[]event.Raw{{EventTime: time.Date(2017, 2, 7, 15, 13, 1, 140_000_000, time.UTC)}}},
		{"an integer below 10^11 is epoch seconds",
			`{"event_time":1518033528}`,
			[]event.Raw{{EventTime: ms(1518033528000)}}},
		{"an integer from 10^11 is epoch milliseconds",
			`{"event_time":1518033528123}`,
			[]event.Raw{{EventTime: ms(1518033528123)}}},
		{"a fractional number is epoch seconds",
			`{"event_time":1518033528.123}`,
			[]event.Raw{{EventTime: ms(1518033528123)}}},
		{"numbers and booleans in string columns become their JSON text",
			`{"event_name":"a","user_id":42,"country":true}`,
			[]event.Raw{{EventName: "a", UserID: "42", Country: "true"}}},
		{"keys match columns whatever their case",
			`{"Event_Name":"a","PLATFORM":"web"}`,
			[]event.Raw{{EventName: "a", Platform: "web"}}},
		{"unknown keys are dropped and nulls are null",
			`{"event_name":"a","nope":{"x":1},"user_id":null,"event_time":null}`,
			[]event.Raw{{EventName: "a"}}},
		{"a row without an event name still converts",
			`{"user_id":"u"}`,
			[]event.Raw{{UserID: "u"}}},
		{"properties take scalar values and drop nulls",
			`{"properties":{"a":"x","n":1.5,"b":false,"z":null}}`,
			[]event.Raw{{Properties: map[string]string{"a": "x", "n": "1.5", "b": "false"}}}},
		{"objects one after the other are rows",
			"{\"event_name\":\"a\"}\n{\"event_name\":\"b\"} ",
			[]event.Raw{{EventName: "a"}, {EventName: "b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Convert([]byte(tc.record))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Convert (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConvertFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		record string
		code   string
	}{
		{"not JSON", `event_name=a`, CodeParseError},
		{"truncated JSON", `{"event_name":"a"`, CodeParseError},
		{"an array of events", `[{"event_name":"a"}]`, CodeParseError},
		{"a bare string", `"a"`, CodeParseError},
		{"nothing", " \n", CodeParseError},
		{"a time in words", `{"event_time":"yesterday"}`, CodeMalformedData},
		{"a time with an offset instead of Z", `{"event_time":"2026-01-02T10:00:00+13:00"}`, CodeMalformedData},
		{"epoch milliseconds as a string", `{"event_time":"1518033528123"}`, CodeMalformedData},
		{"an impossible date", `{"event_time":"2026-02-30T10:00:00Z"}`, CodeMalformedData},
		{"a boolean time", `{"event_time":true}`, CodeMalformedData},
		{"an object as event name", `{"event_name":{"a":1}}`, CodeMalformedData},
		{"an array as user id", `{"user_id":["u"]}`, CodeMalformedData},
		{"properties as a string", `{"properties":"a=b"}`, CodeMalformedData},
		{"a nested property", `{"properties":{"a":{"b":"c"}}}`, CodeMalformedData},
		{"a good object then a bad one", `{"event_name":"a"}{"event_time":"x"}`, CodeMalformedData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := Convert([]byte(tc.record))
			var ce *ConversionError
			if !errors.As(err, &ce) {
				t.Fatalf("Convert = %v, %v; want a ConversionError", rows, err)
			}
			if ce.Code != tc.code {
				t.Errorf("code = %s (%s), want %s", ce.Code, ce.Message, tc.code)
			}
		})
	}
}
