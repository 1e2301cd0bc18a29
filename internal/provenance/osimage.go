package provenance

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/strictjson"
)

// OSImageSpecVersion is the sourceos-spec version our OSImage documents follow.
const OSImageSpecVersion = "2.1.0"

// Annotation keys we add to ociAnnotations beyond the ones the schema names.
const (
	// AnnotationSigned is "true" or "false": whether the image is signed.
	// It is always present; a missing signatureRef never implies anything.
	AnnotationSigned = "com.socioprophet.os.signed"
	// AnnotationStatement and AnnotationSLSAPredicate hold where the
	// statement and the predicate can be fetched (URL or file name); the
	// provenance refs themselves are URNs.
	AnnotationStatement     = "com.socioprophet.os.provenance.statement"
	AnnotationSLSAPredicate = "com.socioprophet.os.provenance.slsa-predicate"
	// AnnotationSHA256 is the image's SHA-256, lowercase hex.
	AnnotationSHA256 = "com.socioprophet.os.sha256"
	// AnnotationPackaging says how the file wraps the image when it is
	// not the image itself ("gce-tar.gz": disk.raw in a tar.gz).
	AnnotationPackaging = "com.socioprophet.os.packaging"
	// AnnotationCustom is present, "true", on a self-serve custom build's
	// document; AnnotationCustomUser and AnnotationCustomBuild name whose
	// build it is.
	AnnotationCustom      = "com.socioprophet.os.custom"
	AnnotationCustomUser  = "com.socioprophet.os.custom.user"
	AnnotationCustomBuild = "com.socioprophet.os.custom.build"
)

// OSImageEpoch is the compatibility epoch of every OSImage document: the
// schema's shortId is so<epoch>-<hostProfile>, and the documents SourceOS
// has published use epoch 1, so an image's identity is stable across its
// builds. When it was built is org.opencontainers.image.created.
const OSImageEpoch = 1

// Statements written before the catalog recorded an artifact's facts
// (externalParameters.artifact) are read with these, the facts of the
// editions then.
var (
	legacyCapabilities = []string{"nix-store", "systemd"}
	legacyHostProfiles = map[string]string{"desktop": "workstation", "server": "vm-base", "edge": "edge-appliance"}
)

// artifacts maps a build target (a catalog kind) to its OSImage artifact
// kind; only targets that produce a disk or installer image have one. A
// Google Compute Engine image is a raw disk (disk.raw) packed in a tar.gz:
// AnnotationPackaging says so.
var artifacts = map[string]string{
	"iso": "iso", "qcow2": "qcow2", "gce": "raw", "raw": "raw", "oci": "oci", "ami": "ami", "vmdk": "vmdk",
}

// packaging says how an artifact kind wraps the image its OSImage
// document describes, for the kinds that do.
var packaging = map[string]string{"gce": "gce-tar.gz"}

// urnUnsafe matches runs of characters an OSImage id may not contain.
var urnUnsafe = regexp.MustCompile(`[^a-z0-9._-]+`)

// OSImageDocument is the OSImage document (sourceos-spec v2).
type OSImageDocument struct {
	ID                    string            `json:"id"`
	Type                  string            `json:"type"`
	SpecVersion           string            `json:"specVersion"`
	ShortID               string            `json:"shortId"`
	Family                string            `json:"family"`
	Epoch                 int64             `json:"epoch"`
	HostProfile           string            `json:"hostProfile"`
	Artifact              string            `json:"artifact"`
	Architecture          string            `json:"architecture"`
	OSRelease             OSRelease         `json:"osRelease"`
	OCIAnnotations        map[string]any    `json:"ociAnnotations"`
	SubstrateCapabilities []string          `json:"substrateCapabilities"`
	Provenance            OSImageProvenance `json:"provenance"`
}

// OSRelease holds the os-release fields of the image.
type OSRelease struct {
	ID           string   `json:"ID"`
	IDLike       []string `json:"ID_LIKE,omitempty"`
	VersionID    string   `json:"VERSION_ID"`
	ImageID      string   `json:"IMAGE_ID"`
	ImageVersion string   `json:"IMAGE_VERSION"`
	BuildID      string   `json:"BUILD_ID,omitempty"`
	ReleaseType  string   `json:"RELEASE_TYPE,omitempty"`
}

// OSImageProvenance points at the image's attestations.
type OSImageProvenance struct {
	StatementRef     string `json:"statementRef"`
	SLSAPredicateRef string `json:"slsaPredicateRef"`
	SBOMRef          string `json:"sbomRef,omitempty"`
	SignatureRef     string `json:"signatureRef,omitempty"`
}

