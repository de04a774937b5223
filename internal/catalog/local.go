package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// LocalPrefix is the folder of the local catalog in the store.
const LocalPrefix = "catalog/"

// Local is a catalog kept as one JSON file per table, catalog/<table>.json,
// in the store next to the data:
//
//	{
//	  "version": 1,
//	  "table": { "name": "events", "columns": [...], "partition_keys": [...], ... },
//	  "partitions": { "2026-11-24": { "location": "file:///data/curated/events/dt=2026-11-24/run=01J.../", "since": "..." } }
//	}
//
// Each file is replaced atomically (store.Put). A change is a
// read-modify-write, serialized within the process by a mutex and between
// processes by a lease (internal/lease) named catalog/<table>, so the nightly
// run and a backfill of other days do not lose each other's partitions. On a
// local directory store a lease left by a killed process of this host is
// taken over at once (lease.Acquire's default dead-holder check), not after
// its expiry.
type Local struct {
	st     store.Store
	now    func() time.Time
	holder string

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

var _ Catalog = (*Local)(nil)

// NewLocal returns the local catalog in st. now is the clock for
// Partition.Since (nil means time.Now).
func NewLocal(st store.Store, now func() time.Time) *Local {
	if now == nil {
		now = time.Now
	}
	return &Local{st: st, now: now, holder: lease.HolderID("catalog"), locks: map[string]*sync.Mutex{}}
}

func (l *Local) String() string { return "local catalog " + Root(l.st) + "/" + LocalPrefix }

// Key returns the key of table's file in the store.
func (l *Local) Key(table string) string { return LocalPrefix + table + ".json" }

type localFile struct {
	Version    int                  `json:"version"`
	Table      TableDef             `json:"table"`
	Partitions map[string]Partition `json:"partitions"`
}

func (l *Local) read(ctx context.Context, table string) (*localFile, error) {
	b, err := l.st.Get(ctx, l.Key(table))
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("catalog: %s: %w (%s)", table, ErrNoTable, l)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: read %s: %w", l.Key(table), err)
	}
	var f localFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("catalog: read %s in %s: %w", l.Key(table), l.st, err)
	}
	if f.Partitions == nil {
		f.Partitions = map[string]Partition{}
	}
	for dt, p := range f.Partitions {
		p.DT = dt
		f.Partitions[dt] = p
	}
	return &f, nil
}

func (l *Local) write(ctx context.Context, f *localFile) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	f.Version = 1
	if err := enc.Encode(f); err != nil {
		return err
	}
	if err := l.st.Put(ctx, l.Key(f.Table.Name), b.Bytes()); err != nil {
		return fmt.Errorf("catalog: write %s: %w", l.Key(f.Table.Name), err)
	}
	return nil
}

// locked runs fn holding table's mutex and lease.
func (l *Local) locked(ctx context.Context, table string, fn func() error) error {
	l.mu.Lock()
	m := l.locks[table]
	if m == nil {
		m = &sync.Mutex{}
		l.locks[table] = m
	}
	l.mu.Unlock()
	m.Lock()
	defer m.Unlock()
	ls, err := lease.Acquire(ctx, l.st, "catalog/"+table, l.holder, time.Minute, 2*time.Minute, nil,
		lease.WithPoll(50*time.Millisecond))
	if err != nil {
		return fmt.Errorf("catalog: lock %s: %w", table, err)
	}
	err = fn()
	if rerr := ls.Release(context.WithoutCancel(ctx)); err == nil && rerr != nil && !errors.Is(rerr, lease.ErrLost) {
		err = fmt.Errorf("catalog: unlock %s: %w", table, rerr)
	}
	return err
}

// EnsureTables implements Catalog.
func (l *Local) EnsureTables(ctx context.Context, tables []TableDef) error {
	var errs []error
	for _, def := range tables {
		if err := def.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		err := l.locked(ctx, def.Name, func() error {
			f, err := l.read(ctx, def.Name)
			if errors.Is(err, ErrNoTable) {
				return l.write(ctx, &localFile{Table: def, Partitions: map[string]Partition{}})
			}
			if err != nil {
				return err
			}
			_, problems := diffColumns(f.Table.Columns, def.Columns)
			problems = append(problems, diffKeys(f.Table.PartitionKeys, def.PartitionKeys)...)
			if len(problems) > 0 {
				from, to := dayRange(f.Partitions)
				mig := fmt.Sprintf("delete %s from %s, then rebuild the table's days with the new schema: rollup --force --from %s --to %s (the run recreates the definition and registers the rebuilt partitions).",
					l.Key(def.Name), l.st, from, to)
				if def.Projected() {
					mig = fmt.Sprintf("delete %s from %s; the next run recreates it.", l.Key(def.Name), l.st)
				}
				return &DriftError{Catalog: l.String(), Table: def.Name, Problems: problems, Migrate: mig}
			}
			if sameJSON(f.Table, def) {
				return nil
			}
			f.Table = def // trailing columns, comments, location, parameters
			return l.write(ctx, f)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// SetPartitions implements Catalog.
func (l *Local) SetPartitions(ctx context.Context, table string, parts []Partition) error {
	parts, err := checkParts(table, parts)
	if err != nil || len(parts) == 0 {
		return err
	}
	return l.locked(ctx, table, func() error {
		f, err := l.read(ctx, table)
		if err != nil {
			return err
		}
		if f.Table.Projected() {
			return fmt.Errorf("catalog: %s uses partition projection; its partitions are not registered", table)
		}
		changed := false
		now := l.now().UTC()
		for _, p := range parts {
			if cur, ok := f.Partitions[p.DT]; ok && cur.Location == p.Location {
				continue
			}
			f.Partitions[p.DT] = Partition{DT: p.DT, Location: p.Location, Since: now}
			changed = true
		}
		if !changed {
			return nil
		}
		return l.write(ctx, f)
	})
}

// Table implements Catalog.
func (l *Local) Table(ctx context.Context, table string) (TableDef, error) {
	f, err := l.read(ctx, table)
	if err != nil {
		return TableDef{}, err
	}
	return f.Table, nil
}

// Partitions implements Catalog.
func (l *Local) Partitions(ctx context.Context, table string) (map[string]Partition, error) {
	f, err := l.read(ctx, table)
	if err != nil {
		return nil, err
	}
	return f.Partitions, nil
}

// DropPartitions implements Catalog.
func (l *Local) DropPartitions(ctx context.Context, table string, dts []string) error {
	if len(dts) == 0 {
		return nil
	}
	return l.locked(ctx, table, func() error {
		f, err := l.read(ctx, table)
		if err != nil {
			return err
		}
		before := maps.Clone(f.Partitions)
		for _, dt := range dts {
			delete(f.Partitions, dt)
		}
		if len(before) == len(f.Partitions) {
			return nil
		}
		return l.write(ctx, f)
	})
}

// Tables lists the tables of the local catalog, sorted.
func (l *Local) Tables(ctx context.Context) ([]TableDef, error) {
	objs, err := l.st.List(ctx, LocalPrefix)
	if err != nil {
		return nil, err
	}
	var defs []TableDef
	for _, o := range objs {
		name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, LocalPrefix), ".json")
		if !ok || strings.Contains(name, "/") {
			continue
		}
		f, err := l.read(ctx, name)
		if err != nil {
			return nil, err
		}
		defs = append(defs, f.Table)
	}
	return defs, nil
}
