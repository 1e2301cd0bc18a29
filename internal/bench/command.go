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

// LoadedBusyCores is how many threads spin through the loaded pass: one,
// half of the two cores of the machines the project runs on.
const LoadedBusyCores = 1

// Command is `mage bench:sign`: it builds signbench with GoCmd, makes a
// DefaultSize artifact in a temporary directory (removed afterwards) and
// runs two passes of DefaultRuns rounds: quiet, every flow; then loaded
// (LoadedBusyCores busy threads), b2sum and ours only. It prints each
// pass's table and whether the goals are met; the goals are the quiet
// pass's.
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
	b, err := Prepare(Options{Dir: dir, SignBench: bin, Run: o.Run, Progress: o.Stderr})
	if err != nil {
		return err
	}
	quiet, err := b.Measure(ctx, 0, false)
	if err != nil {
		return err
	}
	loaded, err := b.Measure(ctx, LoadedBusyCores, true)
	if err != nil {
		return err
	}
	for _, rep := range []*Report{quiet, loaded} {
		if err := rep.WriteText(o.Stdout); err != nil {
			return err
		}
		if err := rep.WriteTargets(o.Stdout); err != nil {
			return err
		}
		fmt.Fprintln(o.Stdout)
	}
	return nil
}

// WriteTargets states, for our two flows, whether they meet the goals, and
// where our own hash stands: BLAKE2b-512 alone against b2sum is the least
// ratio any flow that reads the file through it can reach.
func (r *Report) WriteTargets(w io.Writer) error {
	if m, ok := r.Get(FlowOurHash); ok {
		x := m.Ratio()
		if _, err := fmt.Fprintf(w, "%s: %.2f× b2sum median (%.2f–%.2f): the ceiling of our hash on this CPU\n", FlowOurHash, x.Median, x.Min, x.Max); err != nil {
			return err
		}
	}
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
		if r.BusyCores > 0 {
			verdict = "loaded pass, for information"
		}
		if _, err := fmt.Fprintf(w, "%s: %.2f× b2sum median (%.2f–%.2f over %d rounds; goal ≤ %.2f× quiet), %.1f MiB peak RSS (goal < 64 MiB): %s\n",
			name, x.Median, x.Min, x.Max, len(m.Ratios), MaxRatio, float64(m.MaxRSSKiB)/1024, verdict); err != nil {
			return err
		}
	}
	return nil
}
