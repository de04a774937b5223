package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/day"
)

// A chart is an SVG drawing reduced to primitives with their geometry
// already computed, so that the page template only loops over them (and
// html/template escapes every label). Data marks carry class "mark".
type chart struct {
	ID, Title string
	W, H      float64
	Grid      []svgLine
	Rects     []svgRect
	Paths     []svgPath
	Dots      []svgDot
	Texts     []svgText
}

type svgLine struct{ X1, Y1, X2, Y2 float64 }

type svgRect struct {
	X, Y, W, H  float64
	Fill, Title string
	Mark        bool // a data mark (not a legend swatch)
}

type svgPath struct {
	D, Stroke, Dash, Title string
	Mark                   bool
}

type svgDot struct {
	X, Y        float64
	Fill, Title string
}

type svgText struct {
	X, Y   float64
	Text   string
	Anchor string // start, middle, end
	Class  string // title, axis, tick, legend, value, cell
	Rotate bool   // vertical (y axis title)
	Fill   string
}

// provisionalFill shades a provisional day in a time chart.
const provisionalFill = "#e6e9ee"

// palette is Okabe–Ito's colour-blind-safe palette (without its yellow).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C564B", "#6F6F6F"}

func color(i int) string { return palette[i%len(palette)] }

// series is one named line or bar colour of a time chart. Values are by
// position in the chart's Days; NaN is "no partition that day" (a gap).
type series struct {
	Name   string
	Color  string
	Dash   bool
	Values []float64
}

// timeChart describes a chart over reporting days.
type timeChart struct {
	ID, Title      string
	YLabel, XLabel string
	Days           []day.Day
	Series         []series
	Percent        bool // values are fractions, shown as %
	Stacked        bool // stacked bars instead of lines
	Grouped        bool // side-by-side bars instead of lines
	// Provisional shades the days it holds, behind the data, with its
	// text as their tooltip (why the day is provisional, and until when).
	Provisional map[day.Day]string
}

const (
	chartW    = 580.0
	chartH    = 320.0
	marginL   = 70.0
	marginR   = 20.0
	marginB   = 56.0
	titleH    = 26.0
	legendRow = 18.0
)

// legend lays out items from the left margin in rows, returning the texts
// and swatches and the height used.
func legend(c *chart, top float64, s []series, bars bool) float64 {
	x, y := marginL, top+12
	rows := 1
	for _, it := range s {
		w := 26 + 7.2*float64(len(it.Name)) + 16
		if x+w > c.W-marginR && x > marginL {
			x, y = marginL, y+legendRow
			rows++
		}
		if bars {
			c.Rects = append(c.Rects, svgRect{X: x, Y: y - 9, W: 18, H: 10, Fill: it.Color})
		} else {
			dash := ""
			if it.Dash {
				dash = "5 3"
			}
			c.Paths = append(c.Paths, svgPath{D: fmt.Sprintf("M%.1f %.1fH%.1f", x, y-4, x+20), Stroke: it.Color, Dash: dash})
		}
		c.Texts = append(c.Texts, svgText{X: x + 26, Y: y, Text: it.Name, Class: "legend", Anchor: "start"})
		x += w
	}
	return float64(rows) * legendRow
}

// niceTicks returns about n round tick values from 0 to at least max,
// at least minStep apart (1 for counts: no tick at half a file).
func niceTicks(max float64, n int, minStep float64) []float64 {
	if max <= 0 || math.IsNaN(max) {
		max = 1
	}
	raw := math.Max(max/float64(n), minStep)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for v := 0.0; v < max+step*0.999; v += step {
		ticks = append(ticks, v)
	}
	return ticks
}

