package provenance

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/strictjson"
)

// ErrBadSBOM is wrapped by every error CheckSBOM returns.
var ErrBadSBOM = errors.New("SBOM check failed")

// cdxSchemaURL is the $schema our SBOMs declare.
const cdxSchemaURL = "http://cyclonedx.org/schema/bom-1.6.schema.json"

// sbomNamespace is the UUID namespace of SBOM serial numbers: the UUIDv5 of
// the URL "https://sourceos.dev/sbom" in the RFC 4122 URL namespace.
var sbomNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://sourceos.dev/sbom"))

// SBOM returns the CycloneDX 1.6 JSON SBOM of image's Nix runtime closure:
// one component per store path (bom-ref = the store path, name and version
// as Nix's parseDrvName splits them, nix:* properties), the dependency graph
// from the references, and the image as metadata.component with its
// SHA-256 (and SHA-512 when set). The serial number is a UUIDv5 of the
// document's content, so equal inputs give equal bytes.
func SBOM(image Subject, closure []StorePath, now time.Time) ([]byte, error) {
	if err := checkSubject(image); err != nil {
		return nil, fmt.Errorf("sbom: image: %w", err)
	}
	paths, err := sortedClosure(closure)
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	comps, err := components(paths)
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	bom := cdx.NewBOM()
	bom.JSONSchema = cdxSchemaURL
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.Metadata = &cdx.Metadata{Timestamp: now.UTC().Format(time.RFC3339), Component: imageComponent(image)}
	bom.Components = &comps
	deps := dependencies(image.Name, paths)
	bom.Dependencies = &deps
	unsigned, err := encodeBOM(bom)
	if err != nil {
		return nil, err
	}
	bom.SerialNumber = uuid.NewSHA1(sbomNamespace, unsigned).URN()
	return encodeBOM(bom)
}

func encodeBOM(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("sbom: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// sortedClosure copies the closure sorted by path and checks it is closed:
// no duplicates, and every reference names a path of the closure.
func sortedClosure(closure []StorePath) ([]StorePath, error) {
	paths := append([]StorePath(nil), closure...)
	sort.Slice(paths, func(i, j int) bool { return paths[i].Path < paths[j].Path })
	in := make(map[string]bool, len(paths))
	for _, p := range paths {
		if in[p.Path] {
			return nil, fmt.Errorf("store path %s listed twice", p.Path)
		}
		in[p.Path] = true
	}
	for _, p := range paths {
		for _, r := range p.References {
			if !in[r] {
				return nil, fmt.Errorf("closure is not closed: %s references %s, which is not in it", p.Path, r)
			}
		}
	}
	return paths, nil
}

func components(paths []StorePath) ([]cdx.Component, error) {
	comps := make([]cdx.Component, 0, len(paths))
	for _, p := range paths {
		c, err := component(p)
		if err != nil {
			return nil, err
		}
		comps = append(comps, c)
	}
	return comps, nil
}

func component(p StorePath) (cdx.Component, error) {
	full, err := storePathName(p.Path)
	if err != nil {
		return cdx.Component{}, err
	}
	narHash, err := normalNarHash(p.NarHash)
	if err != nil {
		return cdx.Component{}, fmt.Errorf("store path %s: %w", p.Path, err)
	}
	name, version := ParseDrvName(full)
	props := []cdx.Property{
		{Name: "nix:store_path", Value: p.Path},
		{Name: "nix:narinfo:nar_hash", Value: narHash},
		{Name: "nix:narinfo:nar_size", Value: strconv.FormatUint(p.NarSize, 10)},
	}
	if p.Deriver != "" {
		props = append(props, cdx.Property{Name: "nix:narinfo:deriver", Value: p.Deriver})
	}
	return cdx.Component{
		BOMRef:     p.Path,
		Type:       cdx.ComponentTypeApplication,
		Name:       name,
		Version:    version,
		Properties: &props,
	}, nil
}

// normalNarHash returns a SHA-256 NAR hash in the narinfo form
// "sha256:<nix32>", accepting also the SRI and hex forms Nix prints.
func normalNarHash(s string) (string, error) {
	algo := nixhash.SHA256
	h, err := nixhash.ParseAny(s, &algo)
	if err != nil {
		return "", fmt.Errorf("narHash %q: %w", s, err)
	}
	return h.Format(nixhash.NixBase32, true), nil
}

func imageComponent(image Subject) *cdx.Component {
	hashes := []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: image.SHA256}}
	if image.SHA512 != "" {
		hashes = append(hashes, cdx.Hash{Algorithm: cdx.HashAlgoSHA512, Value: image.SHA512})
	}
	return &cdx.Component{
		BOMRef: image.Name,
		Type:   cdx.ComponentTypeOS,
		Name:   image.Name,
		Hashes: &hashes,
	}
}

