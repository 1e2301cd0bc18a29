package verify_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// The whole path with real parts: the fixture ISO built by real Nix, copied
// out of the store with digest.Copy (the only read), its closure from `nix
// path-info`, signed, verified by us and by the minisign CLI.
func TestRealNixISO(t *testing.T) {
	testrig.Nix(t)
	out := testrig.Build(t, testrig.Attr(t, "sourceos-desktop-iso"))[0]
	src, err := os.Open(filepath.Join(out, "iso", attesttest.ISOName))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	iso := filepath.Join(t.TempDir(), attesttest.ISOName)
	dst, err := os.Create(iso)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := digest.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	infos, err := nixstore.Query(context.Background(), &execx.Exec{}, out)
	if err != nil {
		t.Fatal(err)
	}
	var closure []provenance.StorePath
	for _, p := range infos {
		closure = append(closure, provenance.StorePath{Path: p.Path, NarHash: p.NarHash, NarSize: p.NarSize, References: p.References, Deriver: p.Deriver})
	}
	k := attesttest.NewKeys(t)
	attesttest.SignISO(t, k, iso, func(o *attest.Options) {
		o.Artifacts[0].Digests = &d
		o.Closure = closure
		o.Build.FlakeRef = testrig.FixtureFlake(t)
	})
	rep, err := attesttest.Verify(t, iso, k.Pub())
	if err != nil {
		t.Fatalf("%v\n%s", err, attesttest.ReportText(rep))
	}
	attesttest.MinisignVerify(t, iso, k.Pub())
	if err := provenance.CheckSBOM(attesttest.ReadFile(t, iso+".sbom.json"), d.SHA256Hex()); err != nil {
		t.Error(err)
	}
}
