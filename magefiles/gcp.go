//go:build mage

package main

import (
	"context"
	"io"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/gcpvm/lane"
	"github.com/socioprophet/sourceos/internal/image"
)

// Gcp runs self-serve custom builds that report to the user's GCS prefix: on a GCP build VM or in CI.
type Gcp mg.Namespace

// Build runs on a GCP build VM: builds the spec in the instance metadata, unsigned, with status.json in the user's GCS prefix, then deletes the VM.
func (Gcp) Build(ctx context.Context) error {
	// Not sealed first: gcp:build reads the environment itself, under the
	// metadata, and refuses to build when either holds a key.
	process.relay.Do(relayTerminate)
	return gcpvm.Run(ctx, gcpvm.Options{Build: customBuild(os.Stdout, os.Stderr), Env: config.ProcessEnv})
}

// Attest runs on a trusted machine: hashes, signs and verifies the custom build in GCS_PREFIX (status built) for the spec given, and marks it complete.
func (Gcp) Attest(ctx context.Context, spec string) error {
	a, b, err := setupSpec(spec)
	if err != nil {
		return err
	}
	return lane.Attest(ctx, lane.AttestOptions{Cfg: a.Cfg, Spec: b, Log: a.Log})
}

// Custom runs build:custom for a spec (its JSON), unsigned, and keeps status.json in GCS_PREFIX up to date.
func (Gcp) Custom(ctx context.Context, spec string) error {
	a, b, err := setupSpec(spec)
	if err != nil {
		return err
	}
	return gcpvm.Custom(ctx, gcpvm.CustomOptions{Cfg: a.Cfg, Spec: b, Build: customBuild(a.Stdout, a.Stderr),
		Lane: laneName(a.Cfg), Stderr: a.Stderr})
}

// Abandon marks the custom build in GCS_PREFIX as failed when its lane stopped before a final status.
func (Gcp) Abandon(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return gcpvm.Abandon(ctx, gcpvm.AbandonOptions{Cfg: a.Cfg, Lane: laneName(a.Cfg), Stderr: a.Stderr,
		Reason: "the build stopped before it finished (setup failed, cancelled or timed out); see the CI run"})
}

// setupSpec is setup plus the spec argument of a gcp target, as JSON.
func setupSpec(spec string) (*App, []byte, error) {
	a, err := setup()
	if err != nil {
		return nil, nil, err
	}
	b, err := gcpvm.SpecArg(spec)
	return a, b, err
}

func laneName(cfg *config.Config) string {
	if cfg.CI {
		return gcpvm.LaneCI
	}
	return gcpvm.LaneLocal
}

// customBuild is what both custom lanes run: build:custom's code
// (internal/gcpvm/lane); gcp:attest signs the result elsewhere.
func customBuild(stdout, stderr io.Writer) gcpvm.BuildFunc {
	return lane.CustomBuild(
		func(cfg *config.Config) image.Deps { return buildDeps(newApp(cfg, stdout, stderr)) },
		func(sum *image.Summary) error { return sum.Print(stdout) })
}