// short formats a tick value: 1.2k, 3M, 0.5, 40%.
func short(v float64, percent bool) string {
	if percent {
		return strconv.FormatFloat(math.Round(v*1e6)/1e4, 'f', -1, 64) + "%"
	}
	v = math.Round(v*1e6) / 1e6 // 0.30000000000000004 → 0.3
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// dayLabel is a compact axis label for a day: "Nov 20".
func dayLabel(d day.Day) string { return d.UTC().Format("Jan 2") }

// axes draws the frame of a chart: title, legend, y grid with labels, x
// labels for the days and the axis titles. It returns the plot area and
// the y ticks, from the lowest (0, or below to cover yMin < 0) up.
func (tc timeChart) axes(c *chart, yMin, yMax float64, bars bool) (x0, y0, x1, y1 float64, ticks []float64) {
	c.Texts = append(c.Texts, svgText{X: 10, Y: 18, Text: c.Title, Class: "title", Anchor: "start"})
	lh := legend(c, titleH, tc.Series, bars)
	x0, y0, x1, y1 = marginL, titleH+lh+12, c.W-marginR, c.H-marginB
	minStep := 1.0
	if tc.Percent {
		minStep = 0
	}
	ticks = niceTicks(max(yMax, -yMin), 5, minStep)
	if yMin < 0 {
		// Below zero, the same steps down as far as yMin needs.
		var below []float64
		for _, v := range ticks[1:] {
			below = append(below, -v)
			if -v <= yMin {
				break
			}
		}
		slices.Reverse(below)
		ticks = append(below, ticks...)
		for len(ticks) > 2 && ticks[len(ticks)-2] >= yMax { // not far above the highest bar
			ticks = ticks[:len(ticks)-1]
		}
	}
	bottom, top := ticks[0], ticks[len(ticks)-1]
	for _, v := range ticks {
		y := y1 - (y1-y0)*(v-bottom)/(top-bottom)
		c.Grid = append(c.Grid, svgLine{x0, y, x1, y})
		c.Texts = append(c.Texts, svgText{X: x0 - 6, Y: y + 4, Text: short(v, tc.Percent), Class: "tick", Anchor: "end"})
	}
	c.Texts = append(c.Texts, svgText{X: 16, Y: (y0 + y1) / 2, Text: tc.YLabel, Class: "axis", Anchor: "middle", Rotate: true})
	c.Texts = append(c.Texts, svgText{X: (x0 + x1) / 2, Y: c.H - 10, Text: tc.XLabel, Class: "axis", Anchor: "middle"})
	return x0, y0, x1, y1, ticks
}

// dayX places the days evenly over [x0, x1], each in the middle of its slot.
func dayX(days []day.Day, x0, x1 float64) (pos func(i int) float64, slot float64) {
	first, last := days[0], days[len(days)-1]
	slot = (x1 - x0) / float64(last-first+1)
	return func(i int) float64 { return x0 + slot*(float64(days[i]-first)+0.5) }, slot
}

// xLabels labels at most about 10 of the days.
func xLabels(c *chart, days []day.Day, pos func(int) float64, y float64) {
	every := (int(days[len(days)-1]-days[0]) + 10) / 10
	for i, d := range days {
		if int(d-days[0])%every != 0 {
			continue
		}
		c.Texts = append(c.Texts, svgText{X: pos(i), Y: y + 18, Text: dayLabel(d), Class: "tick", Anchor: "middle"})
	}
}

// valueText formats a value for a tooltip.
func valueText(v float64, percent bool) string {
	if percent {
		return fmt.Sprintf("%.1f%%", v*100)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return thousands(int64(v))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// render draws the chart.
// yRange is the values' range the y axis must show, from 0: stacked bars
// add up, positive values up and negative ones down.
func (tc timeChart) yRange() (yMin, yMax float64) {
	for i := range tc.Days {
		up, down := 0.0, 0.0
		for _, s := range tc.Series {
			if v := s.Values[i]; !math.IsNaN(v) {
				if v > 0 {
					up += v
				} else {
					down += v
				}
				yMax = max(yMax, v)
			}
		}
		if tc.Stacked {
			yMin, yMax = min(yMin, down), max(yMax, up)
		}
	}
	return yMin, yMax
}

func (tc timeChart) render() chart {
	c := chart{ID: tc.ID, Title: tc.Title, W: chartW, H: chartH}
	if len(tc.Days) == 0 {
		c.Texts = append(c.Texts, svgText{X: 10, Y: 18, Text: tc.Title, Class: "title", Anchor: "start"},
			svgText{X: chartW / 2, Y: chartH / 2, Text: "no data in this range", Class: "axis", Anchor: "middle"})
		return c
	}
	yMin, yMax := tc.yRange()
	bars := tc.Stacked || tc.Grouped
	x0, y0, x1, y1, ticks := tc.axes(&c, yMin, yMax, bars)
	bottom, top := ticks[0], ticks[len(ticks)-1]
	yOf := func(v float64) float64 { return y1 - (y1-y0)*(v-bottom)/(top-bottom) }
	pos, slot := dayX(tc.Days, x0, x1)
	xLabels(&c, tc.Days, pos, y1)
	c.Grid = append(c.Grid, svgLine{x0, y1, x1, y1}, svgLine{x0, y0, x0, y1})
	if bottom < 0 {
		c.Grid = append(c.Grid, svgLine{x0, yOf(0), x1, yOf(0)})
	}
	// Provisional days first, so that the data is drawn over them.
	for i, d := range tc.Days {
		if why, ok := tc.Provisional[d]; ok {
			c.Rects = append(c.Rects, svgRect{X: pos(i) - slot/2, Y: y0, W: slot, H: y1 - y0, Fill: provisionalFill, Title: fmt.Sprintf("%s %s", d, why)})
		}
	}
	switch {
	case tc.Stacked:
		w := slot * 0.7
		// Positive values stack up from 0, negative ones down from it.
		for i, d := range tc.Days {
			up, down := 0.0, 0.0
			for _, s := range tc.Series {
				v := s.Values[i]
				if math.IsNaN(v) || v == 0 {
					continue
				}
				from, to := up, up+v
				if v < 0 {
					from, to = down+v, down
					down += v
				} else {
					up += v
				}
				c.Rects = append(c.Rects, svgRect{X: pos(i) - w/2, Y: yOf(to), W: w, H: yOf(from) - yOf(to), Fill: s.Color, Mark: true,
					Title: fmt.Sprintf("%s, %s: %s", d, s.Name, valueText(math.Abs(v), tc.Percent))})
			}
		}
	case tc.Grouped:
		w := slot * 0.8 / float64(len(tc.Series))
		for i, d := range tc.Days {
			for k, s := range tc.Series {
				v := s.Values[i]
				if math.IsNaN(v) {
					continue
				}
				h := yOf(0) - yOf(v)
				c.Rects = append(c.Rects, svgRect{X: pos(i) - slot*0.4 + w*float64(k), Y: yOf(v), W: w * 0.92, H: h, Fill: s.Color, Mark: true,
					Title: fmt.Sprintf("%s, %s: %s", d, s.Name, valueText(v, tc.Percent))})
			}
		}
	default:
		for _, s := range tc.Series {
			var b strings.Builder
			pen := false
			for i, d := range tc.Days {
				v := s.Values[i]
				if math.IsNaN(v) || (i > 0 && tc.Days[i-1] != d-1) {
					pen = false
				}
				if math.IsNaN(v) {
					continue
				}
				cmd := "L"
				if !pen {
					cmd = "M"
				}
				fmt.Fprintf(&b, "%s%.1f %.1f", cmd, pos(i), yOf(v))
				pen = true
				if len(tc.Days) <= 45 {
					c.Dots = append(c.Dots, svgDot{X: pos(i), Y: yOf(v), Fill: s.Color, Title: fmt.Sprintf("%s, %s: %s", d, s.Name, valueText(v, tc.Percent))})
				}
			}
			dash := ""
			if s.Dash {
				dash = "6 4"
			}
			if b.Len() > 0 {
				c.Paths = append(c.Paths, svgPath{D: b.String(), Stroke: s.Color, Dash: dash, Title: s.Name, Mark: true})
			}
		}
	}
	return c
}

// hbar is one bar of a horizontal bar chart.
type hbar struct {
	Label string
	Value float64
}

// barChart draws labelled horizontal bars, in the order given.
func barChart(id, title, xLabel string, bars []hbar) chart {
	const rowH, labelW = 26.0, 170.0
	c := chart{ID: id, Title: title, W: chartW, H: titleH + 20 + rowH*float64(max(len(bars), 1)) + 50}
	c.Texts = append(c.Texts, svgText{X: 10, Y: 18, Text: title, Class: "title", Anchor: "start"})
	if len(bars) == 0 {
		c.Texts = append(c.Texts, svgText{X: c.W / 2, Y: c.H / 2, Text: "no data in this range", Class: "axis", Anchor: "middle"})
		return c
	}
	x0, x1, y0 := labelW, c.W-marginR-50, titleH+14
	y1 := y0 + rowH*float64(len(bars))
	longest := 0.0
	for _, b := range bars {
		longest = max(longest, b.Value)
	}
	ticks := niceTicks(longest, 4, 1)
	top := ticks[len(ticks)-1]
	for _, v := range ticks {
		x := x0 + (x1-x0)*v/top
		c.Grid = append(c.Grid, svgLine{x, y0, x, y1})
		c.Texts = append(c.Texts, svgText{X: x, Y: y1 + 16, Text: short(v, false), Class: "tick", Anchor: "middle"})
	}
	for i, b := range bars {
		y := y0 + rowH*float64(i)
		w := (x1 - x0) * b.Value / top
		c.Rects = append(c.Rects, svgRect{X: x0, Y: y + 4, W: w, H: rowH - 8, Fill: color(0), Mark: true, Title: fmt.Sprintf("%s: %s", b.Label, valueText(b.Value, false))})
		label := b.Label
		if len(label) > 22 {
			label = label[:21] + "…"
		}
		c.Texts = append(c.Texts, svgText{X: x0 - 8, Y: y + rowH/2 + 4, Text: label, Class: "tick", Anchor: "end"},
			svgText{X: x0 + w + 6, Y: y + rowH/2 + 4, Text: valueText(b.Value, false), Class: "value", Anchor: "start"})
	}
	c.Grid = append(c.Grid, svgLine{x0, y0, x0, y1})
	c.Texts = append(c.Texts, svgText{X: (x0 + x1) / 2, Y: c.H - 10, Text: xLabel, Class: "axis", Anchor: "middle"})
	return c
}

// heatCell is one cell of the retention heat map; Known is false when the
// day_n of that cohort has not happened (or not been built) yet.
type heatCell struct {
	Known            bool
	Retained, Cohort int64
	Rate             float64
	Provisional      bool
}

// heatMap draws cohorts (rows) × day_n (columns), each cell shaded by its
// retention relative to the largest retention in the map.
func heatMap(id, title string, cohorts []day.Day, sizes []int64, cols []int, cells [][]heatCell) chart {
	const rowH, colW, labelW = 24.0, 100.0, 150.0
	c := chart{ID: id, Title: title, W: chartW}
	c.Texts = append(c.Texts, svgText{X: 10, Y: 18, Text: title, Class: "title", Anchor: "start"})
	y0 := titleH + 40
	c.H = y0 + rowH*float64(max(len(cohorts), 1)) + 44
	if len(cohorts) == 0 {
		c.Texts = append(c.Texts, svgText{X: c.W / 2, Y: c.H / 2, Text: "no cohorts in this range", Class: "axis", Anchor: "middle"})
		return c
	}
	maxRate := 0.0
	for _, row := range cells {
		for _, cell := range row {
			if cell.Known {
				maxRate = max(maxRate, cell.Rate)
			}
		}
	}
	if maxRate == 0 {
		maxRate = 1
	}
	x0 := labelW
	for j, n := range cols {
		c.Texts = append(c.Texts, svgText{X: x0 + colW*(float64(j)+0.5), Y: y0 - 8, Text: fmt.Sprintf("day %d", n), Class: "tick", Anchor: "middle"})
	}
	c.Texts = append(c.Texts, svgText{X: x0 + colW*float64(len(cols))/2, Y: titleH + 12, Text: "days after the cohort's first day", Class: "axis", Anchor: "middle"})
	for i, d := range cohorts {
		y := y0 + rowH*float64(i)
		c.Texts = append(c.Texts, svgText{X: x0 - 8, Y: y + rowH/2 + 4, Text: fmt.Sprintf("%s (%s)", d, thousands(sizes[i])), Class: "tick", Anchor: "end"})
		for j, cell := range cells[i] {
			x := x0 + colW*float64(j)
			r := svgRect{X: x + 1, Y: y + 1, W: colW - 2, H: rowH - 2, Fill: "#eeeeee", Title: fmt.Sprintf("cohort %s, day %d: not measured yet", d, cols[j])}
			text, fill := "·", "#999999"
			if cell.Known {
				t := cell.Rate / maxRate
				r.Fill, r.Mark = shade(t), true
				r.Title = fmt.Sprintf("cohort %s, day %d: %s of %s came back (%.1f%%)", d, cols[j], thousands(cell.Retained), thousands(cell.Cohort), cell.Rate*100)
				text, fill = fmt.Sprintf("%.1f%%", cell.Rate*100), "#102030"
				if cell.Provisional {
					r.Title += "; provisional: late events may still change it"
					text += "*"
				}
				if t > 0.55 {
					fill = "#ffffff"
				}
			}
			c.Rects = append(c.Rects, r)
			c.Texts = append(c.Texts, svgText{X: x + colW/2, Y: y + rowH/2 + 4, Text: text, Class: "cell", Anchor: "middle", Fill: fill})
		}
	}
	y1 := y0 + rowH*float64(len(cohorts))
	c.Texts = append(c.Texts, svgText{X: 10, Y: y1 + 22, Text: fmt.Sprintf("cohort (first day seen, and its size in people); darkest = %.1f%% retained", maxRate*100), Class: "axis", Anchor: "start"})
	return c
}

// shade maps t in [0, 1] from a pale to a dark blue.
func shade(t float64) string {
	t = min(max(t, 0), 1)
	lo, hi := [3]float64{0xe8, 0xf1, 0xfa}, [3]float64{0x08, 0x30, 0x6b}
	var rgb [3]int
	for k := range rgb {
		rgb[k] = int(math.Round(lo[k] + (hi[k]-lo[k])*t))
	}
	return fmt.Sprintf("#%02x%02x%02x", rgb[0], rgb[1], rgb[2])
}

// thousands formats n with comma separators: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
