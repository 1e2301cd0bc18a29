package verify_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// The old pipeline is the shell one this code replaces: its
// scripts/sign-and-provenance.sh signed each file with the minisign CLI and
// wrote unsigned JSON documents with jq. The fixtures here are what it
// wrote, field for field and byte for byte (TestShellBundleFixturesAreTheOldScriptsOutput
// holds them to testdata/shellbundle, which that script wrote); the
// signatures are made by the real minisign CLI with its argv.

// oldBuild is what the old script was run with (its environment).
type oldBuild struct {
	Edition, Arch, Target, Version string
	SourceRev, SourceRepo, BuildID string
	Hostname, GCSPrefix, Now       string
	// Closure is what `nix path-info --json -r $STORE_PATHS` printed;
	// empty: no SBOM.
	Closure []oldStorePath
}

type oldStorePath struct {
	Path    string `json:"store-path"`
	NarHash string `json:"narHash"`
	NarSize int64  `json:"narSize"`
}

// oldDesktop is a desktop ISO build as the custom-build script ran it.
func oldDesktop() oldBuild {
	return oldBuild{Edition: "desktop", Arch: "x86_64", Target: "iso", Version: "26.11",
		SourceRev: "0123456789abcdef0123456789abcdef01234567", SourceRepo: "https://github.com/SourceOS-Linux/source-os",
		BuildID: "Run 42/A", Hostname: "box-1", Now: "2026-01-02T03:04:05Z"}
}

const oldISOName = "sourceos-desktop-x86_64-custom.iso"

var nonIDRun = regexp.MustCompile(`[^a-z0-9._-]+`)

// localID is the script's LOCAL_ID: <edition>-<arch>-<build id or
// revision>, lower case, every run of other bytes one "-", none at the ends.
func (b oldBuild) localID() string {
	raw := b.BuildID
	if raw == "" {
		raw = b.SourceRev
	}
	id := nonIDRun.ReplaceAllString(asciiLower(b.Edition+"-"+b.Arch+"-"+raw), "-")
	id = strings.Trim(regexp.MustCompile(`-+`).ReplaceAllString(id, "-"), "-")
	if id == "" {
		return "build"
	}
	return id
}

// asciiLower is `tr '[:upper:]' '[:lower:]'` in the C locale.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func (b oldBuild) ref(name string) string {
	if b.GCSPrefix != "" {
		return b.GCSPrefix + "/" + name
	}
	return name
}

type oldSubject struct {
	Name   string `json:"name"`
	Digest struct {
		SHA256 string `json:"sha256"`
	} `json:"digest"`
}

type oldSource struct {
	URI    string `json:"uri"`
	Digest struct {
		GitCommit string `json:"gitCommit"`
	} `json:"digest"`
}

type oldPredicate struct {
	BuildType string `json:"buildType"`
	Builder   struct {
		ID string `json:"id"`
	} `json:"builder"`
	Invocation struct {
		ConfigSource oldSource `json:"configSource"`
		Parameters   struct {
			Edition  string `json:"edition"`
			Arch     string `json:"arch"`
			Target   string `json:"target"`
			Hostname string `json:"hostname"`
		} `json:"parameters"`
	} `json:"invocation"`
	Metadata struct {
		BuildStartedOn string `json:"buildStartedOn"`
		Completeness   struct {
			Parameters  bool `json:"parameters"`
			Environment bool `json:"environment"`
			Materials   bool `json:"materials"`
		} `json:"completeness"`
		Reproducible bool `json:"reproducible"`
	} `json:"metadata"`
	Materials []oldSource `json:"materials"`
}

type oldStatement struct {
	Type          string       `json:"_type"`
	ID            string       `json:"id"`
	Subject       []oldSubject `json:"subject"`
	PredicateType string       `json:"predicateType"`
	Predicate     oldPredicate `json:"predicate"`
}

type oldSBOM struct {
	BOMFormat   string `json:"bomFormat"`
	SpecVersion string `json:"specVersion"`
	Metadata    struct {
		Timestamp string `json:"timestamp"`
		Component struct {
			Name string `json:"name"`
		} `json:"component"`
	} `json:"metadata"`
	Components []oldStorePath `json:"components"`
}

