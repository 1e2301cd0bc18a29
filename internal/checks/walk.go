package checks

import (
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
)

// skipDirs are never searched: version control, build outputs, and
// dependency caches.
var skipDirs = map[string]bool{".git": true, "node_modules": true, ".direnv": true}

// rootSkipDirs are build outputs at the repository root (see .gitignore).
var rootSkipDirs = map[string]bool{"bin": true, "out": true}

// repoFiles lists the regular files under root (relative, slash-separated,
// sorted) that keep(rel) accepts. Symbolic links are not followed, so a
// result link into /nix/store is never searched.
func repoFiles(root string, keep func(rel string, d fs.DirEntry) bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (skipDirs[d.Name()] || (!strings.Contains(rel, "/") && rootSkipDirs[rel])) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), "result") && keep(rel, d) {
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}
