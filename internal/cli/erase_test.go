package cli

import (
	"bytes"
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/erasure"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestKilledEraseConverges kills `rollup erase --now` with SIGKILL at
// random moments, ten times and more, then lets it finish: the store ends
// as an erase never killed leaves it (the same tables, byte for byte, the
// same rows removed), with no file holding the person's ids.
func TestKilledEraseConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it dozens of times")
	}
	bin := buildRollup(t)
	ctx := context.Background()
	base := t.TempDir()
	st, err := store.OpenDir(base, false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rep, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 3), EventsPerDay: 20000, Users: 200, Seed: 13}))
	if err != nil {
		t.Fatal(err)
	}
	build := []string{"--from", "2026-06-01", "--to", "2026-06-05", "--quiet", "--parallel", "4"}
	if out, err := exec.Command(bin, append(build, "--store", base)...).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	user, device := somePerson(t, st, rep)
	record := []string{"erase", "--user", user, "--user", "anon:" + device}
	clean, killed := t.TempDir(), t.TempDir()
	copyDir(t, base, clean)
	copyDir(t, base, killed)
	for _, root := range []string{clean, killed} {
		if out, err := exec.Command(bin, append(record, "--store", root)...).CombinedOutput(); err != nil {
			t.Fatalf("record: %v\n%s", err, out)
		}
	}
	start := time.Now()
	if out, err := exec.Command(bin, "erase", "--now", "--store", clean).CombinedOutput(); err != nil {
		t.Fatalf("clean erase: %v\n%s", err, out)
	}
	full := time.Since(start)

	rng := rand.New(rand.NewPCG(3, 4))
	kills := 0
	for range 12 {
		cmd := exec.Command(bin, "erase", "--now", "--store", killed)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Float64() * 0.9 * float64(full)))
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			kills++
		}
		cmd.Wait()
	}
	if kills < 10 {
		t.Fatalf("only %d kills landed", kills)
	}
	if out, err := exec.Command(bin, "erase", "--now", "--store", killed).CombinedOutput(); err != nil {
		t.Fatalf("erase after %d kills: %v\n%s", kills, err, out)
	}
	t.Logf("killed %d times (an erase takes %v)", kills, full)

	from, to := day.FromDate(2026, 6, 1), day.FromDate(2026, 6, 5)
	if diff := cmp.Diff(snapshot(t, clean, from, to), snapshot(t, killed, from, to)); diff != "" {
		t.Errorf("after kills and a re-run (-clean +killed):\n%s", diff)
	}
	want, got := onlyReceipt(t, clean), onlyReceipt(t, killed)
	if diff := cmp.Diff(want.RowsRemoved, got.RowsRemoved); diff != "" {
		t.Errorf("rows removed (-clean +killed):\n%s", diff)
	}
	if want.RowsRemoved["raw"] == 0 {
		t.Error("the erase removed no raw row")
	}
	for _, root := range []string{clean, killed} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || isBad(p, rep) {
				return err
			}
			b, err := os.ReadFile(p)
			if err == nil && (bytes.Contains(b, []byte(user)) || bytes.Contains(b, []byte(device))) {
				t.Errorf("%s holds the person's id", p)
			}
			return err
		})
	}
}

func isBad(p string, rep gen.Report) bool {
	for _, b := range rep.BadObjects {
		if strings.HasSuffix(p, filepath.FromSlash(b)) {
			return true
		}
	}
	return false
}

// somePerson returns the user_id and device_id of a person of the first
// good raw object whose ids appear in no bad object.
func somePerson(t *testing.T, st store.Store, rep gen.Report) (string, string) {
	t.Helper()
	ctx := context.Background()
	var bad [][]byte
	for _, k := range rep.BadObjects {
		b, _ := st.Get(ctx, k)
		bad = append(bad, b)
	}
	rows, err := raw.Read(ctx, st, rep.Objects[len(rep.Objects)/2])
	if err != nil {
		t.Fatal(err)
	}
next:
	for _, r := range rows {
		if r.UserID == "" || r.DeviceID == "" {
			continue
		}
		for _, b := range bad {
			if bytes.Contains(b, []byte(r.UserID)) || bytes.Contains(b, []byte(r.DeviceID)) {
				continue next
			}
		}
		return r.UserID, r.DeviceID
	}
	t.Fatal("no person to erase")
	return "", ""
}

func onlyReceipt(t *testing.T, root string) *erasure.Receipt {
	t.Helper()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	list, err := erasure.List(context.Background(), st)
	if err != nil || len(list) != 1 || !list[0].Done() {
		t.Fatalf("requests %+v, %v: want one, done", list, err)
	}
	return list[0].Receipt
}

