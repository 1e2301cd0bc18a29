package provenance

import (
	"encoding/json"
	"errors"
	"github.com/socioprophet/sourceos/schemas"
	"strings"
	"testing"
	"time"
)

var testCreated = time.Date(2025, 1, 15, 10, 43, 0, 0, time.UTC)

func testOSImageInput(t *testing.T) OSImageInput {
	t.Helper()
	return OSImageInput{
		Build:            testBuild(t),
		Image:            testImage(),
		Signed:           true,
		StatementRef:     "https://storage.googleapis.com/sourceos/1.4.0/sourceos-desktop-1.4.0-x86_64.iso.intoto.json",
		SLSAPredicateRef: "https://storage.googleapis.com/sourceos/1.4.0/sourceos-desktop-1.4.0-x86_64.iso.slsa.json",
		SBOMRef:          "https://storage.googleapis.com/sourceos/1.4.0/sourceos-desktop-1.4.0-x86_64.iso.sbom.json",
		SignatureRef:     "https://storage.googleapis.com/sourceos/1.4.0/sourceos-desktop-1.4.0-x86_64.iso.minisig",
		Created:          testCreated,
	}
}

func TestOSImageGolden(t *testing.T) {
	doc, err := OSImage(testOSImageInput(t))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "osimage.json", doc)
}

// TestOSImageEveryVariantValidates emits documents for every edition, both
// architectures, signed and unsigned, with and without optional inputs, and
// validates each against the schema (OSImage does too; this checks again
// from the outside and checks the fields that carry meaning).
func TestOSImageEveryVariantValidates(t *testing.T) {
	profiles := map[string]string{"desktop": "workstation", "server": "vm-base", "edge": "edge-appliance"}
	for edition, profile := range profiles {
		for _, arch := range []string{"x86_64", "aarch64-linux"} {
			for _, signed := range []bool{true, false} {
				in := testOSImageInput(t)
				in.Build.Edition, in.Build.Arch, in.Signed = edition, arch, signed
				if !signed {
					in.SignatureRef, in.SBOMRef = "", ""
					in.Build.Channel, in.Build.BuildID, in.Build.SourceRepo, in.Build.SourceRev = "", "", "", ""
				}
				doc, err := OSImage(in)
				if err != nil {
					t.Fatalf("%s/%s/%v: %v", edition, arch, signed, err)
				}
				if err := ValidateOSImage(doc); err != nil {
					t.Fatalf("%s/%s/%v: %v", edition, arch, signed, err)
				}
				d, err := ParseOSImage(doc)
				if err != nil {
					t.Fatal(err)
				}
				// The compatibility epoch: every build of a profile has
				// the same shortId; the build time is the created annotation.
				if d.HostProfile != profile || d.ShortID != "so1-"+profile || d.Epoch != 1 ||
					d.OCIAnnotations["org.opencontainers.image.created"] != testCreated.UTC().Format(time.RFC3339) {
					t.Errorf("%s: hostProfile %q shortId %q epoch %d", edition, d.HostProfile, d.ShortID, d.Epoch)
				}
				if got, err := d.Signed(); err != nil || got != signed {
					t.Errorf("%s/%v: Signed() = %v, %v", edition, signed, got, err)
				}
				if (d.Provenance.SignatureRef != "") != signed {
					t.Errorf("signatureRef %q with signed=%v", d.Provenance.SignatureRef, signed)
				}
			}
		}
	}
}

