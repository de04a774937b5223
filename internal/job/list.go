package job

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// rawObject is a listed raw object with the arrival hour its key names.
type rawObject struct {
	store.Object
	Hour time.Time // UTC arrival hour from the key
}

// hourOf parses the arrival hour out of a key laid out as
// <prefix>YYYY/MM/DD/HH/<name>.
func hourOf(prefix, key string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return time.Time{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 {
		return time.Time{}, false
	}
	t, err := time.Parse("2006/01/02/15", strings.Join(parts[:4], "/"))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// isData reports whether an object's name marks it as data: names starting
// with "_" or "." are not (Firehose and Hive markers, temp files).
func isData(key string) bool {
	base := path.Base(key)
	return !strings.HasPrefix(base, "_") && !strings.HasPrefix(base, ".")
}

// listHours lists the objects under prefix whose key hour is in [from, to),
// but those an erase has rewritten (withoutRewritten).
// Objects of those days' folders that are not read — their key does not
// follow the hourly layout, or their name marks them as not data — are
// returned in ignored, so that they are named, never skipped silently.
func listHours(ctx context.Context, st store.Store, prefix string, from, to time.Time) (objs []rawObject, ignored []string, err error) {
	from, to = from.UTC().Truncate(time.Hour), to.UTC()
	for d := from.Truncate(24 * time.Hour); d.Before(to); d = d.Add(24 * time.Hour) {
		list, err := st.List(ctx, prefix+d.Format("2006/01/02/"))
		if err != nil {
			return nil, nil, err
		}
		for _, o := range list {
			if !isData(o.Key) {
				ignored = append(ignored, o.Key)
				continue
			}
			h, ok := hourOf(prefix, o.Key)
			if !ok {
				ignored = append(ignored, o.Key)
				continue
			}
			if h.Before(from) || !h.Before(to) {
				continue
			}
			objs = append(objs, rawObject{Object: o, Hour: h})
		}
	}
	return withoutRewritten(objs), ignored, nil
}

// erasedSep joins a raw object's key and the content hash of its rewrite
// by an erase (newKey): <key>~erased-<hash>.
const erasedSep = "~erased-"

// withoutRewritten drops from objs (one listing) every object that an
// erase has rewritten: one with a <key>~erased-* object beside it. An
// erase writes the rewrite, whose content it has verified before writing
// it, then deletes the original; a build listing between the two reads
// the rewrite alone, never both. The rewrite sits in the original's
// arrival hour, so both are in any listing of that hour.
func withoutRewritten(objs []rawObject) []rawObject {
	rewritten := map[string]bool{}
	for _, o := range objs {
		// Every generation: a~erased-x~erased-y replaces a and a~erased-x.
		for off := 0; ; {
			i := strings.Index(o.Key[off:], erasedSep)
			if i < 0 {
				break
			}
			rewritten[o.Key[:off+i]] = true
			off += i + len(erasedSep)
		}
	}
	if len(rewritten) == 0 {
		return objs
	}
	return slices.DeleteFunc(objs, func(o rawObject) bool { return rewritten[o.Key] })
}

// listRaw lists the raw objects whose key hour is in [from, to), and every
// object under prefix that no run reads (ignored): its key is not in the
// hourly layout (a date folder like 2026/13/45, a folder of its own), or
// its name marks it as not data. Listing the whole prefix names them all,
// wherever they are, so that none is skipped silently; it costs about one
// request per 1,000 objects on S3 (a year of Firehose objects at 4 an
// hour is 35). An object an erase has rewritten is not listed while it
// waits to be deleted (withoutRewritten).
func listRaw(ctx context.Context, st store.Store, prefix string, from, to time.Time) (objs []rawObject, ignored []string, err error) {
	objs, ignored, err = listAllRaw(ctx, st, prefix, from, to)
	return withoutRewritten(objs), ignored, err
}

// listAllRaw is listRaw with the objects an erase has rewritten but not
// deleted yet: the erase's own listing, which must see them to finish.
func listAllRaw(ctx context.Context, st store.Store, prefix string, from, to time.Time) (objs []rawObject, ignored []string, err error) {
	list, err := st.List(ctx, prefix)
	if err != nil {
		return nil, nil, err
	}
	from = from.UTC().Truncate(time.Hour)
	for _, o := range list {
		h, ok := hourOf(prefix, o.Key)
		switch {
		case !ok || !isData(o.Key):
			ignored = append(ignored, o.Key)
		case !h.Before(from) && h.Before(to):
			objs = append(objs, rawObject{Object: o, Hour: h})
		}
	}
	return objs, ignored, nil
}

// conversionFailure is one record Firehose could not convert (docs/design.md §The raw event).
type conversionFailure struct {
	Source   string
	Arrival  int64 // ms
	Code     string
	Message  string
	Attempts int
}

// errorRecord is the JSON Firehose writes per failed record; both the
// errorCode and lastErrorCode spellings occur.
type errorRecord struct {
	AttemptsMade     int    `json:"attemptsMade"`
	ArrivalTimestamp int64  `json:"arrivalTimestamp"`
	ErrorCode        string `json:"errorCode"`
	ErrorMessage     string `json:"errorMessage"`
	LastErrorCode    string `json:"lastErrorCode"`
	LastErrorMessage string `json:"lastErrorMessage"`
}

// readFailures parses one raw-errors object, one JSON record a line, however
// long a line is (the object is in memory already). A line that is not an
// error record still counts as a failure (code "unreadable_error_record") at
// the object's hour, so nothing Firehose rejected goes uncounted.
func readFailures(ctx context.Context, st store.Store, o rawObject) ([]conversionFailure, error) {
	b, err := st.Get(ctx, o.Key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", o.Key, err)
	}
	var out []conversionFailure
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var r errorRecord
		f := conversionFailure{Source: o.Key, Arrival: o.Hour.UnixMilli(), Code: "unreadable_error_record"}
		if err := json.Unmarshal(line, &r); err == nil {
			f.Code = firstNonEmpty(r.ErrorCode, r.LastErrorCode, "unknown")
			f.Message = firstNonEmpty(r.ErrorMessage, r.LastErrorMessage, "")
			f.Attempts = r.AttemptsMade
			if r.ArrivalTimestamp > 0 {
				f.Arrival = r.ArrivalTimestamp
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
