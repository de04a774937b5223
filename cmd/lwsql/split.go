package main

import "strings"

// splitStatements splits q into its SQL statements at each ; that is not
// inside a string ('...', E'...' with backslash escapes), a quoted name
// ("..."), a dollar-quoted string ($tag$...$tag$) or a comment (-- to the
// end of the line, /* ... */). Statements holding only blanks and comments
// are left out; the others keep their text as written, without the ;.
func splitStatements(q string) []string {
	var out []string
	start := 0
	keep := func(end int) {
		if s := strings.TrimSpace(q[start:end]); hasCode(s) {
			out = append(out, s)
		}
	}
	for i := 0; i < len(q); {
		switch c := q[i]; {
		case c == ';':
			keep(i)
			i++
			start = i
		case c == '\'':
			escapes := i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i == 1 || !isIdent(q[i-2]))
			i = skipQuoted(q, i, '\'', escapes)
		case c == '"':
			i = skipQuoted(q, i, '"', false)
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			if n := strings.IndexByte(q[i:], '\n'); n >= 0 {
				i += n + 1
			} else {
				i = len(q)
			}
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			if n := strings.Index(q[i+2:], "*/"); n >= 0 {
				i += 2 + n + 2
			} else {
				i = len(q)
			}
		case c == '$' && (i == 0 || !isIdent(q[i-1])):
			i = skipDollar(q, i)
		default:
			i++
		}
	}
	keep(len(q))
	return out
}

// skipQuoted returns the index after the string or name opened by the
// quote at q[i]; a doubled quote is part of it, and so is a quote after a
// backslash when escapes is set.
func skipQuoted(q string, i int, quote byte, escapes bool) int {
	for i++; i < len(q); i++ {
		switch {
		case escapes && q[i] == '\\':
			i++
		case q[i] == quote && i+1 < len(q) && q[i+1] == quote:
			i++
		case q[i] == quote:
			return i + 1
		}
	}
	return len(q)
}

// skipDollar returns the index after the dollar-quoted string opened at
// q[i] ($$ or $tag$), or i+1 when q[i] opens none (a parameter such as $1).
func skipDollar(q string, i int) int {
	j := i + 1
	for j < len(q) && isIdent(q[j]) && !(j == i+1 && q[j] >= '0' && q[j] <= '9') {
		j++
	}
	if j >= len(q) || q[j] != '$' {
		return i + 1
	}
	tag := q[i : j+1]
	if n := strings.Index(q[j+1:], tag); n >= 0 {
		return j + 1 + n + len(tag)
	}
	return len(q)
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// hasCode says whether s holds anything but blanks and comments.
func hasCode(s string) bool {
	for s != "" {
		switch {
		case strings.HasPrefix(s, "--"):
			n := strings.IndexByte(s, '\n')
			if n < 0 {
				return false
			}
			s = s[n+1:]
		case strings.HasPrefix(s, "/*"):
			n := strings.Index(s[2:], "*/")
			if n < 0 {
				return false
			}
			s = s[2+n+2:]
		default:
			if strings.TrimLeft(s[:1], " \t\r\n") != "" {
				return true
			}
			s = s[1:]
		}
	}
	return false
}
