package spec

import (
	"fmt"
	"os"
	"path/filepath"
)

// File names inside a composed build directory.
const (
	FlakeFile   = "flake.nix"
	SpecFile    = "spec.json"
	SnippetFile = "snippet.nix"
	// EditionFile holds what the catalog says of the spec's edition (its
	// module and installer profile); the builder writes it.
	EditionFile = "edition.json"
)

// Files returns the contents of the per-build flake directory: the fixed
// flake (template, byte for byte), the canonical spec JSON it reads with
// builtins.fromJSON, and the snippet as its own file when there is one. No
// user string is ever placed into Nix code: the only Nix file that depends
// on the spec is the snippet, which is checked separately.
func Files(s *Spec, template []byte) (map[string][]byte, error) {
	if len(template) == 0 {
		return nil, fmt.Errorf("compose: empty flake template")
	}
	js, err := s.Canonical()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		FlakeFile: append([]byte(nil), template...),
		SpecFile:  js,
	}
	if s.ModuleSnippet != "" {
		files[SnippetFile] = []byte(s.ModuleSnippet)
	}
	return files, nil
}

// WriteDir writes files into dir, which must exist and be empty.
func WriteDir(dir string, files map[string][]byte) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("compose: %s is not empty", dir)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("compose: write %s: %w", name, err)
		}
	}
	return nil
}
