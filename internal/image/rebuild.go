package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/provenance"
)

// RebuildMethod is how the rebuild check builds the image derivation once
// more: Nix builds it again in its sandbox and compares the result with
// the output in the store, byte for byte. `nix build --rebuild` is there
// in Nix 2.8, the oldest Nix the pipeline runs (older releases had only
// `nix-build --check`, without flakes).
const RebuildMethod = "nix build --rebuild"

// ErrNotReproducible is returned by the rebuild step when
// SOURCEOS_REQUIRE_REPRODUCIBLE is set and the second build differed.
var ErrNotReproducible = errors.New("the image is not reproducible")

// RebuildArgs is the argv (after "nix") that builds installable once more
// and compares: BuildArgs with --rebuild, so the lock file rules and the
// extra arguments of the first build hold for the second.
func RebuildArgs(installable string, extra ...string) []string {
	return BuildArgs(installable, append([]string{"--rebuild"}, extra...)...)
}

// differsRE matches what Nix prints when a rebuilt output differs:
// "derivation '….drv' may not be deterministic: output '/nix/store/…'
// differs" (followed by " from '….check'" with --keep-failed).
var differsRE = regexp.MustCompile(`may not be deterministic: output '(/nix/store/[^']+)' differs`)

// ParseRebuildFailure returns the output a failed `nix build --rebuild`
// found to differ, or false when it failed for another reason.
func ParseRebuildFailure(stderr string) (string, bool) {
	m := differsRE.FindStringSubmatch(stderr)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// RebuildOptions say what to build again.
type RebuildOptions struct {
	// Installable is what was built; Output its store path, already
	// built (the check compares against it).
	Installable, Output string
	// NixArgs are the first build's extra arguments.
	NixArgs []string
	// Log receives Nix's build log, when set.
	Log io.Writer
}

// Rebuild builds o.Installable once more and says whether the result was
// the same. A second build that fails for a reason other than a
// difference is an error: nothing is recorded then.
func Rebuild(ctx context.Context, run execx.Runner, o RebuildOptions) (*provenance.RebuildCheck, error) {
	rc := &provenance.RebuildCheck{Method: RebuildMethod, Output: o.Output}
	res, err := run.Run(ctx, execx.Cmd{Name: "nix", Args: RebuildArgs(o.Installable, o.NixArgs...), Stderr: o.Log})
	if err == nil {
		rc.Reproducible = true
		return rc, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	differing, ok := ParseRebuildFailure(string(res.Stderr))
	if !ok {
		return nil, fmt.Errorf("rebuild %s: %w", o.Installable, err)
	}
	rc.DifferingOutput = differing
	return rc, nil
}

// rebuildStep is the rebuild check of the image derivation, when
// SOURCEOS_REBUILD_CHECK or SOURCEOS_REQUIRE_REPRODUCIBLE is set. Its outcome goes into the provenance (the sign step reads
// result); with SOURCEOS_REQUIRE_REPRODUCIBLE a difference stops the build
// before anything is signed.
type rebuildStep struct {
	result *provenance.RebuildCheck
}

func (r *rebuildStep) String() string {
	return "rebuild check of the image (" + RebuildMethod + ")"
}

func (r *rebuildStep) Skip(s *State) (bool, string) {
	if s.Cfg.RebuildCheck || s.Cfg.RequireReproducible {
		return false, ""
	}
	return true, "SOURCEOS_REBUILD_CHECK is off"
}

func (r *rebuildStep) Run(ctx context.Context, s *State) error {
	log := newPrefixWriter(s.Stream, "    │ ")
	defer log.Flush()
	rc, err := Rebuild(ctx, s.Run, RebuildOptions{
		Installable: catalog.Installable(s.Req.Flake, s.Req.Instance.Attr()),
		Output:      s.Outputs[outImage], NixArgs: s.Req.NixArgs, Log: log,
	})
	if err != nil {
		return err
	}
	r.result = rc
	if rc.Reproducible {
		fmt.Fprintf(s.Stream, "    reproducible: a second build of %s gave the same bytes\n", rc.Output)
		return nil
	}
	fmt.Fprintf(s.Stream, "    NOT reproducible: a second build of %s gave different bytes\n", rc.DifferingOutput)
	if s.Cfg.RequireReproducible {
		return fmt.Errorf("%w: %s differs when built again (SOURCEOS_REQUIRE_REPRODUCIBLE)", ErrNotReproducible, rc.DifferingOutput)
	}
	s.Notes = append(s.Notes, "not reproducible: "+rc.DifferingOutput+" differs when built again")
	return nil
}
