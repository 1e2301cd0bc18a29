package provenance

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	isoOut = "/nix/store/1b9jydsiygi6jhlz2dxbrxi6b4m0rn3d-sourceos-desktop-x86_64.iso"
)

// A rebuild check's outcome goes into the signed predicate as a byproduct
// and comes back out of it unchanged, either way it went.
func TestRebuildCheckRoundTrip(t *testing.T) {
	for name, rc := range map[string]RebuildCheck{
		"reproducible": {Method: "nix build --rebuild", Output: isoOut, Reproducible: true},
		"differs":      {Method: "nix build --rebuild", Output: isoOut, DifferingOutput: isoOut},
	} {
		t.Run(name, func(t *testing.T) {
			b := testBuild(t)
			b.Rebuild = &rc
			pred, err := SLSAPredicate(b, Byproduct{Name: "a.osimage.json", SHA256: imageSHA256, MediaType: MediaTypeOSImage})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(pred), `"name": "rebuild-check"`) {
				t.Errorf("no rebuild-check byproduct:\n%s", pred)
			}
			p, err := ParsePredicate(pred)
			if err != nil {
				t.Fatal(err)
			}
			if p.Build.Rebuild == nil || *p.Build.Rebuild != rc {
				t.Errorf("read back %+v, want %+v", p.Build.Rebuild, rc)
			}
			if len(p.Byproducts) != 1 || p.Byproducts[0].Name != "a.osimage.json" {
				t.Errorf("documents: %+v", p.Byproducts)
			}
		})
	}
	p, err := SLSAPredicate(testBuild(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParsePredicate(p); err != nil || got.Build.Rebuild != nil || strings.Contains(string(p), "rebuild-check") {
		t.Errorf("no check ran, yet one is recorded: %v %+v", err, got)
	}
}

// A record that contradicts itself is refused when written and when read;
// so is one with members it does not have.
func TestRebuildCheckIsStrict(t *testing.T) {
	for name, rc := range map[string]RebuildCheck{
		"no method":                  {Output: isoOut, Reproducible: true},
		"output not a store path":    {Method: "m", Output: "/tmp/x", Reproducible: true},
		"reproducible and differing": {Method: "m", Output: isoOut, Reproducible: true, DifferingOutput: isoOut},
		"differs without a path":     {Method: "m", Output: isoOut},
	} {
		b := testBuild(t)
		b.Rebuild = &rc
		if _, err := SLSAPredicate(b); err == nil {
			t.Errorf("%s: written", name)
		}
	}
	if _, err := SLSAPredicate(testBuild(t), Byproduct{Name: RebuildCheckName, SHA256: imageSHA256, MediaType: "x"}); err == nil {
		t.Error("a document named like the rebuild check was listed")
	}
	b := testBuild(t)
	b.Rebuild = &RebuildCheck{Method: "nix build --rebuild", Output: isoOut, Reproducible: true}
	good, err := SLSAPredicate(b)
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	for name, doc := range map[string]string{
		"reproducible as a string": strings.Replace(s, `"reproducible": true`, `"reproducible": "true"`, 1),
		"extra annotation":         strings.Replace(s, `"reproducible": true`, `"reproducible": true, "note": "x"`, 1),
		"differing while true":     strings.Replace(s, `"reproducible": true`, `"reproducible": true, "differingOutput": "`+isoOut+`"`, 1),
		"false without differing":  strings.Replace(s, `"reproducible": true`, `"reproducible": false`, 1),
		"a digest":                 strings.Replace(s, `"name": "rebuild-check"`, `"name": "rebuild-check", "digest": {"sha256": "`+imageSHA256+`"}`, 1),
		"listed twice":             strings.Replace(s, `"byproducts": [`, `"byproducts": [{"name": "rebuild-check", "annotations": {"method": "m", "output": "`+isoOut+`", "reproducible": true}},`, 1),
	} {
		if doc == s {
			t.Fatalf("%s: mutation did nothing", name)
		}
		if _, err := ParsePredicate([]byte(doc)); !errors.Is(err, ErrNotSLSAv1) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The OSImage document repeats the outcome, and its claims check holds it
// to the signed predicate's.
func TestOSImageReproducibleAnnotation(t *testing.T) {
	b := testBuild(t)
	b.Rebuild = &RebuildCheck{Method: "nix build --rebuild", Output: isoOut, DifferingOutput: isoOut}
	in := OSImageInput{Build: b, Image: testImage(), Created: time.Unix(1767225600, 0),
		StatementRef: "a.intoto.json", SLSAPredicateRef: "a.slsa.json"}
	raw, err := OSImage(in)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ParseOSImage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.OCIAnnotations[AnnotationReproducible]; got != "false" {
		t.Errorf("%s = %v, want \"false\"", AnnotationReproducible, got)
	}
	pred, err := SLSAPredicate(b)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePredicate(pred)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckOSImageClaims(doc, p, testImage()); err != nil {
		t.Errorf("claims: %v", err)
	}
	doc.OCIAnnotations[AnnotationReproducible] = "true"
	if err := CheckOSImageClaims(doc, p, testImage()); err == nil || !strings.Contains(err.Error(), AnnotationReproducible) {
		t.Errorf("a document claiming reproducible against a predicate saying otherwise: %v", err)
	}
	p.Build.Rebuild = nil
	delete(doc.OCIAnnotations, AnnotationReproducible)
	if err := CheckOSImageClaims(doc, p, testImage()); err != nil {
		t.Errorf("no check on either side: %v", err)
	}
}
