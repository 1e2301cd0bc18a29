//go:build mage

// SourceOS build orchestration. Targets are thin: each loads the
// configuration (internal/app) and calls one internal package.
package main

import (
	"github.com/socioprophet/sourceos/internal/app"
)

// setup loads the configuration of this run.
func setup() (*app.App, error) { return app.New() }
