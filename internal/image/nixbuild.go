package image

import (
	"context"
	"fmt"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// The outputs a build makes, as State.Outputs names them.
const (
	outSystem = "system" // the NixOS system: the closure the cache and the SBOM describe
	outImage  = "image"  // the artifact's own output
)

// nixBuild builds one output of the request's artifact.
type nixBuild struct{ output string }

func (b nixBuild) String() string { return "nix build " + b.output }

// attr is the flake attribute of an output of the request.
func (r Request) attr(output string) string {
	if output == outSystem {
		return r.Instance.SystemAttr()
	}
	return r.Instance.Attr()
}

func (b nixBuild) Run(ctx context.Context, s *State) error {
	inst := catalog.Installable(s.Req.Flake, s.Req.attr(b.output))
	extra := s.Req.NixArgs
	if w := watcher(ctx, s); w != nil {
		extra = append(append([]string(nil), extra...), w.NixArgs()...)
	}
	log := newPrefixWriter(s.Stream, "    │ ")
	res, err := s.Run.Run(ctx, execx.Cmd{Name: "nix", Args: BuildArgs(inst, extra...), Stderr: log})
	log.Flush()
	if err != nil { // image.Run drains what was built before the failure
		return fmt.Errorf("build %s: %w", inst, err)
	}
	out, err := ParseBuildJSON(res.Stdout)
	if err != nil {
		return err
	}
	s.Outputs[b.output] = out
	fmt.Fprintf(s.Stream, "    %s → %s\n", b.output, out)
	return nil
}

// closure records the runtime closure of the system and image outputs: the
// image's squashed contents hide the system from Nix's reference scanner, so
// both are queried explicitly.
type closure struct{}

func (closure) String() string { return "query runtime closure" }

func (closure) Run(ctx context.Context, s *State) error {
	var roots []string
	for _, k := range []string{outSystem, outImage} {
		if p := s.Outputs[k]; p != "" {
			roots = append(roots, p)
		}
	}
	infos, err := nixstore.Query(ctx, s.Run, roots...)
	if err != nil {
		return err
	}
	s.Closure = infos
	var size uint64
	for _, i := range infos {
		size += i.NarSize
	}
	fmt.Fprintf(s.Stream, "    %d store paths, %s\n", len(infos), humanBytes(size))
	return nil
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
