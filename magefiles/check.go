//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/contracts"
	"github.com/socioprophet/sourceos/internal/image"
)

// Check runs the repository's gates: host contracts, manifests, shellcheck, Nix syntax and workflows.
type Check mg.Namespace

// Contracts runs every gate and reports every failure at once (JSON with SOURCEOS_CHECK_JSON=1).
func (Check) Contracts(ctx context.Context) error { return runChecks(ctx) }

// Hosts evaluates the host contracts of hosts/contracts.json with real Nix.
func (Check) Hosts(ctx context.Context) error { return runChecks(ctx, contracts.CheckHosts) }

// Manifests validates channels/*.json and builders/*.json against their schemas.
func (Check) Manifests(ctx context.Context) error { return runChecks(ctx, contracts.CheckManifests) }

// Shell runs shellcheck -S warning over every shell script and checks that disables carry a reason.
func (Check) Shell(ctx context.Context) error { return runChecks(ctx, contracts.CheckShell) }

// Nix parses every .nix file with nix-instantiate --parse.
func (Check) Nix(ctx context.Context) error { return runChecks(ctx, contracts.CheckNix) }

// Workflows lints .github/workflows with actionlint.
func (Check) Workflows(ctx context.Context) error { return runChecks(ctx, contracts.CheckWorkflows) }

func runChecks(ctx context.Context, checks ...string) error {
	a, err := setup()
	if err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	return contracts.Main(ctx, contracts.MainOptions{
		Options: contracts.Options{Root: root, Run: a.Run, Checks: checks, HostMode: contracts.HostMode(a.Cfg.CheckHostMode)},
		JSON:    a.Cfg.CheckJSON,
		Out:     a.Stdout,
	})
}

// Flake runs nix flake check on SOURCEOS_FLAKE: every output evaluates and every check builds.
func (Check) Flake(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return image.FlakeCheck(ctx, buildDeps(a))
}
