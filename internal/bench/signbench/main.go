// Command signbench runs `mage sign` and `mage verify`'s code, configured
// from the environment as the targets are, as a process of its own, so the
// benchmark can measure its wall time and peak RSS apart from the harness.
// `signbench blake2b <file>` hashes the file with our BLAKE2b-512 alone and
// prints it as b2sum does: the floor of our own hash.
// Usage: signbench sign|verify|blake2b <artifact>.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/verify"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: signbench sign|verify|blake2b <artifact>")
		os.Exit(verify.ExitCannotVerify)
	}
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(verify.ExitCannotVerify)
	}
	ctx := context.Background()
	switch os.Args[1] {
	case "blake2b":
		f, err := os.Open(os.Args[2])
		var d digest.Digests
		if err == nil {
			d, err = digest.ReaderSet(f, digest.BLAKE2b512)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s  %s\n", d.BLAKE2b512Hex(), os.Args[2])
	case "sign":
		var o attest.FilesOptions
		cat, err := catalog.Resolve(ctx, &execx.Exec{}, catalog.FlakeRef(cfg.Flake), cfg.Catalog)
		if err == nil {
			o, err = attest.FilesFromConfig(cfg, cat, os.Args[2], time.Now(), slog.New(slog.DiscardHandler))
		}
		if err == nil {
			_, err = attest.Files(ctx, o)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, cfg.Redactor().String(err.Error()))
			os.Exit(1)
		}
	case "verify":
		if err := verify.Run(ctx, verify.FromConfig(cfg, os.Args[2], os.Stdout)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(verify.ExitCode(err))
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: signbench sign|verify <artifact>")
		os.Exit(verify.ExitCannotVerify)
	}
}
