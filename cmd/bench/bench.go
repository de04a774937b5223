package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// Config is one benchmark run.
type Config struct {
	Only      string // data set name; "" = all
	Runs      int    // best of Runs
	Keep      bool   // keep the last run's outputs
	Nasty     bool   // generate with the nasty cases (cached separately)
	Dir       string // cache folder; default <module root>/.bench
	Rollup    string // prebuilt binaries; "" = build
	DuckBench string
	// Funnels is a funnel definition file: each run of ours is then also
	// run with it saved as the store's funnels (--funnels), right after
	// the run without, to measure what funnel_daily costs. "" skips it.
	Funnels string
	Args    []string // the command line, for the results file
	Out     io.Writer
}

// DataSet is one generated input and the reporting days run over it.
type DataSet struct {
	Name string
	Gen  gen.Config // From..To are also the reporting days run
}

// dataSetVersion is part of the cache marker: bump it when what is
// generated for the same gen.Config changes (e.g. the key list file).
const dataSetVersion = 1

// DataSets are the benchmark's inputs. Seeds and days are fixed so every run
// of the benchmark, on any machine, reads the same bytes.
var DataSets = []DataSet{
	{Name: "1day", Gen: gen.Config{
		From: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC),
		EventsPerDay: 5_000_000, ObjectsPerHour: 4, Seed: 42}},
	{Name: "30day", Gen: gen.Config{
		From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC),
		EventsPerDay: 100_000, ObjectsPerHour: 4, Seed: 42}},
}

func dataSet(name string) (DataSet, bool) {
	for _, d := range DataSets {
		if d.Name == name {
			return d, true
		}
	}
	return DataSet{}, false
}

func dataSetNames() string {
	var n []string
	for _, d := range DataSets {
		n = append(n, d.Name)
	}
	return strings.Join(n, ", ")
}

// genConfig is the generator config of a data set, with the nasty cases if
// asked, but never unreadable objects: DuckDB would stop on them, and both
// sides must read the same objects.
func (d DataSet) genConfig(nasty bool) gen.Config {
	c := d.Gen
	if nasty {
		c = gen.Nasty(c)
		c.NotParquet, c.Truncated, c.ZeroByte = 0, 0, 0
	}
	return c
}

// Run generates (or reuses) each data set, runs both sides on it Runs
// times, prints the table and writes <Dir>/results.json.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Runs < 1 {
		cfg.Runs = 1
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(root, ".bench")
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return err
	}
	if cfg.Funnels != "" && !filepath.IsAbs(cfg.Funnels) {
		cfg.Funnels = filepath.Join(root, cfg.Funnels) // the children run in the data set's folder
	}
	rollupBin, duckBin, err := binaries(ctx, cfg, root)
	if err != nil {
		return err
	}

	report := Report{
		StartedAt: time.Now().UTC(),
		Command:   strings.TrimSpace("go run ./cmd/bench " + strings.Join(cfg.Args, " ")),
		Go:        runtime.Version(),
		OSArch:    runtime.GOOS + "/" + runtime.GOARCH,
		Cores:     runtime.NumCPU(),
		Runs:      cfg.Runs,
		Nasty:     cfg.Nasty,
	}
	for _, ds := range DataSets {
		if cfg.Only != "" && ds.Name != cfg.Only {
			continue
		}
		res, err := runDataSet(ctx, cfg, ds, rollupBin, duckBin)
		if res != nil {
			report.DataSets = append(report.DataSets, *res)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", ds.Name, err)
		}
	}
	fmt.Fprintln(cfg.Out)
	if err := FormatTable(cfg.Out, report); err != nil {
		return err
	}
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.Dir, "results.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Out, "results: %s\n", path)
	return nil
}

// moduleRoot is the folder of the go.mod that `go run` was started in.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the module: run from the repository (make bench)")
	}
	return filepath.Dir(mod), nil
}

