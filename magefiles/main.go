//go:build mage

// SourceOS build orchestration. Targets are thin: each loads the
// configuration (internal/app) and calls one internal package.
package main

import (
	"github.com/socioprophet/sourceos/internal/app"
	"github.com/socioprophet/sourceos/internal/build"
)

// setup loads the configuration of this run.
func setup() (*app.App, error) { return app.New() }

// buildDeps gives the build pipeline what it needs from this run.
func buildDeps(a *app.App) build.Deps {
	return build.Deps{Cfg: a.Cfg, Run: a.Run, Log: a.Log, Stream: a.Stderr}
}
