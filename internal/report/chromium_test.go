package report

import (
	"context"
	"encoding/json"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds a Chromium or Chrome binary. Without one the test fails
// under CI=true (scripts/ensure-chromium.sh installs Debian's chromium) and
// skips elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: run scripts/ensure-chromium.sh (apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// probe is injected, for the test only, at the top of a copy of the page:
// it records script errors and console errors from the start, and on load
// writes into the DOM, as JSON, the errors, every resource the page
// fetched (Resource Timing), and for each chart its marks and how many of
// them have a non-empty box.
const probe = `<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push('error: ' + e.message); });
window.addEventListener('unhandledrejection', function (e) { window.__errors.push('rejection: ' + e.reason); });
(function () { var ce = console.error; console.error = function () { window.__errors.push('console: ' + Array.prototype.join.call(arguments, ' ')); return ce.apply(console, arguments); }; })();
window.addEventListener('load', function () {
  var charts = [];
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var marks = svg.querySelectorAll('.mark'), drawn = 0;
    marks.forEach(function (m) { var b = m.getBBox(); if ((b.width > 0 && b.height > 0) || (m.tagName === 'path' && m.getTotalLength() > 0)) drawn++; });
    var r = svg.getBoundingClientRect();
    charts.push({id: svg.id, marks: marks.length, drawn: drawn, width: r.width, height: r.height});
  });
  var res = performance.getEntriesByType('resource').map(function (e) { return e.name; });
  var out = document.createElement('pre');
  out.id = 'probe-result';
  out.textContent = JSON.stringify({errors: window.__errors, resources: res, charts: charts});
  document.body.appendChild(out);
});
</script>`

type probeResult struct {
	Errors    []string `json:"errors"`
	Resources []string `json:"resources"`
	Charts    []struct {
		ID     string  `json:"id"`
		Marks  int     `json:"marks"`
		Drawn  int     `json:"drawn"`
		Width  float64 `json:"width"`
		Height float64 `json:"height"`
	} `json:"charts"`
}

// TestReportInChromium opens the demo page in headless Chromium: it has no
// script errors, fetches nothing, every section's charts are there (the
// funnels' and the top paths' too), and every chart has drawn marks. The page
// itself must also hold no external URL, script, or fetchable reference.
func TestReportInChromium(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	st := warehouse(t)
	page := render(t, st, Options{})

	// The page as shipped: nothing that could reach the network.
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)\b(https?|ftp|wss?):`), regexp.MustCompile(`(?i)(src|href|action|srcset|xlink:href)\s*=\s*"(//|[a-z]+:)`),
		regexp.MustCompile(`(?i)<(script|link|iframe|img|object|embed|base)\b`), regexp.MustCompile(`(?i)url\(|@import`),
	} {
		if m := re.FindString(page); m != "" {
			t.Errorf("the page holds %q: it must be self-contained", m)
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, []byte(strings.Replace(page, "<head>", "<head>\n"+probe, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--host-resolver-rules=MAP * ~NOTFOUND", // belt and braces: no name resolves
		"--user-data-dir="+filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0",
		"--virtual-time-budget=5000", "--window-size=1280,2000", "--dump-dom", "file://"+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("browser console: %s", line)
		}
	}
	m := regexp.MustCompile(`(?s)<pre id="probe-result">(.*?)</pre>`).FindSubmatch(dom)
	if m == nil {
		t.Fatalf("the probe did not run (no result in the DOM); chromium said:\n%s", stderr.String())
	}
	var res probeResult
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &res); err != nil {
		t.Fatalf("probe result: %v\n%s", err, m[1])
	}
	for _, e := range res.Errors {
		t.Errorf("script error: %s", e)
	}
	for _, r := range res.Resources {
		t.Errorf("the page fetched %s", r)
	}
	wantCharts := strings.Count(page, `<svg id="`)
	if len(res.Charts) != wantCharts || wantCharts < 10 {
		t.Errorf("chromium found %d charts, the page has %d", len(res.Charts), wantCharts)
	}
	// Every section with charts is among them: the funnels', the
	// lifecycle's, the stickiness' and the top paths' too.
	for _, prefix := range []string{"c-active-", "c-retention-", "c-lifecycle-", "c-stickiness-", "c-funnel-", "c-top-events", "c-paths-", "c-sessions", "c-quality-"} {
		found := false
		for _, c := range res.Charts {
			found = found || strings.HasPrefix(c.ID, prefix)
		}
		if !found {
			t.Errorf("chromium found no chart %s*", prefix)
		}
	}
	for _, c := range res.Charts {
		if c.Drawn == 0 {
			t.Errorf("chart %s has no drawn marks (%d marks)", c.ID, c.Marks)
		}
		if c.Width < 300 || c.Height < 150 {
			t.Errorf("chart %s is laid out at %.0f×%.0f px: too small to read", c.ID, c.Width, c.Height)
		}
	}
	t.Logf("%d charts drawn, %d script errors, %d resources fetched", len(res.Charts), len(res.Errors), len(res.Resources))
}
