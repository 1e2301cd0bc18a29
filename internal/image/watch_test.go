package image_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// freshFixture copies the fixture flake with the desktop system made new
// (so Nix builds it and runs the post-build hook) and, if brokenISO, the
// desktop ISO failing.
func freshFixture(t *testing.T, brokenISO bool) string {
	t.Helper()
	dir := testrig.FixtureFlakeCopy(t)
	flake := filepath.Join(dir, "flake.nix")
	src, _ := os.ReadFile(flake)
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	patched := strings.Replace(string(src), `echo "ID=sourceos" > $out/etc/os-release`,
		`echo "ID=sourceos NONCE_`+hex.EncodeToString(nonce[:])+`" > $out/etc/os-release`, 1)
	if brokenISO {
		patched = strings.Replace(patched, "// { sourceos-broken-iso = broken;", "// { sourceos-desktop-iso = broken; sourceos-broken-iso = broken;", 1)
	}
	if strings.Count(patched, "NONCE_") != 1 || (brokenISO && !strings.Contains(patched, "sourceos-desktop-iso = broken")) {
		t.Fatal("fixture flake changed: cannot patch it")
	}
	writeFile(t, flake, patched)
	return "path:" + dir
}

// An edition build pushes while it builds; when a later derivation fails,
// every path built before the failure is in the cache, complete, and real
// Nix substitutes it.
func TestFailedBuildCachesWhatItBuilt(t *testing.T) {
	r := newRig(t)
	flake := freshFixture(t, true)
	r.env["SOURCEOS_FLAKE"] = flake
	if _, err := edition(t, r.deps(), "desktop"); err == nil {
		t.Fatal("a failing derivation did not fail the build")
	}
	if !strings.Contains(r.log.String(), "pushing each path as Nix builds it") || !strings.Contains(r.log.String(), "--option post-build-hook") {
		t.Fatalf("the build did not push while building:\n%s", r.log.String())
	}
	system := testrig.Build(t, flake+"#packages.x86_64-linux.sourceos-desktop-system")[0]
	for _, p := range testrig.Closure(t, system) {
		if _, err := r.gcs.Server.GetObject("cache", "nix-cache/"+nixstore.HashPart(p)+".narinfo"); err != nil {
			t.Errorf("%s, in the closure built before the failure, is not in the cache", p)
		}
	}
	if objs, _, _ := r.gcs.Server.ListObjectsWithOptions("cache", fakestorage.ListOptions{Prefix: "nix-cache/roots/"}); len(objs) != 0 {
		t.Errorf("a failed build recorded a root")
	}
	r.substitute(system)
}

// A successful build that pushed while building ends with a root naming
// its outputs, and its summary counts the whole closure.
func TestBuildPushesWhileBuildingAndRecordsRoot(t *testing.T) {
	r := newRig(t)
	r.env["SOURCEOS_FLAKE"] = freshFixture(t, false)
	r.env["SOURCEOS_CHANNEL"] = "candidate"
	sum, err := edition(t, r.deps(), "desktop")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, r.log.String())
	}
	if sum.Cache == nil || sum.Cache.Pushed+sum.Cache.Present != sum.Closure || sum.Cache.Failed != 0 {
		t.Fatalf("cache summary %+v, closure %d", sum.Cache, sum.Closure)
	}
	objs, _, _ := r.gcs.Server.ListObjectsWithOptions("cache", fakestorage.ListOptions{Prefix: "nix-cache/roots/"})
	if len(objs) != 1 || !strings.HasPrefix(objs[0].Name, "nix-cache/roots/desktop-x86_64-iso-candidate/") || !strings.Contains(objs[0].Name, "-b-42.json") {
		names := []string{}
		for _, o := range objs {
			names = append(names, o.Name)
		}
		t.Fatalf("roots %v, want one for desktop-x86_64-iso-candidate of build b-42", names)
	}
	r.substitute(sum.Outputs["system"], sum.Outputs["image"])
}

// With NIX_CACHE_WATCH=0 no hook is installed; the closure is pushed at
// the end as before.
func TestBuildWithoutWatch(t *testing.T) {
	r := newRig(t)
	r.env["SOURCEOS_FLAKE"] = freshFixture(t, false)
	r.env["NIX_CACHE_WATCH"] = "0"
	sum, err := edition(t, r.deps(), "desktop")
	if err != nil || sum.Cache == nil || sum.Cache.Pushed != sum.Closure {
		t.Fatalf("build: %v %+v", err, sum)
	}
	if strings.Contains(r.log.String(), "post-build-hook") {
		t.Fatal("a hook was installed with NIX_CACHE_WATCH=0")
	}
}
