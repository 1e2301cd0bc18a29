// Package sidecar holds what signing and verifying agree on: the names of
// the files written beside an artifact, the kinds of release, where a
// sidecar is published, how large each may be, and how to read one safely
// (regular files only, bounded). internal/attest writes them,
// internal/verify checks them.
package sidecar

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/socioprophet/sourceos/internal/catalog"

	"github.com/socioprophet/sourceos/internal/provenance"
)

// Sidecar file name suffixes: artifact "a" gets "a.sha256", "a.minisig"…
const (
	ExtSHA256    = ".sha256"
	ExtMinisig   = ".minisig"
	ExtStatement = ".intoto.json"
	ExtDSSE      = ".intoto.dsse.json"
	ExtSLSA      = ".slsa.json"
	ExtSBOM      = ".sbom.json"
	ExtOSImage   = ".osimage.json"
)

// SidecarExts lists every sidecar suffix, signatures last.
var SidecarExts = []string{ExtSHA256, ExtStatement, ExtSLSA, ExtSBOM, ExtOSImage, ExtMinisig, ExtDSSE}

// Kind is what is being signed: a kind of the catalog. Every kind but
// Netboot is one image file, which also gets an SBOM (when the closure is
// known) and an OSImage document; a netboot set is a kernel, an initrd, an
// iPXE script and netboot-manifest.json, each signed on its own.
type Kind = catalog.Kind

// The kinds callers name most.
const (
	ISO     = catalog.ISO
	Netboot = catalog.Netboot
)

// KindOf maps TARGET to a Kind.
func KindOf(target string) (Kind, error) {
	if slices.Contains(catalog.Kinds, Kind(target)) {
		return Kind(target), nil
	}
	return "", fmt.Errorf("TARGET %q: want one of %v", target, catalog.Kinds)
}

// IsImage reports whether a kind is one image file (with an SBOM and an
// OSImage document), not a netboot set.
func IsImage(k Kind) bool { return k != Netboot }

// Ref is where a sidecar named name is published: a URL under the GCS
// prefix when one is set (gs://bucket/prefix becomes its public
// https://storage.googleapis.com URL), else the bare file name.
func Ref(gcsPrefix, name string) string {
	p := strings.TrimRight(gcsPrefix, "/")
	if p == "" {
		return name
	}
	if rest, ok := strings.CutPrefix(p, "gs://"); ok {
		p = "https://storage.googleapis.com/" + rest
	}
	return p + "/" + url.PathEscape(name)
}

// RefNames reports whether ref locates the file name: the bare name or a
// URL whose last path element is the name.
func RefNames(ref, name string) bool {
	if ref == name {
		return true
	}
	u, err := url.Parse(ref)
	if err != nil || u.Scheme == "" {
		return false
	}
	return path.Base(u.Path) == name
}

// ManifestName is the netboot set's manifest; signing it signs the set.
const ManifestName = "netboot-manifest.json"

// MediaType is the media type of the document at path.
func MediaType(path string) string {
	if strings.HasSuffix(path, ExtSBOM) {
		return provenance.MediaTypeCycloneDX
	}
	return provenance.MediaTypeOSImage
}

// ContentType is the Content-Type an artifact or sidecar is uploaded with.
func ContentType(name string) string {
	switch path.Ext(name) {
	case ".json":
		return "application/json"
	case ".iso":
		return "application/x-iso9660-image"
	case ".sha256", ".minisig", ".ipxe":
		return "text/plain; charset=utf-8"
	}
	if path.Base(name) == "SHA256SUMS" {
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// Of is the sidecar suffix of name, "" when name is not a sidecar.
func Of(name string) string {
	for _, ext := range SidecarExts {
		if strings.HasSuffix(name, ext) {
			return ext
		}
	}
	return ""
}
