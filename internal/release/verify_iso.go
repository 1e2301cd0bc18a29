package release

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/socioprophet/sourceos/internal/provenance"
)

// isoDocuments checks the OSImage document and the SBOM. An .iso must have
// an OSImage document; other artifacts have neither unless present.
func (v *verifier) isoDocuments() {
	doc := v.osImage()
	v.sbom(doc)
}

func (v *verifier) osImage() *provenance.OSImageDocument {
	raw, err := v.opts.ReadFile(v.opts.Artifact + ExtOSImage)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !strings.HasSuffix(v.name, ".iso"):
		v.add(CheckOSImageSchema, Skip, "not an ISO")
		v.add(CheckOSImageRefs, Skip, "not an ISO")
		return nil
	case err != nil:
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%s is missing", v.name+ExtOSImage)
		}
		v.errored(CheckOSImageSchema, err)
		v.errored(CheckOSImageRefs, err)
		return nil
	}
	doc, err := provenance.ParseOSImage(raw)
	if !v.result(CheckOSImageSchema, err) {
		v.fail(CheckOSImageRefs, errors.New("document does not validate"))
		return nil
	}
	v.result(CheckOSImageRefs, v.checkRefs(doc))
	return doc
}

// checkRefs checks the document is about this file and points at its
// sidecars, and that it says the image is signed.
func (v *verifier) checkRefs(doc *provenance.OSImageDocument) error {
	sha := v.d.SHA256Hex()
	signed, err := doc.Signed()
	if err != nil {
		return err
	}
	var errs []error
	expect := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	ann := func(k string) string { s, _ := doc.OCIAnnotations[k].(string); return s }
	p := doc.Provenance
	expect(ann(provenance.AnnotationSHA256) == sha, "%s is %q, the file's sha256 is %s", provenance.AnnotationSHA256, ann(provenance.AnnotationSHA256), sha)
	expect(p.StatementRef == provenance.StatementURN(sha), "statementRef %q is not this image's statement", p.StatementRef)
	expect(p.SLSAPredicateRef == provenance.SLSAPredicateURN(sha), "slsaPredicateRef %q is not this image's predicate", p.SLSAPredicateRef)
	expect(refNames(ann(provenance.AnnotationStatement), v.name+ExtStatement), "statement location %q does not name %s", ann(provenance.AnnotationStatement), v.name+ExtStatement)
	expect(refNames(ann(provenance.AnnotationSLSAPredicate), v.name+ExtSLSA), "predicate location %q does not name %s", ann(provenance.AnnotationSLSAPredicate), v.name+ExtSLSA)
	expect(signed, "the document says the image is unsigned")
	expect(refNames(p.SignatureRef, v.name+ExtMinisig), "signatureRef %q does not name %s", p.SignatureRef, v.name+ExtMinisig)
	expect(p.SBOMRef == "" || refNames(p.SBOMRef, v.name+ExtSBOM), "sbomRef %q does not name %s", p.SBOMRef, v.name+ExtSBOM)
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// sbom checks the SBOM's metadata component is this image. A missing SBOM
// is fine unless the OSImage document refers to one.
func (v *verifier) sbom(doc *provenance.OSImageDocument) {
	raw, err := v.opts.ReadFile(v.opts.Artifact + ExtSBOM)
	referenced := doc != nil && doc.Provenance.SBOMRef != ""
	switch {
	case errors.Is(err, os.ErrNotExist) && !referenced:
		v.add(CheckSBOM, Skip, "no SBOM")
	case errors.Is(err, os.ErrNotExist):
		v.errored(CheckSBOM, fmt.Errorf("%s is missing but the OSImage document refers to it", v.name+ExtSBOM))
	case err != nil:
		v.errored(CheckSBOM, err)
	default:
		v.result(CheckSBOM, provenance.CheckSBOM(raw, v.d.SHA256Hex()))
	}
}