// binaries builds ./cmd/rollup and ./cmd/duckbench into <Dir>/bin, unless
// prebuilt ones are given.
func binaries(ctx context.Context, cfg Config, root string) (rollupBin, duckBin string, err error) {
	build := func(given, pkg, name string) (string, error) {
		if given != "" {
			return filepath.Abs(given)
		}
		bin := filepath.Join(cfg.Dir, "bin", name)
		fmt.Fprintf(cfg.Out, "== building %s\n", pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
		return bin, nil
	}
	if rollupBin, err = build(cfg.Rollup, "./cmd/rollup", "rollup"); err != nil {
		return "", "", err
	}
	if duckBin, err = build(cfg.DuckBench, "./cmd/duckbench", "duckbench"); err != nil {
		return "", "", err
	}
	return rollupBin, duckBin, nil
}

// marker is the cache marker of a generated data set: the data is reused
// only if the marker written after generating it equals this one.
type marker struct {
	Version int        `json:"version"`
	Name    string     `json:"name"`
	Gen     gen.Config `json:"gen"`
}

const (
	markerFile = "dataset.json"
	keysFile   = "keys.txt" // the readable raw objects, one key a line
)

// prepare returns the data set's folder, its store and its raw object keys,
// generating them first unless the cache is current.
func prepare(ctx context.Context, cfg Config, ds DataSet) (dir, storeDir string, keys []string, err error) {
	name := ds.Name
	if cfg.Nasty {
		name += "-nasty"
	}
	dir = filepath.Join(cfg.Dir, name)
	storeDir = filepath.Join(dir, "store")
	gc := ds.genConfig(cfg.Nasty)
	want, err := json.MarshalIndent(marker{Version: dataSetVersion, Name: name, Gen: gc}, "", "  ")
	if err != nil {
		return "", "", nil, err
	}
	want = append(want, '\n')
	if have, err := os.ReadFile(filepath.Join(dir, markerFile)); err == nil && bytes.Equal(have, want) {
		b, err := os.ReadFile(filepath.Join(dir, keysFile))
		if err == nil {
			keys = strings.Fields(string(b))
			fmt.Fprintf(cfg.Out, "== %s: reusing cached data in %s (%d raw objects)\n", name, dir, len(keys))
			return dir, storeDir, keys, nil
		}
	}

	fmt.Fprintf(cfg.Out, "== %s: generating %s..%s, %d events a day, %d objects an hour, seed %d into %s\n",
		name, gc.From.Format(time.DateOnly), gc.To.Format(time.DateOnly), gc.EventsPerDay, gc.ObjectsPerHour, gc.Seed, dir)
	if err := os.RemoveAll(dir); err != nil {
		return "", "", nil, err
	}
	st, err := store.OpenDir(storeDir, true)
	if err != nil {
		return "", "", nil, err
	}
	t0 := time.Now()
	rep, err := gen.Generate(ctx, st, gc)
	if err != nil {
		return "", "", nil, fmt.Errorf("generate: %w", err)
	}
	fmt.Fprintf(cfg.Out, "   %d raw rows (%d events) in %d objects, %.0f MiB, %.1f s\n",
		rep.RawRows, rep.Events, len(rep.Objects), float64(rep.Bytes)/(1<<20), time.Since(t0).Seconds())
	if len(rep.BadObjects) > 0 {
		return "", "", nil, fmt.Errorf("generator wrote unreadable objects %v", rep.BadObjects)
	}
	keys = slices.Clone(rep.Objects)
	slices.Sort(keys)
	debug.FreeOSMemory()
	if err := os.WriteFile(filepath.Join(dir, keysFile), []byte(strings.Join(keys, "\n")+"\n"), 0o644); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, markerFile), want, 0o644); err != nil {
		return "", "", nil, err
	}
	return dir, storeDir, keys, nil
}

