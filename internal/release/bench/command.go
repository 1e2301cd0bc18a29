package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/app"
	"github.com/socioprophet/sourceos/internal/execx"
)

// SignBenchPackage is the import path of the signbench command.
const SignBenchPackage = "github.com/socioprophet/sourceos/internal/release/bench/signbench"

// Targets the issue sets: ours within 1.25× of b2sum, under 64 MB of RSS.
const (
	MaxRatio  = 1.25
	MaxRSSKiB = 64 * 1000 * 1000 / 1024
)

// Command is `mage bench:sign`: it builds signbench with goCmd, runs the
// benchmark on a DefaultSize artifact in a temporary directory (removed
// afterwards) and prints the table and whether the targets are met.
func Command(ctx context.Context, a *app.App, goCmd string) error {
	dir, err := os.MkdirTemp("", "sourceos-bench-sign-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "signbench")
	if _, err := a.Run.Run(ctx, execx.Cmd{Name: goCmd, Args: []string{"build", "-o", bin, SignBenchPackage}, Stderr: a.Stderr}); err != nil {
		return fmt.Errorf("build signbench: %w", err)
	}
	rep, err := Run(ctx, Options{Dir: dir, SignBench: bin, Run: a.Run, Progress: a.Stderr})
	if err != nil {
		return err
	}
	if err := rep.WriteText(a.Stdout); err != nil {
		return err
	}
	return rep.WriteTargets(a.Stdout)
}

// WriteTargets states, for our two flows, whether they meet the targets.
func (r *Report) WriteTargets(w io.Writer) error {
	for _, name := range []string{FlowOurSign, FlowOurVerify} {
		m, ok := r.Get(name)
		if !ok {
			continue
		}
		verdict := "met"
		if m.Ratio > MaxRatio || m.MaxRSSKiB > MaxRSSKiB {
			verdict = "NOT met"
		}
		if _, err := fmt.Fprintf(w, "%s: %.2f× b2sum (target ≤ %.2f), %.1f MiB peak RSS (target < 64 MB): %s\n",
			name, m.Ratio, MaxRatio, float64(m.MaxRSSKiB)/1024, verdict); err != nil {
			return err
		}
	}
	return nil
}