func TestOSImageRefs(t *testing.T) {
	in := testOSImageInput(t)
	doc, err := OSImage(in)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseOSImage(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := d.Provenance
	if p.StatementRef != "urn:srcos:attestation:in-toto:sha256:"+imageSHA256 ||
		p.SLSAPredicateRef != "urn:srcos:slsa:provenance-v1:sha256:"+imageSHA256 ||
		p.SBOMRef != in.SBOMRef || p.SignatureRef != in.SignatureRef {
		t.Errorf("provenance = %+v", p)
	}
	if d.OCIAnnotations[AnnotationStatement] != in.StatementRef || d.OCIAnnotations[AnnotationSLSAPredicate] != in.SLSAPredicateRef {
		t.Errorf("annotations lack the statement/predicate locations: %v", d.OCIAnnotations)
	}
	if d.ID != "urn:srcos:osimage:sourceos-desktop-x86_64-1.4.0-"+imageSHA256[:16] {
		t.Errorf("id = %s", d.ID)
	}
}

func TestOSImageRejectsBadInput(t *testing.T) {
	for name, mutate := range map[string]func(*OSImageInput){
		"unknown edition":          func(in *OSImageInput) { in.Build.Edition = "laptop" },
		"netboot target":           func(in *OSImageInput) { in.Build.Target = "netboot" },
		"riscv":                    func(in *OSImageInput) { in.Build.Arch = "riscv64" },
		"no version":               func(in *OSImageInput) { in.Build.Version = "" },
		"no creation time":         func(in *OSImageInput) { in.Created = time.Time{} },
		"signed without signature": func(in *OSImageInput) { in.SignatureRef = "" },
		"unsigned with signature":  func(in *OSImageInput) { in.Signed = false },
		"no statement location":    func(in *OSImageInput) { in.StatementRef = "" },
		"bad image digest":         func(in *OSImageInput) { in.Image.SHA256 = "xyz" },
	} {
		in := testOSImageInput(t)
		mutate(&in)
		if _, err := OSImage(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestOSImageSchemaRejectsMutations removes each required member, adds
// members where the schema forbids them, and breaks each pattern and enum;
// every mutation must fail with a SchemaError naming the right place.
func TestOSImageSchemaRejectsMutations(t *testing.T) {
	good, err := OSImage(testOSImageInput(t))
	if err != nil {
		t.Fatal(err)
	}
	type mutation struct {
		name  string
		apply func(m map[string]any)
		at    string // instance location the error must name
	}
	var muts []mutation
	for _, k := range []string{"id", "type", "specVersion", "shortId", "family", "epoch", "hostProfile", "artifact",
		"architecture", "osRelease", "ociAnnotations", "substrateCapabilities", "provenance"} {
		muts = append(muts, mutation{"missing " + k, func(m map[string]any) { delete(m, k) }, ""})
	}
	for _, k := range []string{"ID", "VERSION_ID", "IMAGE_ID", "IMAGE_VERSION"} {
		muts = append(muts, mutation{"missing osRelease." + k, func(m map[string]any) { delete(obj(m, "osRelease"), k) }, "/osRelease"})
	}
	for _, k := range []string{"org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.source"} {
		muts = append(muts, mutation{"missing " + k, func(m map[string]any) { delete(obj(m, "ociAnnotations"), k) }, "/ociAnnotations"})
	}
	set := func(path, key string, v any) func(map[string]any) {
		return func(m map[string]any) {
			o := m
			if path != "" {
				o = obj(m, path)
			}
			o[key] = v
		}
	}
	muts = append(muts,
		mutation{"missing provenance.statementRef", func(m map[string]any) { delete(obj(m, "provenance"), "statementRef") }, "/provenance"},
		mutation{"missing provenance.slsaPredicateRef", func(m map[string]any) { delete(obj(m, "provenance"), "slsaPredicateRef") }, "/provenance"},
		mutation{"extra provenance key", set("provenance", "signed", true), "/provenance"},
		mutation{"extra top-level key", set("", "signed", true), ""},
		mutation{"extra osRelease key", set("osRelease", "PRETTY_NAME", "SourceOS"), "/osRelease"},
		mutation{"statementRef not a URN", set("provenance", "statementRef", "sourceos.iso.intoto.json"), "/provenance/statementRef"},
		mutation{"statementRef wrong URN kind", set("provenance", "statementRef", "urn:srcos:slsa:x"), "/provenance/statementRef"},
		mutation{"slsaPredicateRef uppercase", set("provenance", "slsaPredicateRef", "urn:srcos:slsa:SHA256:AB"), "/provenance/slsaPredicateRef"},
		mutation{"id bad URN", set("", "id", "urn:srcos:image:x"), "/id"},
		mutation{"id with slash", set("", "id", "urn:srcos:osimage:a/b"), "/id"},
		mutation{"shortId bad", set("", "shortId", "sourceos-1"), "/shortId"},
		mutation{"epoch zero", set("", "epoch", 0), "/epoch"},
		mutation{"epoch fraction", set("", "epoch", 1.5), "/epoch"},
		mutation{"type wrong", set("", "type", "Image"), "/type"},
		mutation{"family wrong", set("", "family", "nixos"), "/family"},
		mutation{"hostProfile unknown", set("", "hostProfile", "desktop"), "/hostProfile"},
		mutation{"artifact unknown", set("", "artifact", "netboot"), "/artifact"},
		mutation{"architecture unknown", set("", "architecture", "x86_64-linux"), "/architecture"},
		mutation{"no capabilities", set("", "substrateCapabilities", []any{}), "/substrateCapabilities"},
		mutation{"capabilities not strings", set("ociAnnotations", "com.socioprophet.os.capabilities", "nix"), "/ociAnnotations/com.socioprophet.os.capabilities"},
		mutation{"ID_LIKE not array", set("osRelease", "ID_LIKE", "nixos"), "/osRelease/ID_LIKE"},
	)
	for _, mu := range muts {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		mu.apply(m)
		err := ValidateOSImage([]byte(mustJSON(t, m)))
		var se *schemas.Error
		if !errors.As(err, &se) {
			t.Errorf("%s: ValidateOSImage = %v, want *schemas.Error", mu.name, err)
			continue
		}
		if !hasLocation(se, mu.at) {
			t.Errorf("%s: error does not point at %q: %v", mu.name, mu.at, err)
		}
	}
}

func hasLocation(se *schemas.Error, at string) bool {
	for _, p := range se.Problems {
		if p.InstanceLocation == at {
			return true
		}
	}
	return false
}

func obj(m map[string]any, key string) map[string]any {
	return m[key].(map[string]any)
}

func TestValidateOSImageErrorIsPrecise(t *testing.T) {
	good, err := OSImage(testOSImageInput(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), `"statementRef": "urn:srcos:attestation:`, `"statementRef": "urn:srcos:attestation:X`, 1)
	err = ValidateOSImage([]byte(bad))
	var se *schemas.Error
	if !errors.As(err, &se) || len(se.Problems) != 1 {
		t.Fatalf("got %v, want exactly one problem", err)
	}
	p := se.Problems[0]
	if p.InstanceLocation != "/provenance/statementRef" || p.KeywordLocation != "/properties/provenance/properties/statementRef/pattern" ||
		!strings.Contains(err.Error(), "does not match pattern") {
		t.Errorf("problem = %+v; error %v", p, err)
	}
	if err := ValidateOSImage([]byte(`{"id":`)); err == nil || errors.As(err, &se) {
		t.Errorf("broken JSON: %v, want a plain parse error", err)
	}
}

func TestSignedAnnotationIsExplicit(t *testing.T) {
	for name, v := range map[string]any{"missing": nil, "bool": true, "yes": "yes", "TRUE": "TRUE"} {
		d := &OSImageDocument{OCIAnnotations: map[string]any{}}
		if v != nil {
			d.OCIAnnotations[AnnotationSigned] = v
		}
		if _, err := d.Signed(); err == nil {
			t.Errorf("%s: Signed() accepted %v", name, v)
		}
	}
}
