//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/release"
)

// Sign signs an artifact (or, with TARGET=netboot, a netboot-manifest.json and its files) and writes its checksum, minisign signature and provenance beside it.
func Sign(ctx context.Context, artifact string) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return release.SignCommand(ctx, a, artifact)
}

// Verify checks an artifact's signature and every sidecar with SOURCEOS_SIGN_PUBKEY; exit 1: verification failed, 2: could not verify.
func Verify(ctx context.Context, artifact string) error {
	a, err := setup()
	if err == nil {
		err = release.VerifyCommand(ctx, a, artifact)
	}
	if err != nil {
		return mg.Fatal(release.ExitCode(err), err)
	}
	return nil
}
