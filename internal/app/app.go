// Package app wires one run of a target: the configuration loaded from the
// environment, a command runner that keeps secrets out of children and logs,
// and log output with secrets redacted. Every mage target starts here.
package app

import (
	"io"
	"log/slog"
	"os"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/redact"
)

// App is what a target needs to do its work.
type App struct {
	Cfg *config.Config
	Run execx.Runner
	Log *slog.Logger
	// Stdout receives a target's results (summaries, reports).
	Stdout io.Writer
	// Stderr receives progress and logs, redacted.
	Stderr io.Writer
	// Redactor masks every secret of Cfg.
	Redactor *redact.Redactor
}

// New loads the configuration from the environment and builds an App that
// writes to the process's stdout and stderr.
func New() (*App, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	return With(cfg, os.Stdout, os.Stderr), nil
}

// With builds an App around an already loaded configuration.
func With(cfg *config.Config, stdout, stderr io.Writer) *App {
	r := cfg.Redactor()
	errw := r.Writer(stderr)
	return &App{
		Cfg:      cfg,
		Run:      &execx.Exec{SecretNames: config.SecretNames(), Redactor: r, Log: errw},
		Log:      slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Stdout:   stdout,
		Stderr:   errw,
		Redactor: r,
	}
}
