package provenance

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	ita "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ErrNotSLSAv1 is wrapped by every error CheckSLSAPredicate returns.
var ErrNotSLSAv1 = errors.New("not a SLSA provenance v1 predicate")

// v02Fields are members of the SLSA v0.2 predicate that have no place in v1.
var v02Fields = []string{"builder", "buildType", "invocation", "buildConfig", "materials", "metadata"}

// gitCommitRE matches a full SHA-1 git commit id.
var gitCommitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// builderVersion is recorded as runDetails.builder.version; it is the
// version of this module as stamped into the running binary.
var builderVersion = moduleVersion()

func moduleVersion() map[string]string {
	v := map[string]string{"github.com/socioprophet/sourceos": "(devel)"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v["github.com/socioprophet/sourceos"] = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v["vcs.revision"] = s.Value
		}
	}
	return v
}

// SLSAPredicate returns the SLSA provenance v1 predicate for b as JSON,
// built from the official in-toto types and checked with their Validate.
func SLSAPredicate(b BuildInfo) ([]byte, error) {
	p, err := provenanceOf(b)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("slsa predicate: %w", err)
	}
	raw, err := protojson.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("slsa predicate: marshal: %w", err)
	}
	return canonical(raw)
}

func provenanceOf(b BuildInfo) (*slsa.Provenance, error) {
	if err := checkBuildInfo(b); err != nil {
		return nil, err
	}
	ext, err := structpb.NewStruct(externalParameters(b))
	if err != nil {
		return nil, fmt.Errorf("slsa predicate: external parameters: %w", err)
	}
	deps, err := resolvedDependencies(b)
	if err != nil {
		return nil, err
	}
	return &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   ext,
			ResolvedDependencies: deps,
		},
		RunDetails: &slsa.RunDetails{
			Builder:  &slsa.Builder{Id: b.BuilderID, Version: builderVersion},
			Metadata: buildMetadata(b),
		},
	}, nil
}

// checkBuildInfo rejects a BuildInfo that cannot make honest provenance.
func checkBuildInfo(b BuildInfo) error {
	missing := []string{}
	for name, v := range map[string]string{
		"Edition": b.Edition, "Arch": b.Arch, "Target": b.Target,
		"FlakeRef": b.FlakeRef, "FlakeAttr": b.FlakeAttr, "BuilderID": b.BuilderID,
	} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sortStrings(missing)
		return fmt.Errorf("slsa predicate: build info lacks %s", strings.Join(missing, ", "))
	}
	if !b.StartedOn.IsZero() && !b.FinishedOn.IsZero() && b.FinishedOn.Before(b.StartedOn) {
		return fmt.Errorf("slsa predicate: finishedOn %s is before startedOn %s",
			b.FinishedOn.UTC().Format(time.RFC3339), b.StartedOn.UTC().Format(time.RFC3339))
	}
	return nil
}

