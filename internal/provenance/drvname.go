package provenance

import (
	"fmt"
	"path"
	"strings"
)

// storeHashLen is the length of the nix32 hash that starts a store path's
// base name.
const storeHashLen = 32

// storePathName returns the name part of a store path: its base name
// without the hash and the dash after it.
func storePathName(p string) (string, error) {
	base := path.Base(p)
	if !strings.HasPrefix(p, "/") || len(base) < storeHashLen+2 || base[storeHashLen] != '-' {
		return "", fmt.Errorf("%q is not a store path", p)
	}
	return base[storeHashLen+1:], nil
}

// ParseDrvName splits a package name into name and version the way Nix's
// builtins.parseDrvName does: the version starts after the first dash that
// is followed by a character other than an ASCII letter, so
// "hello-2.12.1" is ("hello", "2.12.1"), "glibc-2.40-66-bin" is ("glibc",
// "2.40-66-bin") and "xz-utils" has no version.
func ParseDrvName(s string) (name, version string) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '-' && !isASCIILetter(s[i+1]) {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func isASCIILetter(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
