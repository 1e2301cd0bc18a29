package testrig

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FlakeFiles are what the repository's flake.nix reads: a copy of them
// evaluates as the repository's flake does.
var FlakeFiles = []string{"flake.nix", "flake.lock", "catalog.json", "images", "editions", "modules", "hosts", "tests"}

// StubEval evaluates apply (a function of the flake's attr output) on the
// flake of the tree at root, with nixpkgs replaced by the stand-in of
// testdata/stub-nixpkgs: offline, down to output names and what the
// stand-in gives. Only FlakeFiles of root are evaluated, copied, so a
// tree under test is what is evaluated.
func StubEval(t testing.TB, root, apply, attr string) []byte {
	t.Helper()
	Nix(t)
	src := t.TempDir()
	for _, p := range FlakeFiles {
		CopyTree(t, filepath.Join(root, p), filepath.Join(src, p))
	}
	stub := filepath.Join(RepoRoot(t), "testdata", "stub-nixpkgs")
	cmd := exec.Command("nix", "eval", "--json", "--no-write-lock-file", "--override-input", "nixpkgs", "path:"+stub,
		"path:"+src+"#"+attr, "--apply", apply)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("evaluate %s with the stub nixpkgs: %v\n%s", attr, err, stderr)
	}
	return out
}

// CopyTree copies the file or directory from to to.
func CopyTree(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}
