package catalog_test

import (
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// The repository's catalog: every artifact of every edition it lists,
// named as the flake names them.
func TestRepositoryCatalog(t *testing.T) {
	c := testrig.RepoCatalog(t)
	if got := c.EditionNames(); !slices.Equal(got, []string{"desktop", "edge", "server"}) {
		t.Errorf("editions %v", got)
	}
	in, err := c.ForEdition("desktop", catalog.ISO, "aarch64")
	if err != nil {
		t.Fatal(err)
	}
	if in.Attr() != "packages.aarch64-linux.sourceos-desktop-iso" || in.SystemAttr() != "packages.aarch64-linux.sourceos-desktop-system" ||
		in.File() != "sourceos-desktop-aarch64.iso" || in.ID() != "sourceos-desktop-iso" || in.HostProfile() != "workstation" ||
		in.Hostname() != "sourceos-desktop" {
		t.Errorf("desktop iso: %s %s %s %s %s", in.Attr(), in.SystemAttr(), in.File(), in.ID(), in.HostProfile())
	}
	byID, err := c.ByID("sourceos-server-qcow2", "x86_64")
	if err != nil || byID.Kind() != catalog.QCOW2 || byID.File() != "sourceos-server-x86_64.qcow2" {
		t.Errorf("by id: %+v %v", byID, err)
	}
	var le *catalog.LookupError
	if _, err := c.ForEdition("desktop", catalog.GCE, "aarch64"); !errors.As(err, &le) || !strings.Contains(err.Error(), "iso") {
		t.Errorf("a kind the catalog does not build on that arch: %v", err)
	}
	if _, err := c.ForEdition("kiosk", catalog.ISO, "x86_64"); !errors.As(err, &le) || !strings.Contains(err.Error(), "desktop, edge, server") {
		t.Errorf("unknown edition: %v", err)
	}
}

// minimal is a valid catalog to break, entry by entry.
const minimal = `{
  "editions": {"desktop": {"description": "d", "module": "desktop", "hostProfile": "workstation", "hostname": "sourceos-desktop", "capabilities": ["nix-store"]}},
  "artifacts": {"iso": {"kind": "iso", "description": "i", "attribute": "packages.{system}.sourceos-{edition}-iso",
    "file": "sourceos-{edition}-{arch}.iso", "editions": ["desktop"], "arches": ["x86_64"], "channels": ["stable"]}}
}`

// Every problem is reported with the entry it is in.
func TestParseNamesTheEntry(t *testing.T) {
	if _, err := catalog.Parse([]byte(minimal)); err != nil {
		t.Fatalf("minimal catalog: %v", err)
	}
	for name, c := range map[string]struct{ from, to, want string }{
		"unknown edition":   {`"editions": ["desktop"]`, `"editions": ["kiosk"]`, `artifacts.iso.editions: no edition "kiosk"`},
		"unknown kind":      {`"kind": "iso"`, `"kind": "usb"`, "artifacts.iso.kind"},
		"unknown field":     {`"module": "desktop"`, `"module": "desktop", "colour": "blue"`, "editions.desktop"},
		"bad host profile":  {`"workstation"`, `"laptop"`, "editions.desktop.hostProfile"},
		"bad placeholder":   {`sourceos-{edition}-iso"`, `sourceos-{flavour}-iso"`, "unknown placeholder {flavour}"},
		"file without arch": {`"arches": ["x86_64"]`, `"arches": ["x86_64", "aarch64"]`, ""},
		"path in file":      {`"file": "sourceos-{edition}-{arch}.iso"`, `"file": "../{edition}-{arch}.iso"`, "artifacts.iso"},
		"file not an iso":   {`-{arch}.iso"`, `-{arch}.img"`, "must end in .iso"},
		"duplicate key":     {`"kind": "iso",`, `"kind": "iso", "kind": "iso",`, "given twice"},
		"custom edition":    {`"editions": {"desktop"`, `"editions": {"custom"`, "reserved"},
		"release as custom": {`"file": "sourceos-{edition}-{arch}.iso"`, `"file": "sourceos-custom-{edition}-{arch}.iso"`, "custom build"},
		"trailing data":     {"}\n}", "}\n} {}", "after"},
	} {
		doc := strings.Replace(minimal, c.from, c.to, 1)
		if doc == minimal {
			t.Fatalf("%s: the mutation did not apply", name)
		}
		_, err := catalog.Parse([]byte(doc))
		if name == "file without arch" {
			if err != nil {
				t.Errorf("%s: %v (a file may leave {arch} out only with one arch)", name, err)
			}
			doc = strings.Replace(doc, `-{arch}.iso"`, `.iso"`, 1)
			_, err = catalog.Parse([]byte(doc))
			c.want = "must name the {arch}"
		}
		var ce *catalog.Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a catalog error naming %q", name, err, c.want)
		}
	}
}

