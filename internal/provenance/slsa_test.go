package provenance

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestSLSAPredicateIsValidV1 decodes our predicate into the official in-toto
// SLSA v1 type, rejecting unknown fields, and runs the type's own Validate.
func TestSLSAPredicateIsValidV1(t *testing.T) {
	pred, err := SLSAPredicate(testBuild(t))
	if err != nil {
		t.Fatal(err)
	}
	var p slsa.Provenance
	if err := protojson.Unmarshal(pred, &p); err != nil {
		t.Fatalf("official type rejects our predicate: %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("official Validate: %v", err)
	}
	if err := CheckSLSAPredicate(pred); err != nil {
		t.Fatalf("CheckSLSAPredicate: %v", err)
	}
	bd, rd := p.GetBuildDefinition(), p.GetRunDetails()
	if bd.GetBuildType() != BuildType {
		t.Errorf("buildType %q", bd.GetBuildType())
	}
	ext := bd.GetExternalParameters().AsMap()
	for k, want := range map[string]any{"edition": "desktop", "arch": "x86_64", "target": "iso", "hostname": "sourceos-desktop",
		"flake": map[string]any{"ref": "path:/src", "attribute": "packages.x86_64-linux.sourceos-desktop-iso"}} {
		if got, _ := json.Marshal(ext[k]); string(got) != mustJSON(t, want) {
			t.Errorf("externalParameters.%s = %s, want %s", k, got, mustJSON(t, want))
		}
	}
	if id := rd.GetBuilder().GetId(); id != "https://sourceos.dev/builders/github-actions" {
		t.Errorf("builder.id %q", id)
	}
	md := rd.GetMetadata()
	if md.GetInvocationId() != "gh-1234-1" ||
		!md.GetStartedOn().AsTime().Equal(time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)) ||
		!md.GetFinishedOn().AsTime().Equal(time.Date(2025, 1, 15, 10, 42, 7, 0, time.UTC)) {
		t.Errorf("metadata = %v", md)
	}
}

func TestSLSAPredicateResolvedDependencies(t *testing.T) {
	pred, err := SLSAPredicate(testBuild(t))
	if err != nil {
		t.Fatal(err)
	}
	var p slsa.Provenance
	if err := protojson.Unmarshal(pred, &p); err != nil {
		t.Fatal(err)
	}
	deps := p.GetBuildDefinition().GetResolvedDependencies()
	if len(deps) != 6 {
		t.Fatalf("%d resolved dependencies, want source + 5 flake inputs", len(deps))
	}
	src := deps[0]
	if src.GetUri() != "git+https://github.com/socioprophet/sourceos@"+sourceRev || src.GetDigest()["gitCommit"] != sourceRev {
		t.Errorf("source dependency = %v", src)
	}
	want := map[string][2]string{ // name -> uri, narHash
		"flake-input:nixpkgs":    {"github:NixOS/nixpkgs/1dab772dd4a68a7bba5d9460685547ff8e17d899", "sha256-ibkQrMHxF/7TqAYcQE+tAnH65izJ5bSpdmd6ypXU7s8="},
		"flake-input:wallpapers": {"tarball+https://example.org/wallpapers-1.0.tar.gz", "sha256-2jmj7l5rSw0yVb/vlWAYkK/YBwk+gJ4UmTtnXIF7zH8="},
	}
	for _, d := range deps[1:] {
		if w, ok := want[d.GetName()]; ok && (d.GetUri() != w[0] || d.GetDigest()["narHash"] != w[1]) {
			t.Errorf("%s = %v", d.GetName(), d)
		}
		if d.GetDigest()["narHash"] == "" {
			t.Errorf("%s has no narHash", d.GetName())
		}
	}
	if got := deps[3].GetDigest()["gitCommit"]; deps[3].GetName() != "flake-input:nixpkgs" || got != "1dab772dd4a68a7bba5d9460685547ff8e17d899" {
		t.Errorf("deps[3] = %v, want nixpkgs with its gitCommit", deps[3])
	}
}

func TestSLSAPredicateWithoutLockOrSource(t *testing.T) {
	b := testBuild(t)
	b.FlakeLock, b.SourceRepo, b.SourceRev = nil, "", ""
	pred, err := SLSAPredicate(b)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pred), "resolvedDependencies") {
		t.Errorf("predicate lists dependencies it cannot know:\n%s", pred)
	}
	if err := CheckSLSAPredicate(pred); err != nil {
		t.Fatal(err)
	}
}

