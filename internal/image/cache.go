package image

import (
	"context"

	"github.com/socioprophet/sourceos/internal/nixcache"
)

// cacheStep pushes the built closure to the Nix binary cache: best effort
// (an unconfigured or failing cache is logged) unless NIX_CACHE_STRICT.
type cacheStep struct{}

func (cacheStep) String() string { return "push closure to the Nix cache" }

func (cacheStep) Run(ctx context.Context, s *State) error {
	o := nixcache.FromConfig(s.Cfg, s.Run, s.Log)
	o.Progress = &nixcache.Reporter{W: s.Stream}
	sum, err := nixcache.PushPathsBestEffort(ctx, o, s.Closure)
	if err != nil {
		return err
	}
	if sum.Pushed+sum.Present+sum.Upstream+sum.Failed > 0 { // zero: skipped, not configured
		s.Cache = &sum
	}
	return nil
}
