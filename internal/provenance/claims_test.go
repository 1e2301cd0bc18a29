package provenance

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var testByproducts = []Byproduct{
	{Name: "sourceos-desktop-1.4.0-x86_64.iso.sbom.json", SHA256: strings.Repeat("1", 64), MediaType: MediaTypeCycloneDX},
	{Name: "sourceos-desktop-1.4.0-x86_64.iso.osimage.json", SHA256: strings.Repeat("2", 64), MediaType: MediaTypeOSImage},
}

// What SLSAPredicate records, ParsePredicate reads back: the build's
// parameters, the source at its commit and the byproducts in order.
func TestParsePredicateRoundTrip(t *testing.T) {
	b := testBuild(t)
	pred, err := SLSAPredicate(b, testByproducts...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pred), `"byproducts": [`) || !strings.Contains(string(pred), `"mediaType": "application/vnd.cyclonedx+json"`) {
		t.Fatalf("no runDetails.byproducts:\n%s", pred)
	}
	p, err := ParsePredicate(pred)
	if err != nil {
		t.Fatal(err)
	}
	want := BuildInfo{Edition: b.Edition, Arch: b.Arch, Target: b.Target, Hostname: b.Hostname, Version: b.Version,
		Channel: b.Channel, FlakeRef: b.FlakeRef, FlakeAttr: b.FlakeAttr, SourceRepo: b.SourceRepo, SourceRev: b.SourceRev,
		BuildID: b.BuildID, BuilderID: b.BuilderID}
	if !reflect.DeepEqual(p.Build, want) {
		t.Errorf("build = %+v\nwant    %+v", p.Build, want)
	}
	if !reflect.DeepEqual(p.Byproducts, testByproducts) {
		t.Errorf("byproducts = %+v", p.Byproducts)
	}
	if p.SourceURI != "git+"+b.SourceRepo+"@"+b.SourceRev {
		t.Errorf("source uri %q", p.SourceURI)
	}

	b.SourceRepo, b.SourceRev, b.Channel, b.Version = "", "", "", ""
	pred, err = SLSAPredicate(b)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = ParsePredicate(pred); err != nil || p.Build.SourceRepo != "" || p.Build.Version != "" || p.Byproducts != nil {
		t.Errorf("minimal predicate: %v %+v", err, p)
	}
}

