package rollups

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/littlewarehouse/warehouse/internal/frame"
)

// FunnelEvents are one day's events that match a step of some funnel of a
// definition (its Digest), by person: the input of funnel_daily. Persons
// are sorted by (Product, UserKey), each with its events
// Times[Lo:Hi] in ascending time (equal times by Steps), and Steps[i] the
// bits of the steps event i matches (Funnels.bit). They are a pure
// function of the day's events and the definition, whichever way they were
// made (FunnelEventsOf from the built day, or NewFunnelEvents from the
// events table).
type FunnelEvents struct {
	Digest  string
	Persons []FunnelPerson
	Times   []int64
	Steps   []uint64
}

// FunnelPerson is one person (of a product) in FunnelEvents.
type FunnelPerson struct {
	Product, UserKey string // Product is dim'd: None if empty
	Lo, Hi           int32
}

// funnelRow is one matching event of a person numbered pair.
type funnelRow struct {
	pair  uint32
	t     int64
	steps uint64
}

// FunnelEventsOf extracts f's funnel events from a day's events (any
// order). It works on ev's dictionary ids; ev is only read.
func FunnelEventsOf(f *Funnels, ev *frame.Events) *FunnelEvents {
	byName := f.stepEvents()
	if len(byName) == 0 {
		return &FunnelEvents{Digest: f.Digest()}
	}
	names := map[uint32]*nameSteps{} // by dictionary id; nil: no step
	lastID, last := ^uint32(0), (*nameSteps)(nil)
	// A person is (dim(product), user_key): "" and "(none)" are one
	// product, so products are keyed by their dim'd string's first id.
	canon, byDim := map[uint32]uint32{}, map[string]uint32{}
	product := func(id uint32) uint32 {
		c, ok := canon[id]
		if !ok {
			s := dim(ev.Dict.Str(id))
			if c, ok = byDim[s]; !ok {
				c = id
				byDim[s] = c
			}
			canon[id] = c
		}
		return c
	}
	pairs := map[uint64]uint32{}
	var pairStrs [][2]string
	var rows []funnelRow
	users, products := ev.Str[frame.UserKey], ev.Str[frame.Product]
	for i, id := range ev.Str[frame.EventName] {
		if id != lastID {
			ns, ok := names[id]
			if !ok {
				ns = byName[ev.Dict.Str(id)]
				names[id] = ns
			}
			lastID, last = id, ns
		}
		if last == nil {
			continue
		}
		m := last.all
		if len(last.props) > 0 {
			keys, vals := ev.Props(i)
			m |= last.match(func(k string) (string, bool) {
				for j, kid := range keys {
					if ev.Dict.Str(kid) == k {
						return ev.Dict.Str(vals[j]), true
					}
				}
				return "", false
			})
		}
		if m == 0 {
			continue
		}
		pk := uint64(product(products[i]))<<32 | uint64(users[i])
		p, ok := pairs[pk]
		if !ok {
			p = uint32(len(pairStrs))
			pairs[pk] = p
			pairStrs = append(pairStrs, [2]string{dim(ev.Dict.Str(products[i])), ev.Dict.Str(users[i])})
		}
		rows = append(rows, funnelRow{p, ev.EventTime[i], m})
	}
	return groupFunnelRows(f.Digest(), rows, pairStrs)
}

// FunnelEventsBuilder makes FunnelEvents one event at a time (from rows
// read back from the events table).
type FunnelEventsBuilder struct {
	f        *Funnels
	byName   map[string]*nameSteps
	pairs    map[[2]string]uint32
	pairStrs [][2]string
	rows     []funnelRow
}

// NewFunnelEvents returns a builder of f's funnel events.
func NewFunnelEvents(f *Funnels) *FunnelEventsBuilder {
	return &FunnelEventsBuilder{f: f, byName: f.stepEvents(), pairs: map[[2]string]uint32{}}
}

// NeedsProperties reports whether Add needs the events' properties.
func (b *FunnelEventsBuilder) NeedsProperties() bool {
	for _, ns := range b.byName {
		if len(ns.props) > 0 {
			return true
		}
	}
	return false
}

// Add adds one event of the day if it matches a step.
func (b *FunnelEventsBuilder) Add(product, userKey, eventName string, eventTime int64, props map[string]string) {
	ns := b.byName[eventName]
	if ns == nil {
		return
	}
	m := ns.match(func(k string) (string, bool) { v, ok := props[k]; return v, ok })
	if m == 0 {
		return
	}
	k := [2]string{dim(product), userKey}
	p, ok := b.pairs[k]
	if !ok {
		p = uint32(len(b.pairStrs))
		b.pairs[k] = p
		b.pairStrs = append(b.pairStrs, [2]string{strings.Clone(k[0]), strings.Clone(k[1])})
	}
	b.rows = append(b.rows, funnelRow{p, eventTime, m})
}

// Done returns the funnel events added.
func (b *FunnelEventsBuilder) Done() *FunnelEvents {
	return groupFunnelRows(b.f.Digest(), b.rows, b.pairStrs)
}

