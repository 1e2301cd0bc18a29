//go:build mage

package main

import (
	"context"

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
		Args: []string{"test", "-run", "^$", "-bench", "^BenchmarkCache", "-benchtime", "1x", "-timeout", "60m", "./internal/nixcache/"}})
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
