package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// TestFunnelsFlag: --funnels with a bad file is a usage error that writes
// nothing; with a good one it saves the file as the store's funnels.json,
// funnel_daily gets rows, and a run with other funnels says it recomputed
// funnel_daily without rebuilding a day.
func TestFunnelsFlag(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: d, To: d.AddDate(0, 0, 1), EventsPerDay: 800, ObjectsPerHour: 1, Seed: 4})); err != nil {
		t.Fatal(err)
	}
	write := func(name, js string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(funnels string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(ctx, []string{"--store", dir, "--from", "2026-02-01", "--to", "2026-02-02", "--quiet", "--log", "text", "--funnels", funnels}, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	bad := write("bad.json", `{"funnels": [{"name": "x", "steps": [{"event": "view_item"}], "windw": "1h"}]}`)
	if code, _, errOut := run(bad); code != 2 || !strings.Contains(errOut, `unknown field "windw"`) {
		t.Errorf("bad funnels: exit %d, stderr %q; want 2 naming the problem", code, errOut)
	}
	if objs, _ := st.List(ctx, "curated/"); len(objs) != 0 {
		t.Errorf("a bad --funnels wrote %d objects", len(objs))
	}
	if _, err := st.Get(ctx, rollups.FunnelsKey); err == nil {
		t.Error("a bad --funnels was saved")
	}
	good := write("good.json", `{"funnels": [{"name": "checkout", "steps": [{"event": "view_item"}, {"event": "add_to_cart"}, {"event": "purchase"}]}]}`)
	code, out, errOut := run(good)
	if code != 0 || !strings.Contains(out, "funnels: 1 saved") {
		t.Fatalf("good funnels: exit %d\n%s\n%s", code, out, errOut)
	}
	saved, err := st.Get(ctx, rollups.FunnelsKey)
	if want, _ := os.ReadFile(good); err != nil || !bytes.Equal(saved, want) {
		t.Errorf("saved %q, %v; want the file", saved, err)
	}
	other := write("other.json", `{"funnels": [{"name": "search", "steps": [{"event": "search"}, {"event": "view_item"}]}]}`)
	code, out, errOut = run(other)
	if code != 0 || !strings.Contains(out, "funnel_daily recomputed from the events of 2 days (no day rebuilt)") {
		t.Errorf("changed funnels: exit %d\n%s\n%s", code, out, errOut)
	}
}
