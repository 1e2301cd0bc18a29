package provenance

import (
	"encoding/json"
	"errors"
	"github.com/socioprophet/sourceos/schemas"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/provenance/provenancetest"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// parseDrvNameCases were checked against builtins.parseDrvName of Nix 2.8;
// TestParseDrvNameMatchesNix checks them again with the installed Nix.
var parseDrvNameCases = []struct{ in, name, version string }{
	{"hello-2.12.1", "hello", "2.12.1"},
	{"nix-0.12pre12876", "nix", "0.12pre12876"},
	{"glibc-2.40-66-bin", "glibc", "2.40-66-bin"},
	{"xz-utils", "xz-utils", ""},
	{"foo-Bar-2", "foo-Bar", "2"},
	{"hello", "hello", ""},
	{"a-b-c", "a-b-c", ""},
	{"x-1", "x", "1"},
	{"foo-", "foo-", ""},
	{"foo--1", "foo", "-1"},
	{"foo-_bar", "foo", "_bar"},
	{"foo-.x", "foo", ".x"},
	{"sourceos-desktop-lib-1.0", "sourceos-desktop-lib", "1.0"},
	{"linux-6.6.30-modules-shrunk", "linux", "6.6.30-modules-shrunk"},
	{"etc", "etc", ""},
	{"", "", ""},
}

func TestParseDrvName(t *testing.T) {
	for _, c := range parseDrvNameCases {
		name, version := ParseDrvName(c.in)
		if name != c.name || version != c.version {
			t.Errorf("ParseDrvName(%q) = %q, %q; want %q, %q", c.in, name, version, c.name, c.version)
		}
	}
}

// TestParseDrvNameMatchesNix asks the installed Nix for the same table.
func TestParseDrvNameMatchesNix(t *testing.T) {
	nix := testrig.Nix(t)
	ins := make([]string, len(parseDrvNameCases))
	for i, c := range parseDrvNameCases {
		ins[i] = c.in
	}
	lit, _ := json.Marshal(ins)
	expr := "map builtins.parseDrvName (builtins.fromJSON ''" + string(lit) + "'')"
	out, err := exec.Command(nix, "eval", "--json", "--expr", expr).Output()
	if err != nil {
		t.Fatalf("nix eval: %v", err)
	}
	var got []struct{ Name, Version string }
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(ins) {
		t.Fatalf("nix eval output %s: %v", out, err)
	}
	for i, in := range ins {
		name, version := ParseDrvName(in)
		if name != got[i].Name || version != got[i].Version {
			t.Errorf("%q: ours %q, %q; Nix %q, %q", in, name, version, got[i].Name, got[i].Version)
		}
	}
}

// cdxSchema is the official CycloneDX 1.6 JSON schema from testdata, with
// formats asserted.
var cdxSchema = provenancetest.CycloneDXSchema

func validateCycloneDX(t *testing.T, sbom []byte) error {
	t.Helper()
	sch, err := cdxSchema()
	if err != nil {
		t.Fatalf("compile CycloneDX schema: %v", err)
	}
	return schemas.ValidateCompiled(sch, "CycloneDX 1.6", sbom)
}

var testNow = time.Date(2025, 1, 15, 10, 43, 0, 0, time.UTC)

func testClosure() []StorePath {
	const (
		sys  = "/nix/store/0c8kqsds2zzaxazs8a2vbl3ib1fk8ifj-nixos-system-sourceos-24.11"
		etc  = "/nix/store/1h2a3b4c5d6f7g8h9i0j1k2l3m4n5p6q-etc"
		bash = "/nix/store/2lz4mfkhb8fbpbd8vq9z1s3z9z4rrf2v-bash-5.2p37"
		libc = "/nix/store/3m5cz9v9q9hx2ypsw5wpq0crkd7q5f3r-glibc-2.40-66"
	)
	return []StorePath{
		{Path: sys, NarHash: "sha256:1y9rdc0g4d6f2ymb6q7bsw3icirvwb5ffpaq0g8vnpqxqmcrhmaw", NarSize: 12344, References: []string{etc, bash, sys}, Deriver: "/nix/store/9a0w2q3lczqj0y8lxa3kdqx8g3w7r3j3-nixos-system-sourceos-24.11.drv"},
		{Path: libc, NarHash: "sha256:0rwq0v2i3zz7cyx5c7s9jbdmaxxwqdq6m0l4vqm2s8mhd8q6jpqv", NarSize: 29876544, References: []string{libc}, Deriver: "/nix/store/8z3y2x1w0v9u8t7s6r5q4p3n2m1l0k9j-glibc-2.40-66.drv"},
		{Path: etc, NarHash: "sha256:0000000000000000000000000000000000000000000000000001", NarSize: 520, References: []string{bash}},
		{Path: bash, NarHash: "sha256:1111111111111111111111111111111111111111111111111111", NarSize: 1592384, References: []string{libc, bash}},
	}
}

func TestSBOMValidatesAgainstOfficialSchema(t *testing.T) {
	sbom, err := SBOM(testImage(), testClosure(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateCycloneDX(t, sbom); err != nil {
		t.Fatalf("%v\n%s", err, sbom)
	}
	if err := CheckSBOM(sbom, imageSHA256); err != nil {
		t.Fatal(err)
	}
	golden(t, "sbom.json", sbom)
}

// TestCycloneDXSchemaIsStrict makes sure the schema we validate against is
// live: documents that break CycloneDX 1.6 must fail it.
func TestCycloneDXSchemaIsStrict(t *testing.T) {
	sbom, err := SBOM(testImage(), testClosure(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	s := string(sbom)
	for name, bad := range map[string]string{
		"unknown component type": strings.Replace(s, `"type": "operating-system"`, `"type": "distro"`, 1),
		"bad serial number":      strings.Replace(s, `"serialNumber": "urn:uuid:`, `"serialNumber": "urn:uuid:X`, 1),
		"bad timestamp":          strings.Replace(s, `"timestamp": "2025-01-15T10:43:00Z"`, `"timestamp": "15 Jan 2025"`, 1),
		"unknown member":         strings.Replace(s, `"bomFormat"`, `"nix": 1, "bomFormat"`, 1),
	} {
		if bad == s {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if err := validateCycloneDX(t, []byte(bad)); err == nil {
			t.Errorf("%s: official schema accepted it", name)
		}
	}
}

func TestSBOMContent(t *testing.T) {
	sbom, err := SBOM(testImage(), testClosure(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SerialNumber string
		Metadata     struct {
			Timestamp string
			Component struct {
				Type, Name string
				Hashes     []struct{ Alg, Content string }
			}
		}
		Components []struct {
			BOMRef     string `json:"bom-ref"`
			Name       string
			Version    string
			Properties []struct{ Name, Value string }
		}
		Dependencies []struct {
			Ref       string
			DependsOn []string
		}
	}
	if err := json.Unmarshal(sbom, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Metadata.Timestamp != "2025-01-15T10:43:00Z" || doc.Metadata.Component.Type != "operating-system" ||
		doc.Metadata.Component.Hashes[0].Alg != "SHA-256" || doc.Metadata.Component.Hashes[0].Content != imageSHA256 {
		t.Errorf("metadata = %+v", doc.Metadata)
	}
	if len(doc.Components) != 4 {
		t.Fatalf("%d components, want 4", len(doc.Components))
	}
	glibc := doc.Components[3]
	if glibc.Name != "glibc" || glibc.Version != "2.40-66" || glibc.BOMRef != testClosure()[1].Path {
		t.Errorf("glibc component = %+v", glibc)
	}
	props := map[string]string{}
	for _, p := range glibc.Properties {
		props[p.Name] = p.Value
	}
	want := map[string]string{
		"nix:store_path":       testClosure()[1].Path,
		"nix:narinfo:nar_hash": testClosure()[1].NarHash,
		"nix:narinfo:nar_size": "29876544",
		"nix:narinfo:deriver":  testClosure()[1].Deriver,
	}
	if mustJSON(t, props) != mustJSON(t, want) {
		t.Errorf("glibc properties = %v, want %v", props, want)
	}
	deps := map[string][]string{}
	for _, d := range doc.Dependencies {
		deps[d.Ref] = d.DependsOn
	}
	c := testClosure()
	if mustJSON(t, deps[testImage().Name]) != mustJSON(t, []string{c[0].Path}) {
		t.Errorf("image depends on %v, want the system path only", deps[testImage().Name])
	}
	if mustJSON(t, deps[c[0].Path]) != mustJSON(t, []string{c[2].Path, c[3].Path}) {
		t.Errorf("system depends on %v (self-reference must go, order sorted)", deps[c[0].Path])
	}
	if _, ok := deps[c[1].Path]; !ok || len(deps[c[1].Path]) != 0 {
		t.Errorf("glibc dependency entry = %v, %v; want present and empty", deps[c[1].Path], ok)
	}
}

func TestSBOMIsDeterministic(t *testing.T) {
	a, err := SBOM(testImage(), testClosure(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	shuffled := testClosure()
	shuffled[0], shuffled[3] = shuffled[3], shuffled[0]
	b, err := SBOM(testImage(), shuffled, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatal("input order changed the SBOM")
	}
	c, err := SBOM(testImage(), testClosure(), testNow.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if serial(t, a) == serial(t, c) {
		t.Fatal("different content, same serial number")
	}
}

func serial(t *testing.T, sbom []byte) string {
	t.Helper()
	var d struct{ SerialNumber string }
	if err := json.Unmarshal(sbom, &d); err != nil {
		t.Fatal(err)
	}
	return d.SerialNumber
}

func TestSBOMRejectsBadClosure(t *testing.T) {
	for name, mutate := range map[string]func([]StorePath) []StorePath{
		"not closed":     func(c []StorePath) []StorePath { return c[:3] },
		"duplicate path": func(c []StorePath) []StorePath { return append(c, c[0]) },
		"not a store path": func(c []StorePath) []StorePath {
			c[2].Path, c[0].References = "/tmp/etc", nil
			return c
		},
		"no narHash": func(c []StorePath) []StorePath { c[1].NarHash = ""; return c },
	} {
		if _, err := SBOM(testImage(), mutate(testClosure()), testNow); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := SBOM(Subject{Name: "x.iso", SHA256: "abc"}, testClosure(), testNow); err == nil {
		t.Error("bad image digest accepted")
	}
}

func TestCheckSBOMRejects(t *testing.T) {
	sbom, err := SBOM(testImage(), testClosure(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	s := string(sbom)
	other := strings.Repeat("0", 64)
	if err := CheckSBOM(sbom, other); !errors.Is(err, ErrBadSBOM) {
		t.Errorf("wrong image hash: %v", err)
	}
	for name, bad := range map[string]string{
		"not json":         s[:100],
		"spec 1.5":         strings.Replace(s, `"specVersion": "1.6"`, `"specVersion": "1.5"`, 1),
		"component type":   strings.Replace(s, `"type": "operating-system"`, `"type": "application"`, 1),
		"flipped hash":     strings.Replace(s, imageSHA256, "6"+imageSHA256[1:], 1),
		"dangling depends": strings.Replace(s, `"dependsOn": [`, `"dependsOn": ["/nix/store/nope",`, 1),
		"no metadata":      `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`,
	} {
		if bad == s {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if err := CheckSBOM([]byte(bad), imageSHA256); !errors.Is(err, ErrBadSBOM) {
			t.Errorf("%s: CheckSBOM = %v, want ErrBadSBOM", name, err)
		}
	}
}

// TestSBOMOfRealClosure builds the fixture flake's desktop system with real
// Nix, reads its closure with nix path-info --json, and checks the SBOM
// lists every path and validates against the official schema.
func TestSBOMOfRealClosure(t *testing.T) {
	nix := testrig.Nix(t)
	out := testrig.Build(t, testrig.Attr(t, "sourceos-desktop-system"))[0]
	raw, err := exec.Command(nix, "path-info", "--recursive", "--json", out).Output()
	if err != nil {
		t.Fatalf("nix path-info: %v", err)
	}
	closure := parsePathInfo(t, raw)
	if len(closure) < 3 {
		t.Fatalf("closure of %s has %d paths, expected the fixture's chain", out, len(closure))
	}
	sbom, err := SBOM(testImage(), closure, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateCycloneDX(t, sbom); err != nil {
		t.Fatal(err)
	}
	if err := CheckSBOM(sbom, imageSHA256); err != nil {
		t.Fatal(err)
	}
	for _, p := range closure {
		if !strings.Contains(string(sbom), `"bom-ref": "`+p.Path+`"`) {
			t.Errorf("SBOM lacks component %s", p.Path)
		}
	}
	if !strings.Contains(string(sbom), `"name": "sourceos-desktop-lib"`) || !strings.Contains(string(sbom), `"version": "1.0"`) {
		t.Errorf("lib component not named from its store path:\n%s", sbom)
	}
}

// parsePathInfo reads nix path-info --json in the array form of Nix 2.8 and
// the object form of later releases (test-only; hashes are kept verbatim).
func parsePathInfo(t *testing.T, raw []byte) []StorePath {
	t.Helper()
	type info struct {
		Path       string   `json:"path"`
		NarHash    string   `json:"narHash"`
		NarSize    uint64   `json:"narSize"`
		References []string `json:"references"`
		Deriver    string   `json:"deriver"`
	}
	var list []info
	if err := json.Unmarshal(raw, &list); err != nil {
		var byPath map[string]info
		if err2 := json.Unmarshal(raw, &byPath); err2 != nil {
			t.Fatalf("path-info json: %v / %v", err, err2)
		}
		for p, i := range byPath {
			i.Path = p
			list = append(list, i)
		}
	}
	out := make([]StorePath, len(list))
	for i, in := range list {
		out[i] = StorePath(in)
	}
	return out
}

func TestSBOMAcceptsSRINarHash(t *testing.T) {
	want, err := SBOM(testImage(), testClosure(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	c := testClosure()
	for i := range c {
		h, err := nixhash.ParseAny(c[i].NarHash, nil)
		if err != nil {
			t.Fatal(err)
		}
		c[i].NarHash = h.Format(nixhash.SRI, true)
	}
	if !strings.HasPrefix(c[0].NarHash, "sha256-") {
		t.Fatalf("fixture not converted: %s", c[0].NarHash)
	}
	got, err := SBOM(testImage(), c, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Error("SRI narHash gave a different SBOM than nix32")
	}
	c[0].NarHash = "sha256-notbase64"
	if _, err := SBOM(testImage(), c, testNow); err == nil {
		t.Error("malformed narHash accepted")
	}
}
