package image_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/image"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// A flake shaped like the SourceOS tree (testdata/upstream-flake: one
// installer ISO per architecture, qcow2 images of an edition and of hosts,
// editions under other module names), driven through its own catalog:
// built, signed, verified with the public key, uploaded, and its closure
// pushed so that real Nix substitutes it; names and OSImage profiles come
// from that catalog.
func TestUpstreamShapedFlakeThroughItsCatalog(t *testing.T) {
	r := newRig(t)
	r.env["SOURCEOS_FLAKE"] = "path:" + filepath.Join(testrig.RepoRoot(t), "testdata", "upstream-flake")
	d := r.deps()
	cat := catalogOf(t, d)

	iso, err := image.ArtifactByID(context.Background(), d, cat, "sourceos-installer-iso")
	if err != nil {
		t.Fatalf("build:artifact sourceos-installer-iso: %v\n%s", err, r.log.String())
	}
	d.Cfg.Target = "qcow2"
	disk, err := image.Edition(context.Background(), d, cat, "desktop")
	if err != nil {
		t.Fatalf("build:edition desktop (qcow2): %v\n%s", err, r.log.String())
	}
	for file, profile := range map[string]string{"sourceos-installer-x86_64.iso": "installer", "sourceos-image-qcow2-desktop.qcow2": "workstation"} {
		path := filepath.Join(r.out, file)
		r.verify(path)
		raw, err := os.ReadFile(path + sidecar.ExtOSImage)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := provenance.ParseOSImage(raw)
		if err != nil || doc.HostProfile != profile || doc.ShortID != "so1-"+profile {
			t.Errorf("%s: OSImage %+v, %v", file, doc, err)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(r.out, "sourceos-installer-x86_64.iso"+sidecar.ExtSLSA))
	if !json.Valid(raw) || !strings.Contains(string(raw), "packages.x86_64-linux.sourceos-installer-iso") {
		t.Errorf("provenance does not name the attribute built: %s", raw)
	}
	objs := r.objects()
	for _, want := range []string{"sourceos-installer-x86_64.iso", "sourceos-image-qcow2-desktop.qcow2", "sourceos-image-qcow2-desktop.qcow2.minisig"} {
		if !slices.Contains(objs, want) {
			t.Errorf("not uploaded: %s (%v)", want, objs)
		}
	}
	if iso.Cache == nil || disk.Cache == nil || disk.Cache.Pushed+disk.Cache.Present < 3 {
		t.Errorf("cache push: iso %+v, disk %+v", iso.Cache, disk.Cache)
	}
	r.substitute(iso.Outputs["image"], disk.Outputs["image"])
}
