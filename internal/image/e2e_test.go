package image_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/image"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
)

// rig is one end-to-end build environment: real Nix, the fixture flake, a
// fake GCS server with an artifact bucket and a cache bucket, and fresh keys.
type rig struct {
	t        *testing.T
	gcs      *testrig.GCS
	out      string
	env      map[string]string
	signPub  string
	cachePub string
	log      bytes.Buffer
}

func newRig(t *testing.T) *rig {
	testrig.Nix(t)
	r := &rig{t: t, gcs: testrig.StartGCS(t, "artifacts", "cache"), out: t.TempDir()}
	kp, err := signature.Generate(signature.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cacheSecret, cachePub, err := nixcache.GenerateKey("sourceos-test-1")
	if err != nil {
		t.Fatal(err)
	}
	r.signPub, r.cachePub = string(kp.PublicKey), cachePub
	r.env = map[string]string{
		"SOURCEOS_FLAKE":           testrig.FixtureFlake(t),
		"OUT":                      r.out,
		"VERSION":                  "1.2.3",
		"BUILD_ID":                 "b-42",
		"GCS_PREFIX":               "gs://artifacts/builds/b-42",
		"NIX_CACHE_BUCKET":         "cache",
		"NIX_CACHE_SECRET_KEY":     cacheSecret,
		"NIX_CACHE_UPSTREAMS":      "",
		"NIX_CACHE_STRICT":         "1",
		"SOURCEOS_SIGN_SECRET_KEY": string(kp.SecretKey),
		"STORAGE_EMULATOR_HOST":    r.gcs.Host,
	}
	return r
}

// edition is build:<name> with the catalog of d's flake.
func edition(t testing.TB, d image.Deps, name string) (*image.Summary, error) {
	t.Helper()
	return image.Edition(context.Background(), d, catalogOf(t, d), name)
}

// customBuild is build:custom with the catalog of d's flake.
func customBuild(t testing.TB, d image.Deps, specPath string) (*image.Summary, error) {
	t.Helper()
	return image.Custom(context.Background(), d, catalogOf(t, d), specPath)
}

func catalogOf(t testing.TB, d image.Deps) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Resolve(context.Background(), d.Run, catalog.FlakeRef(d.Cfg.Flake), d.Cfg.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func (r *rig) deps() image.Deps {
	r.t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := r.env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		r.t.Fatal(err)
	}
	red := cfg.Redactor()
	w := red.Writer(&r.log)
	return image.Deps{Cfg: cfg, Stream: w, Log: slog.New(slog.NewTextHandler(w, nil)),
		Run: &execx.Exec{SecretNames: config.SecretNames(), Redactor: red, Log: w}}
}

// verify runs the same verification as `mage verify` on an artifact.
func (r *rig) verify(path string) {
	r.t.Helper()
	rep, err := verify.Verify(context.Background(), verify.VerifyOptions{Artifact: path, PublicKey: r.signPub})
	if err != nil {
		js, _ := json.MarshalIndent(rep, "", " ")
		r.t.Fatalf("verify %s: %v\n%s", filepath.Base(path), err, js)
	}
}

// objects lists the artifact bucket's keys under the build prefix.
func (r *rig) objects() []string {
	r.t.Helper()
	var keys []string
	objs, _, err := r.gcs.Server.ListObjectsWithOptions("artifacts", fakestorage.ListOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, o := range objs {
		keys = append(keys, strings.TrimPrefix(o.Name, "builds/b-42/"))
	}
	sort.Strings(keys)
	return keys
}

// substitute has real Nix fetch paths from the cache over HTTP into an
// empty scratch store, trusting only our cache key.
func (r *rig) substitute(paths ...string) {
	r.t.Helper()
	store := filepath.Join(r.t.TempDir(), "store")
	args := append([]string{"copy", "--from", "http://" + r.gcs.Host + "/cache/nix-cache", "--to", store,
		"--option", "trusted-public-keys", r.cachePub}, paths...)
	cmd := exec.Command("nix", args...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+r.t.TempDir()) // no narinfo of another test's cache
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("nix copy from the cache: %v\n%s", err, out)
	}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(store, p)); err != nil {
			r.t.Fatalf("%s not substituted into the scratch store: %v", p, err)
		}
	}
}

