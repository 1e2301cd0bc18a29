package sidecar

import (
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/socioprophet/sourceos/internal/strictjson"
)

// NetbootManifest is netboot-manifest.json: the netboot set's files with
// their digests and the kernel command line, so a PXE server can be
// configured from it alone. The build writes it; its signature covers the
// set.
type NetbootManifest struct {
	Edition    string        `json:"edition"`
	Arch       string        `json:"arch"`
	Version    string        `json:"version"`
	Kernel     NetbootFile   `json:"kernel"`
	Initrd     NetbootFile   `json:"initrd"`
	IPXE       NetbootFile   `json:"ipxe"`
	KernelArgs string        `json:"kernelArgs"`
	Files      []NetbootFile `json:"files"`
}

// NetbootFile is one file of the set.
type NetbootFile struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseManifest reads a manifest strictly (no key twice, in two cases or
// unknown) and checks every file it lists is a file name beside it, listed
// once, with a SHA-256.
func ParseManifest(raw []byte) (*NetbootManifest, error) {
	var m NetbootManifest
	if err := strictjson.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		switch {
		case f.File == "" || f.File != filepath.Base(f.File) || f.File == "." || f.File == "..":
			return nil, fmt.Errorf("%s lists %q, which is not a file name beside it", ManifestName, f.File)
		case f.File == ManifestName:
			return nil, fmt.Errorf("%s lists itself", ManifestName)
		case seen[f.File]:
			return nil, fmt.Errorf("%s lists %q twice", ManifestName, f.File)
		case !sha256Hex.MatchString(f.SHA256) || f.Size < 0:
			return nil, fmt.Errorf("%s: %q has no valid sha256 and size", ManifestName, f.File)
		}
		seen[f.File] = true
	}
	return &m, nil
}
