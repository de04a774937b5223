package rollups

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

var updatePowerBI = flag.Bool("update", false, "rewrite the generated Power Query section of docs/powerbi.md (or set UPDATE_POWERBI=1)")

// powerBIDoc is the doc whose generated section TestPowerBIDocIsGenerated
// keeps equal to PowerQuery's output; the DSN and database it is generated
// for are the ones infra/README.md sets up.
const (
	powerBIDoc      = "../docs/powerbi.md"
	powerBIDSN      = "LittleWarehouse"
	powerBIDatabase = "warehouse"
	powerBIBegin    = "<!-- BEGIN GENERATED M: rollups/powerbi_test.go TestPowerBIDocIsGenerated writes what follows from the table schemas; run go test ./rollups -run TestPowerBIDocIsGenerated -update after changing a table -->\n"
	powerBIEnd      = "<!-- END GENERATED M -->\n"
)

// wantMType is the mapping written out again, apart from MType, so a
// change to either is caught.
var wantMType = map[string]string{
	"string":             "type text",
	"bigint":             "Int64.Type",
	"int":                "Int64.Type",
	"double":             "type number",
	"boolean":            "type logical",
	"date":               "type date",
	"timestamp":          "type datetime",
	"map<string,string>": "type text",
}

var mColumn = regexp.MustCompile(`\{"((?:[^"]|"")*)", ([A-Za-z0-9. ]+)\}`)

// typedColumns returns the {"name", type} pairs of m's
// Table.TransformColumnTypes list, in order.
func typedColumns(t *testing.T, m string) [][2]string {
	t.Helper()
	_, list, ok := strings.Cut(m, "Table.TransformColumnTypes(Data, {")
	if !ok {
		t.Fatalf("no Table.TransformColumnTypes(Data, {…}) in\n%s", m)
	}
	var out [][2]string
	for _, g := range mColumn.FindAllStringSubmatch(list, -1) {
		out = append(out, [2]string{strings.ReplaceAll(g[1], `""`, `"`), g[2]})
	}
	return out
}

func TestPowerQueryTypesEveryColumnOnce(t *testing.T) {
	for _, tb := range All() {
		t.Run(tb.Name, func(t *testing.T) {
			// What Power BI must see, from the schema itself: the Parquet
			// columns and the partition key (dt a date in the view,
			// bucket a string as Glue has it).
			want := map[string]string{}
			for _, c := range tb.Columns() {
				mt, ok := wantMType[c.Type]
				if !ok {
					t.Fatalf("column %s: Athena type %s has no Power Query type in this test", c.Name, c.Type)
				}
				want[c.Name] = mt
			}
			switch key := tb.PartitionKey(); key {
			case "dt":
				want["dt"] = "type date"
			default:
				want[key] = "type text"
			}
			m := PowerQuery(tb, powerBIDSN, powerBIDatabase)
			seen := map[string]int{}
			for _, c := range typedColumns(t, m) {
				seen[c[0]]++
				mt, ok := want[c[0]]
				switch {
				case !ok:
					t.Errorf("types %s, not a column of %s", c[0], tb.Name)
				case c[1] != mt:
					t.Errorf("types %s as %s, want %s", c[0], c[1], mt)
				}
			}
			for name := range want {
				if seen[name] != 1 {
					t.Errorf("types %s %d times, want once", name, seen[name])
				}
			}
			if got := strings.Count(m, "{\""); got != len(want) {
				t.Errorf("%d {\"…\"} entries in the M, want %d (one per column): is a column written in a form the test does not read?\n%s", got, len(want), m)
			}
			for _, s := range []string{
				`AmazonAthena.Databases("` + powerBIDSN + `")`,
				`Catalog = Source{[Name = "AwsDataCatalog"]}[Data],`,
				`Database = Catalog{[Name = "` + powerBIDatabase + `"]}[Data],`,
				`Data = Database{[Name = "` + PowerBIObject(tb) + `"]}[Data],`,
			} {
				if !strings.Contains(m, s) {
					t.Errorf("no %s in\n%s", s, m)
				}
			}
			if err := mStructure(m); err != nil {
				t.Errorf("%v in\n%s", err, m)
			}
		})
	}
}

func TestPowerBIObject(t *testing.T) {
	for _, tb := range All() {
		want := tb.Name
		if tb.PartitionKey() == "dt" {
			want = tb.Name + "_v" // the view of rollup ddl --views-only: dt as a date
		}
		if got := PowerBIObject(tb); got != want {
			t.Errorf("%s: reads %s, want %s", tb.Name, got, want)
		}
	}
	if users, _ := ByName("users"); PowerBIObject(users) != "users" {
		t.Errorf("users (partitioned by bucket) must be read as is, not through a view")
	}
}

