package frame

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// dayLikeDict is a dictionary like a generated day's: user and device
// ids, UUIDs and inferred session keys.
func dayLikeDict(n int) *Dict {
	d := NewDict(n)
	for i := range n {
		switch i % 4 {
		case 0:
			d.ID(fmt.Sprintf("user-%d", i*7919%n))
		case 1:
			d.ID(fmt.Sprintf("%08x-%04x-4%03x-8000-%012x", i*2654435761%(1<<32), i%65536, i%4096, i))
		case 2:
			d.ID(fmt.Sprintf("i:web|anon:%08x|2026-01-15T%02d:%02d:%02d.000Z", i*40503%(1<<32), i%24, i%60, i%59))
		default:
			d.ID(fmt.Sprintf("s:%x", i*31))
		}
	}
	return d
}

func BenchmarkRanks(b *testing.B) {
	d := dayLikeDict(1 << 20)
	b.Run("prefix", func(b *testing.B) {
		for b.Loop() {
			d.Ranks()
		}
	})
	b.Run("strings", func(b *testing.B) { // the comparison sort Ranks replaced
		for b.Loop() {
			order := make([]uint32, d.Len())
			for i := range order {
				order[i] = uint32(i)
			}
			slices.SortFunc(order, func(a, c uint32) int { return strings.Compare(d.Str(a), d.Str(c)) })
		}
	})
}