// Signed reports the document's explicit signed state: true or false from
// the AnnotationSigned key, or an error when the key is missing or invalid.
func (d *OSImageDocument) Signed() (bool, error) {
	v, ok := d.OCIAnnotations[AnnotationSigned].(string)
	if !ok {
		return false, fmt.Errorf("osimage: annotation %s missing or not a string", AnnotationSigned)
	}
	b, err := strconv.ParseBool(v)
	if err != nil || (v != "true" && v != "false") {
		return false, fmt.Errorf("osimage: annotation %s is %q, want \"true\" or \"false\"", AnnotationSigned, v)
	}
	return b, nil
}

// StatementURN names the in-toto statement about the image with SHA-256
// imageSHA256 (lowercase hex).
func StatementURN(imageSHA256 string) string {
	return "urn:srcos:attestation:in-toto:sha256:" + imageSHA256
}

// SLSAPredicateURN names the SLSA provenance v1 predicate of the image with
// SHA-256 imageSHA256 (lowercase hex).
func SLSAPredicateURN(imageSHA256 string) string {
	return "urn:srcos:slsa:provenance-v1:sha256:" + imageSHA256
}

// hostProfile is the OSImage host profile the build info records, or for
// a statement that records none, its edition's then.
func hostProfile(b BuildInfo) (string, error) {
	if b.Artifact.HostProfile != "" {
		return b.Artifact.HostProfile, nil
	}
	if p, ok := legacyHostProfiles[b.Edition]; ok && b.Artifact.ID == "" {
		return p, nil
	}
	return "", fmt.Errorf("osimage: the build of %q records no host profile", b.Artifact.ID)
}

// capabilities are the substrate capabilities the build info records, or
// for a statement that records none, the editions' then.
func capabilities(b BuildInfo) []string {
	if len(b.Artifact.Capabilities) > 0 {
		return append([]string(nil), b.Artifact.Capabilities...)
	}
	return append([]string(nil), legacyCapabilities...)
}

// OSImage returns the OSImage document for in. The document is validated
// against schemas/OSImage.json before it is returned. The epoch is
// OSImageEpoch, so shortId is so1-<hostProfile> for every build of a
// profile; the creation time is the created annotation.
func OSImage(in OSImageInput) ([]byte, error) {
	doc, err := osImageDocument(in)
	if err != nil {
		return nil, err
	}
	out, err := encode(doc)
	if err != nil {
		return nil, fmt.Errorf("osimage: %w", err)
	}
	if err := ValidateOSImage(out); err != nil {
		return nil, fmt.Errorf("osimage: emitted document is invalid: %w", err)
	}
	return out, nil
}

func osImageDocument(in OSImageInput) (*OSImageDocument, error) {
	if err := checkOSImageInput(in); err != nil {
		return nil, err
	}
	b := in.Build
	profile, err := hostProfile(b)
	if err != nil {
		return nil, err
	}
	artifact, ok := artifacts[b.Target]
	if !ok {
		return nil, fmt.Errorf("osimage: target %q is not an image artifact", b.Target)
	}
	arch, err := architecture(b.Arch)
	if err != nil {
		return nil, err
	}
	return &OSImageDocument{
		ID:                    osImageID(b, arch, in.Image.SHA256),
		Type:                  "OSImage",
		SpecVersion:           OSImageSpecVersion,
		ShortID:               "so" + strconv.Itoa(OSImageEpoch) + "-" + profile,
		Family:                "sourceos",
		Epoch:                 OSImageEpoch,
		HostProfile:           profile,
		Artifact:              artifact,
		Architecture:          arch,
		OSRelease:             osRelease(b),
		OCIAnnotations:        ociAnnotations(in),
		SubstrateCapabilities: capabilities(b),
		Provenance: OSImageProvenance{
			StatementRef:     StatementURN(in.Image.SHA256),
			SLSAPredicateRef: SLSAPredicateURN(in.Image.SHA256),
			SBOMRef:          in.SBOMRef,
			SignatureRef:     in.SignatureRef,
		},
	}, nil
}

// checkOSImageInput rejects inputs that would make a misleading document.
func checkOSImageInput(in OSImageInput) error {
	if err := checkSubject(in.Image); err != nil {
		return fmt.Errorf("osimage: image: %w", err)
	}
	switch {
	case in.Build.Version == "":
		return errors.New("osimage: build version is empty")
	case in.Created.Unix() < 1:
		return errors.New("osimage: creation time is not set")
	case in.StatementRef == "" || in.SLSAPredicateRef == "":
		return errors.New("osimage: statement and SLSA predicate locations are required")
	case in.Signed && in.SignatureRef == "":
		return errors.New("osimage: signed image without a signatureRef")
	case !in.Signed && in.SignatureRef != "":
		return errors.New("osimage: unsigned image with a signatureRef")
	}
	return nil
}

// architecture accepts x86_64 and aarch64, also as Nix systems (x86_64-linux).
func architecture(arch string) (string, error) {
	a := strings.TrimSuffix(arch, "-linux")
	if a != "x86_64" && a != "aarch64" {
		return "", fmt.Errorf("osimage: architecture %q is not x86_64 or aarch64", arch)
	}
	return a, nil
}

