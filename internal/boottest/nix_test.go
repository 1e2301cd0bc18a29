package boottest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/boottest"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func runner() *execx.Exec { return &execx.Exec{} }

// The stand-in tests of the fixture flake, built with real Nix in its
// sandbox: the same path `mage test:boot`, `mage test:install` and `mage
// test:disk` take.
func TestRunAgainstFixtureStandIns(t *testing.T) {
	testrig.Nix(t)
	flake := testrig.FixtureFlake(t)
	for _, c := range []struct {
		req  boottest.Request
		want string
	}{
		{boottest.Request{Flake: flake, Arch: "x86_64", Edition: "server", Kind: boottest.Boot}, "edition-server-boot passed"},
		{boottest.Request{Flake: flake, Arch: "x86_64", Edition: "server", Kind: boottest.Install}, "edition-server-install passed"},
		{boottest.Request{Flake: flake, Arch: "x86_64", Edition: "server", Kind: boottest.DiskBoot}, "image-server-qcow2-boot passed"},
	} {
		var out bytes.Buffer
		if err := boottest.Run(context.Background(), boottest.Options{Run: runner(), Stream: &out}, c.req); err != nil {
			t.Fatalf("%s: %v\n%s", c.req.Attr(), err, out.String())
		}
		// A test already built is not run again, so only the verdict is sure
		// to be in the stream; TestRunFailureCarriesTheDriversError checks
		// the streamed log.
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("%s: no verdict in the stream:\n%s", c.req.Attr(), out.String())
		}
	}
}

func TestRunFailureCarriesTheDriversError(t *testing.T) {
	testrig.Nix(t)
	var out bytes.Buffer
	req := boottest.Request{Flake: testrig.FixtureFlake(t), Arch: "x86_64", Edition: "broken", Kind: boottest.Install}
	err := boottest.Run(context.Background(), boottest.Options{Run: runner(), Stream: &out, TailLines: 10}, req)
	var f *boottest.Failure
	if !errors.As(err, &f) {
		t.Fatalf("err %v, want a *Failure\n%s", err, out.String())
	}
	msg := err.Error()
	if !strings.Contains(msg, `Test "edition-broken-install" failed with error`) {
		t.Fatalf("the failure does not reach the driver's error line:\n%s", msg)
	}
	if strings.Contains(msg, "starting vm") {
		t.Fatalf("the failure quotes the whole log, not its tail:\n%s", msg)
	}
	if !strings.Contains(out.String(), "    │ ") || !strings.Contains(out.String(), "starting vm") {
		t.Fatalf("the whole log was not streamed:\n%s", out.String())
	}
}

func TestRunUnknownTestFails(t *testing.T) {
	testrig.Nix(t)
	req := boottest.Request{Flake: testrig.FixtureFlake(t), Arch: "x86_64", Edition: "nosuch", Kind: boottest.Boot}
	err := boottest.Run(context.Background(), boottest.Options{Run: runner()}, req)
	if err == nil || !strings.Contains(err.Error(), "edition-nosuch-boot") {
		t.Fatalf("err %v, want it to name the missing check", err)
	}
}

// stubEval evaluates apply on the repository's own flake with the stand-in
// nixpkgs (testrig.StubEval).
func stubEval(t *testing.T, apply string, attr string) []byte {
	t.Helper()
	return testrig.StubEval(t, testrig.RepoRoot(t), apply, attr)
}

