package image_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/image"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
)

func TestRebuildArgs(t *testing.T) {
	got := image.RebuildArgs("path:/src#packages.x86_64-linux.sourceos-desktop-iso")
	want := []string{"build", "--json", "--no-link", "--print-build-logs", "--no-update-lock-file", "--rebuild",
		"path:/src#packages.x86_64-linux.sourceos-desktop-iso"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// A custom build's overrides hold for the second build too.
	got = image.RebuildArgs("path:/x#a", "--override-input", "sourceos", "path:/src")
	if !slices.Equal(got, []string{"build", "--json", "--no-link", "--print-build-logs", "--no-write-lock-file", "--rebuild",
		"--override-input", "sourceos", "path:/src", "path:/x#a"}) {
		t.Errorf("with overrides: %q", got)
	}
}

func TestParseRebuildFailure(t *testing.T) {
	const out = "/nix/store/7jadsx4dynxg3yjcav83vck7h27f7zkv-rb-nondet"
	for name, tc := range map[string]struct {
		stderr, want string
		ok           bool
	}{
		// What Nix 2.8 prints, without and with --keep-failed.
		"differs": {stderr: "checking outputs of '/nix/store/h-rb-nondet.drv'...\nerror: derivation '/nix/store/h-rb-nondet.drv' may not be deterministic: output '" + out + "' differs\n", want: out, ok: true},
		"differs from .check": {stderr: "error: derivation '/nix/store/h-rb-nondet.drv' may not be deterministic: output '" + out + "' differs from '" + out + ".check'\n",
			want: out, ok: true},
		"build failed": {stderr: "error: builder for '/nix/store/h-x.drv' failed with exit code 1\n"},
		"no output":    {stderr: ""},
	} {
		got, ok := image.ParseRebuildFailure(tc.stderr)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %q %v, want %q %v", name, got, ok, tc.want, tc.ok)
		}
	}
}

// The rebuild check with real Nix on the fixture's two derivations: the
// deterministic one comes out reproducible, the one that writes random
// bytes does not, with its output named; a derivation that cannot be built
// again is an error, not an outcome.
func TestRebuildFixtures(t *testing.T) {
	testrig.Nix(t)
	flake := testrig.FixtureFlake(t)
	run := &execx.Exec{}
	for _, tc := range []struct {
		attr         string
		reproducible bool
	}{{"deterministic", true}, {"nondeterministic", false}} {
		t.Run(tc.attr, func(t *testing.T) {
			inst := flake + "#rebuildFixtures.x86_64-linux." + tc.attr
			out := testrig.Build(t, inst)[0]
			rc, err := image.Rebuild(context.Background(), run, image.RebuildOptions{Installable: inst, Output: out})
			if err != nil {
				t.Fatal(err)
			}
			want := provenance.RebuildCheck{Method: image.RebuildMethod, Output: out, Reproducible: tc.reproducible}
			if !tc.reproducible {
				want.DifferingOutput = out
			}
			if *rc != want {
				t.Errorf("got %+v, want %+v", *rc, want)
			}
		})
	}
	// Never built (it cannot be): Nix has nothing to compare with.
	rc, err := image.Rebuild(context.Background(), run, image.RebuildOptions{Installable: testrig.Attr(t, "sourceos-broken-iso"), Output: "/nix/store/x"})
	if err == nil || rc != nil || !strings.Contains(err.Error(), "checking is not possible") {
		t.Errorf("a derivation that does not build: %+v %v", rc, err)
	}
}

// rebuildRig is the end-to-end rig with the rebuild check on, building
// from a copy of the fixture flake whose desktop ISO is the deterministic
// or the random one.
func rebuildRig(t *testing.T, reproducible bool) *rig {
	r := newRig(t)
	for _, k := range []string{"NIX_CACHE_BUCKET", "NIX_CACHE_STRICT", "NIX_CACHE_SECRET_KEY"} {
		delete(r.env, k)
	}
	r.env["SOURCEOS_REBUILD_CHECK"] = "1"
	if reproducible {
		return r
	}
	dir := testrig.FixtureFlakeCopy(t)
	flake := filepath.Join(dir, "flake.nix")
	src, err := os.ReadFile(flake)
	if err != nil {
		t.Fatal(err)
	}
	patched := strings.Replace(string(src), "// { sourceos-broken-iso = broken;",
		"// { sourceos-desktop-iso = self.rebuildFixtures.${system}.nondeterministic; sourceos-broken-iso = broken;", 1)
	if patched == string(src) {
		t.Fatal("fixture flake changed: cannot patch in the random ISO")
	}
	writeFile(t, flake, patched)
	r.env["SOURCEOS_FLAKE"] = "path:" + dir
	return r
}

func verifyReproducible(t *testing.T, path, pub string, require bool) (*verify.Report, error) {
	t.Helper()
	return verify.Verify(context.Background(), verify.VerifyOptions{Artifact: path, PublicKey: pub, RequireReproducible: require})
}