// osImageID is urn:srcos:osimage:<name>-<arch>-<version>-<sha256 prefix>,
// lowercased, with characters the pattern forbids turned into dashes; the
// name is sourceos-<edition> (sourceos-custom-<edition> for a custom
// build), or the catalog id of an artifact of no edition.
func osImageID(b BuildInfo, arch, sha256 string) string {
	s := strings.ToLower(strings.Join([]string{imageName(b), arch, b.Version, sha256[:16]}, "-"))
	return "urn:srcos:osimage:" + urnUnsafe.ReplaceAllString(s, "-")
}

// imageName names what was built, for the document's id and os-release's
// IMAGE_ID: sourceos-<edition>, sourceos-custom-<edition> for a custom
// build, or the catalog id of an artifact of no edition.
func imageName(b BuildInfo) string {
	switch {
	case b.Custom != nil:
		return "sourceos-custom-" + b.Edition
	case b.Edition == "" && b.Artifact.ID != "":
		return b.Artifact.ID
	}
	return "sourceos-" + b.Edition
}

func osRelease(b BuildInfo) OSRelease {
	return OSRelease{
		ID:           "sourceos",
		IDLike:       []string{"nixos"},
		VersionID:    b.Version,
		ImageID:      imageName(b),
		ImageVersion: b.Version,
		BuildID:      b.BuildID,
		ReleaseType:  releaseType(b.Channel),
	}
}

// releaseType maps a channel to os-release's RELEASE_TYPE vocabulary.
func releaseType(channel string) string {
	switch channel {
	case "":
		return ""
	case "stable":
		return "stable"
	default:
		return "development"
	}
}

func ociAnnotations(in OSImageInput) map[string]any {
	b := in.Build
	a := map[string]any{
		"org.opencontainers.image.version":  b.Version,
		"org.opencontainers.image.revision": b.SourceRev,
		"org.opencontainers.image.source":   b.SourceRepo,
		"org.opencontainers.image.created":  in.Created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.title":    in.Image.Name,
		"com.socioprophet.os.capabilities":  capabilities(b),
		AnnotationSigned:                    strconv.FormatBool(in.Signed),
		AnnotationSHA256:                    in.Image.SHA256,
		AnnotationStatement:                 in.StatementRef,
		AnnotationSLSAPredicate:             in.SLSAPredicateRef,
	}
	if b.Channel != "" {
		a["com.socioprophet.os.channel"] = b.Channel
	}
	if b.Rebuild != nil {
		a[AnnotationReproducible] = strconv.FormatBool(b.Rebuild.Reproducible)
	}
	if p, ok := packaging[b.Target]; ok {
		a[AnnotationPackaging] = p
	}
	if c := b.Custom; c != nil {
		a[AnnotationCustom] = "true"
		a[AnnotationCustomUser] = c.UID
		a[AnnotationCustomBuild] = c.BuildID
	}
	return a
}

// ParseOSImage validates doc against the schema and decodes it strictly:
// no key twice or in two cases at any depth, and no member the document
// type does not have (see strictjson).
func ParseOSImage(doc []byte) (*OSImageDocument, error) {
	if err := ValidateOSImage(doc); err != nil {
		return nil, err
	}
	var d OSImageDocument
	if err := strictjson.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("osimage: %w", err)
	}
	return &d, nil
}

// CheckOSImageClaims checks that what the OSImage document d (as
// ParseOSImage returns it) says about the image and its build is what the
// signed provenance says: the document is rebuilt from pred and image, with
// d's own creation time, signed state and refs (which the predicate does
// not hold), and every member must be equal. The error lists each member
// that differs, by JSON pointer.
func CheckOSImageClaims(d *OSImageDocument, pred *Predicate, image Subject) error {
	signed, err := d.Signed()
	if err != nil {
		return err
	}
	ann := func(k string) string { s, _ := d.OCIAnnotations[k].(string); return s }
	b := pred.Build
	// The predicate records the repository without a "git+" prefix.
	if src := ann("org.opencontainers.image.source"); strings.TrimPrefix(src, "git+") == b.SourceRepo {
		b.SourceRepo = src
	}
	created, err := time.Parse(time.RFC3339, ann("org.opencontainers.image.created"))
	if err != nil {
		return fmt.Errorf("osimage: org.opencontainers.image.created: %w", err)
	}
	want, err := osImageDocument(OSImageInput{
		Build: b, Image: image, Signed: signed, Created: created,
		StatementRef: ann(AnnotationStatement), SLSAPredicateRef: ann(AnnotationSLSAPredicate),
		SBOMRef: d.Provenance.SBOMRef, SignatureRef: d.Provenance.SignatureRef,
	})
	if err != nil {
		return fmt.Errorf("the signed provenance does not describe an OS image: %w", err)
	}
	diffs, err := diffJSON(want, d)
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		return fmt.Errorf("osimage differs from the signed provenance: %s", strings.Join(diffs, "; "))
	}
	return nil
}
