// Package attest writes what vouches for a built artifact, beside it: its
// checksum, its minisign signature, the in-toto statement with its SLSA
// provenance predicate and DSSE envelope, the SBOM of its Nix closure and
// its OSImage document (`mage sign`, and the build pipeline's sign step).
// Each artifact is hashed once, or not at all when the build hands over the
// digests it computed while copying. One signature covers every document a
// user reads: the DSSE envelope signs the statement, whose predicate lists
// the SBOM and the OSImage document with their digests
// (runDetails.byproducts). internal/verify checks all of it.
package attest

import (
	"fmt"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/provenance"
)

// BuildInfoOptions are the parts of a build's provenance that are not in
// the configuration.
type BuildInfoOptions struct {
	StartedOn, FinishedOn time.Time
	FlakeLock             []byte
	// BuilderID defaults to LocalBuilderID.
	BuilderID string
}

// LocalBuilderID names a build made on a developer's machine.
const LocalBuilderID = "https://sourceos.dev/builders/local"

// BuildInfoFromConfig fills provenance.BuildInfo from a run's
// configuration, for `mage sign` outside the build pipeline.
func BuildInfoFromConfig(c *config.Config, o BuildInfoOptions) provenance.BuildInfo {
	builder := o.BuilderID
	if builder == "" {
		builder = LocalBuilderID
	}
	return provenance.BuildInfo{
		Edition: c.Edition, Arch: c.Arch, Target: c.Target, Hostname: c.Hostname,
		Version: c.Version, Channel: c.Channel,
		FlakeRef:   c.Flake,
		FlakeAttr:  fmt.Sprintf("packages.%s-linux.sourceos-%s-%s", c.Arch, c.Edition, c.Target),
		SourceRepo: c.SourceRepo, SourceRev: c.SourceRev, FlakeLock: o.FlakeLock,
		BuildID: c.BuildID, BuilderID: builder,
		StartedOn: o.StartedOn, FinishedOn: o.FinishedOn,
	}
}