// build:desktop with SOURCEOS_REBUILD_CHECK=1 records the outcome in the
// signed predicate and the OSImage document; verify reports it, and with
// SOURCEOS_REQUIRE_REPRODUCIBLE fails an image recorded as differing. With
// SOURCEOS_REQUIRE_REPRODUCIBLE on the build, a difference stops the build
// before anything is signed.
func TestBuildRecordsRebuildCheck(t *testing.T) {
	t.Run("reproducible", func(t *testing.T) {
		r := rebuildRig(t, true)
		if _, err := edition(t, r.deps(), "desktop"); err != nil {
			t.Fatalf("build: %v\n%s", err, r.log.String())
		}
		iso := filepath.Join(r.out, "sourceos-desktop-x86_64.iso")
		rc, ann := recorded(t, iso)
		if rc == nil || !rc.Reproducible || rc.Method != image.RebuildMethod || ann != "true" {
			t.Errorf("recorded %+v, annotation %q", rc, ann)
		}
		if rep, err := verifyReproducible(t, iso, r.signPub, true); err != nil || rep.OK != true {
			t.Errorf("verify requiring reproducibility: %v", err)
		}
		if !strings.Contains(r.log.String(), "rebuild check of the image") || !strings.Contains(r.log.String(), "reproducible: a second build") {
			t.Errorf("log lacks the rebuild step:\n%s", r.log.String())
		}
	})
	t.Run("differs, recorded", func(t *testing.T) {
		r := rebuildRig(t, false)
		sum, err := edition(t, r.deps(), "desktop")
		if err != nil {
			t.Fatalf("build: %v\n%s", err, r.log.String())
		}
		iso := filepath.Join(r.out, "sourceos-desktop-x86_64.iso")
		rc, ann := recorded(t, iso)
		if rc == nil || rc.Reproducible || rc.DifferingOutput != sum.Outputs["image"] || ann != "false" {
			t.Errorf("recorded %+v, annotation %q, iso output %s", rc, ann, sum.Outputs["image"])
		}
		if _, err := verifyReproducible(t, iso, r.signPub, false); err != nil {
			t.Errorf("verify: %v", err)
		}
		rep, err := verifyReproducible(t, iso, r.signPub, true)
		failed := slices.ContainsFunc(rep.Checks, func(c verify.Check) bool { return c.Name == verify.CheckRebuild && c.Status == verify.Fail })
		if verify.ExitCode(err) != verify.ExitFailed || !failed {
			t.Errorf("verify requiring reproducibility: exit %d, %+v", verify.ExitCode(err), rep.Checks)
		}
	})
	t.Run("differs, required", func(t *testing.T) {
		r := rebuildRig(t, false)
		r.env["SOURCEOS_REQUIRE_REPRODUCIBLE"] = "1"
		delete(r.env, "SOURCEOS_REBUILD_CHECK") // implied
		_, err := edition(t, r.deps(), "desktop")
		if !errors.Is(err, image.ErrNotReproducible) {
			t.Fatalf("build: %v\n%s", err, r.log.String())
		}
		if entries, _ := os.ReadDir(r.out); len(entries) != 0 {
			t.Errorf("OUT holds %v after the build stopped", mustReadDir(t, r.out))
		}
		if objs := r.objects(); len(objs) != 0 {
			t.Errorf("uploaded %v", objs)
		}
	})
}

// recorded reads the rebuild check from the predicate of the statement
// signed beside iso, and the OSImage document's annotation.
func recorded(t *testing.T, iso string) (*provenance.RebuildCheck, string) {
	t.Helper()
	raw, err := os.ReadFile(iso + ".intoto.dsse.json")
	if err != nil {
		t.Fatal(err)
	}
	_, payload, err := signature.ParseEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, err := provenance.CheckStatement(payload)
	if err != nil {
		t.Fatal(err)
	}
	p, err := provenance.ParsePredicate(st.Predicate)
	if err != nil {
		t.Fatal(err)
	}
	docRaw, err := os.ReadFile(iso + ".osimage.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := provenance.ParseOSImage(docRaw)
	if err != nil {
		t.Fatal(err)
	}
	ann, _ := doc.OCIAnnotations[provenance.AnnotationReproducible].(string)
	return p.Build.Rebuild, ann
}

// BenchmarkRebuildCheck is the rebuild check's cost on the fixture: a
// build:desktop (signed, no upload, no cache push) without and with
// SOURCEOS_REBUILD_CHECK, both after a first build put every path in the
// store, so "with" adds one `nix build --rebuild` of the ISO derivation:
// go test -run '^$' -bench RebuildCheck -benchtime 5x ./internal/image
func BenchmarkRebuildCheck(b *testing.B) {
	testrig.Nix(b)
	kp, err := signature.Generate(signature.GenerateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]string{"SOURCEOS_FLAKE": testrig.FixtureFlake(b), "OUT": b.TempDir(), "VERSION": "1.2.3",
		"SOURCEOS_SIGN_SECRET_KEY": string(kp.SecretKey)}
	deps := func() image.Deps {
		cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
		if err != nil {
			b.Fatal(err)
		}
		return image.Deps{Cfg: cfg, Run: &execx.Exec{SecretNames: config.SecretNames()}, Log: slog.New(slog.DiscardHandler)}
	}
	if _, err := edition(b, deps(), "desktop"); err != nil {
		b.Fatal(err)
	}
	for _, check := range []string{"0", "1"} {
		name := map[string]string{"0": "without", "1": "with"}[check]
		b.Run(name, func(b *testing.B) {
			env["SOURCEOS_REBUILD_CHECK"] = check
			d := deps()
			for b.Loop() {
				if _, err := edition(b, d, "desktop"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
