package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
)

// docExts are the documents about an artifact that a user reads beside
// it; each must be listed, with its digest, in the signed predicate.
var docExts = []string{sidecar.ExtSBOM, sidecar.ExtOSImage}

// problems collects what a check found: failures (the evidence
// contradicts the artifact) and errors (something could not be read).
type problems struct{ fails, errs []string }

func (p *problems) fail(format string, args ...any) {
	p.fails = append(p.fails, fmt.Sprintf(format, args...))
}

func (p *problems) errored(err error) { p.errs = append(p.errs, err.Error()) }

// report records the check as failed, errored or passed.
func (p *problems) report(v *verifier, name string) {
	switch {
	case len(p.fails) > 0:
		v.add(name, Fail, strings.Join(append(p.fails, p.errs...), "; "))
	case len(p.errs) > 0:
		v.add(name, Error, strings.Join(p.errs, "; "))
	default:
		v.pass(name)
	}
}

// isISO reports whether the artifact is an installer image, which must
// have an OSImage document: by its name, or by what the signed predicate
// says was built.
func (v *verifier) isISO() bool {
	return strings.HasSuffix(v.name, ".iso") || (v.predicate != nil && v.predicate.Build.Target == string(sidecar.ISO))
}

// listed returns the byproduct of the signed predicate that is the
// document with suffix ext, if any.
func (v *verifier) listed(ext string) (provenance.Byproduct, bool) {
	if v.predicate == nil {
		return provenance.Byproduct{}, false
	}
	i := slices.IndexFunc(v.predicate.Byproducts, func(b provenance.Byproduct) bool { return b.Name == v.name+ext })
	if i < 0 {
		return provenance.Byproduct{}, false
	}
	return v.predicate.Byproducts[i], true
}

// byproducts checks the documents beside the artifact against the signed
// predicate's runDetails.byproducts: each listed one is present with that
// digest and media type, each present one is listed, and an ISO lists its
// OSImage document.
func (v *verifier) byproducts() {
	if !v.signed(CheckByproducts) {
		return
	}
	var p problems
	for _, b := range v.predicate.Byproducts {
		if !slices.ContainsFunc(docExts, func(ext string) bool { return b.Name == v.name+ext }) {
			p.fail("the signed predicate lists %q, which is not a document of %s", b.Name, v.name)
		}
	}
	present := 0
	for _, ext := range docExts {
		d := v.read(ext)
		if !d.absent() {
			present++
		}
		b, ok := v.listed(ext)
		switch {
		case !ok && !d.absent():
			p.fail("%s is present but the signed predicate does not list it", v.name+ext)
		case !ok:
		case d.absent():
			p.fail("%s is listed in the signed predicate but missing", b.Name)
		case d.err != nil:
			p.errored(d.err)
		default:
			checkByproduct(&p, b, ext, d.data)
		}
	}
	if _, ok := v.listed(sidecar.ExtOSImage); !ok && v.isISO() {
		p.fail("the signed predicate lists no OSImage document for this ISO")
	}
	if len(v.predicate.Byproducts) == 0 && present == 0 && len(p.fails) == 0 {
		v.add(CheckByproducts, Skip, "no documents")
		return
	}
	p.report(v, CheckByproducts)
}

func checkByproduct(p *problems, b provenance.Byproduct, ext string, data []byte) {
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != b.SHA256 {
		p.fail("%s has sha256 %s, the signed predicate says %s", b.Name, got, b.SHA256)
	}
	if want := sidecar.MediaType(ext); b.MediaType != want {
		p.fail("%s is listed as %q, want %q", b.Name, b.MediaType, want)
	}
}

var osImageChecks = []string{CheckOSImageSchema, CheckOSImageRefs, CheckOSImageClaims}

