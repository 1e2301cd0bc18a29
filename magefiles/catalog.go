//go:build mage

package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/config"
)

// Catalog tells what the flake builds, from catalog.json (docs/catalog.md).
type Catalog mg.Namespace

// Matrix prints the artifacts matching key=value filters (channel, edition, arch, kind) as a workflow matrix, and writes matrix=<json> to GITHUB_OUTPUT in a workflow; "editions" gives one row per edition.
func (Catalog) Matrix(ctx context.Context, filter string) error {
	a, cat, err := setupCatalog(ctx)
	if err != nil {
		return err
	}
	m, err := cat.Select(filter)
	if err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "%s\n", b)
	if a.Cfg.GitHubOutput == "" {
		return nil
	}
	return config.AppendEnvFile(a.Cfg.GitHubOutput, []string{"matrix=" + string(b)})
}
