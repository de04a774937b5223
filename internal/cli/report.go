package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/report"
	"github.com/littlewarehouse/warehouse/internal/store"
)

const reportUsage = `rollup report writes one self-contained HTML page (charts and tables, no
scripts, no network) from the curated tables, read through their manifests:
active people (DAU/WAU/MAU, new and returning), retention cohorts, top events,
sessions, data quality and restatements, and when each partition was built.
It only reads the store, local or S3.

Example:
  rollup report --store ./data --out report.html
  rollup report --store s3://bucket/warehouse --from 2026-11-01 --to 2026-11-30 --product shop --out shop.html

Flags:
`

// reportCmd runs rollup report. The page is written to a temporary file
// beside --out and renamed into place, so a failed run leaves no partial
// page (and an earlier report stays as it was).
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
		return usagef("rollup report takes no arguments (got %q)", fs.Arg(0))
	}
	opt := report.Options{Product: *product, Now: time.Now}
	var err error
	if *from != "" {
		if opt.From, err = day.Parse(*from); err != nil {
			return usagef("--from: %v", err)
		}
	}
	if *to != "" {
		if opt.To, err = day.Parse(*to); err != nil {
			return usagef("--to: %v", err)
		}
	}
	if opt.From != 0 && opt.To != 0 && opt.From > opt.To {
		return usagef("--from %s is after --to %s", opt.From, opt.To)
	}
	st, err := store.Open(ctx, *loc, store.Options{S3Endpoint: *s3Endpoint})
	if err != nil {
		return usagef("%v", err)
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