// osImageDocument checks the OSImage document: schema, refs, and its claims
// against the signed provenance. An ISO must have one; other artifacts
// have none unless present or listed.
func (v *verifier) osImageDocument() {
	d := v.read(sidecar.ExtOSImage)
	_, listed := v.listed(sidecar.ExtOSImage)
	if d.absent() && !listed && !v.isISO() {
		for _, n := range osImageChecks {
			v.add(n, Skip, "not an ISO")
		}
		return
	}
	if d.err != nil {
		status := Error
		if d.absent() && listed {
			status = Fail // the signed predicate lists it
		}
		for _, n := range osImageChecks {
			v.add(n, status, d.err.Error())
		}
		return
	}
	doc, err := provenance.ParseOSImage(d.data)
	if !v.result(CheckOSImageSchema, err) {
		v.fail(CheckOSImageRefs, errors.New("document does not validate"))
		v.fail(CheckOSImageClaims, errors.New("document does not validate"))
		return
	}
	v.osImage = doc
	v.result(CheckOSImageRefs, v.checkRefs(doc))
	if v.signed(CheckOSImageClaims) {
		if v.subject == nil {
			v.fail(CheckOSImageClaims, fmt.Errorf("the signed statement has no subject %q", v.name))
			return
		}
		v.result(CheckOSImageClaims, provenance.CheckOSImageClaims(doc, v.predicate, *v.subject))
	}
}

// checkRefs checks the document is about this file and points at its
// sidecars, that it says the image is signed, and that it names an SBOM
// exactly when the signed predicate lists one.
func (v *verifier) checkRefs(doc *provenance.OSImageDocument) error {
	sha := v.d.SHA256Hex()
	signed, err := doc.Signed()
	if err != nil {
		return err
	}
	var errs []string
	expect := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	ann := func(k string) string { s, _ := doc.OCIAnnotations[k].(string); return s }
	p := doc.Provenance
	expect(ann(provenance.AnnotationSHA256) == sha, "%s is %q, the file's sha256 is %s", provenance.AnnotationSHA256, ann(provenance.AnnotationSHA256), sha)
	expect(p.StatementRef == provenance.StatementURN(sha), "statementRef %q is not this image's statement", p.StatementRef)
	expect(p.SLSAPredicateRef == provenance.SLSAPredicateURN(sha), "slsaPredicateRef %q is not this image's predicate", p.SLSAPredicateRef)
	expect(sidecar.RefNames(ann(provenance.AnnotationStatement), v.name+sidecar.ExtStatement), "statement location %q does not name %s", ann(provenance.AnnotationStatement), v.name+sidecar.ExtStatement)
	expect(sidecar.RefNames(ann(provenance.AnnotationSLSAPredicate), v.name+sidecar.ExtSLSA), "predicate location %q does not name %s", ann(provenance.AnnotationSLSAPredicate), v.name+sidecar.ExtSLSA)
	expect(signed, "the document says the image is unsigned")
	expect(sidecar.RefNames(p.SignatureRef, v.name+sidecar.ExtMinisig), "signatureRef %q does not name %s", p.SignatureRef, v.name+sidecar.ExtMinisig)
	expect(p.SBOMRef == "" || sidecar.RefNames(p.SBOMRef, v.name+sidecar.ExtSBOM), "sbomRef %q does not name %s", p.SBOMRef, v.name+sidecar.ExtSBOM)
	if v.predicate != nil {
		_, sbomListed := v.listed(sidecar.ExtSBOM)
		expect(sbomListed == (p.SBOMRef != ""), "sbomRef is %q but the signed predicate lists the SBOM: %t", p.SBOMRef, sbomListed)
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

// sbom checks the SBOM's metadata component is this image. A missing SBOM
// is fine unless the signed predicate lists one or the OSImage document
// refers to one.
func (v *verifier) sbom() {
	d := v.read(sidecar.ExtSBOM)
	_, listed := v.listed(sidecar.ExtSBOM)
	referenced := v.osImage != nil && v.osImage.Provenance.SBOMRef != ""
	switch {
	case d.absent() && listed:
		v.fail(CheckSBOM, fmt.Errorf("%s is missing but the signed predicate lists it", v.name+sidecar.ExtSBOM))
	case d.absent() && referenced:
		v.fail(CheckSBOM, fmt.Errorf("%s is missing but the OSImage document refers to it", v.name+sidecar.ExtSBOM))
	case d.absent():
		v.add(CheckSBOM, Skip, "no SBOM")
	case d.err != nil:
		v.errored(CheckSBOM, d.err)
	default:
		v.result(CheckSBOM, provenance.CheckSBOM(d.data, v.d.SHA256Hex()))
	}
}