// dependencies lists, for the image and every store path, what it depends
// on. A store path depends on its references other than itself; the image
// depends on the closure's roots, the paths no other path refers to.
func dependencies(imageRef string, paths []StorePath) []cdx.Dependency {
	referenced := map[string]bool{}
	deps := make([]cdx.Dependency, 0, len(paths)+1)
	for _, p := range paths {
		var on []string
		for _, r := range p.References {
			if r != p.Path {
				on = append(on, r)
				referenced[r] = true
			}
		}
		deps = append(deps, dependency(p.Path, on))
	}
	var roots []string
	for _, p := range paths {
		if !referenced[p.Path] {
			roots = append(roots, p.Path)
		}
	}
	return append([]cdx.Dependency{dependency(imageRef, roots)}, deps...)
}

func dependency(ref string, on []string) cdx.Dependency {
	d := cdx.Dependency{Ref: ref}
	if len(on) > 0 {
		on = append([]string(nil), on...)
		sort.Strings(on)
		on = compactStrings(on)
		d.Dependencies = &on
	}
	return d
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// CheckSBOM checks that sbom is a CycloneDX 1.6 JSON document whose
// metadata.component is an operating-system component carrying the SHA-256
// imageSHA256, and whose dependencies only name components it lists. It is
// read strictly: no key twice or in two cases at any depth (see
// strictjson), since the CycloneDX decoder would keep the last of them.
func CheckSBOM(sbom []byte, imageSHA256 string) error {
	if err := strictjson.Check(sbom); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSBOM, err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(sbom), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return fmt.Errorf("%w: decode: %w", ErrBadSBOM, err)
	}
	if bom.BOMFormat != cdx.BOMFormat || bom.SpecVersion != cdx.SpecVersion1_6 {
		return fmt.Errorf("%w: bomFormat %q specVersion %s, want CycloneDX 1.6", ErrBadSBOM, bom.BOMFormat, bom.SpecVersion)
	}
	if err := checkImageComponent(bom.Metadata, imageSHA256); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSBOM, err)
	}
	if err := checkDependencyRefs(&bom); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSBOM, err)
	}
	return nil
}

func checkImageComponent(md *cdx.Metadata, want string) error {
	if md == nil || md.Component == nil {
		return errors.New("no metadata.component")
	}
	c := md.Component
	if c.Type != cdx.ComponentTypeOS {
		return fmt.Errorf("metadata.component type is %q, want %q", c.Type, cdx.ComponentTypeOS)
	}
	if c.Hashes == nil {
		return errors.New("metadata.component has no hashes")
	}
	for _, h := range *c.Hashes {
		if h.Algorithm == cdx.HashAlgoSHA256 {
			if !strings.EqualFold(h.Value, want) {
				return fmt.Errorf("metadata.component SHA-256 is %s, the image's is %s", h.Value, want)
			}
			return nil
		}
	}
	return errors.New("metadata.component has no SHA-256")
}

func checkDependencyRefs(bom *cdx.BOM) error {
	if bom.Dependencies == nil {
		return nil
	}
	known := map[string]bool{}
	if bom.Metadata.Component.BOMRef != "" {
		known[bom.Metadata.Component.BOMRef] = true
	}
	if bom.Components != nil {
		for _, c := range *bom.Components {
			known[c.BOMRef] = true
		}
	}
	for _, d := range *bom.Dependencies {
		for _, r := range append([]string{d.Ref}, derefStrings(d.Dependencies)...) {
			if !known[r] {
				return fmt.Errorf("dependency names unknown bom-ref %q", r)
			}
		}
	}
	return nil
}

func derefStrings(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}
