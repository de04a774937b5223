package rollups

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// FunnelsKey is the store key of the funnel definitions, a JSON file (see
// ParseFunnels) under config/, which the rollup functions may read and not
// write. A store without it has no funnels, and funnel_daily is empty.
const FunnelsKey = "config/funnels.json"

// Limits of a funnel definition file.
const (
	MinFunnelSteps      = 2
	MaxFunnelSteps      = 10
	MaxFunnels          = 16
	MaxFunnelStepsTotal = 64 // steps over every funnel of a file (one bit each in a FunnelEvent)
	MaxFunnelWindow     = 7 * 24 * time.Hour
	DefaultFunnelWindow = 24 * time.Hour
	maxFunnelName       = 64
	maxFunnelsFile      = 64 << 10
)

// ErrFunnels is the error (wrapped) of a funnel definition file that is
// not valid.
var ErrFunnels = errors.New("funnels")

// FunnelStep is one step of a funnel: an event of that name, and, if
// Property is set, whose property Property equals Equals.
type FunnelStep struct {
	Event    string `json:"event"`
	Property string `json:"property,omitempty"`
	Equals   string `json:"equals,omitempty"`
}

// Name is how the step is shown: the event name, then the property test.
func (s FunnelStep) Name() string {
	if s.Property == "" {
		return s.Event
	}
	return fmt.Sprintf("%s (%s = %s)", s.Event, s.Property, s.Equals)
}

// Funnel is a named sequence of steps and the time a person has, from
// their first step, to go through them all.
type Funnel struct {
	Name string `json:"name"`
	// Window is a Go duration ("24h", "30m"), at most 7 days; 24h if empty.
	Window string       `json:"window,omitempty"`
	Steps  []FunnelStep `json:"steps"`
	window time.Duration
	bit0   int // the bit of its first step (its steps' bits follow)
}

// WindowDuration is the funnel's conversion window.
func (f Funnel) WindowDuration() time.Duration { return f.window }

// Funnels is a funnel definition file. Its zero value (or nil) defines no
// funnel.
type Funnels struct {
	Funnels []Funnel `json:"funnels"`
}