type oldOSImage struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	SpecVersion  string `json:"specVersion"`
	ShortID      string `json:"shortId"`
	Family       string `json:"family"`
	Epoch        int    `json:"epoch"`
	HostProfile  string `json:"hostProfile"`
	Artifact     string `json:"artifact"`
	Architecture string `json:"architecture"`
	OSRelease    struct {
		ID           string `json:"ID"`
		VersionID    string `json:"VERSION_ID"`
		ImageID      string `json:"IMAGE_ID"`
		ImageVersion string `json:"IMAGE_VERSION"`
	} `json:"osRelease"`
	OCIAnnotations struct {
		Version  string `json:"org.opencontainers.image.version"`
		Revision string `json:"org.opencontainers.image.revision"`
		Source   string `json:"org.opencontainers.image.source"`
		Created  string `json:"org.opencontainers.image.created"`
		Channel  string `json:"com.socioprophet.os.channel"`
	} `json:"ociAnnotations"`
	SubstrateCapabilities []string `json:"substrateCapabilities"`
	Provenance            struct {
		StatementRef     string `json:"statementRef"`
		SLSAPredicateRef string `json:"slsaPredicateRef"`
		SBOMRef          string `json:"sbomRef,omitempty"`
		SignatureRef     string `json:"signatureRef,omitempty"`
	} `json:"provenance"`
}

// jqJSON is v as `jq -n` prints it: two-space indent, nothing escaped
// that JSON does not require, a final newline.
func jqJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (b oldBuild) predicate() oldPredicate {
	var p oldPredicate
	p.BuildType = "https://schemas.srcos.ai/buildtypes/nix-image/v1"
	p.Builder.ID = "sourceos/build-custom-image"
	p.Invocation.ConfigSource.URI, p.Invocation.ConfigSource.Digest.GitCommit = b.SourceRepo, b.SourceRev
	par := &p.Invocation.Parameters
	par.Edition, par.Arch, par.Target, par.Hostname = b.Edition, b.Arch, b.Target, b.Hostname
	p.Metadata.BuildStartedOn = b.Now
	p.Metadata.Completeness.Parameters = true
	p.Materials = []oldSource{p.Invocation.ConfigSource}
	return p
}

func (b oldBuild) hostProfile() string {
	switch b.Edition {
	case "desktop":
		return "workstation"
	case "edge":
		return "edge-appliance"
	}
	return "vm-base"
}

// oldDocuments are the documents the script wrote about the files in
// dir named by subjects (the first is the primary), by file name.
func oldDocuments(t *testing.T, b oldBuild, dir string, subjects []string, signed bool) map[string][]byte {
	t.Helper()
	st := oldStatement{Type: "https://in-toto.io/Statement/v1", ID: "urn:srcos:attestation:" + b.localID(),
		Subject: []oldSubject{}, PredicateType: "https://slsa.dev/provenance/v1", Predicate: b.predicate()}
	for _, name := range subjects {
		var s oldSubject
		s.Name, s.Digest.SHA256 = name, sha256Of(t, filepath.Join(dir, name))
		st.Subject = append(st.Subject, s)
	}
	primary := subjects[0]
	docs := map[string][]byte{primary + ".slsa.json": jqJSON(t, st.Predicate), primary + ".intoto.json": jqJSON(t, st)}
	if b.Target != "iso" {
		return docs
	}
	var sbomRef string
	if b.Closure != nil {
		var s oldSBOM
		s.BOMFormat, s.SpecVersion, s.Metadata.Timestamp, s.Metadata.Component.Name = "SourceOS-NixClosure", "1.0", b.Now, primary
		s.Components = b.Closure
		docs[primary+".sbom.json"] = jqJSON(t, s)
		sbomRef = b.ref(primary + ".sbom.json")
	}
	var o oldOSImage
	o.ID, o.Type, o.SpecVersion, o.ShortID, o.Family, o.Epoch = "urn:srcos:osimage:"+b.localID(), "OSImage", "2.1.0", "so1-"+b.hostProfile(), "sourceos", 1
	o.HostProfile, o.Artifact, o.Architecture = b.hostProfile(), "iso", b.Arch
	o.OSRelease.ID, o.OSRelease.VersionID, o.OSRelease.ImageID, o.OSRelease.ImageVersion = "sourceos", b.Version, "sourceos-"+b.Edition, b.Version
	a := &o.OCIAnnotations
	a.Version, a.Revision, a.Source, a.Created, a.Channel = b.Version, b.SourceRev, b.SourceRepo, b.Now, "custom"
	o.SubstrateCapabilities = []string{"content-addressed-store", "self-update", "nlboot-capable"}
	o.Provenance.StatementRef, o.Provenance.SLSAPredicateRef = "urn:srcos:attestation:"+b.localID(), "urn:srcos:slsa:"+b.localID()
	o.Provenance.SBOMRef = sbomRef
	if signed {
		o.Provenance.SignatureRef = b.ref(primary + ".minisig")
	}
	docs[primary+".osimage.json"] = jqJSON(t, o)
	return docs
}

