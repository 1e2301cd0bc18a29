package devtasks_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/devtasks"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func lockWith(rev, narHash string, lastModified string) string {
	return `{"nodes":{"nixpkgs":{"locked":{"lastModified":` + lastModified + `,"narHash":"` + narHash +
		`","owner":"NixOS","repo":"nixpkgs","rev":"` + rev + `","type":"github"},` +
		`"original":{"owner":"NixOS","ref":"nixos-25.05","repo":"nixpkgs","type":"github"}},` +
		`"root":{"inputs":{"nixpkgs":"nixpkgs"}}},"root":"root","version":7}`
}

const (
	oldRev = "7282cb574e0607e65224d33be8241eae7cfe0979"
	newRev = "ac62194c3917d5f474c1a844b6fd6da2db95077d"
)

func TestBumpNixpkgsArgs(t *testing.T) {
	if got := strings.Join(devtasks.BumpNixpkgsArgs("path:/src"), " "); got != "flake lock --update-input nixpkgs path:/src" {
		t.Fatalf("argv %q", got)
	}
}

func TestNixpkgsPinOfTheRepository(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testrig.RepoRoot(t), "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	pin, err := devtasks.NixpkgsPin(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(pin.Rev) != 40 || !strings.HasPrefix(pin.NarHash, "sha256-") {
		t.Fatalf("pin %+v", pin)
	}
	if _, err := devtasks.NixpkgsPin([]byte(`{"nodes":{"root":{}},"root":"root","version":7}`)); err == nil {
		t.Fatal("a lock without nixpkgs was accepted")
	}
}

// The bump reads the pin before and after `nix flake lock`; the runner
// stands in for Nix and rewrites the lock as it would.
func TestBumpNixpkgsPrintsOldAndNew(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "flake.lock")
	if err := os.WriteFile(lock, []byte(lockWith(oldRev, "sha256-hYKMs3ilp09anGO7xzfGs3JqEgUqFMnZ8GMAqI6/k04=", "1748437600")), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &execx.Fake{Respond: func(c execx.Cmd) (execx.Result, error) {
		return execx.Result{}, os.WriteFile(lock, []byte(lockWith(newRev, "sha256-16KkgfdYqjaeRGBaYsNrhPRRENs0qzkQVUooNHtoy2w=", "1767313136")), 0o644)
	}}
	var out bytes.Buffer
	if err := devtasks.BumpNixpkgs(context.Background(), f, dir, &out); err != nil {
		t.Fatal(err)
	}
	if got := f.Commands(); len(got) != 1 || got[0] != "nix flake lock --update-input nixpkgs path:"+dir {
		t.Fatalf("commands %q", got)
	}
	for _, want := range []string{"was github:NixOS/nixpkgs/" + oldRev, "now github:NixOS/nixpkgs/" + newRev, "nixos-audit.md"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
