// Package attest writes what vouches for a built artifact, beside it: its
// checksum, its minisign signature, the in-toto statement with its SLSA
// provenance predicate and DSSE envelope, the SBOM of its Nix closure and
// its OSImage document (`mage sign`, the build pipeline's attest step and
// the custom lane's trusted signer). Each artifact is hashed once, or not
// at all when the build hands over the digests it computed while copying.
// One signature covers every document a user reads: the DSSE envelope
// signs the statement, whose predicate lists the SBOM and the OSImage
// document with their digests (runDetails.byproducts). internal/verify
// checks all of it.
package attest

import (
	"time"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/provenance"
)

// LocalBuilderID names a build made by this pipeline on a machine that
// holds the keys (a laptop, an edition or release job).
const LocalBuilderID = "https://sourceos.dev/builders/local"

// CustomChannel is the channel recorded for a custom build.
const CustomChannel = "custom"

// Facts are what a build's provenance is made from besides the run's
// configuration.
type Facts struct {
	// Instance is the catalog's artifact that was built.
	Instance catalog.Instance
	// Hostname of the built system; "": the instance's default.
	Hostname string
	// Custom describes a custom build; nil for a release.
	Custom *provenance.Custom
	// StartedOn and FinishedOn bound the build; Rebuild is the outcome
	// of the rebuild check, nil when none ran.
	StartedOn, FinishedOn time.Time
	Rebuild               *provenance.RebuildCheck
}

// BuildInfo is the provenance's build facts, made the same way for every
// path that signs (the build pipeline, `mage sign`, the custom lane's
// signer): the flake reference normalised (catalog.FlakeRef), its
// flake.lock when it is local, the attribute and the artifact's facts from
// the catalog, the rest from the configuration. A custom build gets the
// custom builder and channel.
func BuildInfo(cfg *config.Config, f Facts) provenance.BuildInfo {
	in := f.Instance
	hostname := f.Hostname
	if hostname == "" {
		hostname = in.Hostname()
	}
	info := provenance.BuildInfo{
		Edition: in.EditionName(), Arch: in.Arch, Target: string(in.Kind()), Hostname: hostname,
		Version: cfg.Version, Channel: cfg.Channel,
		FlakeRef: catalog.FlakeRef(cfg.Flake), FlakeAttr: in.Attr(),
		SourceRepo: cfg.SourceRepo, SourceRev: cfg.SourceRev,
		BuildID: cfg.BuildID, BuilderID: LocalBuilderID,
		StartedOn: f.StartedOn, FinishedOn: f.FinishedOn, Rebuild: f.Rebuild,
		Artifact: provenance.ArtifactFacts{ID: in.ID(), HostProfile: in.HostProfile(), Capabilities: in.Capabilities()},
	}
	if f.Custom != nil {
		info.Custom, info.BuilderID, info.Channel = f.Custom, provenance.CustomBuilderID, CustomChannel
		info.BuildID = f.Custom.BuildID
	}
	if lock, err := catalog.ReadLock(info.FlakeRef); err == nil {
		info.FlakeLock = lock
	}
	return info
}
