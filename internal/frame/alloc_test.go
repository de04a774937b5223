package frame

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// Make returns a zeroed slice of the length and capacity asked; on Linux
// a large one is advised for huge pages (the "hg" flag of its mapping).
func TestMake(t *testing.T) {
	small := Make[uint32](10, 0)
	if len(small) != 10 || cap(small) != 10 {
		t.Fatalf("len %d cap %d", len(small), cap(small))
	}
	big := Make[int64](3<<20, 4<<20) // 24 MiB, room for 32
	if len(big) != 3<<20 || cap(big) != 4<<20 {
		t.Fatalf("len %d cap %d", len(big), cap(big))
	}
	for i, v := range big[:cap(big)] {
		if v != 0 {
			t.Fatalf("big[%d] = %d", i, v)
		}
	}
	big[len(big)-1] = 7
	if runtime.GOOS != "linux" {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(big)))
	mid := p + uintptr(cap(big))*4 // inside, past the first huge page
	flags, err := vmFlags(mid)
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("mapping at %#x has VmFlags %q: not advised for huge pages", mid, flags)
	}
}

// vmFlags returns the VmFlags of the mapping holding addr.
func vmFlags(addr uintptr) (string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, " ") && !strings.HasSuffix(strings.Fields(line)[0], ":") {
			in = addr >= lo && addr < hi
			continue
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok && in {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no mapping holds %#x", addr)
}