// TestEraseCommand records a request, lists it pending, lets the next
// rollup run carry it out and lists it done; the request file holds no id;
// usage mistakes exit 2 and --help explains.
func TestEraseCommand(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rep, err := gen.Generate(ctx, st, gen.Config{From: d1, To: d1.AddDate(0, 0, 1), EventsPerDay: 500, Users: 20, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	now := d1.AddDate(0, 0, 4)
	cli := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := mainAt(ctx, now, args, &out, &errOut); code != want {
			t.Fatalf("rollup %v: exit %d, want %d\n%s%s", args, code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	cli(0, "--store", root, "--from", "2026-06-01", "--to", "2026-06-02", "--quiet")
	user, device := somePerson(t, st, rep)
	ids := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(ids, []byte("# the person\n"+user+"\n\nanon:"+device+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := cli(0, "erase", "--store", root, "--users-file", ids); !strings.Contains(out, "recorded erasure") {
		t.Errorf("erase said %q", out)
	}
	if out := cli(0, "erase", "--store", root, "--status"); !strings.Contains(out, "pending") || !strings.Contains(out, "(all)") {
		t.Errorf("status: %q, want one request pending", out)
	}
	if out := cli(0, "plan", "--store", root, "--from", "2026-06-01", "--to", "2026-06-02"); !strings.Contains(out, "1 erasure requests pending") {
		t.Errorf("plan: %q, want the pending request named", out)
	}
	if out := cli(0, "--store", root, "--from", "2026-06-01", "--to", "2026-06-02", "--quiet"); !strings.Contains(out, "erased ") {
		t.Errorf("the next run did not carry the erasure out: %q", out)
	}
	if out := cli(0, "erase", "--store", root, "--status"); !strings.Contains(out, "done") || strings.Contains(out, "pending") {
		t.Errorf("status: %q, want the request done", out)
	}
	list, err := erasure.List(ctx, st)
	if err != nil || len(list) != 1 || list[0].Receipt.RowsRemoved["raw"] == 0 {
		t.Fatalf("requests %+v, %v", list, err)
	}
	for _, k := range []string{erasure.Prefix + list[0].ID + ".json", erasure.ReceiptKey(list[0].ID)} {
		b, err := st.Get(ctx, k)
		if err != nil || bytes.Contains(b, []byte(user)) || bytes.Contains(b, []byte(device)) {
			t.Errorf("%s: %v, or it holds an id:\n%s", k, err, b)
		}
	}
	// Another rollup carrying out the erasures: a run builds without them.
	l, err := lease.Acquire(ctx, st, "erase", lease.HolderID("other"), time.Hour, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	cli(0, "erase", "--store", root, "--user", "someone")
	if out := cli(0, "--store", root, "--from", "2026-06-01", "--to", "2026-06-02", "--quiet", "--force", "--lock-wait", "0s"); !strings.Contains(out, "another rollup is carrying them out") {
		t.Errorf("a run with the erase lease held: %q", out)
	}
	cli(1, "erase", "--store", root, "--now", "--lock-wait", "0s")
	cli(2, "erase", "--store", root)
	cli(2, "erase", "--store", root, "--status", "--user", "x")
	cli(2, "erase", "--store", root, "--user", "")
	if out := cli(0, "erase", "--help"); !strings.Contains(out, "keyed hash") || !strings.Contains(out, "--users-file") {
		t.Errorf("help: %q", out)
	}
}

// TestEraseTrimsIDs: an id given with spaces around it (" u-42", a
// pasted value) is recorded trimmed, as a users file's line is; an id
// that is empty once trimmed is refused with a message saying so.
func TestEraseTrimsIDs(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 5, 0, 0, 0, 0, time.UTC)
	cli := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := mainAt(ctx, now, args, &out, &errOut); code != want {
			t.Fatalf("rollup %q: exit %d, want %d\n%s%s", args, code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	cli(0, "erase", "--store", root, "--user", " u-42\t", "--user", "anon: dev-9 ")
	list, err := erasure.List(ctx, st)
	if err != nil || len(list) != 1 {
		t.Fatalf("requests %+v, %v", list, err)
	}
	key, err := erasure.Key(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{erasure.Hash(key, "u-42"), erasure.Hash(key, "dev-9")}
	slices.Sort(want)
	if diff := cmp.Diff(want, list[0].Hashes); diff != "" {
		t.Errorf("hashes (-of the trimmed ids +recorded):\n%s", diff)
	}
	file := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(file, []byte("u-7\nanon:  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "   "}, "empty id"},
		{[]string{"--user", "u-1", "--user", ""}, "empty id"},
		{[]string{"--user", "anon: "}, "no device id"},
		{[]string{"--users-file", file}, "line 2"},
	} {
		if out := cli(2, append([]string{"erase", "--store", root}, tc.args...)...); !strings.Contains(out, tc.want) {
			t.Errorf("erase %q said %q, want %q in it", tc.args, out, tc.want)
		}
	}
	if list, err := erasure.List(ctx, st); err != nil || len(list) != 1 {
		t.Errorf("requests %d, %v: a refused id recorded one", len(list), err)
	}
}
