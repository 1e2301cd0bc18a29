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

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/strictjson"
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
// byproducts, in the order given, become runDetails.byproducts: a
// signature over a statement carrying the predicate then covers them.
func SLSAPredicate(b BuildInfo, byproducts ...Byproduct) ([]byte, error) {
	p, err := provenanceOf(b)
	if err != nil {
		return nil, err
	}
	if p.RunDetails.Byproducts, err = byproductDescriptors(byproducts); err != nil {
		return nil, err
	}
	if b.Rebuild != nil {
		rd, err := rebuildDescriptor(*b.Rebuild)
		if err != nil {
			return nil, err
		}
		p.RunDetails.Byproducts = append(p.RunDetails.Byproducts, rd)
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
	params, err := externalParameters(b)
	if err != nil {
		return nil, err
	}
	ext, err := structpb.NewStruct(params)
	if err != nil {
		return nil, fmt.Errorf("slsa predicate: external parameters: %w", err)
	}
	deps, err := resolvedDependencies(b)
	if err != nil {
		return nil, err
	}
	return &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            buildTypeOf(b),
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
	what := b.Edition // an edition's artifact, or the catalog's artifact of no edition
	if what == "" {
		what = b.Artifact.ID
	}
	for name, v := range map[string]string{
		"Edition (or Artifact.ID)": what, "Arch": b.Arch, "Target": b.Target,
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
	if (b.Custom != nil) != (b.BuilderID == CustomBuilderID) {
		return fmt.Errorf("slsa predicate: builder %q for a build that is %s", b.BuilderID, map[bool]string{true: "custom", false: "not custom"}[b.Custom != nil])
	}
	if b.Custom != nil {
		if err := checkCustom(b.Custom); err != nil {
			return fmt.Errorf("slsa predicate: custom build: %w", err)
		}
	}
	if !b.StartedOn.IsZero() && !b.FinishedOn.IsZero() && b.FinishedOn.Before(b.StartedOn) {
		return fmt.Errorf("slsa predicate: finishedOn %s is before startedOn %s",
			b.FinishedOn.UTC().Format(time.RFC3339), b.StartedOn.UTC().Format(time.RFC3339))
	}
	return nil
}

// buildTypeOf is CustomBuildType for a custom build, else BuildType.
func buildTypeOf(b BuildInfo) string {
	if b.Custom != nil {
		return CustomBuildType
	}
	return BuildType
}

// checkCustom requires every fact of a custom build.
func checkCustom(c *Custom) error {
	switch {
	case c.UID == "" || c.BuildID == "":
		return errors.New("user and build id are required")
	case !sha256RE.MatchString(c.SpecSHA256):
		return fmt.Errorf("spec sha256 %q is not 64 lowercase hex digits", c.SpecSHA256)
	}
	var obj map[string]any
	if err := json.Unmarshal(c.Spec, &obj); err != nil {
		return fmt.Errorf("the normalised spec is not a JSON object: %w", err)
	}
	return nil
}

// customParameters is externalParameters.custom.
func customParameters(c *Custom) (map[string]any, error) {
	var spec map[string]any
	if err := json.Unmarshal(c.Spec, &spec); err != nil {
		return nil, fmt.Errorf("slsa predicate: custom spec: %w", err)
	}
	m := map[string]any{"user": c.UID, "buildId": c.BuildID, "specSha256": c.SpecSHA256, "spec": spec}
	if c.ModuleSnippet != "" {
		m["moduleSnippet"] = c.ModuleSnippet
	}
	return m, nil
}

// externalParameters are the inputs a user of the build controls.
func externalParameters(b BuildInfo) (map[string]any, error) {
	m := map[string]any{
		"arch":   b.Arch,
		"target": b.Target,
		"flake":  map[string]any{"ref": b.FlakeRef, "attribute": b.FlakeAttr},
	}
	for k, v := range map[string]string{"edition": b.Edition, "hostname": b.Hostname, "version": b.Version, "channel": b.Channel} {
		if v != "" {
			m[k] = v
		}
	}
	if b.Custom != nil {
		c, err := customParameters(b.Custom)
		if err != nil {
			return nil, err
		}
		m["custom"] = c
	}
	if a := artifactParameters(b.Artifact); a != nil {
		m["artifact"] = a
	}
	return m, nil
}

// artifactParameters is externalParameters.artifact, nil when the build
// info has no catalog facts.
func artifactParameters(a ArtifactFacts) map[string]any {
	if a.ID == "" && a.HostProfile == "" && len(a.Capabilities) == 0 {
		return nil
	}
	caps := make([]any, len(a.Capabilities))
	for i, c := range a.Capabilities {
		caps[i] = c
	}
	m := map[string]any{"id": a.ID, "hostProfile": a.HostProfile}
	if len(caps) > 0 {
		m["capabilities"] = caps
	}
	return m
}

// readArtifact reads externalParameters.artifact.
func readArtifact(v *structpb.Value) (ArtifactFacts, error) {
	fields := v.GetStructValue().GetFields()
	if fields == nil {
		return ArtifactFacts{}, errors.New("not an object")
	}
	var a ArtifactFacts
	if err := stringField(fields, "id", &a.ID); err != nil {
		return a, err
	}
	if err := stringField(fields, "hostProfile", &a.HostProfile); err != nil {
		return a, err
	}
	if c, ok := fields["capabilities"]; ok {
		for _, item := range c.GetListValue().GetValues() {
			s, ok := item.GetKind().(*structpb.Value_StringValue)
			if !ok {
				return a, errors.New("capabilities: not a list of strings")
			}
			a.Capabilities = append(a.Capabilities, s.StringValue)
		}
	}
	return a, nil
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
	inputs, err := catalog.ParseFlakeLock(b.FlakeLock)
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
func inputDependency(in catalog.LockedInput) (*ita.ResourceDescriptor, error) {
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

func byproductDescriptors(bs []Byproduct) ([]*ita.ResourceDescriptor, error) {
	var out []*ita.ResourceDescriptor
	seen := map[string]bool{}
	for _, b := range bs {
		if err := checkByproduct(b, seen); err != nil {
			return nil, fmt.Errorf("slsa predicate: %w", err)
		}
		out = append(out, &ita.ResourceDescriptor{Name: b.Name, Digest: map[string]string{"sha256": b.SHA256}, MediaType: b.MediaType})
	}
	return out, nil
}

// checkByproduct requires a name not in seen (then adds it), a lowercase
// hex SHA-256 and a media type.
func checkByproduct(b Byproduct, seen map[string]bool) error {
	switch {
	case b.Name == "":
		return errors.New("byproduct without a name")
	case b.Name == RebuildCheckName:
		return fmt.Errorf("byproduct %q is the rebuild check's name", b.Name)
	case seen[b.Name]:
		return fmt.Errorf("byproduct %q listed twice", b.Name)
	case !sha256RE.MatchString(b.SHA256):
		return fmt.Errorf("byproduct %q: sha256 %q is not 64 lowercase hex digits", b.Name, b.SHA256)
	case b.MediaType == "":
		return fmt.Errorf("byproduct %q has no mediaType", b.Name)
	}
	seen[b.Name] = true
	return nil
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
// unknown fields anywhere, and the in-toto types' own Validate passes. It
// is read strictly (no key twice or in two cases, see strictjson) and must
// be in the form the official type writes, so that a parser other than
// protojson (which also takes proto field names such as
// "build_definition") reads the same predicate.
func CheckSLSAPredicate(predicate []byte) error {
	_, err := parseSLSA(predicate)
	return err
}

func parseSLSA(predicate []byte) (*slsa.Provenance, error) {
	top, err := objectKeys(predicate)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSLSAv1, err)
	}
	for _, k := range v02Fields {
		if _, ok := top[k]; ok {
			return nil, fmt.Errorf("%w: top-level %q is a SLSA v0.2 field", ErrNotSLSAv1, k)
		}
	}
	if err := strictjson.Check(predicate); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSLSAv1, err)
	}
	var p slsa.Provenance
	if err := protojson.Unmarshal(predicate, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSLSAv1, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSLSAv1, err)
	}
	if err := officialForm(predicate, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSLSAv1, err)
	}
	return &p, nil
}

