package image

import (
	"context"
	"fmt"

	"github.com/socioprophet/sourceos/internal/nixcache"
)

// cacheStep pushes the built closure to the Nix binary cache and records
// its root: best effort (an unconfigured or failing cache is logged)
// unless NIX_CACHE_STRICT. When the build pushed while building, it waits
// for that queue to drain and pushes only what is left (paths that were
// substituted or already in the store).
type cacheStep struct{}

func (cacheStep) String() string { return "push closure to the Nix cache" }

func (cacheStep) Run(ctx context.Context, s *State) error {
	o := cacheOptions(s)
	var sum nixcache.Summary
	var err error
	if w := takeWatcher(s); w != nil {
		sum, err = closeWatch(ctx, s, w, o)
	} else {
		sum, err = nixcache.PushPathsBestEffort(ctx, o, s.Closure)
	}
	if err != nil {
		return err
	}
	if sum.Pushed+sum.Present+sum.Upstream+sum.Failed > 0 { // zero: skipped, not configured
		s.Cache = &sum
	}
	return nil
}

// closeWatch drains the build's watcher, adds the whole closure and
// closes the push with a root naming the build's outputs.
func closeWatch(ctx context.Context, s *State, w *nixcache.Watcher, o nixcache.Options) (nixcache.Summary, error) {
	if err := w.Drain(ctx); err != nil {
		s.Log.Warn("cache watch", "err", err)
	}
	fmt.Fprintf(s.Stream, "    %d paths pushed while building\n", len(w.Built()))
	w.Session().Add(ctx, s.Closure)
	sum, err := w.Close(ctx, outputs(s))
	if err != nil && !o.Strict {
		s.Log.Warn("cache push failed; continuing (set NIX_CACHE_STRICT=1 to fail instead)", "err", err)
		return sum, nil
	}
	return sum, err
}

// outputs are the store paths the build produced.
func outputs(s *State) []string {
	var out []string
	for _, k := range []string{outSystem, outImage} {
		if p := s.Outputs[k]; p != "" {
			out = append(out, p)
		}
	}
	return out
}
