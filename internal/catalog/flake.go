package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FlakeRef makes a local directory reference absolute and leaves every
// other reference as it is. A bare directory stays bare, so Nix treats a Git
// checkout as git+file (tracked files only) and does not copy OUT's images
// into the store with the source; `path:` references are kept as given.
// Every path that records a flake reference (build, provenance, checks)
// records this form.
func FlakeRef(flake string) string {
	if strings.Contains(flake, ":") {
		return flake
	}
	if abs, err := filepath.Abs(flake); err == nil {
		return abs
	}
	return flake
}

// LocalPath reports whether flake names a local directory, and which.
func LocalPath(flake string) (string, bool) {
	if rest, ok := strings.CutPrefix(flake, "path:"); ok {
		p, _, _ := strings.Cut(rest, "?")
		return p, true
	}
	if strings.Contains(flake, ":") {
		return "", false
	}
	return flake, true
}

// ReadLock reads the flake.lock of a local flake reference; an error when
// the flake is remote or has no lock.
func ReadLock(flake string) ([]byte, error) {
	p, ok := LocalPath(flake)
	if !ok {
		return nil, fmt.Errorf("%s: not a local flake", flake)
	}
	return os.ReadFile(filepath.Join(p, "flake.lock"))
}

// Installable is flake#attribute.
func Installable(flake, attr string) string { return flake + "#" + attr }