// ParsePredicate checks predicate (see CheckSLSAPredicate), requires our
// buildType and returns what it records about the build and its
// byproducts.
func ParsePredicate(predicate []byte) (*Predicate, error) {
	p, err := parseSLSA(predicate)
	if err != nil {
		return nil, err
	}
	bd, rd := p.GetBuildDefinition(), p.GetRunDetails()
	if t := bd.GetBuildType(); t != BuildType && t != CustomBuildType {
		return nil, fmt.Errorf("%w: buildType %q, want %q or %q", ErrNotSLSAv1, t, BuildType, CustomBuildType)
	}
	out := &Predicate{Build: BuildInfo{
		BuildID: rd.GetMetadata().GetInvocationId(), BuilderID: rd.GetBuilder().GetId(),
	}}
	if err := readExternalParameters(bd.GetExternalParameters(), &out.Build); err != nil {
		return nil, fmt.Errorf("%w: externalParameters: %w", ErrNotSLSAv1, err)
	}
	if err := checkKind(bd.GetBuildType(), out.Build); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSLSAv1, err)
	}
	if err := readSource(bd.GetResolvedDependencies(), out); err != nil {
		return nil, fmt.Errorf("%w: resolvedDependencies: %w", ErrNotSLSAv1, err)
	}
	if out.Byproducts, err = readByproducts(rd.GetByproducts(), out); err != nil {
		return nil, fmt.Errorf("%w: byproducts: %w", ErrNotSLSAv1, err)
	}
	return out, nil
}

