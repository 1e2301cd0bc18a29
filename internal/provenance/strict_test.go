package provenance

import (
	"strings"
	"testing"
)

// Each document we sign or check is refused when another parser could
// read it differently: a key twice, two keys that differ only in case, or
// (for the protobuf-backed documents) a proto field name where the
// official JSON name belongs.
func TestDocumentsAreReadStrictly(t *testing.T) {
	pred, err := SLSAPredicate(testBuild(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := Statement([]Subject{testImage()}, pred)
	if err != nil {
		t.Fatal(err)
	}
	osimage, err := OSImage(testOSImageInput(t))
	if err != nil {
		t.Fatal(err)
	}
	sbom, err := SBOM(testImage(), testClosure(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]func([]byte) error{
		"statement": func(b []byte) error { _, err := CheckStatement(b); return err },
		"predicate": CheckSLSAPredicate,
		"osimage":   func(b []byte) error { _, err := ParseOSImage(b); return err },
		"sbom":      func(b []byte) error { return CheckSBOM(b, imageSHA256) },
	}
	docs := map[string][]byte{"statement": st, "predicate": pred, "osimage": osimage, "sbom": sbom}
	for _, tc := range []struct{ doc, name, old, new string }{
		{"statement", "duplicate predicateType", `"predicateType":`, `"predicateType": "https://example.org/other", "predicateType":`},
		{"statement", "proto field name", `"predicateType":`, `"predicate_type":`},
		{"statement", "case-variant external parameter", `"arch": "x86_64"`, `"Arch": "aarch64", "arch": "x86_64"`},
		{"statement", "duplicate subject digest", `"sha256": "` + imageSHA256 + `"`, `"sha256": "` + strings.Repeat("0", 64) + `", "sha256": "` + imageSHA256 + `"`},
		{"predicate", "case-variant external parameter", `"arch": "x86_64"`, `"Arch": "aarch64", "arch": "x86_64"`},
		{"predicate", "duplicate external parameter", `"arch": "x86_64"`, `"arch": "aarch64", "arch": "x86_64"`},
		{"predicate", "proto field name", `"buildDefinition":`, `"build_definition":`},
		{"predicate", "timestamp in another spelling", `"startedOn": "2025-01-15T10:00:00Z"`, `"startedOn": "2025-01-15T11:00:00+01:00"`},
		{"osimage", "duplicate architecture", `"architecture": "x86_64"`, `"architecture": "aarch64", "architecture": "x86_64"`},
		{"osimage", "duplicate VERSION_ID", `"VERSION_ID": "1.4.0"`, `"VERSION_ID": "9.9.9", "VERSION_ID": "1.4.0"`},
		{"osimage", "case-variant annotation", `"org.opencontainers.image.version":`, `"Org.opencontainers.image.version": "9.9.9", "org.opencontainers.image.version":`},
		{"sbom", "duplicate components", `"components":`, `"components": [], "components":`},
		{"sbom", "case-variant metadata", `"metadata":`, `"Metadata": {}, "metadata":`},
		{"sbom", "trailing document", "\n}\n", "\n}\n{}"},
	} {
		t.Run(tc.doc+"/"+tc.name, func(t *testing.T) {
			good := docs[tc.doc]
			if err := checks[tc.doc](good); err != nil {
				t.Fatalf("our own %s: %v", tc.doc, err)
			}
			bad := strings.Replace(string(good), tc.old, tc.new, 1)
			if bad == string(good) {
				t.Fatalf("mutation did not apply")
			}
			if err := checks[tc.doc]([]byte(bad)); err == nil {
				t.Errorf("accepted:\n%.600s", bad)
			}
		})
	}
}
