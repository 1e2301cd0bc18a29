// Package lane wires the pipeline into the custom build lanes. The build
// half (CustomBuild: what gcp:build and gcp:custom run) is build:custom's
// code: user-supplied Nix code, built in Nix's sandbox by a process that
// holds no key, leaving an unsigned image and its build record in the
// user's prefix. The signing half (Sign: what gcp:attest runs) happens on a
// trusted machine that never builds anything. It is apart from
// internal/gcpvm so that the lane's own logic does not depend on the build
// pipeline.
package lane

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/image"
)

// Deps gives the build pipeline what it needs for one configuration (the
// mage target builds them from an App made of cfg).
type Deps func(cfg *config.Config) image.Deps

// Printer receives the build summary (the final JSON line of build:custom).
type Printer func(sum *image.Summary) error

// CustomBuild is the BuildFunc of both custom lanes.
func CustomBuild(deps Deps, print Printer) gcpvm.BuildFunc {
	return func(ctx context.Context, cfg *config.Config, specPath string) (string, error) {
		d := deps(cfg)
		cat, err := catalog.Resolve(ctx, d.Run, catalog.FlakeRef(cfg.Flake), cfg.Catalog)
		if err != nil {
			return "", err
		}
		sum, err := image.Custom(ctx, d, cat, specPath)
		if err != nil {
			return "", err
		}
		if print != nil {
			if err := print(sum); err != nil {
				return "", err
			}
		}
		main, err := mainArtifact(sum)
		if err != nil {
			return "", err
		}
		return ArtifactURL(main), nil
	}
}

// mainArtifact is what a custom build's status points at: the image, or a
// netboot set's manifest.
func mainArtifact(sum *image.Summary) (*image.Artifact, error) {
	for _, a := range sum.Artifacts {
		switch a.Kind {
		case image.KindISO, image.KindManifest:
			return a, nil
		}
	}
	return nil, errors.New("custom build: the summary names no image or netboot manifest")
}

// ArtifactURL is where an artifact went: its upload URL, else the local
// file.
func ArtifactURL(a *image.Artifact) string {
	if u := a.URLs[a.Name]; u != "" {
		return u
	}
	if abs, err := filepath.Abs(a.Path); err == nil {
		return "file://" + abs
	}
	return a.Path
}
