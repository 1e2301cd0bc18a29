package cachefmt

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Every key falls in exactly one range of OtherRanges or NARRanges, the
// NAR ones exactly the keys below nar/; every root in exactly one of
// RootRanges; and Bounds cover everything.
func TestRangesPartitionTheCache(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	hash := func() string {
		b := make([]byte, 32)
		for i := range b {
			b[i] = Nix32Alphabet[r.IntN(len(Nix32Alphabet))]
		}
		return string(b)
	}
	keys := []string{"nix-cache-info", "gc/epoch", "gc/running", "roots/a/x.json", "nar/", "nar/!odd", "na", "nar", "nar0x",
		"n" + strings.Repeat("z", 31) + ".narinfo", "zzz", "", "~", "0"}
	for range 5000 {
		h := hash()
		keys = append(keys, h+".narinfo", "nar/"+h+h[:20]+".nar.zst", "roots/"+fmt.Sprint(r.IntN(1000))+"-"+h[:5]+"/t.json")
	}
	count := func(rs []Range, k string) int {
		n := 0
		for _, rg := range rs {
			if rg.contains(k) {
				n++
			}
		}
		return n
	}
	all := Ranges()
	for _, k := range keys {
		if k == "" {
			continue
		}
		other, nar := count(OtherRanges(), k), count(NARRanges(), k)
		if other+nar != 1 || (nar == 1) != strings.HasPrefix(k, NarPrefix) {
			t.Errorf("%q: in %d other ranges and %d NAR ranges", k, other, nar)
		}
		if roots := count(RootRanges(), k); roots != map[bool]int{true: 1}[strings.HasPrefix(k, RootsPrefix)] {
			t.Errorf("%q: in %d root ranges", k, roots)
		}
		if count(all, k) != 1 {
			t.Errorf("%q: in %d of Bounds' ranges", k, count(all, k))
		}
	}
}

// Packed hash parts round-trip and order as their strings do.
func TestHashPacking(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var prev string
	var prevH Hash
	for i := range 10000 {
		b := make([]byte, 32)
		for j := range b {
			b[j] = Nix32Alphabet[r.IntN(len(Nix32Alphabet))]
		}
		s := string(b)
		h, ok := ParseHash(s)
		if !ok || h.String() != s {
			t.Fatalf("%s: packed %v, back %s", s, ok, h.String())
		}
		if i > 0 && (s < prev) != h.Less(prevH) {
			t.Fatalf("%s < %s is %v, packed %v", s, prev, s < prev, h.Less(prevH))
		}
		prev, prevH = s, h
	}
	for _, bad := range []string{"", "short", strings.Repeat("e", 32), strings.Repeat("0", 31) + "/"} {
		if _, ok := ParseHash(bad); ok {
			t.Errorf("%q packed", bad)
		}
	}
}
