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
		for d := from; d <= to; d++ {
			m, err := publish.Current(ctx, st, t.Name, d)
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
			objs, err := st.List(ctx, publish.PartitionPrefix(t.Name, d))
			if err != nil {
				return nil, err
			}
			runs := map[string]bool{}
			for _, o := range objs {
				rest := strings.TrimPrefix(o.Key, publish.PartitionPrefix(t.Name, d))
				runs[strings.SplitN(rest, "/", 2)[0]] = true
			}
			sort.Strings(files)
			out[t.Name+"/"+d.String()] = fmt.Sprintf("runs=%d rows=%d %s", len(runs), m.Rows, strings.Join(files, ", "))
		}
	}
	return out, nil
}
