//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/nixcache"
)

// Cache pushes to and audits the Nix binary cache (GCS bucket or directory).
type Cache mg.Namespace

// cacheOptions builds the cache options of this run, with progress on stderr.
func cacheOptions(a *App) nixcache.Options {
	o := nixcache.FromConfig(a.Cfg, a.Run, a.Log)
	term := isTerminal(os.Stderr) && !a.Cfg.CI
	o.Progress = &nixcache.Reporter{W: a.Stderr, Terminal: term, Interval: 5 * time.Second}
	return o
}

// Push uploads the runtime closure of store paths or built installables (space separated), signed, and prints a JSON summary.
func (Cache) Push(ctx context.Context, paths string) error {
	a, err := setup()
	if err != nil {
		return err
	}
	s, err := nixcache.Push(ctx, cacheOptions(a), strings.Fields(paths))
	fmt.Fprintln(a.Stdout, s.JSON())
	return err
}

// Verify audits the cache: narinfos parse and verify with NIX_CACHE_PUBKEY, NARs exist with their sizes, references resolve; with NIX_CACHE_SECRET_KEY a clean run records the watermark cache:verifyIncremental starts from.
func (Cache) Verify(ctx context.Context) error { return verifyCache(ctx, false, false) }

// VerifyDeep is cache:verify plus downloading every NAR and checking its hashes.
func (Cache) VerifyDeep(ctx context.Context) error { return verifyCache(ctx, true, false) }

// VerifyIncremental audits only what roots stored since the last clean cache:verify name and was written since (the whole cache when there is no watermark).
func (Cache) VerifyIncremental(ctx context.Context) error { return verifyCache(ctx, false, true) }

func verifyCache(ctx context.Context, deep, incremental bool) error {
	a, err := setup()
	if err != nil {
		return err
	}
	var rep nixcache.Report
	if incremental {
		rep, err = nixcache.VerifyIncremental(ctx, cacheOptions(a))
	} else {
		rep, err = nixcache.Verify(ctx, cacheOptions(a), deep)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(a.Stdout, p)
	}
	scope := ""
	if rep.Incremental {
		scope = " written since " + rep.Since.Format(time.RFC3339)
	}
	fmt.Fprintf(a.Stdout, "%d narinfos%s, %d NARs, %d problems\n", rep.Narinfos, scope, rep.NARs, len(rep.Problems))
	if rep.Adoptable > 0 {
		fmt.Fprintf(a.Stdout, "%d narinfos are adoptable: signed by the cache's key, their NAR named as nix copy names it and in place, no push proof (an older pipeline's); `mage cache:adopt` makes them ours without uploading them (docs/nix-cache.md)\n", rep.Adoptable)
	}
	return err
}

// Adopt makes a cache an older pipeline wrote with the cache's key (nix copy and an upload: no push proofs, no roots) ours without uploading a NAR: each narinfo is checked deeply, its push proof recorded, and a root (NIX_CACHE_ROOT, default adopted) names what was adopted.
func (Cache) Adopt(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	rep, err := nixcache.Adopt(ctx, cacheOptions(a))
	for _, p := range rep.Problems {
		fmt.Fprintln(a.Stderr, p)
	}
	fmt.Fprintln(a.Stdout, rep.JSON())
	if err == nil && len(rep.Problems) > 0 {
		err = fmt.Errorf("cache adopt: %d narinfos left alone (listed above)", len(rep.Problems))
	}
	return err
}

// Gc deletes what no root keeps (the newest NIX_CACHE_GC_KEEP_LAST roots of each name, roots younger than NIX_CACHE_GC_KEEP_DAYS, pinned roots), never an object younger than NIX_CACHE_GC_GRACE_HOURS; NIX_CACHE_GC_DRY_RUN=1 prints the plan only.
func (Cache) Gc(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	o := cacheOptions(a)
	if o.GC.DryRun {
		o.GC.Plan = a.Stdout
	}
	sum, err := nixcache.GC(ctx, o)
	fmt.Fprintln(a.Stdout, sum.JSON())
	return err
}

// Watch runs a command that builds with Nix (space separated, such as "nix build .#x") and pushes every path as soon as Nix has built it; a root names what it built.
func (Cache) Watch(ctx context.Context, command string) error {
	a, err := setup()
	if err != nil {
		return err
	}
	o := cacheOptions(a)
	if o.Root.Name == "" {
		o.Root.Name = "watch"
	}
	sum, err := nixcache.RunWatched(ctx, o, strings.Fields(command), a.Stderr, a.Stderr)
	fmt.Fprintln(a.Stdout, sum.JSON())
	return err
}

// NixConf prints the nix.conf lines (extra-substituters, extra-trusted-public-keys) that pull from the cache.
func (Cache) NixConf() error {
	a, err := setup()
	if err != nil {
		return err
	}
	conf, err := nixcache.NixConf(cacheOptions(a))
	fmt.Fprint(a.Stdout, conf)
	return err
}
