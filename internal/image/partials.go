package image

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StalePartialAge is how long a partial file in OUT must have gone
// unwritten before a later run removes it: a file being written is touched
// continuously, so a concurrent run's partials are never taken.
const StalePartialAge = 10 * time.Minute

// sweepPartials removes the ".<name>.partial-*" files that a run killed in
// the middle of a write left in dir, and returns their names.
func sweepPartials(dir string, now time.Time) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !isPartial(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < StalePartialAge {
			continue
		}
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			removed = append(removed, e.Name())
		}
	}
	return removed
}

// isPartial matches the temporary names writeAtomic and the sidecar writer
// use.
func isPartial(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".partial-")
}