// groupFunnelRows orders rows by person (their pair's strings), then time
// and steps: a counting sort by the pairs' ranks, then each person's
// handful of rows sorted.
func groupFunnelRows(digest string, rows []funnelRow, pairStrs [][2]string) *FunnelEvents {
	order := make([]uint32, len(pairStrs))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int {
		return cmp.Or(strings.Compare(pairStrs[a][0], pairStrs[b][0]), strings.Compare(pairStrs[a][1], pairStrs[b][1]))
	})
	rank := make([]uint32, len(pairStrs))
	for r, p := range order {
		rank[p] = uint32(r)
	}
	start := make([]int32, len(pairStrs)+1)
	for _, r := range rows {
		start[rank[r.pair]+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	fe := &FunnelEvents{Digest: digest, Persons: make([]FunnelPerson, len(pairStrs)),
		Times: make([]int64, len(rows)), Steps: make([]uint64, len(rows))}
	next := slices.Clone(start[:len(pairStrs)])
	for _, r := range rows {
		k := rank[r.pair]
		fe.Times[next[k]], fe.Steps[next[k]] = r.t, r.steps
		next[k]++
	}
	for r, p := range order {
		lo, hi := start[r], start[r+1]
		fe.Persons[r] = FunnelPerson{Product: pairStrs[p][0], UserKey: pairStrs[p][1], Lo: lo, Hi: hi}
		sortTimesSteps(fe.Times[lo:hi], fe.Steps[lo:hi])
	}
	return fe
}

// sortTimesSteps sorts parallel times and steps by (time, steps): an
// insertion sort, for one person's few events of a day (a shell sort pass
// first keeps a person with many from going quadratic).
func sortTimesSteps(ts []int64, ss []uint64) {
	less := func(i, j int) bool { return ts[i] < ts[j] || ts[i] == ts[j] && ss[i] < ss[j] }
	for gap := len(ts) / 2; gap > 0; gap /= 2 {
		for i := gap; i < len(ts); i++ {
			for j := i; j >= gap && less(j, j-gap); j -= gap {
				ts[j], ts[j-gap] = ts[j-gap], ts[j]
				ss[j], ss[j-gap] = ss[j-gap], ss[j]
			}
		}
	}
}

// funnelEventsMagic starts an encoded FunnelEvents (version 1).
const funnelEventsMagic = "LWFUNNEL1\n"

// Encode returns fe as a zstd-compressed file: the magic, the digest, then
// per person its product, user key, event count, and each event's time (a
// delta from the one before) and steps, as varints.
func (fe *FunnelEvents) Encode() []byte {
	var b []byte
	b = appendString(b, fe.Digest)
	b = binary.AppendUvarint(b, uint64(len(fe.Persons)))
	for _, p := range fe.Persons {
		b = appendString(b, p.Product)
		b = appendString(b, p.UserKey)
		b = binary.AppendUvarint(b, uint64(p.Hi-p.Lo))
		prev := int64(0)
		for i := p.Lo; i < p.Hi; i++ {
			b = binary.AppendVarint(b, fe.Times[i]-prev)
			b = binary.AppendUvarint(b, fe.Steps[i])
			prev = fe.Times[i]
		}
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	defer enc.Close()
	return enc.EncodeAll(b, []byte(funnelEventsMagic))
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// errFunnelEvents is a file that is not an encoded FunnelEvents.
var errFunnelEvents = errors.New("not a funnel events file")

// DecodeFunnelEvents reads a file Encode made; it rejects anything else
// with an error (never a panic), including persons out of order.
func DecodeFunnelEvents(data []byte) (*FunnelEvents, error) {
	if !bytes.HasPrefix(data, []byte(funnelEventsMagic)) {
		return nil, errFunnelEvents
	}
	// A frame's header could claim any size: allow what our encoding of
	// the data could plausibly take, not what it says.
	limit := uint64(256<<20) + 256*uint64(len(data))
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(limit))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	b, err := dec.DecodeAll(data[len(funnelEventsMagic):], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFunnelEvents, err)
	}
	r := &byteReader{b: b}
	fe := &FunnelEvents{Digest: r.string()}
	n := r.uvarint()
	for k := uint64(0); k < n && r.err == nil; k++ {
		p := FunnelPerson{Product: r.string(), UserKey: r.string(), Lo: int32(len(fe.Times))}
		c := r.uvarint()
		if c > uint64(len(r.b)) || r.err != nil {
			return nil, errFunnelEvents
		}
		t := int64(0)
		for range c {
			t += r.varint()
			fe.Times = append(fe.Times, t)
			fe.Steps = append(fe.Steps, r.uvarint())
		}
		p.Hi = int32(len(fe.Times))
		if q := len(fe.Persons); q > 0 && comparePersons(fe.Persons[q-1], p) >= 0 {
			return nil, fmt.Errorf("%w: persons out of order", errFunnelEvents)
		}
		if !slices.IsSorted(fe.Times[p.Lo:p.Hi]) {
			return nil, fmt.Errorf("%w: times out of order", errFunnelEvents)
		}
		fe.Persons = append(fe.Persons, p)
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errFunnelEvents
	}
	return fe, nil
}

func comparePersons(a, b FunnelPerson) int {
	return cmp.Or(strings.Compare(a.Product, b.Product), strings.Compare(a.UserKey, b.UserKey))
}

// byteReader reads varints and strings, remembering the first error.
type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errFunnelEvents, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errFunnelEvents, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err, r.b = errFunnelEvents, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
