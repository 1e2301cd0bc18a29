//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/release/bench"
)

// Sign times signing and verifying a 2 GB file: the old shell flow, b2sum alone (the floor) and ours, with peak RSS.
func (Bench) Sign(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return bench.Command(ctx, a, mg.GoCmd())
}
