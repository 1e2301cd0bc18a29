// Package provenance builds and checks the documents that describe a SourceOS
// image: the in-toto Statement v1 with its SLSA provenance v1 predicate, the
// CycloneDX 1.6 SBOM of the image's Nix closure, and the OSImage document
// (sourceos-spec v2). It performs no I/O beyond parsing the bytes it is given;
// callers write the results where they belong.
package provenance

import (
	"encoding/json"
	"time"
)

// Subject is an artifact named in a statement. Digests are lowercase hex.
type Subject struct {
	Name           string
	SHA256, SHA512 string
}

// BuildInfo describes one build: what was asked for, from which source, by
// which builder and when.
type BuildInfo struct {
	Edition, Arch, Target, Hostname, Version, Channel string
	// FlakeRef and FlakeAttr name what was built, e.g. "path:/src" and
	// "packages.x86_64-linux.sourceos-desktop-iso".
	FlakeRef, FlakeAttr   string
	SourceRepo, SourceRev string
	// FlakeLock holds the contents of flake.lock, nil if there is none.
	FlakeLock []byte
	// BuildID identifies this invocation; BuilderID is a URI naming the builder.
	BuildID, BuilderID    string
	StartedOn, FinishedOn time.Time
	// Rebuild is the outcome of building the image derivation a second
	// time, nil when no rebuild check ran.
	Rebuild *RebuildCheck
	// Custom describes a self-serve custom build; nil for a release.
	Custom *Custom
	// Artifact is what the catalog says of the artifact built.
	Artifact ArtifactFacts
}

// ArtifactFacts are the catalog's facts about an artifact that its
// provenance records (externalParameters.artifact), so that the OSImage
// document can be checked against the signed statement alone.
type ArtifactFacts struct {
	// ID is the catalog's instance id, e.g. sourceos-desktop-iso.
	ID string
	// HostProfile and Capabilities are the OSImage host profile and
	// substrate capabilities.
	HostProfile  string
	Capabilities []string
}

// Custom is what makes a build a self-serve custom build: who asked for
// it, which build it is and what was asked for. Its provenance has
// CustomBuildType and CustomBuilderID and records all of it, so the
// signature covers the user's customisation and nothing about it can pass
// for a release.
type Custom struct {
	// UID is the user the build belongs to; BuildID the build.
	UID, BuildID string
	// SpecSHA256 is the SHA-256 (lowercase hex) of the spec as received.
	SpecSHA256 string
	// Spec is the normalised spec the build used: a JSON object.
	Spec json.RawMessage
	// ModuleSnippet is the spec's NixOS module snippet, "" for none.
	ModuleSnippet string
}

// RebuildCheck is what building the image derivation once more found: the
// predicate lists it in runDetails.byproducts (RebuildCheckName), so the
// signature covers it, and the OSImage document repeats the outcome in
// AnnotationReproducible.
type RebuildCheck struct {
	// Method is how the second build was made ("nix build --rebuild").
	Method string
	// Output is the store path that was built again.
	Output string
	// Reproducible is true when the second build gave the same bytes.
	Reproducible bool
	// DifferingOutput is the output whose second build differed; set
	// exactly when Reproducible is false.
	DifferingOutput string
}

// StorePath is one path of a Nix closure as `nix path-info` reports it.
// NarHash is "sha256:<nix32>"; References and Deriver are full store paths.
type StorePath struct {
	Path       string
	NarHash    string
	NarSize    uint64
	References []string
	Deriver    string
}

// Statement and predicate type URIs.
const (
	StatementType     = "https://in-toto.io/Statement/v1"
	SLSAPredicateType = "https://slsa.dev/provenance/v1"
	// BuildType names our build process: evaluating a flake attribute and
	// building it with Nix. Its external parameters are documented in
	// the README section "Provenance".
	BuildType = "https://sourceos.dev/build/nix-flake/v1"
	// CustomBuildType names a self-serve custom build: a fixed flake that
	// reads the user's spec as data, built with the sourceos input set to
	// externalParameters.flake.ref. Its externalParameters.custom holds
	// the user, the build and the spec.
	CustomBuildType = "https://sourceos.dev/build/nix-custom/v1"
	// CustomBuilderID is the builder id of custom builds: user-supplied
	// code built on a machine without keys, signed by a separate trusted
	// step.
	CustomBuilderID = "https://sourceos.dev/builders/custom"
)

// Byproduct is a document made by the build that the predicate lists in
// runDetails.byproducts, so that the signature over the statement covers
// it: its file name, SHA-256 (lowercase hex) and media type.
type Byproduct struct {
	Name, SHA256, MediaType string
}

// Media types of the byproducts we list.
const (
	MediaTypeCycloneDX = "application/vnd.cyclonedx+json"
	MediaTypeOSImage   = "application/json"
)

// Predicate is what a checked SLSA predicate records that verification
// compares other documents with. Build holds the fields the predicate
// carries: Edition, Arch, Target, Hostname, Version and Channel (external
// parameters), FlakeRef and FlakeAttr, SourceRepo and SourceRev (from the
// "source" dependency; a "git+" prefix of the repository is not kept),
// BuildID (invocationId) and BuilderID.
type Predicate struct {
	Build BuildInfo
	// SourceURI is the source dependency's uri as recorded, "" if none.
	SourceURI  string
	Byproducts []Byproduct
}

// ParsedStatement is the part of a checked statement callers need.
type ParsedStatement struct {
	Subjects      []Subject
	PredicateType string
	Predicate     []byte
}

// OSImageInput is everything the OSImage document is made from.
type OSImageInput struct {
	Build BuildInfo
	Image Subject
	// Signed states whether the image carries a signature; it is written
	// explicitly into the document, never inferred.
	Signed bool
	// StatementRef and SLSAPredicateRef locate the statement and predicate
	// sidecars (file names or URLs); SBOMRef and SignatureRef likewise, and
	// may be empty when there is no SBOM or no signature.
	StatementRef, SLSAPredicateRef, SBOMRef, SignatureRef string
	Created                                               time.Time
}
