package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Restated is one number of day Day's partition of a table that a run
// changed (a row of the restatements table, with its partition).
type Restated struct {
	Day day.Day
	rollups.Restatement
}

// String reads like "active_users_daily 2026-11-28 shop: new_users 1156 -> 1146".
func (r Restated) String() string {
	key := ""
	if r.RowKey != "" {
		key = " " + r.RowKey
	}
	return fmt.Sprintf("%s %s%s: %s %d -> %d", r.TableName, r.Day, key, r.ColumnName, r.OldValue, r.NewValue)
}

// manifestRows reads the rows of every file of a run.
func manifestRows[T any](ctx context.Context, st store.Store, m *publish.Manifest) ([]T, error) {
	var out []T
	for _, f := range m.Files {
		b, err := st.Get(ctx, f.Key)
		if err != nil {
			return nil, fmt.Errorf("%s %s%s run %s: %w", m.Table, m.Day, m.Partition, m.Run, err)
		}
		rows, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Key, err)
		}
		out = append(out, rows...)
	}
	return out, nil
}

// diffRows compares the rows of a partition before (old) and after (rows),
// matched by key, and returns every integer column that changed. A row that
// appears or goes counts as its numbers from or to 0. keyCols are the
// columns key reads (the row's identity, such as product and day_n): they
// never change within a matched row, so they are never reported, not even
// for a row that appears or goes.
func diffRows[T any](table string, d day.Day, old, rows []T, key func(T) string, keyCols ...string) []Restated {
	var zero T
	byKey := map[string]T{}
	for _, r := range old {
		byKey[key(r)] = r
	}
	var out []Restated
	add := func(k string, a, b T) {
		for _, c := range intDiff(a, b, keyCols) {
			c.TableName, c.RowKey = table, k
			out = append(out, Restated{Day: d, Restatement: c})
		}
	}
	seen := map[string]bool{}
	for _, r := range rows {
		k := key(r)
		seen[k] = true
		o, had := byKey[k]
		if !had {
			o = zero
		}
		add(k, o, r)
	}
	for _, r := range old {
		if k := key(r); !seen[k] {
			add(k, r, zero)
		}
	}
	return out
}

// intDiff lists the integer columns of two rows of one table that differ
// (ratios follow from them), but the columns of skip. A nullable integer
// column (NULL: not computed) is compared only when both values are
// numbers: a number that appears or is withdrawn is not a number restated.
func intDiff(a, b any, skip []string) []rollups.Restatement {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []rollups.Restatement
	for i := 0; i < va.NumField(); i++ {
		f := va.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("parquet"), ",")
		if slices.Contains(skip, name) {
			continue
		}
		fa, fb := va.Field(i), vb.Field(i)
		if f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Int64 {
			if fa.IsNil() || fb.IsNil() {
				continue
			}
			fa, fb = fa.Elem(), fb.Elem()
		} else if f.Type.Kind() != reflect.Int64 {
			continue
		}
		if x, y := fa.Int(), fb.Int(); x != y {
			out = append(out, rollups.Restatement{ColumnName: name, OldValue: x, NewValue: y})
		}
	}
	return out
}

// recordRestatements appends rs, the changes run made (at time at) to day
// d's partitions, to d's partition of the restatements table: under its
// lease, it republishes the partition with the earlier rows and these. It
// is called after the changed partitions are committed; a run killed in
// between loses that record, never a number of the tables themselves.
func (c *Config) recordRestatements(ctx context.Context, run string, at time.Time, d day.Day, rs []Restated) error {
	if len(rs) == 0 {
		return nil
	}
	table := rollups.RestatementsTable
	locks, err := c.lock(ctx, run, []rollups.Table{table}, d, c.LockWait)
	if err != nil {
		return err
	}
	defer c.release(ctx, locks, "partition", table.Name+"/"+d.String())
	var rows []rollups.Restatement
	prev, err := publish.Current(ctx, c.Store, table.Name, d)
	switch {
	case err == nil:
		if rows, err = manifestRows[rollups.Restatement](ctx, c.Store, prev); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotExist):
		return err
	}
	for _, r := range rs {
		r.Run, r.RestatedAt = run, at.UnixMilli()
		rows = append(rows, r.Restatement)
	}
	id := newRunID(c.Now())
	opt := publish.WriterOptions{TargetFileSize: c.TargetFileSize, RowGroupSize: c.RowGroupSize, CreatedBy: CreatedBy}
	files, err := publish.Write(ctx, c.Store, publish.RunPrefix(table.Name, d, id), rows, opt)
	if err != nil {
		return err
	}
	m := &publish.Manifest{Table: table.Name, Day: d.String(), Run: id, TimeZone: c.Rules.Loc.String(), CodeVersion: CodeVersion,
		Config: c.configMap(), Files: files, Rows: int64(len(rows)), CreatedAt: c.Now().UTC()}
	if err := locks.Check(ctx); err != nil {
		return fmt.Errorf("lost the lease before publishing: %w", err)
	}
	var parent int64 // the generation whose rows this run extends
	if prev != nil {
		parent = prev.Generation
	}
	if err := publish.CommitAfter(ctx, c.Store, m, parent); err != nil {
		return err
	}
	if c.cleanupAtOnce() {
		if err := publish.Cleanup(ctx, c.Store, table.Name, d, id, c.GracePeriod, c.Now()); err != nil {
			c.Log.Warn("superseded runs not all deleted; the next run retries", "table", table.Name, "day", d.String(), "error", err.Error())
		}
	}
	return nil
}
