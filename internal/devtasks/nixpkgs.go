package devtasks

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/execx"
)

// BumpNixpkgsArgs is the argv (after "nix") that moves the nixpkgs pin of
// flake.lock to the newest revision of the branch flake.nix follows. The
// Nix 2.8 form; newer Nix also accepts `flake update nixpkgs`.
func BumpNixpkgsArgs(flake string) []string {
	return []string{"flake", "lock", "--update-input", "nixpkgs", flake}
}

// NixpkgsPin returns the locked nixpkgs input of a flake.lock.
func NixpkgsPin(lock []byte) (catalog.LockedInput, error) {
	inputs, err := catalog.ParseFlakeLock(lock)
	if err != nil {
		return catalog.LockedInput{}, err
	}
	for _, in := range inputs {
		if in.Node == "nixpkgs" {
			return in, nil
		}
	}
	return catalog.LockedInput{}, fmt.Errorf("flake.lock has no nixpkgs input")
}

// PinLine describes a pin for people: revision, date and narHash.
func PinLine(in catalog.LockedInput) string {
	return fmt.Sprintf("%s (lastModified %d, %s)", in.URI(), in.LastModified, in.NarHash)
}

// BumpNixpkgs updates the nixpkgs pin of the flake in dir and prints the
// old and the new revision to w.
func BumpNixpkgs(ctx context.Context, run execx.Runner, dir string, w io.Writer) error {
	lockPath := filepath.Join(dir, "flake.lock")
	before, err := readPin(lockPath)
	if err != nil {
		return err
	}
	if _, err := run.Run(ctx, execx.Cmd{Name: "nix", Args: BumpNixpkgsArgs("path:" + dir), Stderr: w}); err != nil {
		return fmt.Errorf("bump nixpkgs: %w", err)
	}
	after, err := readPin(lockPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "nixpkgs was %s\nnixpkgs now %s\n", PinLine(before), PinLine(after))
	if before.Rev == after.Rev {
		fmt.Fprintln(w, "nixpkgs: already the newest revision of its branch")
	} else {
		fmt.Fprintln(w, "next: docs/nixos-audit.md, \"Re-running this at the next nixpkgs bump\"")
	}
	return nil
}

func readPin(path string) (catalog.LockedInput, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return catalog.LockedInput{}, fmt.Errorf("read %s: %w", path, err)
	}
	return NixpkgsPin(b)
}