func TestByproductsRejected(t *testing.T) {
	good := testByproducts[0]
	for name, bs := range map[string][]Byproduct{
		"no name":         {{SHA256: good.SHA256, MediaType: good.MediaType}},
		"listed twice":    {good, good},
		"uppercase hex":   {{Name: "a", SHA256: strings.ToUpper(strings.Repeat("a", 64)), MediaType: good.MediaType}},
		"short digest":    {{Name: "a", SHA256: "abc", MediaType: good.MediaType}},
		"no media type":   {{Name: "a", SHA256: good.SHA256}},
		"second no media": {good, {Name: "b", SHA256: good.SHA256}},
	} {
		if _, err := SLSAPredicate(testBuild(t), bs...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	pred, err := SLSAPredicate(testBuild(t), testByproducts...)
	if err != nil {
		t.Fatal(err)
	}
	twice := strings.Replace(string(pred), testByproducts[1].Name, testByproducts[0].Name, 1)
	if _, err := ParsePredicate([]byte(twice)); !errors.Is(err, ErrNotSLSAv1) {
		t.Errorf("byproduct named twice: %v", err)
	}
	other := strings.Replace(string(pred), BuildType, "https://example.org/other-build", 1)
	if _, err := ParsePredicate([]byte(other)); !errors.Is(err, ErrNotSLSAv1) {
		t.Errorf("foreign buildType: %v", err)
	}
}

// An OSImage document made from the same build and image passes;
// changing any claim it makes about them is reported by JSON pointer.
func TestCheckOSImageClaims(t *testing.T) {
	in := testOSImageInput(t)
	doc, err := OSImage(in)
	if err != nil {
		t.Fatal(err)
	}
	predJSON, err := SLSAPredicate(in.Build, testByproducts...)
	if err != nil {
		t.Fatal(err)
	}
	pred, err := ParsePredicate(predJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckOSImageClaims(parse(t, doc), pred, in.Image); err != nil {
		t.Fatalf("genuine document: %v", err)
	}
	ann := func(k, v string) func(m map[string]any) {
		return func(m map[string]any) { obj(m, "ociAnnotations")[k] = v }
	}
	rel := func(k, v string) func(m map[string]any) { return func(m map[string]any) { obj(m, "osRelease")[k] = v } }
	for _, tc := range []struct {
		name  string
		apply func(m map[string]any)
		at    string
	}{
		{"architecture", func(m map[string]any) { m["architecture"] = "aarch64" }, "/architecture"},
		{"artifact kind", func(m map[string]any) { m["artifact"] = "qcow2" }, "/artifact"},
		{"host profile", func(m map[string]any) { m["hostProfile"] = "builder" }, "/hostProfile"},
		{"id", func(m map[string]any) { m["id"] = "urn:srcos:osimage:sourceos-server" }, "/id"},
		{"shortId", func(m map[string]any) { m["shortId"] = "so2-workstation" }, "/shortId"},
		{"epoch", func(m map[string]any) { m["epoch"] = 1736937780 }, "/epoch"},
		{"VERSION_ID", rel("VERSION_ID", "9.9.9"), "/osRelease/VERSION_ID"},
		{"IMAGE_ID", rel("IMAGE_ID", "sourceos-server"), "/osRelease/IMAGE_ID"},
		{"IMAGE_VERSION", rel("IMAGE_VERSION", "9.9.9"), "/osRelease/IMAGE_VERSION"},
		{"BUILD_ID", rel("BUILD_ID", "other-build"), "/osRelease/BUILD_ID"},
		{"RELEASE_TYPE", rel("RELEASE_TYPE", "development"), "/osRelease/RELEASE_TYPE"},
		{"channel", ann("com.socioprophet.os.channel", "dev"), "/ociAnnotations/com.socioprophet.os.channel"},
		{"channel removed", func(m map[string]any) { delete(obj(m, "ociAnnotations"), "com.socioprophet.os.channel") }, "/ociAnnotations/com.socioprophet.os.channel"},
		{"image version", ann("org.opencontainers.image.version", "9.9.9"), "/ociAnnotations/org.opencontainers.image.version"},
		{"revision", ann("org.opencontainers.image.revision", strings.Repeat("f", 40)), "/ociAnnotations/org.opencontainers.image.revision"},
		{"source", ann("org.opencontainers.image.source", "https://example.org/fork"), "/ociAnnotations/org.opencontainers.image.source"},
		{"title", ann("org.opencontainers.image.title", "other.iso"), "/ociAnnotations/org.opencontainers.image.title"},
		{"sha256", ann(AnnotationSHA256, strings.Repeat("0", 64)), "/ociAnnotations/com.socioprophet.os.sha256"},
		{"extra annotation", ann("com.example.note", "x"), "/ociAnnotations/com.example.note"},
		{"statementRef", func(m map[string]any) {
			obj(m, "provenance")["statementRef"] = StatementURN(strings.Repeat("0", 64))
		}, "/provenance/statementRef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(doc, &m); err != nil {
				t.Fatal(err)
			}
			tc.apply(m)
			forged, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateOSImage(forged); err != nil {
				t.Fatalf("the forgery must stay schema-valid: %v", err)
			}
			err = CheckOSImageClaims(parse(t, forged), pred, in.Image)
			if err == nil || !strings.Contains(err.Error(), tc.at+" is") {
				t.Errorf("CheckOSImageClaims = %v, want a difference at %s", err, tc.at)
			}
		})
	}
}

// The predicate keeps the repository without a "git+" prefix; a document
// that kept it still matches.
func TestCheckOSImageClaimsGitPrefix(t *testing.T) {
	in := testOSImageInput(t)
	in.Build.SourceRepo = "git+ssh://git@example.org/sourceos.git"
	doc, err := OSImage(in)
	if err != nil {
		t.Fatal(err)
	}
	predJSON, err := SLSAPredicate(in.Build)
	if err != nil {
		t.Fatal(err)
	}
	pred, err := ParsePredicate(predJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckOSImageClaims(parse(t, doc), pred, in.Image); err != nil {
		t.Error(err)
	}
	pred.Build.Target = "netboot"
	if err := CheckOSImageClaims(parse(t, doc), pred, in.Image); err == nil {
		t.Error("a netboot predicate vouches for an OSImage document")
	}
}

func parse(t *testing.T, doc []byte) *OSImageDocument {
	t.Helper()
	d, err := ParseOSImage(doc)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Every document OSImage makes passes CheckOSImageClaims against the
// predicate of the same build: whatever sign emits, verify accepts.
func TestEveryOSImageVariantMatchesItsPredicate(t *testing.T) {
	for _, edition := range []string{"desktop", "server", "edge"} {
		for _, arch := range []string{"x86_64", "aarch64-linux"} {
			for _, channel := range []string{"", "stable", "dev"} {
				for _, signed := range []bool{true, false} {
					in := testOSImageInput(t)
					in.Build.Edition, in.Build.Arch, in.Build.Channel, in.Signed = edition, arch, channel, signed
					if !signed {
						in.SignatureRef = ""
					}
					in.Build.SourceRepo, in.Build.SourceRev = "", ""
					if channel == "dev" {
						in.Build.SourceRepo, in.Build.SourceRev = "https://example.org/sourceos", sourceRev
						in.SBOMRef = ""
					}
					doc, err := OSImage(in)
					if err != nil {
						t.Fatal(err)
					}
					raw, err := SLSAPredicate(in.Build)
					if err != nil {
						t.Fatal(err)
					}
					pred, err := ParsePredicate(raw)
					if err != nil {
						t.Fatal(err)
					}
					if err := CheckOSImageClaims(parse(t, doc), pred, in.Image); err != nil {
						t.Errorf("%s %s channel %q signed %t: %v", edition, arch, channel, signed, err)
					}
				}
			}
		}
	}
}