func TestBuildDesktopEndToEnd(t *testing.T) {
	r := newRig(t)
	sum, err := edition(t, r.deps(), "desktop")
	if err != nil {
		t.Fatalf("build:desktop: %v\n%s", err, r.log.String())
	}
	iso := filepath.Join(r.out, "sourceos-desktop-x86_64.iso")
	r.verify(iso)
	if !sum.Signed || sum.Closure < 5 {
		t.Errorf("summary: signed=%v closure=%d", sum.Signed, sum.Closure)
	}
	if sum.Cache == nil || sum.Cache.Pushed != sum.Closure || sum.Cache.Failed != 0 {
		t.Errorf("cache summary %+v, want all %d paths pushed", sum.Cache, sum.Closure)
	}
	want := []string{"sourceos-desktop-x86_64.iso", "sourceos-desktop-x86_64.iso.intoto.dsse.json",
		"sourceos-desktop-x86_64.iso.intoto.json", "sourceos-desktop-x86_64.iso.minisig",
		"sourceos-desktop-x86_64.iso.osimage.json", "sourceos-desktop-x86_64.iso.sbom.json",
		"sourceos-desktop-x86_64.iso.sha256", "sourceos-desktop-x86_64.iso.slsa.json"}
	if got := r.objects(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("uploaded objects:\n got %v\nwant %v", got, want)
	}
	code, body := r.gcs.Get(t, "artifacts", "builds/b-42/sourceos-desktop-x86_64.iso")
	local, _ := os.ReadFile(iso)
	if code != 200 || !bytes.Equal(body, local) {
		t.Errorf("uploaded ISO differs from OUT (status %d)", code)
	}
	r.substitute(sum.Outputs["system"], sum.Outputs["image"])
	var buf bytes.Buffer
	if err := sum.Print(&buf); err != nil || !json.Valid(buf.Bytes()) || bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("summary is not one JSON line: %q", buf.String())
	}
	for _, phase := range []string{"==> [1/", "nix build system", "nix build image", "upload to GCS_PREFIX", "push closure"} {
		if !strings.Contains(r.log.String(), phase) {
			t.Errorf("log lacks phase %q", phase)
		}
	}
}

func TestBuildNetbootEndToEnd(t *testing.T) {
	r := newRig(t)
	r.env["TARGET"] = "netboot"
	sum, err := edition(t, r.deps(), "server")
	if err != nil {
		t.Fatalf("netboot: %v\n%s", err, r.log.String())
	}
	for _, name := range []string{"sourceos-server-x86_64-kernel", "sourceos-server-x86_64-initrd", "netboot-manifest.json"} {
		r.verify(filepath.Join(r.out, name))
	}
	var m sidecar.NetbootManifest
	raw, err := os.ReadFile(filepath.Join(r.out, "netboot-manifest.json"))
	if err != nil || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.Kernel.File != "sourceos-server-x86_64-kernel" || len(m.Kernel.SHA256) != 64 || !strings.Contains(m.KernelArgs, "console=ttyS0") {
		t.Errorf("manifest %+v", m)
	}
	ipxe, _ := os.ReadFile(filepath.Join(r.out, "sourceos-server-x86_64.ipxe"))
	if !strings.Contains(string(ipxe), "kernel sourceos-server-x86_64-kernel ") || !strings.Contains(string(ipxe), "\ninitrd sourceos-server-x86_64-initrd\n") {
		t.Errorf("iPXE script does not boot the release names: %q", ipxe)
	}
	// The kernel's EFI stub loads the file initrd= names when iPXE cannot
	// hand the initrd over: it must be the file that is shipped.
	for what, args := range map[string]string{"iPXE script": string(ipxe), "manifest": m.KernelArgs} {
		if !strings.Contains(args, " initrd=sourceos-server-x86_64-initrd ") || strings.Contains(args, "initrd=initrd") {
			t.Errorf("%s: kernel arguments do not name the shipped initrd: %q", what, args)
		}
	}
	if strings.Contains(m.KernelArgs, "${cmdline}") || !strings.Contains(string(ipxe), "${cmdline}") {
		t.Errorf("iPXE's ${cmdline} belongs in the script only: manifest %q, script %q", m.KernelArgs, ipxe)
	}
	if !contains(r.objects(), "netboot-manifest.json.minisig") {
		t.Errorf("manifest signature not uploaded: %v", r.objects())
	}
	r.substitute(sum.Outputs["image"])
}

func TestBuildFailureLeavesNothing(t *testing.T) {
	r := newRig(t)
	dir := testrig.FixtureFlakeCopy(t)
	flake := filepath.Join(dir, "flake.nix")
	src, _ := os.ReadFile(flake)
	// Make the desktop ISO the derivation that exits 1.
	patched := strings.Replace(string(src), "// { sourceos-broken-iso = broken;", "// { sourceos-desktop-iso = broken; sourceos-broken-iso = broken;", 1)
	if patched == string(src) {
		t.Fatal("fixture flake changed: cannot patch in the broken ISO")
	}
	writeFile(t, flake, patched)
	r.env["SOURCEOS_FLAKE"] = "path:" + dir
	_, err := edition(t, r.deps(), "desktop")
	if err == nil {
		t.Fatal("a failing derivation did not fail the build")
	}
	if !strings.Contains(err.Error(), "this derivation fails on purpose") {
		t.Errorf("error lacks the build log tail: %v", err)
	}
	if entries, _ := os.ReadDir(r.out); len(entries) != 0 {
		t.Errorf("OUT holds %d entries after a failed build", len(entries))
	}
	if objs := r.objects(); len(objs) != 0 {
		t.Errorf("uploaded %v after a failed build", objs)
	}
}

