package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/execx"
)

// SignBenchPackage is the import path of the signbench command.
const SignBenchPackage = "github.com/socioprophet/sourceos/internal/bench/signbench"

// The goals: ours within 1.1× of b2sum (the median of the rounds), under
// 64 MiB of peak RSS in every round.
const (
	MaxRatio  = 1.1
	MaxRSSKiB = 64 << 10
)

// CommandOptions are what `mage bench:sign` runs with.
type CommandOptions struct {
	Run            execx.Runner
	GoCmd          string
	Stdout, Stderr io.Writer
}

// Command is `mage bench:sign`: it builds signbench with GoCmd, runs the
// benchmark (DefaultRuns rounds) on a DefaultSize artifact in a temporary
// directory (removed afterwards) and prints the table and whether the
// goals are met.
func Command(ctx context.Context, o CommandOptions) error {
	dir, err := os.MkdirTemp("", "sourceos-bench-sign-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "signbench")
	if _, err := o.Run.Run(ctx, execx.Cmd{Name: o.GoCmd, Args: []string{"build", "-o", bin, SignBenchPackage}, Stderr: o.Stderr}); err != nil {
		return fmt.Errorf("build signbench: %w", err)
	}
	rep, err := Run(ctx, Options{Dir: dir, SignBench: bin, Run: o.Run, Progress: o.Stderr})
	if err != nil {
		return err
	}
	if err := rep.WriteText(o.Stdout); err != nil {
		return err
	}
	return rep.WriteTargets(o.Stdout)
}

// WriteTargets states, for our two flows, whether they meet the goals.
func (r *Report) WriteTargets(w io.Writer) error {
	for _, name := range []string{FlowOurSign, FlowOurVerify} {
		m, ok := r.Get(name)
		if !ok {
			continue
		}
		x := m.Ratio()
		verdict := "met"
		if x.Median > MaxRatio || m.MaxRSSKiB > MaxRSSKiB {
			verdict = "NOT met"
		}
		if _, err := fmt.Fprintf(w, "%s: %.2f× b2sum median (%.2f–%.2f over %d rounds; goal ≤ %.2f×), %.1f MiB peak RSS (goal < 64 MiB): %s\n",
			name, x.Median, x.Min, x.Max, len(m.Ratios), MaxRatio, float64(m.MaxRSSKiB)/1024, verdict); err != nil {
			return err
		}
	}
	return nil
}
