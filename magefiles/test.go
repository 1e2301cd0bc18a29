//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/devtasks"
)

// Test runs go vet and the whole test suite, including the integration tests with real Nix, minisign and a GCS emulator.
func Test(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return devtasks.Test(ctx, a.Run, mg.GoCmd(), os.Stdout)
}
