package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/execx"
)

// Resolve loads the catalog of a flake: override when set
// (SOURCEOS_CATALOG), else catalog.json at the root of a local flake, else
// catalog.json in the source of a remote flake, which Nix fetches (`nix
// flake metadata`: the same source a build of it uses).
func Resolve(ctx context.Context, run execx.Runner, flake, override string) (*Catalog, error) {
	if override != "" {
		return Load(override)
	}
	if p, ok := LocalPath(flake); ok {
		return Load(filepath.Join(p, FileName))
	}
	res, err := run.Run(ctx, execx.Cmd{Name: "nix", Args: MetadataArgs(flake)})
	if err != nil {
		return nil, fmt.Errorf("catalog of %s: fetch the flake: %w", flake, err)
	}
	dir, err := ParseMetadataPath(res.Stdout)
	if err != nil {
		return nil, fmt.Errorf("catalog of %s: %w", flake, err)
	}
	return Load(filepath.Join(dir, FileName))
}

// MetadataArgs is the argv (after "nix") that fetches a flake and prints
// where its source is.
func MetadataArgs(flake string) []string {
	return []string{"flake", "metadata", "--json", "--no-write-lock-file", flake}
}

// ParseMetadataPath returns the flake's directory from `nix flake metadata
// --json`: its source's store path, and the subdirectory when the
// reference names one (?dir=).
func ParseMetadataPath(out []byte) (string, error) {
	var m struct {
		Path   string `json:"path"`
		Locked struct {
			Dir string `json:"dir"`
		} `json:"locked"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("parse nix flake metadata: %w", err)
	}
	if !filepath.IsAbs(m.Path) {
		return "", fmt.Errorf("nix flake metadata gave no source path")
	}
	dir := filepath.Join(m.Path, m.Locked.Dir)
	if rel, err := filepath.Rel(m.Path, dir); err != nil || rel == ".." || filepath.IsAbs(rel) || len(rel) > 1 && rel[:2] == ".." {
		return "", fmt.Errorf("nix flake metadata: dir %q leaves the source", m.Locked.Dir)
	}
	return dir, nil
}
