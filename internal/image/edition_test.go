package image_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/checks"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/spec"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// addKiosk adds the edition "kiosk" to the catalog of the tree at root —
// one entry, and its name in the iso artifact's editions — and writes its
// module, editions/kiosk/default.nix: all a newcomer does (docs/catalog.md).
func addKiosk(t *testing.T, root string) {
	t.Helper()
	path := filepath.Join(root, catalog.FileName)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["editions"].(map[string]any)["kiosk"] = map[string]any{"description": "a single-app kiosk", "module": "kiosk",
		"hostProfile": "recovery", "hostname": "sourceos-kiosk", "capabilities": []string{"nix-store", "kiosk"}, "custom": true}
	iso := doc["artifacts"].(map[string]any)["iso"].(map[string]any)
	iso["editions"] = append(iso["editions"].([]any), "kiosk")
	b, _ := json.MarshalIndent(doc, "", "  ")
	writeFile(t, path, string(b))
	if err := os.MkdirAll(filepath.Join(root, "editions", "kiosk"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "editions", "kiosk", "default.nix"),
		"{ ... }:\n{\n  imports = [ ../../modules/sourceos.nix ];\n  sourceos.edition = \"kiosk\";\n}\n")
}

// An edition takes one catalog entry and one module file and nothing else:
// the flake builds it (its ISO, its system, its module, its boot test), the
// pipeline builds, signs and verifies it under its catalog name with its
// OSImage profile, custom builds accept it, the workflows need no edit (their
// matrices come from the catalog and check:workflows holds them to it), and
// the docs table lists it. No Go, workflow or schema file changes.
func TestAddingAnEditionTakesOneEntryAndOneModule(t *testing.T) {
	// The repository's flake, with the stand-in nixpkgs.
	tree := t.TempDir()
	for _, p := range testrig.FlakeFiles {
		testrig.CopyTree(t, filepath.Join(testrig.RepoRoot(t), p), filepath.Join(tree, p))
	}
	addKiosk(t, tree)
	var out struct {
		Packages []string
		Modules  map[string]bool
		Checks   []string
	}
	for attr, into := range map[string]any{
		"packages.x86_64-linux": &out.Packages, "checks.x86_64-linux": &out.Checks,
	} {
		if err := json.Unmarshal(testrig.StubEval(t, tree, "builtins.attrNames", attr), into); err != nil {
			t.Fatal(err)
		}
	}
	modules := `ms: builtins.mapAttrs (_: m: builtins.all (p: builtins.pathExists (toString p + "/default.nix")) m.imports) ms`
	if err := json.Unmarshal(testrig.StubEval(t, tree, modules, "nixosModules"), &out.Modules); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sourceos-kiosk-iso", "sourceos-kiosk-system"} {
		if !slices.Contains(out.Packages, want) {
			t.Errorf("the flake has no %s: %v", want, out.Packages)
		}
	}
	if !out.Modules["kiosk"] || !slices.Contains(out.Checks, "edition-kiosk-boot") {
		t.Errorf("nixosModules.kiosk from editions/kiosk: %v; boot test: %v", out.Modules, out.Checks)
	}
	cat, err := catalog.Load(filepath.Join(tree, catalog.FileName))
	if err != nil {
		t.Fatal(err)
	}

	// The pipeline, on the test fixture with the same two additions.
	r := newRig(t)
	fixture := testrig.FixtureFlakeCopy(t)
	addKiosk(t, fixture)
	r.env["SOURCEOS_FLAKE"] = "path:" + fixture
	if _, err := edition(t, r.deps(), "kiosk"); err != nil {
		t.Fatalf("build:edition kiosk: %v\n%s", err, r.log.String())
	}
	iso := filepath.Join(r.out, "sourceos-kiosk-x86_64.iso")
	r.verify(iso)
	doc, err := provenance.ParseOSImage(readFile(t, iso+sidecar.ExtOSImage))
	if err != nil || doc.HostProfile != "recovery" || doc.ShortID != "so1-recovery" || !slices.Contains(doc.SubstrateCapabilities, "kiosk") {
		t.Errorf("OSImage: %+v, %v", doc, err)
	}
	if _, err := spec.Parse(strings.NewReader(`{"edition":"kiosk","arch":"x86_64","hostname":"k1"}`), spec.Options{Editions: cat.CustomEditions()}); err != nil {
		t.Errorf("a custom build of the new edition: %v", err)
	}

	// The workflows: their matrices follow, and their rules hold.
	problems, err := checks.WorkflowRules(testrig.RepoRoot(t), "", cat)
	if err != nil || len(problems) > 0 {
		t.Errorf("check:workflows with the new edition: %v %v", problems, err)
	}
	m, err := cat.Select("kind=iso,arch=x86_64")
	if err != nil || !slices.ContainsFunc(m.Include, func(e catalog.Entry) bool { return e.Edition == "kiosk" }) {
		t.Errorf("catalog:matrix kind=iso,arch=x86_64 = %+v, %v", m, err)
	}
	// The docs table.
	if !strings.Contains(cat.MarkdownTables(), "| `kiosk` | a single-app kiosk | `nixosModules.kiosk` | `recovery` |") {
		t.Errorf("docs table:\n%s", cat.MarkdownTables())
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