// externalParameters are the inputs a user of the build controls.
func externalParameters(b BuildInfo) map[string]any {
	m := map[string]any{
		"edition": b.Edition,
		"arch":    b.Arch,
		"target":  b.Target,
		"flake":   map[string]any{"ref": b.FlakeRef, "attribute": b.FlakeAttr},
	}
	for k, v := range map[string]string{"hostname": b.Hostname, "version": b.Version, "channel": b.Channel} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// resolvedDependencies are the source repository at its commit followed by
// the flake.lock inputs, in lock-file node order.
func resolvedDependencies(b BuildInfo) ([]*ita.ResourceDescriptor, error) {
	var deps []*ita.ResourceDescriptor
	src, err := sourceDependency(b.SourceRepo, b.SourceRev)
	if err != nil {
		return nil, err
	}
	if src != nil {
		deps = append(deps, src)
	}
	if b.FlakeLock == nil {
		return deps, nil
	}
	inputs, err := ParseFlakeLock(b.FlakeLock)
	if err != nil {
		return nil, fmt.Errorf("slsa predicate: %w", err)
	}
	for _, in := range inputs {
		rd, err := inputDependency(in)
		if err != nil {
			return nil, fmt.Errorf("slsa predicate: flake input %s: %w", in.Node, err)
		}
		deps = append(deps, rd)
	}
	return deps, nil
}

// sourceDependency names the source repository at its commit, SLSA-style:
// uri "git+<repo>@<rev>", digest gitCommit. A revision that is not a full
// commit id is refused rather than recorded unverifiably.
func sourceDependency(repo, rev string) (*ita.ResourceDescriptor, error) {
	if repo == "" && rev == "" {
		return nil, nil
	}
	rev = strings.ToLower(rev)
	if rev != "" && !gitCommitRE.MatchString(rev) {
		return nil, fmt.Errorf("slsa predicate: source revision %q is not a full 40-hex git commit id", rev)
	}
	rd := &ita.ResourceDescriptor{Name: "source"}
	if repo != "" {
		rd.Uri = "git+" + strings.TrimPrefix(repo, "git+")
		if rev != "" {
			rd.Uri += "@" + rev
		}
	}
	if rev != "" {
		rd.Digest = map[string]string{string(ita.AlgorithmGitCommit): rev}
	}
	return rd, nil
}

// inputDependency records one locked flake input. The lock file's narHash
// is kept verbatim (SRI form) under the digest key "narHash", so it compares
// directly with `nix flake metadata`; gitCommit is added for git revisions.
func inputDependency(in LockedInput) (*ita.ResourceDescriptor, error) {
	digest := map[string]string{"narHash": in.NarHash}
	if gitCommitRE.MatchString(in.Rev) {
		digest[string(ita.AlgorithmGitCommit)] = in.Rev
	}
	ann := map[string]any{"flakeInput": in.Node, "type": in.Type}
	if in.LastModified != 0 {
		ann["lastModified"] = float64(in.LastModified)
	}
	if in.Ref != "" {
		ann["ref"] = in.Ref
	}
	annotations, err := structpb.NewStruct(ann)
	if err != nil {
		return nil, err
	}
	return &ita.ResourceDescriptor{
		Name:        "flake-input:" + in.Node,
		Uri:         in.URI(),
		Digest:      digest,
		Annotations: annotations,
	}, nil
}

func buildMetadata(b BuildInfo) *slsa.BuildMetadata {
	md := &slsa.BuildMetadata{InvocationId: b.BuildID}
	if !b.StartedOn.IsZero() {
		md.StartedOn = timestamppb.New(b.StartedOn.UTC())
	}
	if !b.FinishedOn.IsZero() {
		md.FinishedOn = timestamppb.New(b.FinishedOn.UTC())
	}
	return md
}

// CheckSLSAPredicate checks that predicate has the SLSA provenance v1
// layout: only buildDefinition and runDetails at the top level (v0.2 fields
// such as builder, invocation and materials are rejected by name), no
// unknown fields anywhere, and the in-toto types' own Validate passes.
func CheckSLSAPredicate(predicate []byte) error {
	top, err := objectKeys(predicate)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotSLSAv1, err)
	}
	for _, k := range v02Fields {
		if _, ok := top[k]; ok {
			return fmt.Errorf("%w: top-level %q is a SLSA v0.2 field", ErrNotSLSAv1, k)
		}
	}
	var p slsa.Provenance
	if err := protojson.Unmarshal(predicate, &p); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSLSAv1, err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSLSAv1, err)
	}
	return nil
}

// predicateStruct parses predicate JSON into the Struct a Statement holds.
func predicateStruct(predicate []byte) (*structpb.Struct, error) {
	if !json.Valid(predicate) {
		return nil, errors.New("predicate is not valid JSON")
	}
	var s structpb.Struct
	if err := protojson.Unmarshal(predicate, &s); err != nil {
		return nil, fmt.Errorf("predicate: %w", err)
	}
	return &s, nil
}
