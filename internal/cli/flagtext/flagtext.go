// Package flagtext makes the standard flag package speak as the project's
// documentation does: --help lists flags with two dashes, a parse error
// names the flag with two dashes and says what a good value looks like, and
// duration flags also take days (7d).
package flagtext

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// PrintDefaults writes fs's flags to w as flag.FlagSet.PrintDefaults does,
// but each named with two dashes (--store, not -store), as every document
// of the project names them.
func PrintDefaults(fs *flag.FlagSet, w io.Writer) {
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		// PrintDefaults starts each flag's line with "  -name" and indents
		// the lines of its usage with "    \t".
		if strings.HasPrefix(line, "  -") {
			line = "  --" + line[len("  -"):]
		}
		io.WriteString(w, line)
	}
}

var (
	invalidValue = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-([^:]+): (.*)$`)
	notDefined   = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	needsValue   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// Message rewrites an error of flag.FlagSet.Parse into one line naming the
// flag with two dashes: `--max-lateness "7": want a duration like 168h or
// 7d`, `unknown flag --frm`, `--from needs a value`. Other errors are
// returned as they are.
func Message(err error) string {
	s := err.Error()
	if m := invalidValue.FindStringSubmatch(s); m != nil {
		why := m[3]
		if why == "parse error" || strings.HasPrefix(why, "strconv.") {
			why = "not a valid value"
		}
		return fmt.Sprintf("--%s %s: %s", m[2], m[1], why)
	}
	if m := notDefined.FindStringSubmatch(s); m != nil {
		return "unknown flag --" + m[1]
	}
	if m := needsValue.FindStringSubmatch(s); m != nil {
		return "--" + m[1] + " needs a value"
	}
	return s
}

// errDuration is what a bad duration flag value gets: the form it wants.
var (
	errDuration = errors.New("want a duration like 168h, 7d, 90m or 0")
	errNegative = errors.New("must not be negative (want a duration like 168h, 7d, 90m or 0)")
)

// ParseDuration parses a duration as time.ParseDuration does, and also in
// days: "7d", "1.5d", "7d12h". Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	days, rest, hasDays := strings.Cut(s, "d")
	var d time.Duration
	if hasDays {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || days == "" || days[0] == '+' || n > 1e6 {
			return 0, errDuration
		}
		if n < 0 {
			return 0, errNegative
		}
		d = time.Duration(n * float64(24*time.Hour))
		if rest == "" {
			return d, nil
		}
		if rest[0] == '-' || rest[0] == '+' {
			return 0, errDuration
		}
		s = rest
	}
	r, err := time.ParseDuration(s)
	if err != nil {
		return 0, errDuration
	}
	if r < 0 {
		return 0, errNegative
	}
	return d + r, nil
}

// FormatDuration writes d as the flags take it: whole days as "7d", other
// durations as time.Duration does but without zero trailing units ("1h",
// "30s", "1h30m").
func FormatDuration(d time.Duration) string {
	if d != 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Duration is a flag.Value holding a duration written as ParseDuration
// takes it (168h, 7d, 30m).
type Duration struct{ D *time.Duration }

// DurationVar defines a duration flag on fs that also takes days (see
// ParseDuration); its --help default is written as FormatDuration does.
func DurationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(Duration{p}, name, usage)
}

// String returns the duration as FormatDuration writes it.
func (v Duration) String() string {
	if v.D == nil {
		return "0s"
	}
	return FormatDuration(*v.D)
}

// Set parses s with ParseDuration.
func (v Duration) Set(s string) error {
	d, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*v.D = d
	return nil
}
