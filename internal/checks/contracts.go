// Package checks holds every rule of `mage check:*`, the repository's
// gates. They check meaning rather than spelling: host facts by
// evaluating the hosts with real Nix (hosts.go; the host facts file in
// hostspec.go, the mode probe in probe.go, the login and mesh rules in
// access.go), channel and builder manifests against their JSON schemas
// (manifests.go), every shell script with shellcheck (shell.go), every
// .nix file with the Nix parser (nixparse.go), and the workflows against
// every rule of the GitHub lane (workflows*.go). Every check runs and
// every failure is reported at once.
package checks

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/execx"
)

// Check names, in the order they run.
const (
	CheckHosts     = "hosts"
	CheckManifests = "manifests"
	CheckShell     = "shell"
	CheckNix       = "nix"
	CheckWorkflows = "workflows"
	CheckCatalog   = "catalog"
)

// AllChecks lists every check in the order they run.
var AllChecks = []string{CheckCatalog, CheckHosts, CheckManifests, CheckShell, CheckNix, CheckWorkflows}

// HostMode selects how host facts are evaluated.
type HostMode string

const (
	// ModeAuto evaluates the flake's nixosConfigurations when the flake's
	// locked inputs are in the Nix store or can be fetched within
	// FetchTimeout, and the host modules themselves otherwise.
	ModeAuto HostMode = "auto"
	// ModeNixOS evaluates the flake's nixosConfigurations (needs nixpkgs).
	ModeNixOS HostMode = "nixos"
	// ModeModule evaluates each host module, the repository modules it
	// imports and those hosts/facts.json adds, against stand-ins, with no
	// nixpkgs.
	ModeModule HostMode = "module"
)

// Options configures a run.
type Options struct {
	// Root is the repository root.
	Root string
	// Run runs external commands (nix, nix-instantiate, shellcheck).
	Run execx.Runner
	// Checks selects checks by name; empty runs all of them.
	Checks []string
	// HostMode is how host facts are evaluated; empty means ModeAuto.
	HostMode HostMode
	// Tools are the external commands' names or paths; empty uses PATH.
	Tools Tools
	// FetchTimeout bounds how long the auto mode waits for the flake's
	// inputs to be fetched; 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Catalog is the catalog file (SOURCEOS_CATALOG); empty:
	// catalog.json at Root.
	Catalog string
}

// Tools names the external commands the checks run.
type Tools struct {
	Nix            string // default "nix"
	NixInstantiate string // default "nix-instantiate"
	NixStore       string // default "nix-store"
	Shellcheck     string // default "shellcheck"
}

func (t Tools) withDefaults() Tools {
	if t.Nix == "" {
		t.Nix = "nix"
	}
	if t.NixInstantiate == "" {
		t.NixInstantiate = "nix-instantiate"
	}
	if t.NixStore == "" {
		t.NixStore = "nix-store"
	}
	if t.Shellcheck == "" {
		t.Shellcheck = "shellcheck"
	}
	return t
}

// Run runs the selected checks over the tree at opts.Root. The error is
// for unusable options only; failures of the tree are in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	checks, err := selectChecks(opts.Checks)
	if err != nil {
		return nil, err
	}
	if opts.Root == "" || opts.Run == nil {
		return nil, fmt.Errorf("contracts: Root and Run are required")
	}
	opts.Tools = opts.Tools.withDefaults()
	if opts.HostMode == "" {
		opts.HostMode = ModeAuto
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	rep := &Report{Results: []Result{}}
	cat, catErr := loadCatalog(opts)
	for _, name := range checks {
		res, mode := runCheck(ctx, name, opts, cat, catErr)
		if name == CheckHosts {
			rep.HostMode = string(mode)
		}
		rep.add(res)
	}
	return rep, nil
}

func runCheck(ctx context.Context, name string, opts Options, cat *catalog.Catalog, catErr error) (Result, HostMode) {
	switch name {
	case CheckCatalog:
		return checkCatalog(opts, cat, catErr), ""
	case CheckHosts:
		return checkHosts(ctx, opts)
	case CheckManifests:
		return checkManifests(opts.Root), ""
	case CheckShell:
		return checkShell(ctx, opts), ""
	case CheckNix:
		return checkNixParse(ctx, opts), ""
	default:
		return checkWorkflows(opts, cat), ""
	}
}

func selectChecks(names []string) ([]string, error) {
	if len(names) == 0 {
		return AllChecks, nil
	}
	for _, n := range names {
		if !slices.Contains(AllChecks, n) {
			return nil, fmt.Errorf("contracts: unknown check %q (known: %v)", n, AllChecks)
		}
	}
	out := []string{}
	for _, n := range AllChecks {
		if slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// MainOptions configures Main.
type MainOptions struct {
	Options
	// JSON selects the JSON report instead of text lines.
	JSON bool
	Out  io.Writer
}

// Main runs the checks, writes the report, and returns a *FailedError when
// anything failed: what a mage target returns.
func Main(ctx context.Context, opts MainOptions) error {
	rep, err := Run(ctx, opts.Options)
	if err != nil {
		return err
	}
	write := rep.WriteText
	if opts.JSON {
		write = rep.WriteJSON
	}
	if err := write(opts.Out); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if !rep.OK() {
		return &FailedError{Failed: rep.Failed}
	}
	return nil
}