func TestSLSAPredicateGolden(t *testing.T) {
	withBuilderVersion(t)
	a, err := SLSAPredicate(testBuild(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ { // protojson varies its output; ours must not
		b, err := SLSAPredicate(testBuild(t))
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Fatalf("run %d differs:\n%s\n%s", i, a, b)
		}
	}
	golden(t, "predicate.json", a)
}

func TestSLSAPredicateRejectsBadBuildInfo(t *testing.T) {
	for name, mutate := range map[string]func(*BuildInfo){
		"no builder id":      func(b *BuildInfo) { b.BuilderID = "" },
		"no edition":         func(b *BuildInfo) { b.Edition = "" },
		"no flake attribute": func(b *BuildInfo) { b.FlakeAttr = "" },
		"short source rev":   func(b *BuildInfo) { b.SourceRev = "4b825dc" },
		"finished early":     func(b *BuildInfo) { b.FinishedOn = b.StartedOn.Add(-time.Second) },
		"broken flake.lock":  func(b *BuildInfo) { b.FlakeLock = []byte(`{"version":7,"nodes":`) },
	} {
		b := testBuild(t)
		mutate(&b)
		if _, err := SLSAPredicate(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// v02Predicate is a SLSA provenance v0.2 predicate, shaped as the old
// pipeline wrote it and as the v0.2 spec defines it.
const v02Predicate = `{
  "builder": {"id": "https://sourceos.dev/builders/local"},
  "buildType": "https://sourceos.dev/build/nix-flake/v1",
  "invocation": {"configSource": {"uri": "git+https://github.com/socioprophet/sourceos", "digest": {"sha1": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}, "entryPoint": "sourceos-desktop-iso"}, "parameters": {"edition": "desktop"}},
  "metadata": {"buildInvocationId": "b1", "buildStartedOn": "2025-01-15T10:00:00Z", "completeness": {"parameters": true, "environment": false, "materials": false}, "reproducible": false},
  "materials": [{"uri": "git+https://github.com/socioprophet/sourceos", "digest": {"sha1": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}}]
}`

func TestCheckSLSAPredicateRejectsV02(t *testing.T) {
	good, err := SLSAPredicate(testBuild(t))
	if err != nil {
		t.Fatal(err)
	}
	type tc struct{ pred, why string }
	cases := map[string]tc{
		"v0.2 predicate":               {v02Predicate, `top-level "builder" is a SLSA v0.2 field`},
		"v1 plus top-level builder":    {addMember(t, good, "", "builder", map[string]any{"id": "x"}), `"builder" is a SLSA v0.2 field`},
		"v1 plus top-level materials":  {addMember(t, good, "", "materials", []any{}), `"materials" is a SLSA v0.2 field`},
		"v1 plus top-level invocation": {addMember(t, good, "", "invocation", map[string]any{}), `"invocation" is a SLSA v0.2 field`},
		"v1 plus top-level metadata":   {addMember(t, good, "", "metadata", map[string]any{}), `"metadata" is a SLSA v0.2 field`},
		"v1 plus metadata.completeness": {addMember(t, good, "runDetails.metadata", "completeness",
			map[string]any{"parameters": true}), `unknown field "completeness"`},
		"v1 plus metadata.reproducible": {addMember(t, good, "runDetails.metadata", "reproducible", false), `unknown field "reproducible"`},
		"v1 without builder id":         {addMember(t, good, "runDetails", "builder", map[string]any{"version": map[string]any{"a": "b"}}), "builder.id required"},
		"v1 without externalParameters": {addMember(t, good, "buildDefinition", "externalParameters", map[string]any{}), "externalParameters required"},
		"not an object":                 {`[]`, "not a JSON object"},
		"not json":                      {`{"buildDefinition":`, "not a JSON object"},
	}
	for name, c := range cases {
		err := CheckSLSAPredicate([]byte(c.pred))
		if !errors.Is(err, ErrNotSLSAv1) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: CheckSLSAPredicate = %v, want ErrNotSLSAv1 because %s", name, err, c.why)
		}
	}
}

// addMember returns doc with key set to value in the object at the dotted
// path ("" for the top level).
func addMember(t *testing.T, doc []byte, path, key string, value any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	obj := m
	if path != "" {
		for _, p := range strings.Split(path, ".") {
			obj = obj[p].(map[string]any)
		}
	}
	obj[key] = value
	return mustJSON(t, m)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A custom build's predicate says so three ways that must agree (build
// type, builder, custom parameters) and carries the user's spec, its
// digest and the artifact's catalog facts through a round trip.
func TestCustomPredicateRoundTrip(t *testing.T) {
	b := testBuild(t)
	b.BuilderID = CustomBuilderID
	b.Custom = &Custom{UID: "user-7", BuildID: "build-42", SpecSHA256: strings.Repeat("ab", 32),
		Spec: []byte(`{"edition":"desktop","packages":["htop"]}`), ModuleSnippet: "{ ... }: { }"}
	b.Artifact = ArtifactFacts{ID: "sourceos-desktop-iso", HostProfile: "workstation", Capabilities: []string{"nix-store", "gnome"}}
	pred, err := SLSAPredicate(b)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePredicate(pred)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, pred)
	}
	c := p.Build.Custom
	if c == nil || c.UID != "user-7" || c.BuildID != "build-42" || c.SpecSHA256 != strings.Repeat("ab", 32) ||
		c.ModuleSnippet != "{ ... }: { }" || !strings.Contains(string(c.Spec), `"htop"`) {
		t.Errorf("custom read back %+v", c)
	}
	if a := p.Build.Artifact; a.ID != "sourceos-desktop-iso" || a.HostProfile != "workstation" || len(a.Capabilities) != 2 {
		t.Errorf("artifact facts read back %+v", a)
	}
	if !strings.Contains(string(pred), CustomBuildType) {
		t.Errorf("predicate lacks the custom build type:\n%s", pred)
	}
}

// Build information that mixes the kinds makes no predicate, and a
// predicate that mixes them does not parse.
func TestCustomAndReleaseDoNotMix(t *testing.T) {
	b := testBuild(t)
	b.Custom = &Custom{UID: "u", BuildID: "b", SpecSHA256: strings.Repeat("ab", 32), Spec: []byte(`{}`)}
	if _, err := SLSAPredicate(b); err == nil {
		t.Error("custom parameters with a release builder made a predicate")
	}
	b.BuilderID = CustomBuilderID
	pred, err := SLSAPredicate(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, forged := range map[string]string{
		"release type":    strings.Replace(string(pred), CustomBuildType, BuildType, 1),
		"release builder": strings.Replace(string(pred), CustomBuilderID, "https://sourceos.dev/builders/local", 1),
	} {
		if _, err := ParsePredicate([]byte(forged)); err == nil || !strings.Contains(err.Error(), "disagree") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
