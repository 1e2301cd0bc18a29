//go:build mage

package main

import (
	"context"
	"strconv"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/bench"
	"github.com/socioprophet/sourceos/internal/execx"
)

// Bench runs the committed benchmarks side by side with the peer tools.
type Bench mg.Namespace

// Cache benchmarks the Nix cache on a simulated link (cold and warm pushes against the old pipeline's shape and the link's floor), into a directory against nix copy, pushing while building, and GC, with peak RSS (ten minutes or so).
func (Bench) Cache(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	_, err = a.Run.Run(ctx, execx.Cmd{Name: mg.GoCmd(), Stdout: a.Stdout, Stderr: a.Stderr,
		Args: []string{"test", "-run", "^$", "-bench", "^BenchmarkCache(Link|Dir|Watch|GC)$", "-benchtime", "1x", "-timeout", "60m", "./internal/nixcache/"}})
	return err
}

// CacheScale measures a warm push, cache:verify, cache:gc, a cold push and an incremental verify on caches of the given sizes (objects, comma separated, as "25000,1000000"; "N:gc+push" measures only those at N), on the GCS stand-in behind the simulated link, with time, peak RSS and requests.
func (Bench) CacheScale(ctx context.Context, sizes string) error { return cacheScale(ctx, sizes, 0) }

// CacheRace seeds the given number of objects, runs cache:gc and pushes an expired closure while it sweeps: afterwards the cache must verify and Nix substitute what was pushed.
func (Bench) CacheRace(ctx context.Context, objects int) error { return cacheScale(ctx, "", objects) }

func cacheScale(ctx context.Context, sizes string, race int) error {
	a, err := setup()
	if err != nil {
		return err
	}
	_, err = a.Run.Run(ctx, execx.Cmd{Name: mg.GoCmd(), Stdout: a.Stdout, Stderr: a.Stderr,
		Args: []string{"test", "-run", "^$", "-bench", "^BenchmarkCacheScale$", "-benchtime", "1x", "-timeout", "180m", "./internal/nixcache/",
			"-args", "-nixcache.scale=" + sizes, "-nixcache.race=" + strconv.Itoa(race)}})
	return err
}

// Sign times signing and verifying a 1 GiB file as processes, quiet and then with one core busy: the old shell flow, b2sum alone (the floor), our BLAKE2b alone and ours, with peak RSS.
func (Bench) Sign(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return bench.Command(ctx, bench.CommandOptions{Run: a.Run, GoCmd: mg.GoCmd(), Stdout: a.Stdout, Stderr: a.Stderr})
}
