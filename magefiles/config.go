//go:build mage

package main

import (
	"fmt"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/config"
)

// Config shows the configuration read from the environment.
type Config mg.Namespace

// Show prints every variable's effective value and where it came from, with secrets redacted.
func (Config) Show() error {
	a, err := setup()
	if err != nil {
		return err
	}
	return a.Cfg.Show(a.Stdout)
}

// Docs prints the configuration table of docs/configuration.md, generated from internal/config.
func (Config) Docs() {
	fmt.Print(config.MarkdownTable())
}
