package provenance

import (
	"strings"
	"testing"
)

func FuzzParseDrvName(f *testing.F) {
	for _, c := range parseDrvNameCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, version := ParseDrvName(s)
		if version == "" {
			if name != s {
				t.Fatalf("no version but name %q != %q", name, s)
			}
			return
		}
		if name+"-"+version != s {
			t.Fatalf("%q split into %q, %q", s, name, version)
		}
		for i := strings.IndexByte(name, '-'); i >= 0; i = nextDash(name, i) {
			if c := s[i+1]; !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') {
				t.Fatalf("%q: split at %d but the dash at %d comes first", s, len(name), i)
			}
		}
		if c := version[0]; ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
			t.Fatalf("%q: version %q starts with a letter", s, version)
		}
	})
}

func nextDash(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '-')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
