//go:build mage

package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/verify"
	"github.com/socioprophet/sourceos/internal/verify/gcsobject"
)

// Sign signs an artifact (or, with TARGET=netboot, a netboot-manifest.json and its files) and writes its checksum, minisign signature and provenance beside it; STORE_PATHS adds the SBOM of the image's Nix closure.
func Sign(ctx context.Context, artifact string) error {
	a, cat, err := setupCatalog(ctx)
	if err != nil {
		return err
	}
	o, err := attest.FilesFromConfig(a.Cfg, cat, artifact, time.Now(), a.Log)
	if err != nil {
		return err
	}
	o.Run = a.Run
	res, err := attest.Files(ctx, o)
	if err != nil {
		return err
	}
	if !res.Signed {
		a.Log.Warn("no signing key set: wrote unsigned provenance (the OSImage document says unsigned)")
	}
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// Verify checks an artifact (a file, or an https:// or gs:// URL, kept in OUT once it verifies) and every sidecar with SOURCEOS_SIGN_PUBKEY; exit 1: verification failed, 2: could not verify.
func Verify(ctx context.Context, artifact string) error {
	a, err := setup()
	if err == nil {
		o := verify.FromConfig(a.Cfg, artifact, a.Stdout)
		if isTerminal(os.Stderr) && !a.Cfg.CI {
			o.Progress = a.Stderr // a download's progress line
		}
		gcs := gcsobject.New() // for gs:// URLs; no client unless one is given
		defer gcs.Close()
		o.GCS = gcs
		err = verify.Run(ctx, o)
	}
	if err != nil {
		return mg.Fatal(verify.ExitCode(err), err)
	}
	return nil
}
