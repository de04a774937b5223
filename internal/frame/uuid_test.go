package frame

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomUUID(rng *rand.Rand) string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Packed ids read back as their text, and compare as their text does.
func TestPackUUIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e := New(nil, 0)
	var ids []string
	for i := range 500 {
		id := randomUUID(rng)
		if i%7 == 0 && i > 0 {
			id = ids[rng.IntN(len(ids))][:30] + randomUUID(rng)[30:] // shares a prefix
		}
		ids = append(ids, id)
		if err := e.Append(&Row{EventID: id, EventTime: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	text := e.Row(3)
	if !e.PackUUIDs() || !e.UUIDs || e.IDOff != nil || len(e.IDBytes) != 16*len(ids) {
		t.Fatalf("not packed: UUIDs %v, %d id bytes", e.UUIDs, len(e.IDBytes))
	}
	if got := e.Row(3); got.EventID != text.EventID {
		t.Fatalf("Row(3).EventID = %q, want %q", got.EventID, text.EventID)
	}
	for i := range ids {
		if got := string(e.AppendIDText(nil, i)); got != ids[i] {
			t.Fatalf("id %d: %q, want %q", i, got, ids[i])
		}
		j := rng.IntN(len(ids))
		if got, want := bytes.Compare(e.ID(i), e.ID(j)), bytes.Compare([]byte(ids[i]), []byte(ids[j])); got != want {
			t.Fatalf("packed %s vs %s compares %d, text %d", ids[i], ids[j], got, want)
		}
	}
	if got := e.IDTextSize(10, 20); got != 360 {
		t.Fatalf("IDTextSize(10, 20) = %d, want 360", got)
	}
	perm := []int32{5, 2, 9}
	e.Permute(perm)
	for k, p := range perm {
		if got := string(e.AppendIDText(nil, k)); got != ids[p] {
			t.Fatalf("permuted id %d: %q, want %q", k, got, ids[p])
		}
	}
	e.UnpackUUIDs()
	if e.UUIDs || len(e.IDOff) != 4 || string(e.ID(1)) != ids[2] {
		t.Fatalf("unpacked: UUIDs %v, ID(1) %q", e.UUIDs, e.ID(1))
	}
}

// Ids that are not all canonical UUIDs stay text.
func TestPackUUIDsRefuses(t *testing.T) {
	good := "019bc308-087c-7374-888c-4966b9606616"
	for _, bad := range []string{
		"019BC308-087C-7374-888C-4966B9606616", // upper case: another string than its lower case
		"019bc308-087c-7374-888c-4966b960661",  // short
		"019bc308-087c-7374-888c-4966b96066166",
		"019bc308x087c-7374-888c-4966b9606616",
		"019bc308-087c-7374-888c-4966b960661g",
		"019bc308087c-7374-888c-4966b96066166",
		"e-1", "",
	} {
		e := New(nil, 0)
		for _, id := range []string{good, bad, good} {
			if err := e.Append(&Row{EventID: id}); err != nil {
				t.Fatal(err)
			}
		}
		before := slices.Clone(e.IDBytes)
		if e.PackUUIDs() || e.UUIDs || !bytes.Equal(e.IDBytes, before) {
			t.Fatalf("%q: packed", bad)
		}
	}
	if New(nil, 0).PackUUIDs() {
		t.Fatal("no events: packed")
	}
}

// AppendEvents concatenates events of one dictionary, whatever the forms
// of their ids.
func TestAppendEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dict := NewDict(0)
	for _, forms := range [][]bool{{true, true}, {true, false, true}, {false, true}, {false, false}, {true}} {
		acc := New(dict, 0)
		var want []Row
		for k, packed := range forms {
			e := New(dict, 0)
			for i := range 1 + rng.IntN(20) {
				r := Row{EventID: randomUUID(rng), EventTime: int64(i), ClientTime: int64(k), ReceivedAt: 7, Skewed: i%2 == 0,
					Str: [NumColumns]string{"open", fmt.Sprint("u", i%3), "", "s"}}
				if !packed && i == 0 {
					r.EventID = fmt.Sprint("text-", k) // so that these cannot pack
				}
				if i%3 == 0 {
					r.Props = map[string]string{"k": fmt.Sprint(i), "a": "b"}
				}
				if err := e.Append(&r); err != nil {
					t.Fatal(err)
				}
				want = append(want, e.Row(e.Len()-1))
			}
			if packed && !e.PackUUIDs() {
				t.Fatal("not packed")
			}
			if k == 1 {
				e.Str[SessionKey] = nil // never set: appended as nulls
			}
			if err := acc.AppendEvents(e); err != nil {
				t.Fatal(err)
			}
		}
		if allPacked := !slices.Contains(forms, false); acc.UUIDs != allPacked {
			t.Fatalf("forms %v: UUIDs %v", forms, acc.UUIDs)
		}
		if acc.Len() != len(want) || len(acc.PropOff) != len(want)+1 {
			t.Fatalf("forms %v: %d events, %d property offsets; want %d", forms, acc.Len(), len(acc.PropOff), len(want))
		}
		for i, w := range want {
			got := acc.Row(i)
			if got.EventID != w.EventID || got.Str != w.Str || got.EventTime != w.EventTime || got.ClientTime != w.ClientTime ||
				got.Skewed != w.Skewed || fmt.Sprint(got.Props) != fmt.Sprint(w.Props) {
				t.Fatalf("forms %v, event %d: got %+v, want %+v", forms, i, got, w)
			}
		}
	}
}