// runDataSet runs both sides cfg.Runs times on one data set.
func runDataSet(ctx context.Context, cfg Config, ds DataSet, rollupBin, duckBin string) (*DataSetResult, error) {
	dir, storeDir, keys, err := prepare(ctx, cfg, ds)
	if err != nil {
		return nil, err
	}
	gc := ds.genConfig(cfg.Nasty)
	from, to := day.FromDate(gc.From.Date()), day.FromDate(gc.To.Date())
	res := &DataSetResult{
		Name: ds.Name, From: from.String(), To: to.String(),
		EventsPerDay: gc.EventsPerDay, ObjectsPerHour: gc.ObjectsPerHour, Seed: gc.Seed, Nasty: cfg.Nasty,
		RawObjects: len(keys),
	}
	for _, k := range keys {
		if fi, err := os.Stat(filepath.Join(storeDir, filepath.FromSlash(k))); err == nil {
			res.RawBytes += fi.Size()
		}
	}
	duckOut := filepath.Join(dir, "duckdb-out")
	duckJSON := filepath.Join(dir, "duckdb-result.json")
	oursLog, err := os.Create(filepath.Join(dir, "ours.log"))
	if err != nil {
		return nil, err
	}
	defer oursLog.Close()
	duckLog, err := os.Create(filepath.Join(dir, "duckdb.log"))
	if err != nil {
		return nil, err
	}
	defer duckLog.Close()

	for i := 1; i <= cfg.Runs; i++ {
		// Ours, from a store holding only the raw data.
		if err := resetStore(storeDir); err != nil {
			return res, err
		}
		fmt.Fprintf(oursLog, "== run %d\n", i)
		fmt.Fprintf(cfg.Out, "== %s run %d/%d: ours   ", ds.Name, i, cfg.Runs)
		m, err := measure(ctx, dir, oursLog, rollupBin, "--store", storeDir, "--from", from.String(), "--to", to.String(), "--quiet", "--force")
		if err != nil {
			fmt.Fprintln(cfg.Out, "failed")
			return res, fmt.Errorf("rollup: %w; the end of %s:\n%s", err, oursLog.Name(), tail(oursLog.Name(), 20))
		}
		fmt.Fprintf(cfg.Out, "%7.2f s %9s peak RSS\n", m.WallSeconds, mib(m.MaxRSSKiB))
		res.Ours.Runs = append(res.Ours.Runs, m)
		if res.OursEvents, err = ourEvents(ctx, storeDir, from, to); err != nil {
			return res, err
		}
		if cfg.Funnels != "" {
			if err := resetStore(storeDir); err != nil {
				return res, err
			}
			if res.OursFunnels == nil {
				res.OursFunnels = &Side{}
			}
			fmt.Fprintf(oursLog, "== run %d with --funnels %s\n", i, cfg.Funnels)
			fmt.Fprintf(cfg.Out, "== %s run %d/%d: ours with the funnels ", ds.Name, i, cfg.Runs)
			m, err := measure(ctx, dir, oursLog, rollupBin, "--store", storeDir, "--from", from.String(), "--to", to.String(), "--quiet", "--force", "--funnels", cfg.Funnels)
			if err != nil {
				fmt.Fprintln(cfg.Out, "failed")
				return res, fmt.Errorf("rollup --funnels: %w; the end of %s:\n%s", err, oursLog.Name(), tail(oursLog.Name(), 20))
			}
			fmt.Fprintf(cfg.Out, "%7.2f s %9s peak RSS\n", m.WallSeconds, mib(m.MaxRSSKiB))
			res.OursFunnels.Runs = append(res.OursFunnels.Runs, m)
		}

		// DuckDB, on the same objects, into a fresh output folder.
		if err := os.RemoveAll(duckOut); err != nil {
			return res, err
		}
		fmt.Fprintf(duckLog, "== run %d\n", i)
		fmt.Fprintf(cfg.Out, "== %s run %d/%d: DuckDB ", ds.Name, i, cfg.Runs)
		m, err = measure(ctx, dir, duckLog, duckBin, "--store", storeDir, "--from", from.String(), "--to", to.String(),
			"--keys", filepath.Join(dir, keysFile), "--out", duckOut, "--json", duckJSON)
		if err != nil {
			fmt.Fprintln(cfg.Out, "failed")
			return res, fmt.Errorf("duckbench: %w; the end of %s:\n%s", err, duckLog.Name(), tail(duckLog.Name(), 20))
		}
		fmt.Fprintf(cfg.Out, "%7.2f s %9s peak RSS\n", m.WallSeconds, mib(m.MaxRSSKiB))
		res.DuckDB.Runs = append(res.DuckDB.Runs, m)
		b, err := os.ReadFile(duckJSON)
		if err != nil {
			return res, err
		}
		var dr struct {
			EventsRows int64 `json:"events_rows"`
		}
		if err := json.Unmarshal(b, &dr); err != nil {
			return res, fmt.Errorf("%s: %w", duckJSON, err)
		}
		res.DuckDBEvents = dr.EventsRows
		res.DuckDBResult = json.RawMessage(bytes.TrimSpace(b))
	}
	if from < to {
		// One day of the range alone, from raw data only: what a backfill's
		// peak must stay close to.
		mid := from + (to-from)/2
		res.OneDay, res.OneDayName = &Side{}, mid.String()
		for i := 1; i <= cfg.Runs; i++ {
			if err := resetStore(storeDir); err != nil {
				return res, err
			}
			fmt.Fprintf(oursLog, "== one day (%s) run %d\n", mid, i)
			fmt.Fprintf(cfg.Out, "== %s run %d/%d: ours, %s alone ", ds.Name, i, cfg.Runs, mid)
			m, err := measure(ctx, dir, oursLog, rollupBin, "--store", storeDir, "--from", mid.String(), "--to", mid.String(), "--quiet", "--force")
			if err != nil {
				fmt.Fprintln(cfg.Out, "failed")
				return res, fmt.Errorf("rollup: %w; the end of %s:\n%s", err, oursLog.Name(), tail(oursLog.Name(), 20))
			}
			fmt.Fprintf(cfg.Out, "%7.2f s %9s peak RSS\n", m.WallSeconds, mib(m.MaxRSSKiB))
			res.OneDay.Runs = append(res.OneDay.Runs, m)
		}
	}
	res.finish()
	if res.OursEvents != res.DuckDBEvents {
		fmt.Fprintf(cfg.Out, "WARNING: %s: our events hold %d rows for %s..%s, DuckDB's events.parquet %d\n",
			ds.Name, res.OursEvents, from, to, res.DuckDBEvents)
	}
	if !cfg.Keep {
		if err := resetStore(storeDir); err != nil {
			return res, err
		}
		if err := os.RemoveAll(duckOut); err != nil {
			return res, err
		}
	}
	return res, nil
}

