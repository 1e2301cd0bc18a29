//go:build mage

// SourceOS build orchestration. Targets are thin: each loads the
// configuration (setup) and calls one internal package.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/image"
)

// process is this run's configuration, loaded once: the secrets are then
// dropped from the process environment, so a second target of the same run
// must reuse it.
var process struct {
	once    sync.Once
	relay   sync.Once
	checked sync.Once
	cfg     *config.Config
	err     error
	exposed error
}

// setup loads the configuration of this run and checks that no process
// that started this one holds a secret of it in its environment.
func setup() (*App, error) {
	cfg, err := loadProcess()
	if err != nil {
		return nil, err
	}
	if err := checkAncestors(cfg); err != nil {
		return nil, err
	}
	return newApp(cfg, os.Stdout, os.Stderr), nil
}

// setupCatalog is setup plus the catalog of SOURCEOS_FLAKE (or
// SOURCEOS_CATALOG).
func setupCatalog(ctx context.Context) (*App, *catalog.Catalog, error) {
	a, err := setup()
	if err != nil {
		return nil, nil, err
	}
	cat, err := catalog.Resolve(ctx, a.Run, catalog.FlakeRef(a.Cfg.Flake), a.Cfg.Catalog)
	return a, cat, err
}

// checkAncestors looks, once, for the secrets this run took from its
// environment in the environment of the processes that started it (the
// `go` tool and the bootstrap of `go run magefile.go`, a CI step's shell),
// where every process of the same user can read them. Under CI=true that
// fails the run: lanes pass <NAME>_FILE (mage keys:files). Elsewhere it is
// a warning.
func checkAncestors(cfg *config.Config) error {
	process.checked.Do(func() {
		err := cfg.CheckAncestors()
		if err != nil && !cfg.CI {
			fmt.Fprintln(os.Stderr, "warning:", err)
			err = nil
		}
		process.exposed = err
	})
	return process.exposed
}

// setupInRepo is setup for targets that work on the repository they run
// in: it also returns the working directory.
func setupInRepo() (*App, string, error) {
	a, err := setup()
	if err != nil {
		return nil, "", err
	}
	root, err := os.Getwd()
	return a, root, err
}

// loadProcess reads the environment once, seals the process (secrets out
// of its environment, not dumpable) and turns SIGTERM into mage's SIGINT
// handling.
func loadProcess() (*config.Config, error) {
	process.once.Do(func() {
		process.relay.Do(relayTerminate)
		process.cfg, process.err = config.FromEnv()
		if process.err == nil {
			process.err = config.Seal()
		}
	})
	return process.cfg, process.err
}

// relayTerminate handles SIGTERM (CI cancellation, VM shutdown) as mage
// handles SIGINT: the target's context is cancelled, which stops every
// command it started (their whole process group) and lets its cleanups
// run, instead of dying and leaving nix and its builders behind.
func relayTerminate() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		for range ch {
			_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
		}
	}()
}

// buildDeps gives the build pipeline what it needs from this run.
func buildDeps(a *App) image.Deps {
	return image.Deps{Cfg: a.Cfg, Run: a.Run, Log: a.Log, Stream: a.Stderr}
}
