// Package lane wires the pipeline into the custom build lanes: the build
// function gcp:build and gcp:custom run is build:custom's code followed by
// the verify gate, so status.json says complete only for an image that
// passes `mage verify` whenever a public key is configured. It is apart from
// internal/gcpvm so that the lane's own logic does not depend on the build
// pipeline.
package lane

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/build"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/release"
)

// Deps gives the build pipeline what it needs for one configuration (the
// mage target builds them from an App made of cfg).
type Deps func(cfg *config.Config) build.Deps

// Printer receives the build summary (the final JSON line of build:custom).
type Printer func(sum *build.Summary) error

// CustomBuild is the BuildFunc of both custom lanes.
func CustomBuild(deps Deps, print Printer) gcpvm.BuildFunc {
	return func(ctx context.Context, cfg *config.Config, specPath string) (string, error) {
		sum, err := build.Custom(ctx, deps(cfg), specPath)
		if err != nil {
			return "", err
		}
		if print != nil {
			if err := print(sum); err != nil {
				return "", err
			}
		}
		iso, err := isoOf(sum)
		if err != nil {
			return "", err
		}
		if err := VerifyGate(ctx, cfg, iso); err != nil {
			return "", err
		}
		return ArtifactURL(iso), nil
	}
}

func isoOf(sum *build.Summary) (*build.Artifact, error) {
	for _, a := range sum.Artifacts {
		if a.Kind == "iso" {
			return a, nil
		}
	}
	return nil, errors.New("custom build: the summary names no ISO")
}

// VerifyGate runs `mage verify`'s checks on the image when
// SOURCEOS_SIGN_PUBKEY is set, trusting the digests the build computed
// while copying it (no second read of a multi-GB file).
func VerifyGate(ctx context.Context, cfg *config.Config, iso *build.Artifact) error {
	if cfg.SignPubKey == "" {
		return nil
	}
	_, err := release.Verify(ctx, release.VerifyOptions{Artifact: iso.Path, PublicKey: cfg.SignPubKey,
		AllowLegacy: cfg.AllowLegacySig, Digests: &iso.Digests})
	if err != nil {
		return fmt.Errorf("verify gate: %s: %w", iso.Name, err)
	}
	return nil
}

// ArtifactURL is where the image went: its upload URL, else the local file.
func ArtifactURL(iso *build.Artifact) string {
	if u := iso.URLs[iso.Name]; u != "" {
		return u
	}
	if abs, err := filepath.Abs(iso.Path); err == nil {
		return "file://" + abs
	}
	return iso.Path
}
