//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/image"
)

// Build builds, signs, uploads and caches SourceOS images.
type Build mg.Namespace

// Desktop builds the desktop (GNOME workstation) edition image into OUT, signs it, writes its provenance, uploads it and warms the Nix cache.
func (Build) Desktop(ctx context.Context) error { return buildEdition(ctx, "desktop") }

// Server builds the server edition image into OUT, with the same signing, upload and cache steps as build:desktop.
func (Build) Server(ctx context.Context) error { return buildEdition(ctx, "server") }

// Edge builds the edge edition image into OUT, with the same signing, upload and cache steps as build:desktop.
func (Build) Edge(ctx context.Context) error { return buildEdition(ctx, "edge") }

// Custom builds the image a self-serve spec (JSON file) asks for, validated strictly, in Nix's sandbox and with no key: an unsigned image and its build record for gcp:sign.
func (Build) Custom(ctx context.Context, specPath string) error {
	a, err := setup()
	if err != nil {
		return err
	}
	sum, err := image.Custom(ctx, buildDeps(a), specPath)
	if err != nil {
		return err
	}
	return sum.Print(a.Stdout)
}

func buildEdition(ctx context.Context, edition string) error {
	a, err := setup()
	if err != nil {
		return err
	}
	sum, err := image.Edition(ctx, buildDeps(a), edition)
	if err != nil {
		return err
	}
	return sum.Print(a.Stdout)
}
