package bench

import (
	"bufio"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/cpu"
)

// BLAKE2bPath names the code golang.org/x/crypto/blake2b runs on this CPU:
// on amd64 it takes, in this order, its AVX2, AVX or SSE4.1 assembly when
// the CPU (and the OS, for AVX) supports it, as golang.org/x/sys/cpu
// reports, else its generic Go (v0.59.0's blake2bAVX2_amd64.go). A vCPU
// that hides these features from its guest gets the generic code, a good
// part slower than a C compiler's scalar code (b2sum).
func BLAKE2bPath() string {
	if runtime.GOARCH != "amd64" {
		return "as built for " + runtime.GOARCH
	}
	switch {
	case cpu.X86.HasAVX2:
		return "AVX2"
	case cpu.X86.HasAVX:
		return "AVX"
	case cpu.X86.HasSSE41:
		return "SSE4.1"
	}
	return "generic Go (no SSE4.1, AVX or AVX2 reported)"
}

// cpuModel is /proc/cpuinfo's first model name, or "".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
