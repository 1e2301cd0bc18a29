package release

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"

	"github.com/socioprophet/sourceos/internal/strictjson"
)

// netbootManifest is netboot-manifest.json as the build writes it: the
// set's files with their digests and the kernel command line.
type netbootManifest struct {
	Edition    string        `json:"edition"`
	Arch       string        `json:"arch"`
	Version    string        `json:"version"`
	Kernel     netbootFile   `json:"kernel"`
	Initrd     netbootFile   `json:"initrd"`
	IPXE       netbootFile   `json:"ipxe"`
	KernelArgs string        `json:"kernelArgs"`
	Files      []netbootFile `json:"files"`
}

type netbootFile struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// parseManifest reads a manifest strictly (no key twice, in two cases or
// unknown) and checks every file it lists is a file name beside it, listed
// once, with a SHA-256.
func parseManifest(raw []byte) (*netbootManifest, error) {
	var m netbootManifest
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

// netboot checks, for a netboot manifest, that it describes the build the
// signed predicate records and that every file it lists is beside it with
// the size and SHA-256 it gives: the manifest's signature then covers the
// whole set, the iPXE script included.
func (v *verifier) netboot() {
	if v.name != ManifestName {
		return
	}
	raw, err := readLimited(v.opts.Artifact, MaxManifestSize)
	if err != nil {
		v.errored(CheckNetbootSet, err)
		return
	}
	m, err := parseManifest(raw)
	if err != nil {
		v.fail(CheckNetbootSet, err)
		return
	}
	if !v.signed(CheckNetbootSet) {
		return
	}
	var p problems
	b := v.predicate.Build
	for _, c := range [][3]string{{"target", "netboot", b.Target}, {"edition", m.Edition, b.Edition},
		{"arch", m.Arch, b.Arch}, {"version", m.Version, b.Version}} {
		if c[1] != c[2] {
			p.fail("%s is %q, the signed predicate says %q", c[0], c[1], c[2])
		}
	}
	for role, f := range map[string]netbootFile{"kernel": m.Kernel, "initrd": m.Initrd, "ipxe": m.IPXE} {
		if !containsFile(m.Files, f) {
			p.fail("the %s entry %q is not one of the files listed", role, f.File)
		}
	}
	dir := filepath.Dir(v.opts.Artifact)
	for _, f := range m.Files {
		checkSetFile(&p, filepath.Join(dir, f.File), f)
	}
	p.report(v, CheckNetbootSet)
}

func containsFile(files []netbootFile, f netbootFile) bool {
	for _, g := range files {
		if g == f {
			return true
		}
	}
	return false
}

// checkSetFile hashes one file of the set and compares it with its entry.
func checkSetFile(p *problems, path string, want netbootFile) {
	f, st, err := openRegular(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.fail("%s is listed in the manifest but missing", want.File)
		return
	case err != nil:
		p.errored(err)
		return
	}
	defer f.Close()
	if st.Size() != want.Size {
		p.fail("%s has %d bytes, the manifest says %d", want.File, st.Size(), want.Size)
		return
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		p.errored(fmt.Errorf("read %s: %w", want.File, err))
		return
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		p.fail("%s has sha256 %s, the manifest says %s", want.File, got, want.SHA256)
	}
}
