package image_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/image"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestLockArgs(t *testing.T) {
	cases := []struct {
		name  string
		extra []string
		want  []string
	}{
		{"edition build", nil, []string{"--no-update-lock-file"}},
		{"edition build with options", []string{"--option", "allow-import-from-derivation", "false"}, []string{"--no-update-lock-file"}},
		{"custom build", []string{"--override-input", "sourceos", "path:/src", "--option", "allow-import-from-derivation", "false"}, []string{"--no-write-lock-file"}},
		{"caller already chose", []string{"--override-input", "sourceos", "path:/src", "--no-update-lock-file"}, nil},
		{"caller asks to recreate", []string{"--recreate-lock-file"}, nil},
	}
	for _, c := range cases {
		if got := image.LockArgs(c.extra); !slices.Equal(got, c.want) {
			t.Errorf("%s: LockArgs(%q) = %q, want %q", c.name, c.extra, got, c.want)
		}
	}
	args := image.BuildArgs("path:/c#x", "--override-input", "sourceos", "path:/src")
	if strings.Join(args, " ") != "build --json --no-link --print-build-logs --no-write-lock-file --override-input sourceos path:/src path:/c#x" {
		t.Errorf("custom build argv %q", args)
	}
	if got := image.FlakeCheckArgs("path:/r"); !slices.Contains(got, "--no-update-lock-file") || slices.Contains(got, "--no-write-lock-file") {
		t.Errorf("flake check argv %q must refuse lock changes", got)
	}
}

// writeFlake writes a flake whose only input is the local directory dep
// (a non-flake input, so no network is needed) and whose one package is
// built by the sandbox's /bin/sh.
func writeFlake(t *testing.T, dir, inputs string) {
	t.Helper()
	src := `{
  inputs = { ` + inputs + ` };
  outputs = { self, ... }: {
    packages.x86_64-linux.p = derivation {
      name = "lock-probe"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo pinned > $out" ];
    };
  };
}
`
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func nixRun(t *testing.T, args ...string) (execx.Result, error) {
	t.Helper()
	return (&execx.Exec{}).Run(context.Background(), execx.Cmd{Name: "nix", Args: args})
}

// With real Nix: a build of a locked flake uses the lock as it is, and a
// flake whose inputs no longer match its lock fails instead of being
// resolved anew; the lock file is never rewritten.
func TestBuildArgsNeverReResolveTheLock(t *testing.T) {
	testrig.Nix(t)
	dep, dir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dep, "data"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFlake(t, dir, `dep = { url = "path:`+dep+`"; flake = false; };`)
	if _, err := nixRun(t, "flake", "lock", "path:"+dir); err != nil {
		t.Fatalf("lock the probe flake: %v", err)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nixRun(t, image.BuildArgs("path:"+dir+"#packages.x86_64-linux.p")...); err != nil {
		t.Fatalf("build of a locked flake: %v", err)
	}

	// A second input the lock does not know.
	writeFlake(t, dir, `dep = { url = "path:`+dep+`"; flake = false; }; dep2 = { url = "path:`+dep+`"; flake = false; };`)
	_, err = nixRun(t, image.BuildArgs("path:"+dir+"#packages.x86_64-linux.p")...)
	if err == nil || !strings.Contains(err.Error(), "lock file") {
		t.Fatalf("stale lock: err %v, want nix to refuse changing the lock file", err)
	}
	after, rerr := os.ReadFile(filepath.Join(dir, "flake.lock"))
	if rerr != nil || string(after) != string(lock) {
		t.Fatalf("flake.lock changed on disk:\n%s\nwas\n%s", after, lock)
	}
	_, err = nixRun(t, image.FlakeCheckArgs("path:"+dir)...)
	if err == nil || !strings.Contains(err.Error(), "lock file") {
		t.Fatalf("flake check with a stale lock: err %v", err)
	}
}

// The custom build's shape: a directory with no lock file, built with an
// input overridden. It builds and leaves no flake.lock behind.
func TestBuildArgsOverrideLocksInMemory(t *testing.T) {
	testrig.Nix(t)
	dep, dir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dep, "data"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFlake(t, dir, `dep = { url = "path:/nonexistent/overridden"; flake = false; };`)
	if _, err := nixRun(t, image.BuildArgs("path:"+dir+"#packages.x86_64-linux.p", "--override-input", "dep", "path:"+dep)...); err != nil {
		t.Fatalf("custom-shaped build: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "flake.lock")); !os.IsNotExist(err) {
		t.Fatalf("a flake.lock was written (%v)", err)
	}
}