func TestPowerQueryQuotesNames(t *testing.T) {
	m := PowerQuery(DimDateTable, `my "dsn"`, `db"x`)
	if !strings.Contains(m, `AmazonAthena.Databases("my ""dsn""")`) || !strings.Contains(m, `{[Name = "db""x"]}`) {
		t.Errorf("quotes not doubled in\n%s", m)
	}
	if err := mStructure(m); err != nil {
		t.Error(err)
	}
}

func TestMTypeUnknownPanics(t *testing.T) {
	for athena, want := range wantMType {
		if got := MType(athena); got != want {
			t.Errorf("MType(%s) = %s, want %s", athena, got, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MType(decimal(10,2)) did not panic")
		}
	}()
	MType("decimal(10,2)")
}

// mStructure checks m is one let … in expression: let first, in alone on a
// line before the result, every text literal closed, and (), [] and {}
// balanced and nested outside literals.
func mStructure(m string) error {
	lines := strings.Split(strings.TrimSuffix(m, "\n"), "\n")
	if len(lines) < 3 || lines[0] != "let" || strings.TrimSpace(lines[len(lines)-2]) != "in" {
		return fmt.Errorf("not let … in … on lines of their own")
	}
	words := regexp.MustCompile(`\b(let|in)\b`)
	var stack []rune
	closing := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inText := false
	var outside strings.Builder
	for _, r := range m {
		switch {
		case r == '"':
			inText = !inText // a doubled quote closes and reopens: still balanced
			outside.WriteRune(' ')
		case inText:
			outside.WriteRune(' ')
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
			outside.WriteRune(r)
		case closing[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != closing[r] {
				return fmt.Errorf("unbalanced %c", r)
			}
			stack = stack[:len(stack)-1]
			outside.WriteRune(r)
		default:
			outside.WriteRune(r)
		}
	}
	if inText {
		return fmt.Errorf("unclosed text literal")
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %c", stack[len(stack)-1])
	}
	kw := words.FindAllString(outside.String(), -1)
	if len(kw) != 2 || kw[0] != "let" || kw[1] != "in" {
		return fmt.Errorf("keywords outside text %v, want [let in]", kw)
	}
	return nil
}

func TestMStructureRejects(t *testing.T) {
	for _, bad := range []string{
		"let\n    a = {1,\nin\n    a\n",
		"let\n    a = \"x\nin\n    a\n",
		"let\n    a = (1]\nin\n    a\n",
		"    a = 1\nin\n    a\n",
		"let\n    a = let b = 1\nin\n    a\n",
	} {
		if mStructure(bad) == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// powerBISection is the generated part of docs/powerbi.md: the M of every
// table, in All's order.
func powerBISection() string {
	var b strings.Builder
	for _, tb := range All() {
		fmt.Fprintf(&b, "### `%s`\n\n", tb.Name)
		fmt.Fprintf(&b, "Grain: %s. Reads `%s.%s`", tb.Grain, powerBIDatabase, PowerBIObject(tb))
		if tb.PartitionKey() == "dt" {
			b.WriteString(" (the view: dt as a date).")
		} else {
			b.WriteString(" (no day to cast: the table itself).")
		}
		fmt.Fprintf(&b, "\n\n```m\n%s```\n\n", PowerQuery(tb, powerBIDSN, powerBIDatabase))
	}
	return b.String()
}

// TestPowerBIDocIsGenerated fails when the M of docs/powerbi.md is not
// what PowerQuery gives for the tables now, e.g. after a column was added.
// With -update (or UPDATE_POWERBI=1) it rewrites that section instead.
func TestPowerBIDocIsGenerated(t *testing.T) {
	raw, err := os.ReadFile(powerBIDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	head, rest, ok := strings.Cut(doc, powerBIBegin)
	if !ok {
		t.Fatalf("%s has no line %q", powerBIDoc, strings.TrimSpace(powerBIBegin))
	}
	_, tail, ok := strings.Cut(rest, powerBIEnd)
	if !ok {
		t.Fatalf("%s has no line %q after the first marker", powerBIDoc, strings.TrimSpace(powerBIEnd))
	}
	want := head + powerBIBegin + "\n" + powerBISection() + powerBIEnd + tail
	if *updatePowerBI || os.Getenv("UPDATE_POWERBI") == "1" {
		if err := os.WriteFile(powerBIDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc == want {
		return
	}
	g, w := strings.Split(doc, "\n"), strings.Split(want, "\n")
	line := 0
	for line < len(g) && line < len(w) && g[line] == w[line] {
		line++
	}
	at := func(lines []string) string {
		if line < len(lines) {
			return lines[line]
		}
		return "(end of file)"
	}
	t.Errorf("%s is not generated from the schemas: line %d is %q, want %q; run go test ./rollups -run TestPowerBIDocIsGenerated -update (or UPDATE_POWERBI=1)",
		powerBIDoc, line+1, at(g), at(w))
}
