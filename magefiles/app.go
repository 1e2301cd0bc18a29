//go:build mage

package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/redact"
)

// App is what a target needs to do its work: the configuration of this run
// (loaded once and sealed: setup), a command runner that keeps secrets out
// of children and logs, and log output with every secret masked.
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

// newApp builds an App around a loaded configuration.
func newApp(cfg *config.Config, stdout, stderr io.Writer) *App {
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

// isTerminal reports whether f is a terminal, where a progress line that
// rewrites itself belongs.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
