// Package nixstore reads what the local Nix store knows about store paths:
// `nix path-info --recursive --json` (argv builder and parser, accepting the
// shapes printed by every Nix release we know), the PathInfo type that the
// cache, the build pipeline and the SBOM code share, and a topological sort
// of a closure (references first).
package nixstore

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/nix-community/go-nix/pkg/storepath"

	"github.com/socioprophet/sourceos/internal/execx"
)

// StoreDir is the only store directory supported.
const StoreDir = storepath.StoreDir

// PathInfo is what the store knows about one valid store path.
type PathInfo struct {
	// Path is the full store path, /nix/store/<hash>-<name>.
	Path string `json:"path"`
	// NarHash is the SHA-256 of the path's NAR serialisation, always
	// normalised to "sha256:<nix32>".
	NarHash string `json:"narHash"`
	// NarSize is the size of the NAR serialisation in bytes.
	NarSize uint64 `json:"narSize"`
	// References are full store paths, sorted, possibly including Path.
	References []string `json:"references"`
	// Deriver is the full store path of the .drv, or "" when unknown.
	Deriver string `json:"deriver,omitempty"`
	// Signatures are the path's signatures ("name:base64"), as the store has them.
	Signatures []string `json:"signatures,omitempty"`
	// CA is the content address ("fixed:…", "text:…") or "".
	CA string `json:"ca,omitempty"`
}

// HashPart returns the 32-character nix32 hash part of a store path
// ("/nix/store/<hash>-name" or "<hash>-name").
func HashPart(p string) string {
	base := path.Base(p)
	if len(base) < 32 {
		return base
	}
	return base[:32]
}

// BaseName returns "<hash>-<name>" of a full store path.
func BaseName(p string) string { return path.Base(p) }

// ValidatePath checks that p is a syntactically valid full store path.
func ValidatePath(p string) error {
	if !storepath.PathRe.MatchString(p) {
		return fmt.Errorf("not a store path: %q", p)
	}
	return nil
}

// PathInfoArgs is the argv (after "nix") that prints the runtime closure of
// installables as JSON.
func PathInfoArgs(installables ...string) []string {
	args := []string{"--extra-experimental-features", "nix-command flakes",
		"path-info", "--json", "--recursive"}
	return append(args, installables...)
}

// Query resolves installables (store paths or flake installables that are
// already built) to their runtime closure, in topological order (every path
// after its references).
func Query(ctx context.Context, run execx.Runner, installables ...string) ([]PathInfo, error) {
	if len(installables) == 0 {
		return nil, fmt.Errorf("nix path-info: no paths given")
	}
	res, err := run.Run(ctx, execx.Cmd{Name: "nix", Args: PathInfoArgs(installables...)})
	if err != nil {
		return nil, fmt.Errorf("query the closure of %s: %w", strings.Join(installables, " "), err)
	}
	infos, err := ParsePathInfo(res.Stdout)
	if err != nil {
		return nil, err
	}
	return TopoSort(infos)
}
