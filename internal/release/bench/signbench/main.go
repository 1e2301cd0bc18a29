// Command signbench runs `mage sign` and `mage verify`'s code (the release
// package's commands, configured from the environment as mage targets are)
// as a process of its own, so the benchmark can measure its wall time and
// peak RSS apart from the harness. Usage: signbench sign|verify <artifact>.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/socioprophet/sourceos/internal/app"
	"github.com/socioprophet/sourceos/internal/release"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: signbench sign|verify <artifact>")
		os.Exit(release.ExitCannotVerify)
	}
	a, err := app.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(release.ExitCannotVerify)
	}
	ctx := context.Background()
	switch os.Args[1] {
	case "sign":
		err = release.SignCommand(ctx, a, os.Args[2])
		if err != nil {
			fmt.Fprintln(a.Stderr, err)
			os.Exit(1)
		}
	case "verify":
		if err = release.VerifyCommand(ctx, a, os.Args[2]); err != nil {
			fmt.Fprintln(a.Stderr, err)
			os.Exit(release.ExitCode(err))
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: signbench sign|verify <artifact>")
		os.Exit(release.ExitCannotVerify)
	}
}