// ParseFunnels reads and checks a funnel definition file:
//
//	{"funnels": [
//	  {"name": "checkout", "window": "24h",
//	   "steps": [{"event": "view_item"}, {"event": "add_to_cart"},
//	             {"event": "purchase", "property": "currency", "equals": "USD"}]}
//	]}
//
// A funnel has a unique name (1 to 64 printable characters), 2 to 10 steps
// and a window of at most 7 days (24 hours if not given); a file has at most
// 16 funnels and 64 steps in all. Unknown fields are errors, so a typo is
// not silently ignored. Errors name the funnel and step at fault.
func ParseFunnels(b []byte) (*Funnels, error) {
	if len(b) > maxFunnelsFile {
		return nil, fmt.Errorf("%w: the file is %d bytes, more than %d", ErrFunnels, len(b), maxFunnelsFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f Funnels
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFunnels, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: more than one JSON value in the file", ErrFunnels)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFunnels, err)
	}
	return &f, nil
}

func (f *Funnels) check() error {
	if len(f.Funnels) > MaxFunnels {
		return fmt.Errorf("%d funnels, at most %d", len(f.Funnels), MaxFunnels)
	}
	names, total := map[string]bool{}, 0
	for i := range f.Funnels {
		fn := &f.Funnels[i]
		if err := checkName(fn.Name); err != nil {
			return fmt.Errorf("funnel %d: name %q: %w", i+1, fn.Name, err)
		}
		if names[fn.Name] {
			return fmt.Errorf("funnel %q is defined twice", fn.Name)
		}
		names[fn.Name] = true
		fn.window = DefaultFunnelWindow
		if fn.Window != "" {
			w, err := time.ParseDuration(fn.Window)
			if err != nil || w <= 0 || w > MaxFunnelWindow || w%time.Second != 0 {
				return fmt.Errorf("funnel %q: window %q: want a duration of whole seconds from 1s to 168h, such as \"24h\" or \"30m\"", fn.Name, fn.Window)
			}
			fn.window = w
		}
		if n := len(fn.Steps); n < MinFunnelSteps || n > MaxFunnelSteps {
			return fmt.Errorf("funnel %q: %d steps, want %d to %d", fn.Name, n, MinFunnelSteps, MaxFunnelSteps)
		}
		for j, s := range fn.Steps {
			if s.Event == "" {
				return fmt.Errorf("funnel %q step %d: no event name", fn.Name, j+1)
			}
			if s.Property == "" && s.Equals != "" {
				return fmt.Errorf("funnel %q step %d: \"equals\" without \"property\"", fn.Name, j+1)
			}
		}
		fn.bit0 = total
		total += len(fn.Steps)
	}
	if total > MaxFunnelStepsTotal {
		return fmt.Errorf("%d steps in all, at most %d", total, MaxFunnelStepsTotal)
	}
	return nil
}

func checkName(s string) error {
	switch {
	case s == "" || strings.TrimSpace(s) != s:
		return errors.New("want a non-empty name without leading or trailing spaces")
	case len(s) > maxFunnelName:
		return fmt.Errorf("longer than %d bytes", maxFunnelName)
	case !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return errors.New("not printable text")
	}
	return nil
}

// funnelRules is the version of what a definition computes (which events
// match a step, how a person walks the steps): a change to either bumps
// it, which changes every digest, so that funnel events and funnel_daily
// partitions made by the old rules are made again.
const funnelRules = 1

// Digest identifies what the definitions compute: equal for files that
// define the same funnels (whatever their spacing or window spelling),
// different otherwise, and for the same funnels under other rules
// (funnelRules). The empty definition has a digest too.
func (f *Funnels) Digest() string {
	type step struct{ E, P, V string }
	type funnel struct {
		N     string
		W     int64
		Steps []step
	}
	var c []funnel
	for _, fn := range f.list() {
		x := funnel{N: fn.Name, W: fn.window.Milliseconds()}
		for _, s := range fn.Steps {
			x.Steps = append(x.Steps, step{s.Event, s.Property, s.Equals})
		}
		c = append(c, x)
	}
	b, _ := json.Marshal(struct {
		Rules   int
		Funnels []funnel
	}{funnelRules, c})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

func (f *Funnels) list() []Funnel {
	if f == nil {
		return nil
	}
	return f.Funnels
}

// Empty reports whether f defines no funnel.
func (f *Funnels) Empty() bool { return len(f.list()) == 0 }

// MaxWindow is the longest window of f's funnels (0 if none).
func (f *Funnels) MaxWindow() time.Duration {
	var w time.Duration
	for _, fn := range f.list() {
		w = max(w, fn.window)
	}
	return w
}

// bit is the bit of step j of funnel i in a FunnelEvent's Steps.
func (f *Funnels) bit(i, j int) uint64 { return 1 << (f.Funnels[i].bit0 + j) }

// stepEvents returns, for each event name some step names, the bits of the
// steps that need no property (all) and of those that do (byProp).
func (f *Funnels) stepEvents() map[string]*nameSteps {
	out := map[string]*nameSteps{}
	for i, fn := range f.list() {
		for j, s := range fn.Steps {
			ns := out[s.Event]
			if ns == nil {
				ns = &nameSteps{}
				out[s.Event] = ns
			}
			if s.Property == "" {
				ns.all |= f.bit(i, j)
			} else {
				ns.props = append(ns.props, propStep{s.Property, s.Equals, f.bit(i, j)})
			}
		}
	}
	return out
}

// nameSteps are the steps an event name can match.
type nameSteps struct {
	all   uint64
	props []propStep
}

type propStep struct {
	key, value string
	bit        uint64
}

func (ns *nameSteps) match(prop func(string) (string, bool)) uint64 {
	m := ns.all
	for _, p := range ns.props {
		if v, ok := prop(p.key); ok && v == p.value {
			m |= p.bit
		}
	}
	return m
}

// FunnelNames returns the funnel names in file order.
func (f *Funnels) FunnelNames() []string {
	var out []string
	for _, fn := range f.list() {
		out = append(out, fn.Name)
	}
	return slices.Clip(out)
}

// FunnelStepsSQL returns a query of f's steps in the shape funnel_daily.sql
// reads as funnel_steps: (funnel, step, event_name, property, equals,
// window_ms, step_name), property NULL for a step without one.
func (f *Funnels) FunnelStepsSQL() string {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	var rows []string
	for _, fn := range f.list() {
		for j, s := range fn.Steps {
			prop, eq := "NULL", "NULL"
			if s.Property != "" {
				prop, eq = q(s.Property), q(s.Equals)
			}
			rows = append(rows, fmt.Sprintf("(%s, %d, %s, %s, %s, %d::BIGINT, %s)", q(fn.Name), j+1, q(s.Event), prop, eq, fn.window.Milliseconds(), q(s.Name())))
		}
	}
	if len(rows) == 0 {
		return "SELECT NULL::VARCHAR AS funnel, NULL::INTEGER AS step, NULL::VARCHAR AS event_name, NULL::VARCHAR AS property, " +
			"NULL::VARCHAR AS equals, NULL::BIGINT AS window_ms, NULL::VARCHAR AS step_name WHERE false"
	}
	return "SELECT * FROM (VALUES " + strings.Join(rows, ", ") + ") AS t(funnel, step, event_name, property, equals, window_ms, step_name)"
}