// The checks of the repository's flake: every edition has a boot test that
// `mage test:boot <edition>` finds under the name boottest gives it, for
// both systems, next to the system builds and hosts; the install test and
// the disk image boots are not checks, they are the opt-in tests of
// legacyPackages that `mage test:install` and `mage test:disk` find.
func TestRepositoryFlakeDeclaresTheBootTests(t *testing.T) {
	testrig.Nix(t)
	var checks map[string][]string
	if err := json.Unmarshal(stubEval(t, "c: builtins.mapAttrs (_: builtins.attrNames) c", "checks"), &checks); err != nil {
		t.Fatal(err)
	}
	for _, arch := range boottest.Arches {
		names := checks[arch+"-linux"]
		for _, edition := range []string{"desktop", "server", "edge"} {
			r := boottest.Request{Arch: arch, Edition: edition, Kind: boottest.Boot}
			if !slices.Contains(names, r.Name()) || r.Attr() != "checks."+arch+"-linux."+r.Name() {
				t.Errorf("%s: no check %s among %v", arch, r.Name(), names)
			}
			if !slices.Contains(names, "sourceos-"+edition+"-system") {
				t.Errorf("%s: the %s system build is no longer a check: %v", arch, edition, names)
			}
		}
		for _, n := range names {
			if strings.HasSuffix(n, "-install") || strings.HasSuffix(n, "-qcow2-boot") {
				t.Errorf("%s: heavy test %s is a flake check; it must stay opt-in", arch, n)
			}
		}
	}
	var tests map[string]map[string]string
	if err := json.Unmarshal(stubEval(t, "l: builtins.mapAttrs (_: s: builtins.mapAttrs (_: t: t.name) s.tests) l", "legacyPackages"), &tests); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"x86_64-linux": {"edition-desktop-boot", "edition-edge-boot", "edition-server-boot", "edition-server-install",
			"image-desktop-qcow2-boot", "image-edge-qcow2-boot", "image-server-qcow2-boot"},
		"aarch64-linux": {"edition-desktop-boot", "edition-edge-boot", "edition-server-boot",
			"image-desktop-qcow2-boot", "image-edge-qcow2-boot", "image-server-qcow2-boot"},
	}
	for _, arch := range boottest.Arches {
		for _, edition := range []string{"desktop", "server", "edge"} {
			r := boottest.Request{Arch: arch, Edition: edition, Kind: boottest.DiskBoot}
			if r.Attr() != "legacyPackages."+arch+"-linux.tests."+r.Name() || !slices.Contains(want[arch+"-linux"], r.Name()) {
				t.Errorf("mage test:disk %s on %s builds %s, not one of the flake's tests", edition, arch, r.Attr())
			}
		}
	}
	for system, names := range want {
		var got []string
		for attr, name := range tests[system] {
			if attr != name {
				t.Errorf("%s: test %s is named %s inside", system, attr, name)
			}
			got = append(got, attr)
		}
		sort.Strings(got)
		if !slices.Equal(got, names) {
			t.Errorf("%s tests %v, want %v", system, got, names)
		}
	}
}

// Each disk image boot test boots its own edition's qcow2 package, the
// derivation the pipeline ships, and waits for that edition's target.
func TestRepositoryFlakeBootsEachQcow2Package(t *testing.T) {
	testrig.Nix(t)
	var packages map[string]map[string]string
	if err := json.Unmarshal(stubEval(t, "p: builtins.mapAttrs (_: builtins.mapAttrs (_: d: d.outPath)) p", "packages"), &packages); err != nil {
		t.Fatal(err)
	}
	var scripts map[string]map[string]string
	apply := `l: builtins.mapAttrs (_: s: builtins.listToAttrs (map (n: { name = n; value = s.tests.${n}.test.testScript; })
		(builtins.filter (n: builtins.substring 0 6 n == "image-") (builtins.attrNames s.tests)))) l`
	if err := json.Unmarshal(stubEval(t, apply, "legacyPackages"), &scripts); err != nil {
		t.Fatal(err)
	}
	editions := []string{"desktop", "server", "edge"}
	for _, arch := range boottest.Arches {
		system := arch + "-linux"
		for _, edition := range editions {
			name := boottest.Request{Arch: arch, Edition: edition, Kind: boottest.DiskBoot}.Name()
			script, ok := scripts[system][name]
			if !ok {
				t.Errorf("%s: no test %s", system, name)
				continue
			}
			for _, other := range editions {
				image, ok := packages[system]["sourceos-"+other+"-qcow2"]
				if !ok {
					t.Fatalf("%s: no package sourceos-%s-qcow2 among %v", system, other, packages[system])
				}
				if got := strings.Contains(script, image); got != (other == edition) {
					t.Errorf("%s %s: boots %s's qcow2 package: %v, want %v", system, name, other, got, other == edition)
				}
			}
			if graphical := strings.Contains(script, `graphical\.target`); graphical != (edition == "desktop") {
				t.Errorf("%s %s: waits for graphical.target: %v\n%s", system, name, graphical, script)
			}
			if !strings.Contains(script, "wait_for_console_text") {
				t.Errorf("%s %s: waits for nothing:\n%s", system, name, script)
			}
		}
	}
}

// Every .nix file the flake is made of parses.
func TestEveryNixFileParses(t *testing.T) {
	testrig.Nix(t)
	nixInstantiate := testrig.RequireTool(t, "nix-instantiate")
	root := testrig.RepoRoot(t)
	var files []string
	for _, dir := range []string{"editions", "modules", "hosts", "images", "tests", "testdata", "internal/checks/nix"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".nix") {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	files = append(files, filepath.Join(root, "flake.nix"))
	if len(files) < 15 {
		t.Fatalf("found only %d .nix files: %v", len(files), files)
	}
	for _, f := range files {
		if _, err := runner().Run(context.Background(), execx.Cmd{Name: nixInstantiate, Args: []string{"--parse", f}}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
