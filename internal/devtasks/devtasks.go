// Package devtasks holds the developer targets: the test suite and checks
// that are run on the repository itself.
package devtasks

import (
	"context"
	"fmt"
	"io"

	"github.com/socioprophet/sourceos/internal/execx"
)

// TestCommands is the whole test suite, in order: vet (the magefiles too,
// which carry the mage build tag), then every test with real Nix, minisign
// and the GCS emulator.
func TestCommands(goBin string) []execx.Cmd {
	return []execx.Cmd{
		{Name: goBin, Args: []string{"vet", "./..."}},
		{Name: goBin, Args: []string{"vet", "-tags", "mage", "./magefiles/"}},
		{Name: goBin, Args: []string{"test", "-count=1", "-timeout=40m", "./..."}},
	}
}

// Test runs the test suite, streaming its output to w.
func Test(ctx context.Context, run execx.Runner, goBin string, w io.Writer) error {
	for _, c := range TestCommands(goBin) {
		c.Stdout, c.Stderr = w, w
		if _, err := run.Run(ctx, c); err != nil {
			return fmt.Errorf("test suite: %w", err)
		}
	}
	return nil
}
