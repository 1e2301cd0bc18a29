//go:build mage

package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/release"
)

// Release lays out a release for users to download.
type Release mg.Namespace

// Prepare verifies every artifact in OUT, writes and signs SHA256SUMS, publishes files GitHub does not take (2 GiB and over) to GCS_PREFIX with their sidecars, and lays out OUT/assets and OUT/release-notes.md for the GitHub release.
func (Release) Prepare(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	c := a.Cfg
	plan, err := release.Prepare(ctx, release.Options{Dir: c.Out, Tag: c.Version, PublicKey: c.SignPubKey,
		SecretKey: c.SignSecretKey, Password: c.SignPassword, BuildID: c.BuildID, GCSPrefix: c.GCSPrefix,
		Now: time.Now, Log: a.Log})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(plan)
}
