package day

import (
	"testing"
	"time"
)

func TestOfAndStart(t *testing.T) {
	auckland, err := time.LoadLocation("Pacific/Auckland")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		at   string
		loc  *time.Location
		want string
	}{
		{"UTC midnight belongs to the new day", "2026-03-01T00:00:00Z", time.UTC, "2026-03-01"},
		{"UTC last millisecond belongs to the old day", "2026-02-28T23:59:59.999Z", time.UTC, "2026-02-28"},
		{"Auckland is ahead of UTC", "2026-02-28T11:30:00Z", auckland, "2026-03-01"},
		{"before 1970 rounds down", "1969-12-31T23:00:00Z", time.UTC, "1969-12-31"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at, _ := time.Parse(time.RFC3339Nano, tc.at)
			d := Of(at.UnixMilli(), tc.loc)
			if d.String() != tc.want {
				t.Fatalf("Of(%s) = %s, want %s", tc.at, d, tc.want)
			}
			if s := d.Start(tc.loc); at.Before(s) || !at.Before(d.End(tc.loc)) {
				t.Fatalf("%s not in [%s, %s)", at, s, d.End(tc.loc))
			}
		})
	}
}

func TestParse(t *testing.T) {
	d, err := Parse("2026-11-25")
	if err != nil || d.String() != "2026-11-25" {
		t.Fatalf("Parse = %v, %v", d, err)
	}
	if _, err := Parse("2026-13-01"); err == nil {
		t.Fatal("Parse accepted month 13")
	}
}
