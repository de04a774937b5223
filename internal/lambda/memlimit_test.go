package lambda

import "testing"

func TestMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		size, env string
		want      int64
	}{
		{"3008", "", 3008 << 20 / 10 * 9},
		{"10240", "", 10240 << 20 / 10 * 9},
		{"10240", "8GiB", 0}, // an explicit GOMEMLIMIT wins
		{"", "", 0},          // not on Lambda
		{"-5", "", 0},
		{"lots", "", 0},
	} {
		if got := MemoryLimit(c.size, c.env); got != c.want {
			t.Errorf("MemoryLimit(%q, %q) = %d, want %d", c.size, c.env, got, c.want)
		}
	}
}
