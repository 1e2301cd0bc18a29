// Package testrig is the offline test rig: it makes real tools (nix,
// minisign, shellcheck) usable from tests, builds the fixture flake with real
// Nix, and starts a real GCS emulator in process. Tests that need a tool skip
// when it is missing, except under CI=true, where they fail.
package testrig

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
)

// NixConfig is the nix.conf that tests run Nix with: flakes on, every build
// in Nix's sandbox with no silent fallback (the same rule as every lane: see
// docs/threat-model.md), /bin/sh inside the sandbox from a static busybox
// (the fixture's builders are /bin/sh scripts), build users from nix.conf
// (scripts/ensure-tools.sh), no substituters, so nothing reaches the
// network, and no narinfo look-ups answered from Nix's disk cache.
const NixConfig = "experimental-features = nix-command flakes\n" +
	"sandbox = true\n" +
	"sandbox-fallback = false\n" +
	"extra-sandbox-paths = /bin/sh=" + SandboxShell + "\n" +
	"substituters =\n" +
	// Tests start caches on loopback ports that other tests reuse with
	// other keys: Nix must not answer from the narinfo look-ups it cached.
	"narinfo-cache-positive-ttl = 0\n" +
	"narinfo-cache-negative-ttl = 0\n" +
	"fallback = false\n" +
	"connect-timeout = 2\n"

// SandboxShell is the static shell mounted as /bin/sh in the sandbox
// (Debian's busybox-static).
const SandboxShell = "/bin/busybox"

// inCI reports whether missing tools must fail the test.
func inCI(t testing.TB) bool {
	t.Helper()
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.CI
}

// RequireTool returns the path of an external tool, or skips the test when it
// is missing (fails under CI=true: CI must run every test).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if inCI(t) {
		t.Fatalf("%s is required under CI=true but is not on PATH (install it: bash scripts/ensure-tools.sh)", name)
	}
	t.Skipf("%s not on PATH; skipping (CI=true would fail)", name)
	return ""
}

// Nix makes real Nix usable by this test and its children: it checks that
// nix is installed and sets NIX_CONFIG. It returns the nix binary's path.
func Nix(t testing.TB) string {
	t.Helper()
	p := RequireTool(t, "nix")
	if _, err := os.Stat(SandboxShell); err != nil {
		if inCI(t) {
			t.Fatalf("%s is required under CI=true (the sandbox's /bin/sh): install busybox-static (bash scripts/ensure-tools.sh)", SandboxShell)
		}
		t.Skipf("%s missing (busybox-static); skipping (CI=true would fail)", SandboxShell)
	}
	t.Setenv("NIX_CONFIG", NixConfig)
	return p
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate testrig source")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above testrig")
		}
		dir = parent
	}
}

// FixtureFlake returns the flake reference of the offline fixture flake.
func FixtureFlake(t testing.TB) string {
	t.Helper()
	return "path:" + filepath.Join(RepoRoot(t), "testdata", "fixture-flake")
}

// FixtureFlakeCopy copies the fixture flake (with its subdirectories) into
// a temporary directory, for tests that change it, and returns the copy's
// directory.
func FixtureFlakeCopy(t testing.TB) string {
	t.Helper()
	dst := t.TempDir()
	CopyTree(t, filepath.Join(RepoRoot(t), "testdata", "fixture-flake"), dst)
	return dst
}

// RepoCatalog is the repository's catalog.json.
func RepoCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load(filepath.Join(RepoRoot(t), catalog.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FixtureCatalog is the fixture flake's catalog.json.
func FixtureCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load(filepath.Join(RepoRoot(t), "testdata", "fixture-flake", catalog.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// GeneratedSection compares the text between the markers
// <!-- name:begin --> and <!-- name:end --> of the file at path with want,
// and rewrites it when update is set (tests that keep docs generated from
// code: go test <pkg> -run <test> -update).
func GeneratedSection(t testing.TB, path, name, want string, update bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "<!-- "+name+":begin -->\n", "<!-- "+name+":end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %s:begin/%s:end markers", path, name, name)
	}
	if s[i+len(begin):j] == want {
		return
	}
	if update {
		if err := os.WriteFile(path, []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the %s section is stale; regenerate it with -update (go test -run %s -update):\n%s", path, name, t.Name(), want)
}
