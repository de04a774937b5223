package job

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Snapshot describes what a store publishes for the days from..to, for
// comparing two stores or two moments (tests and tools), without run ids: for each
// table and day, the current run's files by name, size and checksum, plus
// how many run folders the partition holds (it must be one).
func Snapshot(ctx context.Context, st store.Store, from, to day.Day) (map[string]string, error) {
	out := map[string]string{}
	for _, t := range rollups.All() {
		if t.History {
			continue // what runs did, not a function of the raw objects
		}
		var parts []string
		if t.PartitionKey() == "dt" {
			for d := from; d <= to; d++ {
				parts = append(parts, publish.DayPart(d))
			}
		} else {
			for b := range rollups.UserBuckets {
				parts = append(parts, rollups.BucketPart(b))
			}
		}
		for _, part := range parts {
			m, err := publish.CurrentAt(ctx, st, t.Name, part)
			if errors.Is(err, store.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			var files []string
			for _, f := range m.Files {
				files = append(files, fmt.Sprintf("%s %d %s", f.Key[strings.LastIndex(f.Key, "/")+1:], f.Size, f.SHA256))
			}
			prefix := publish.PartPrefix(t.Name, part)
			objs, err := st.List(ctx, prefix)
			if err != nil {
				return nil, err
			}
			runs := map[string]bool{}
			for _, o := range objs {
				runs[strings.SplitN(strings.TrimPrefix(o.Key, prefix), "/", 2)[0]] = true
			}
			sort.Strings(files)
			key := t.Name + "/" + strings.TrimPrefix(part, "dt=")
			out[key] = fmt.Sprintf("runs=%d rows=%d %s", len(runs), m.Rows, strings.Join(files, ", "))
		}
	}
	return out, nil
}
