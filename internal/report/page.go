package report

import (
	_ "embed"
	"html/template"
	"strconv"
	"strings"
)

//go:embed page.html.tmpl
var pageHTML string

// pageTemplate renders a page. html/template escapes every label and value
// for its context (text, attribute), inside the SVG too.
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"f": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	// col lets a long column name wrap after its underscores.
	"col": func(name string) string { return strings.ReplaceAll(name, "_", "_\u200b") },
}).Parse(pageHTML))