func readExternalParameters(ext *structpb.Struct, b *BuildInfo) error {
	fields := ext.GetFields()
	for name, dst := range map[string]*string{
		"edition": &b.Edition, "arch": &b.Arch, "target": &b.Target,
		"hostname": &b.Hostname, "version": &b.Version, "channel": &b.Channel,
	} {
		if err := stringField(fields, name, dst); err != nil {
			return err
		}
	}
	flake := fields["flake"].GetStructValue().GetFields()
	if err := stringField(flake, "ref", &b.FlakeRef); err != nil {
		return fmt.Errorf("flake: %w", err)
	}
	if err := stringField(flake, "attribute", &b.FlakeAttr); err != nil {
		return err
	}
	if v, ok := fields["artifact"]; ok {
		a, err := readArtifact(v)
		if err != nil {
			return fmt.Errorf("artifact: %w", err)
		}
		b.Artifact = a
	}
	if v, ok := fields["custom"]; ok {
		c, err := readCustom(v)
		if err != nil {
			return fmt.Errorf("custom: %w", err)
		}
		b.Custom = c
	}
	return nil
}

// readCustom reads externalParameters.custom as customParameters writes it.
func readCustom(v *structpb.Value) (*Custom, error) {
	fields := v.GetStructValue().GetFields()
	if fields == nil {
		return nil, errors.New("not an object")
	}
	c := &Custom{}
	for name, dst := range map[string]*string{"user": &c.UID, "buildId": &c.BuildID, "specSha256": &c.SpecSHA256, "moduleSnippet": &c.ModuleSnippet} {
		if err := stringField(fields, name, dst); err != nil {
			return nil, err
		}
	}
	spec, ok := fields["spec"]
	if !ok || spec.GetStructValue() == nil {
		return nil, errors.New("spec is missing or not an object")
	}
	raw, err := protojson.Marshal(spec.GetStructValue())
	if err != nil {
		return nil, err
	}
	if c.Spec, err = canonical(raw); err != nil {
		return nil, err
	}
	return c, checkCustom(c)
}

// checkKind requires a predicate to say the same thing three ways: a
// custom build has the custom build type, the custom builder and its
// custom parameters; a release has none of them.
func checkKind(buildType string, b BuildInfo) error {
	custom := buildType == CustomBuildType
	if custom == (b.BuilderID == CustomBuilderID) && custom == (b.Custom != nil) {
		return nil
	}
	return fmt.Errorf("buildType %q, builder %q and custom parameters (%t) disagree on whether this is a custom build",
		buildType, b.BuilderID, b.Custom != nil)
}

// stringField sets *dst to fields[name], which must be a string if present.
func stringField(fields map[string]*structpb.Value, name string, dst *string) error {
	v, ok := fields[name]
	if !ok {
		return nil
	}
	s, ok := v.GetKind().(*structpb.Value_StringValue)
	if !ok {
		return fmt.Errorf("%s is not a string", name)
	}
	*dst = s.StringValue
	return nil
}

// readSource reads the dependency named "source", as sourceDependency
// writes it.
func readSource(deps []*ita.ResourceDescriptor, out *Predicate) error {
	found := false
	for _, d := range deps {
		if d.GetName() != "source" {
			continue
		}
		if found {
			return errors.New(`two dependencies named "source"`)
		}
		found = true
		rev := d.GetDigest()[string(ita.AlgorithmGitCommit)]
		repo := strings.TrimPrefix(d.GetUri(), "git+")
		if rev != "" {
			repo = strings.TrimSuffix(repo, "@"+rev)
		}
		out.SourceURI, out.Build.SourceRev, out.Build.SourceRepo = d.GetUri(), rev, repo
	}
	return nil
}

func readByproducts(rds []*ita.ResourceDescriptor, pred *Predicate) ([]Byproduct, error) {
	var out []Byproduct
	seen := map[string]bool{}
	for i, rd := range rds {
		if rd.GetName() == RebuildCheckName {
			if pred.Build.Rebuild != nil {
				return nil, fmt.Errorf("[%d]: %s listed twice", i, RebuildCheckName)
			}
			rc, err := readRebuildDescriptor(rd)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			pred.Build.Rebuild = rc
			continue
		}
		b := Byproduct{Name: rd.GetName(), SHA256: rd.GetDigest()["sha256"], MediaType: rd.GetMediaType()}
		if err := checkByproduct(b, seen); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, b)
	}
	return out, nil
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
