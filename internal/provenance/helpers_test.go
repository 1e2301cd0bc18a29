package provenance

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

const (
	imageSHA256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	imageSHA512 = "0a5e5c0c7e1f5b0b5e2a4f7c3d1e9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
	sourceRev   = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testBuild is a fully populated BuildInfo with fixed times.
func testBuild(t *testing.T) BuildInfo {
	t.Helper()
	return BuildInfo{
		Edition: "desktop", Arch: "x86_64", Target: "iso", Hostname: "sourceos-desktop",
		Version: "1.4.0", Channel: "stable",
		FlakeRef: "path:/src", FlakeAttr: "packages.x86_64-linux.sourceos-desktop-iso",
		SourceRepo: "https://github.com/socioprophet/sourceos", SourceRev: sourceRev,
		FlakeLock: readFile(t, "testdata/flake.lock"),
		BuildID:   "gh-1234-1", BuilderID: "https://sourceos.dev/builders/github-actions",
		StartedOn:  time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC),
		FinishedOn: time.Date(2025, 1, 15, 11, 42, 7, 0, time.FixedZone("CET", 3600)),
	}
}

func testImage() Subject {
	return Subject{Name: "sourceos-desktop-1.4.0-x86_64.iso", SHA256: imageSHA256, SHA512: imageSHA512}
}

// golden compares got with testdata/golden/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readFile(t, path)
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (run go test -update to accept):\n%s", name, got)
	}
}

// withBuilderVersion pins the builder version for golden files.
func withBuilderVersion(t *testing.T) {
	t.Helper()
	saved := builderVersion
	builderVersion = map[string]string{"github.com/socioprophet/sourceos": "v0.0.0-test"}
	t.Cleanup(func() { builderVersion = saved })
}
