//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/checks"
	"github.com/socioprophet/sourceos/internal/image"
)

// Check runs the repository's gates: the catalog, host facts, manifests, shellcheck, Nix syntax and workflows.
type Check mg.Namespace

// Contracts runs every gate and reports every failure at once (JSON with SOURCEOS_CHECK_JSON=1).
func (Check) Contracts(ctx context.Context) error { return runChecks(ctx) }

// Catalog checks catalog.json and that the channel manifests ship exactly what it says each channel ships.
func (Check) Catalog(ctx context.Context) error { return runChecks(ctx, checks.CheckCatalog) }

// Hosts evaluates the host facts of hosts/facts.json with real Nix.
func (Check) Hosts(ctx context.Context) error { return runChecks(ctx, checks.CheckHosts) }

// Manifests validates channels/*.json and builders/*.json against their schemas.
func (Check) Manifests(ctx context.Context) error { return runChecks(ctx, checks.CheckManifests) }

// Shell runs shellcheck -S warning over every shell script and checks that disables carry a reason.
func (Check) Shell(ctx context.Context) error { return runChecks(ctx, checks.CheckShell) }

// Nix parses every .nix file with nix-instantiate --parse.
func (Check) Nix(ctx context.Context) error { return runChecks(ctx, checks.CheckNix) }

// Workflows checks every workflow rule: actionlint, one mage call per step, config variables in env, pinned actions, no key beside user code.
func (Check) Workflows(ctx context.Context) error { return runChecks(ctx, checks.CheckWorkflows) }

func runChecks(ctx context.Context, which ...string) error {
	a, root, err := setupInRepo()
	if err != nil {
		return err
	}
	return checks.Main(ctx, checks.MainOptions{
		Options: checks.Options{Root: root, Run: a.Run, Checks: which, HostMode: checks.HostMode(a.Cfg.CheckHostMode), Catalog: a.Cfg.Catalog},
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