// Two instances that would write the same file, or build the same
// attribute, are refused.
func TestParseRefusesClashes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(minimal), &doc); err != nil {
		t.Fatal(err)
	}
	arts := doc["artifacts"].(map[string]any)
	second := map[string]any{"kind": "iso", "description": "again", "attribute": "packages.{system}.sourceos-{edition}-iso2",
		"file": "sourceos-{edition}-{arch}.iso", "editions": []string{"desktop"}, "arches": []string{"x86_64"}, "channels": []string{}}
	arts["iso2"] = second
	b, _ := json.Marshal(doc)
	if _, err := catalog.Parse(b); err == nil || !strings.Contains(err.Error(), `same file "sourceos-desktop-x86_64.iso"`) {
		t.Errorf("same file: %v", err)
	}
}

func TestCustomName(t *testing.T) {
	name, err := catalog.CustomName("server", "x86_64", "Xy7uid", "build.42")
	if err != nil || name != "sourceos-custom-server-x86_64-Xy7uid-build.42" || !catalog.IsCustomName(name+".iso") {
		t.Fatalf("%q, %v", name, err)
	}
	for _, bad := range [][2]string{{"../u", "b"}, {"u", ""}, {"u", "b/c"}, {strings.Repeat("u", 100), strings.Repeat("b", 100)}} {
		if _, err := catalog.CustomName("server", "x86_64", bad[0], bad[1]); err == nil {
			t.Errorf("ids %q accepted", bad)
		}
	}
}

func TestFlakeRef(t *testing.T) {
	for in, want := range map[string]string{
		"/src/os":                         "/src/os",
		"path:/src/os":                    "path:/src/os",
		"github:socioprophet/sourceos/v1": "github:socioprophet/sourceos/v1",
		"git+https://example.org/os.git?ref=main": "git+https://example.org/os.git?ref=main",
	} {
		if got := catalog.FlakeRef(in); got != want {
			t.Errorf("FlakeRef(%q) = %q", in, got)
		}
	}
	if got := catalog.FlakeRef("."); !filepath.IsAbs(got) {
		t.Errorf("FlakeRef(.) = %q, want an absolute path", got)
	}
}

func TestParseMetadataPath(t *testing.T) {
	for out, want := range map[string]string{
		`{"path":"/nix/store/abc-source","locked":{"type":"github"}}`:   "/nix/store/abc-source",
		`{"path":"/nix/store/abc-source","locked":{"dir":"os"}}`:        "/nix/store/abc-source/os",
		`{"path":"/nix/store/abc-source","locked":{"dir":"../../etc"}}`: "",
		`{"path":"relative","locked":{}}`:                               "",
	} {
		got, err := catalog.ParseMetadataPath([]byte(out))
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%s: %q, %v", out, got, err)
		}
	}
}

var update = flag.Bool("update", false, "rewrite docs/catalog.md's tables")

// docs/catalog.md's tables are generated from catalog.json.
func TestDocsTablesInSync(t *testing.T) {
	testrig.GeneratedSection(t, "../../docs/catalog.md", "catalog", testrig.RepoCatalog(t).MarkdownTables(), *update)
}

func TestSelect(t *testing.T) {
	c := testrig.RepoCatalog(t)
	m, err := c.Select("channel=stable,kind=iso")
	if err != nil || len(m.Include) != 6 || m.Include[0].ID != "sourceos-desktop-iso" || m.Include[0].File != "sourceos-desktop-x86_64.iso" {
		t.Fatalf("%+v %v", m, err)
	}
	b, _ := json.Marshal(c.EditionMatrix())
	if string(b) != `{"include":[{"edition":"desktop"},{"edition":"edge"},{"edition":"server"}]}` {
		t.Errorf("editions: %s", b)
	}
	for _, bad := range []string{"channel=nightly", "colour=blue", "kind"} {
		if _, err := c.Select(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The flake builds exactly the catalog: its packages are the catalog's
// instances (each attribute and system attribute), and its edition modules
// are the catalog's, evaluated offline with the stand-in nixpkgs.
func TestTheFlakeBuildsTheCatalog(t *testing.T) {
	root := testrig.RepoRoot(t)
	cat := testrig.RepoCatalog(t)
	var packages map[string][]string
	if err := json.Unmarshal(testrig.StubEval(t, root, "p: builtins.mapAttrs (_: builtins.attrNames) p", "packages"), &packages); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, in := range cat.Instances() {
		for _, attr := range []string{in.Attr(), in.SystemAttr()} {
			if attr == "" {
				continue
			}
			prefix := "packages." + in.System() + "."
			if !strings.HasPrefix(attr, prefix) {
				t.Fatalf("%s: attribute %s is not under %s", in, attr, prefix)
			}
			want[in.System()] = append(want[in.System()], strings.TrimPrefix(attr, prefix))
		}
	}
	for system, names := range want {
		slices.Sort(names)
		got := packages[system]
		slices.Sort(got)
		if !slices.Equal(slices.Compact(names), got) {
			t.Errorf("%s: the flake's packages %v, the catalog's %v", system, got, names)
		}
	}
	var modules []string
	if err := json.Unmarshal(testrig.StubEval(t, root, "builtins.attrNames", "nixosModules"), &modules); err != nil {
		t.Fatal(err)
	}
	for _, e := range cat.Editions {
		if !slices.Contains(modules, e.Module) {
			t.Errorf("edition %s: no nixosModules.%s among %v", e.Name, e.Module, modules)
		}
	}
}
