package image

import (
	"context"
	"fmt"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/execx"
)

// FlakeCheckArgs is the argv (after "nix") of `nix flake check` with the
// build log streamed. --no-update-lock-file: the check evaluates the inputs
// flake.lock pins, and fails if flake.nix asks for inputs the lock does not
// have, rather than resolving them anew.
func FlakeCheckArgs(flake string) []string {
	return []string{"flake", "check", "--print-build-logs", "--no-update-lock-file", flake}
}

// FlakeCheck evaluates every output of SOURCEOS_FLAKE and builds its checks.
func FlakeCheck(ctx context.Context, d Deps) error {
	d = d.withDefaults()
	flake := catalog.FlakeRef(d.Cfg.Flake)
	fmt.Fprintf(d.Stream, "==> nix flake check %s\n", flake)
	log := newPrefixWriter(d.Stream, "    │ ")
	defer log.Flush()
	if _, err := d.Run.Run(ctx, execx.Cmd{Name: "nix", Args: FlakeCheckArgs(flake), Stderr: log}); err != nil {
		return fmt.Errorf("flake check: %w", err)
	}
	return nil
}
