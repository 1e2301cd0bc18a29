package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/sidecar"
)

// netboot checks, for a netboot manifest, that it describes the build the
// signed predicate records and that every file it lists is beside it with
// the size and SHA-256 it gives: the manifest's signature then covers the
// whole set, the iPXE script included.
func (v *verifier) netboot() {
	if v.name != sidecar.ManifestName {
		return
	}
	raw, err := sidecar.ReadLimited(v.opts.Artifact, sidecar.MaxManifestSize)
	if err != nil {
		v.errored(CheckNetbootSet, err)
		return
	}
	m, err := sidecar.ParseManifest(raw)
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
	for role, f := range map[string]sidecar.NetbootFile{"kernel": m.Kernel, "initrd": m.Initrd, "ipxe": m.IPXE} {
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

func containsFile(files []sidecar.NetbootFile, f sidecar.NetbootFile) bool {
	for _, g := range files {
		if g == f {
			return true
		}
	}
	return false
}

// checkSetFile hashes one file of the set and compares it with its entry.
func checkSetFile(p *problems, path string, want sidecar.NetbootFile) {
	f, st, err := sidecar.OpenRegular(path)
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
