package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/report"
	"github.com/littlewarehouse/warehouse/internal/store"
)

const reportUsage = `rollup report writes one self-contained HTML page (charts and tables, no
scripts, no network) from the curated tables, read through their manifests:
active people (DAU/WAU/MAU, new and returning), retention cohorts, the
lifecycle of each day's people, stickiness, each funnel step by step, top
events, top paths, sessions, data quality and restatements, and when each
partition was built.
It only reads the store, local or S3.

Example:
  rollup report --store ./data --out report.html
  rollup report --store s3://bucket/warehouse --from 2026-11-01 --to 2026-11-30 --product shop --out shop.html

Flags:
`

// reportCmd runs rollup report. The page is written to a temporary file
// beside --out and renamed into place, so a failed run leaves no partial
// page (and an earlier report stays as it was). An --out in a folder that
// does not exist, and a --product the store holds no rows of (when it holds
// some), are bad usage (exit 2), named before anything is read or written.
func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rollup report", reportUsage)
	loc := fs.String("store", "./data", "the warehouse to report on: a directory (`./data`, file:///abs/path) or s3://bucket/prefix")
	out := fs.String("out", "report.html", "the HTML `file` to write (- for standard output)")
	from := fs.String("from", "", "first reporting day to show, `YYYY-MM-DD` (default: the first day with data)")
	to := fs.String("to", "", "last reporting day to show, `YYYY-MM-DD`, inclusive (default: the last day with data)")
	product := fs.String("product", "", "show only this `product` (default: all products)")
	s3Endpoint := fs.String("s3-endpoint", "", "S3-compatible endpoint `URL` (or set AWS_ENDPOINT_URL_S3)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return reportUsagef("rollup report takes no arguments (got %q)", fs.Arg(0))
	}
	opt := report.Options{Product: *product, Now: time.Now}
	var err error
	if *from != "" {
		if opt.From, err = day.Parse(*from); err != nil {
			return reportUsagef("--from: %v", err)
		}
	}
	if *to != "" {
		if opt.To, err = day.Parse(*to); err != nil {
			return reportUsagef("--to: %v", err)
		}
	}
	if opt.From != 0 && opt.To != 0 && opt.From > opt.To {
		return reportUsagef("--from %s is after --to %s", opt.From, opt.To)
	}
	if *out != "-" {
		if dir := filepath.Dir(*out); !isDir(dir) {
			return reportUsagef("--out %s: folder %s does not exist; create it first, or name another", *out, dir)
		}
	}
	st, err := store.Open(ctx, *loc, store.Options{S3Endpoint: *s3Endpoint})
	if err != nil {
		return reportUsagef("%v", err)
	}
	if *product != "" {
		have, err := products(ctx, st)
		if err != nil {
			return err
		}
		if len(have) > 0 && !slices.Contains(have, *product) {
			return reportUsagef("--product %q: no such product in %s; products with data: %s", *product, st, strings.Join(have, ", "))
		}
	}
	if *out == "-" {
		return report.Write(ctx, st, stdout, opt)
	}
	f, err := os.CreateTemp(filepath.Dir(*out), ".report-*.html")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	if err := report.Write(ctx, st, f, opt); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

// isDir says whether path is an existing directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// products lists, sorted, the products of the current engagement_daily
// partitions in st (every built day with events has some), reading only
// their product column.
func products(ctx context.Context, st store.Store) ([]string, error) {
	parts, err := publish.CurrentFiles(ctx, st, "engagement_daily")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, p := range parts {
		for _, f := range p.Manifest.Files {
			if err := readProducts(ctx, st, f.Key, seen); err != nil {
				return nil, err
			}
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// readProducts adds the values of the product column of the Parquet
// object key to seen.
func readProducts(ctx context.Context, st store.Store, key string, seen map[string]bool) (err error) {
	r, err := st.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	defer r.Close()
	f, err := parquet.OpenFile(r, r.Size())
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	defer func() {
		if p := recover(); p != nil { // parquet-go panics on some corrupt pages
			err = fmt.Errorf("read %s: %v", key, p)
		}
	}()
	type row struct {
		Product string `parquet:"product"`
	}
	pr := parquet.NewGenericReader[row](f)
	defer pr.Close()
	rows := make([]row, 1024)
	for {
		n, err := pr.Read(rows)
		for _, x := range rows[:n] {
			seen[x.Product] = true
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
	}
}

// reportUsagef is bad usage of rollup report: exit 2, pointing at its
// --help.
func reportUsagef(format string, a ...any) error {
	return usageError{msg: fmt.Sprintf(format, a...), help: "rollup report --help"}
}
