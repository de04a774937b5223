package publish

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/rollups"
)

// fuzzEvents makes up to 3000 events from data, byte by byte: the first
// byte says whether the event ids are UUIDs (packed, bit 0); then each
// event takes its id, times, strings (from a pool of 16 cut from data, so
// that they repeat; some empty, so null in optional columns), clock_skewed
// and up to 3 properties from the bytes that follow. Strings are made
// valid UTF-8, as the raw reader makes them.
func fuzzEvents(data []byte) *frame.Events {
	r := fuzzBytes{b: data}
	uuids := r.byte()&1 == 1
	var pool [16]string
	for i := range pool {
		pool[i] = strings.ToValidUTF8(string(r.take(int(r.byte())%24)), "\ufffd")
	}
	pick := func() string { return pool[r.byte()%16] }
	ev := frame.New(nil, 0)
	t := int64(1_780_000_000_000)
	for i := 0; len(r.b) > 0 && i < 3000; i++ {
		x := r.byte()
		row := frame.Row{EventID: pick() + strconv.Itoa(i), Skewed: x&1 == 1}
		if uuids {
			row.EventID = fmt.Sprintf("%08x-%04x-7%03x-8%03x-%012x", r.u32(), i&0xffff, r.byte(), r.byte(), r.u32())
		}
		t += int64(r.u32() % 100_000)
		row.EventTime, row.ReceivedAt = t, t+int64(r.byte())
		if x&2 == 2 {
			row.ClientTime = t - int64(r.u32())
		}
		if x&4 == 4 { // far times
			row.EventTime, row.ClientTime = int64(r.u32())<<20, -int64(r.u32())<<20 // within DuckDB's range
		}
		for c := range row.Str {
			row.Str[c] = pick()
		}
		if x&8 == 8 {
			row.Props = map[string]string{}
			for range int(r.byte()) % 4 {
				row.Props[pick()] = pick()
			}
		}
		if err := ev.Append(&row); err != nil {
			panic(err)
		}
	}
	if uuids && ev.Len() > 0 && !ev.PackUUIDs() {
		panic("uuids not packed")
	}
	return ev
}

// fuzzBytes hands out data's bytes, then zeros.
type fuzzBytes struct{ b []byte }

func (r *fuzzBytes) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzBytes) take(n int) []byte {
	n = min(n, len(r.b))
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *fuzzBytes) u32() uint32 {
	var b [4]byte
	copy(b[:], r.take(4))
	return binary.LittleEndian.Uint32(b[:])
}

// FuzzEncodeGroup: whatever the events and the page size, the row group
// file the page encoder writes (data pages, dictionaries, levels,
// statistics, zstd) is read back by parquet-go as those events, and its
// page index agrees with its pages. TestEncodeGroupDuckDB reads the seed
// corpus (testdata/fuzz/FuzzEncodeGroup) with DuckDB too.
func FuzzEncodeGroup(f *testing.F) {
	f.Add([]byte("\x01abcdefgh0123456789-user-device-session"), uint16(64))
	f.Fuzz(func(t *testing.T, data []byte, page uint16) {
		ev := fuzzEvents(data)
		if ev.Len() == 0 {
			return
		}
		defer func(p int) { pageSize = p }(pageSize)
		pageSize = 16 + int(page)
		mine := encodeAlone(t, ev, 0, ev.Len())
		got, err := parquet.Read[rollups.Event](bytes.NewReader(fileBytes(t, mine)), mine.Size())
		if err != nil {
			t.Fatal(err)
		}
		want := make([]rollups.Event, ev.Len())
		for i := range want {
			want[i] = eventOf(ev, i)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("rows read back (-want +got):\n%s", diff)
		}
		for col := range mine.Metadata().RowGroups[0].Columns {
			checkPageIndex(t, mine, col)
		}
	})
}

// TestEncodeGroupDuckDB: the row group files of FuzzEncodeGroup's seed
// corpus, written by the page encoder, read in DuckDB as their events.
func TestEncodeGroupDuckDB(t *testing.T) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzEncodeGroup", "*"))
	if len(seeds) < 5 {
		t.Fatalf("%d seeds in testdata/fuzz/FuzzEncodeGroup, want at least 5", len(seeds))
	}
	dir := t.TempDir()
	for _, seed := range seeds {
		t.Run(filepath.Base(seed), func(t *testing.T) {
			data, page := readSeed(t, seed)
			ev := fuzzEvents(data)
			if ev.Len() == 0 {
				t.Skip("no events") // nothing for DuckDB to read
			}
			defer func(p int) { pageSize = p }(pageSize)
			pageSize = 16 + int(page)
			path := filepath.Join(dir, filepath.Base(seed)+".parquet")
			if err := os.WriteFile(path, fileBytes(t, encodeAlone(t, ev, 0, ev.Len())), 0o644); err != nil {
				t.Fatal(err)
			}
			checkDuckDB(context.Background(), t, []string{path}, ev)
		})
	}
}

// readSeed parses a corpus file of FuzzEncodeGroup: its []byte and uint16.
func readSeed(t *testing.T, path string) ([]byte, uint16) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a corpus file of two values", path)
	}
	b, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	page, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(lines[2], "uint16("), ")"), 10, 16)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(b), uint16(page)
}