// A fake nix on PATH records its environment and runs the real one: with
// signing and cache secrets set, neither reaches it.
func TestSecretsNeverReachNix(t *testing.T) {
	r := newRig(t)
	realNix, _ := exec.LookPath("nix")
	bin := t.TempDir()
	record := filepath.Join(t.TempDir(), "env")
	writeFile(t, filepath.Join(bin, "nix"), "#!/bin/sh\nenv >> "+record+"\nexec "+realNix+" \"$@\"\n")
	if err := os.Chmod(filepath.Join(bin, "nix"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("SOURCEOS_SIGN_SECRET_KEY", r.env["SOURCEOS_SIGN_SECRET_KEY"])
	t.Setenv("NIX_CACHE_SECRET_KEY", r.env["NIX_CACHE_SECRET_KEY"])
	if _, err := edition(t, r.deps(), "edge"); err != nil {
		t.Fatalf("build: %v\n%s", err, r.log.String())
	}
	env, err := os.ReadFile(record)
	if err != nil || len(env) == 0 {
		t.Fatalf("fake nix was not run: %v", err)
	}
	secretLine := strings.Split(strings.TrimSpace(r.env["SOURCEOS_SIGN_SECRET_KEY"]), "\n")[1]
	cacheB64 := strings.SplitN(r.env["NIX_CACHE_SECRET_KEY"], ":", 2)[1]
	for _, s := range []string{"SOURCEOS_SIGN_SECRET_KEY=", "NIX_CACHE_SECRET_KEY=", secretLine, cacheB64} {
		if strings.Contains(string(env), s) {
			t.Errorf("nix's environment contains %q", s[:min(len(s), 24)])
		}
	}
	for _, s := range []string{secretLine, cacheB64} {
		if strings.Contains(r.log.String(), s) {
			t.Errorf("the build log contains key material %q", s[:12])
		}
	}
	for _, e := range mustReadDir(t, r.out) {
		b, _ := os.ReadFile(filepath.Join(r.out, e))
		if bytes.Contains(b, []byte(secretLine)) || bytes.Contains(b, []byte(cacheB64)) {
			t.Errorf("%s holds key material", e)
		}
	}
}

func TestUnconfiguredBuildIsUnsignedAndStillSucceeds(t *testing.T) {
	r := newRig(t)
	for _, k := range []string{"SOURCEOS_SIGN_SECRET_KEY", "NIX_CACHE_SECRET_KEY", "NIX_CACHE_BUCKET", "NIX_CACHE_STRICT", "GCS_PREFIX"} {
		delete(r.env, k)
	}
	sum, err := edition(t, r.deps(), "desktop")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, r.log.String())
	}
	if sum.Signed {
		t.Error("unsigned build reported signed")
	}
	if !strings.Contains(r.log.String(), "skipped") {
		t.Error("skips not logged")
	}
	r.env["SOURCEOS_REQUIRE_SIGNATURE"] = "1"
	_, err = edition(t, r.deps(), "desktop")
	if err == nil || !strings.Contains(err.Error(), "SOURCEOS_REQUIRE_SIGNATURE") {
		t.Fatalf("required signature without key: %v", err)
	}
	var xe *execx.Error
	if errors.As(err, &xe) {
		t.Errorf("preflight should fail before running nix build, got %v", err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A run killed while writing leaves ".<name>.partial-*" files in OUT; the
// next run removes those nobody has written to for a while, and keeps a
// fresh one (a concurrent run's).
func TestStalePartialsAreSwept(t *testing.T) {
	r := newRig(t)
	stale := filepath.Join(r.out, ".sourceos-edge-x86_64.iso.partial-123")
	fresh := filepath.Join(r.out, ".sourceos-edge-x86_64.iso.sha256.partial-456")
	other := filepath.Join(r.out, "notes.partial-7")
	for _, p := range []string{stale, fresh, other} {
		writeFile(t, p, "half")
	}
	old := time.Now().Add(-image.StalePartialAge - time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := edition(t, r.deps(), "edge"); err != nil {
		t.Fatalf("build: %v\n%s", err, r.log.String())
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale partial kept: %v", err)
	}
	for _, p := range []string{fresh, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(p), err)
		}
	}
	if !strings.Contains(r.log.String(), "removed 1 partial files") {
		t.Errorf("the sweep is not logged:\n%s", r.log.String())
	}
}
