//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/image"
)

// Build builds, signs, uploads and caches SourceOS images.
type Build mg.Namespace

// Desktop builds the desktop edition's TARGET artifact (iso by default) for ARCH into OUT, signs it, writes its provenance, uploads it and warms the Nix cache.
func (Build) Desktop(ctx context.Context) error { return Build{}.Edition(ctx, "desktop") }

// Server builds the server edition's TARGET artifact, with the same steps as build:desktop.
func (Build) Server(ctx context.Context) error { return Build{}.Edition(ctx, "server") }

// Edge builds the edge edition's TARGET artifact, with the same steps as build:desktop.
func (Build) Edge(ctx context.Context) error { return Build{}.Edition(ctx, "edge") }

// Edition builds any edition of the catalog (its TARGET artifact for ARCH), with the same steps as build:desktop.
func (Build) Edition(ctx context.Context, edition string) error {
	return buildWith(ctx, func(a *App, cat *catalog.Catalog) (*image.Summary, error) {
		return image.Edition(ctx, buildDeps(a), cat, edition)
	})
}

// Artifact builds one artifact of the catalog by its id (sourceos-server-qcow2, say) for ARCH, with the same steps as build:desktop.
func (Build) Artifact(ctx context.Context, id string) error {
	return buildWith(ctx, func(a *App, cat *catalog.Catalog) (*image.Summary, error) {
		return image.ArtifactByID(ctx, buildDeps(a), cat, id)
	})
}

// Custom builds the image a self-serve spec (JSON file) asks for, validated strictly, in Nix's sandbox and with no key: an unsigned image (TARGET iso or netboot) and its build record for gcp:attest.
func (Build) Custom(ctx context.Context, specPath string) error {
	return buildWith(ctx, func(a *App, cat *catalog.Catalog) (*image.Summary, error) {
		return image.Custom(ctx, buildDeps(a), cat, specPath)
	})
}

// buildWith runs a build with this run's configuration and catalog and
// prints its summary.
func buildWith(ctx context.Context, build func(*App, *catalog.Catalog) (*image.Summary, error)) error {
	a, cat, err := setupCatalog(ctx)
	if err != nil {
		return err
	}
	sum, err := build(a, cat)
	if err != nil {
		return err
	}
	return sum.Print(a.Stdout)
}