// keepInStore are the store folders the generator writes: everything else
// (curated/, _state/, catalog/, locks, ...) is the job's and is deleted
// before each run.
var keepInStore = []string{"raw", "raw-errors", strings.TrimSuffix(gen.ReportPrefix, "/")}

func resetStore(storeDir string) error {
	entries, err := os.ReadDir(storeDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if slices.Contains(keepInStore, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(storeDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// ourEvents sums the rows of the current events partitions of the days, from
// their manifests.
func ourEvents(ctx context.Context, storeDir string, from, to day.Day) (int64, error) {
	st, err := store.OpenDir(storeDir, false)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, d := range day.Range(from, to) {
		m, err := publish.Current(ctx, st, "events", d)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n += m.Rows
	}
	return n, nil
}

// measure runs a child process in dir with its output appended to log and
// returns its wall time and resource usage.
func measure(ctx context.Context, dir string, log io.Writer, name string, args ...string) (Measure, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout = log
	cmd.Stderr = log
	fmt.Fprintf(log, "$ %s %s\n", name, strings.Join(args, " "))
	start := time.Now()
	err := cmd.Run()
	m := Measure{WallSeconds: time.Since(start).Seconds()}
	if cmd.ProcessState != nil {
		m.MaxRSSKiB, m.UserSeconds, m.SysSeconds = rusage(cmd.ProcessState)
	}
	return m, err
}

// tail returns the last n lines of a file, for an error message.
func tail(name string, n int) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