// oldSign signs path as the old script did, with the real minisign CLI:
// `minisign -S -s key -m path -x path.minisig -c "sourceos <id>" -t
// "sourceos:<id>"` (minisign's default, prehashed), or with trusted as the
// trusted comment when it is not "". legacy adds -l (minisign before 0.10
// signed that way by default).
func oldSign(t *testing.T, k attesttest.Keys, path, id, trusted string, legacy bool) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "k.key")
	if err := signature.WriteSecretKey(keyFile, k.Pair.SecretKey); err != nil {
		t.Fatal(err)
	}
	if trusted == "" {
		trusted = "sourceos:" + id
	}
	args := []string{"-S", "-s", keyFile, "-m", path, "-x", path + ".minisig", "-c", "sourceos " + id, "-t", trusted}
	if legacy {
		args = append(args, "-l")
	}
	cmd := exec.Command(testrig.RequireTool(t, "minisign"), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("minisign -S: %v\n%s", err, out)
	}
}

// oldBundle writes what the old pipeline left beside an ISO: the image
// (n random bytes), its .sha256 (written by the custom-build script with
// sha256sum), its .minisig and the documents. It returns the image's path.
func oldBundle(t *testing.T, k attesttest.Keys, dir string, b oldBuild, n int) string {
	t.Helper()
	iso := attesttest.Artifact(t, dir, oldISOName, n)
	attesttest.WriteFile(t, iso+".sha256", []byte(sha256Of(t, iso)+"  "+oldISOName+"\n"))
	oldSign(t, k, iso, b.localID(), "", false)
	writeDocs(t, dir, oldDocuments(t, b, dir, []string{oldISOName}, true))
	return iso
}

func writeDocs(t *testing.T, dir string, docs map[string][]byte) {
	t.Helper()
	for name, data := range docs {
		attesttest.WriteFile(t, filepath.Join(dir, name), data)
	}
}

// oldFixtureFile is the content of the fixture files testdata/shellbundle
// was made from: `yes <name> | head -n 2000`.
func oldFixtureFile(name string) []byte { return bytes.Repeat([]byte(name+"\n"), 2000) }

// The generator above writes what the old script wrote: testdata/shellbundle
// holds the documents scripts/sign-and-provenance.sh (source-os at 69ed0ae)
// wrote for these builds, run with jq 1.6 and a `nix` that printed the
// closure below (see testdata/shellbundle/README.md).
func TestShellBundleFixturesAreTheOldScriptsOutput(t *testing.T) {
	iso := oldDesktop()
	iso.GCSPrefix = "gs://sourceos-custom/u-7/run-42"
	iso.Closure = []oldStorePath{
		{Path: "/nix/store/0c7dx5w5i6x2vkyr3d1yqcvr1xwq7iv6-sourceos-lib-1.0", NarHash: "sha256:1ay6bbnbfpsvvzaxmwvxsxpbj8c2zyd2jrg8rmymmlqwzlhgmdnr", NarSize: 4096},
		{Path: "/nix/store/1b9jydsiygi6jhlz2dxbrxi6b4m0rn3d-nixos.iso", NarHash: "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73", NarSize: 1048576},
	}
	netboot := oldDesktop()
	netboot.Edition, netboot.Target, netboot.BuildID, netboot.Hostname = "server", "netboot", "", ""
	for _, tc := range []struct {
		dir      string
		b        oldBuild
		subjects []string
	}{
		{"iso", iso, []string{oldISOName}},
		{"netboot", netboot, []string{"kernel", "initrd"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			dir := t.TempDir()
			for _, s := range tc.subjects {
				attesttest.WriteFile(t, filepath.Join(dir, s), oldFixtureFile(s))
			}
			got := oldDocuments(t, tc.b, dir, tc.subjects, true)
			golden := filepath.Join("testdata", "shellbundle", tc.dir)
			entries, err := os.ReadDir(golden)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(got) {
				t.Errorf("%d documents written, the script wrote %d", len(got), len(entries))
			}
			for _, e := range entries {
				want := attesttest.ReadFile(t, filepath.Join(golden, e.Name()))
				if !bytes.Equal(got[e.Name()], want) {
					t.Errorf("%s differs from what the script wrote:\n%s\nwant:\n%s", e.Name(), got[e.Name()], want)
				}
			}
		})
	}
}
