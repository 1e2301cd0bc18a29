//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/devtasks"
)

// Nixpkgs manages the nixpkgs pin of flake.lock.
type Nixpkgs mg.Namespace

// Bump moves the nixpkgs pin of flake.lock to the newest revision of its branch and prints the old and the new revision.
func (Nixpkgs) Bump(ctx context.Context) error {
	a, root, err := setupInRepo()
	if err != nil {
		return err
	}
	return devtasks.BumpNixpkgs(ctx, a.Run, root, a.Stdout)
}
