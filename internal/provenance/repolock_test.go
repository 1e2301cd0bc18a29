package provenance_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/testrig"
)

var (
	commitRE  = regexp.MustCompile(`^[0-9a-f]{40}$`)
	narHashRE = regexp.MustCompile(`^sha256-[A-Za-z0-9+/]{43}=$`)
)

// The repository's committed flake.lock pins nixpkgs to a nixos-25.05
// revision, and that pin reaches the SLSA predicate of a build as a
// resolved dependency with its git commit and narHash.
func TestRepositoryLockReachesTheSLSAPredicate(t *testing.T) {
	lock, err := os.ReadFile(filepath.Join(testrig.RepoRoot(t), "flake.lock"))
	if err != nil {
		t.Fatalf("the repository has no flake.lock: %v", err)
	}
	var raw struct {
		Version int `json:"version"`
		Nodes   map[string]struct {
			Original map[string]string `json:"original"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(lock, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Version != 7 {
		t.Errorf("lock version %d, want 7", raw.Version)
	}
	if o := raw.Nodes["nixpkgs"].Original; o["type"] != "github" || o["owner"] != "NixOS" || o["repo"] != "nixpkgs" || o["ref"] != "nixos-25.05" {
		t.Errorf("nixpkgs follows %v, want github:NixOS/nixpkgs/nixos-25.05", o)
	}

	inputs, err := catalog.ParseFlakeLock(lock)
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) != 1 || inputs[0].Node != "nixpkgs" {
		t.Fatalf("locked inputs %+v, want nixpkgs alone", inputs)
	}
	pin := inputs[0]
	if !commitRE.MatchString(pin.Rev) || !narHashRE.MatchString(pin.NarHash) || pin.LastModified == 0 ||
		pin.Type != "github" || pin.Owner != "NixOS" || pin.Repo != "nixpkgs" {
		t.Fatalf("nixpkgs pin %+v is not a full github revision with a narHash", pin)
	}

	pred, err := provenance.SLSAPredicate(provenance.BuildInfo{
		Edition: "server", Arch: "x86_64", Target: "iso", Version: "1.0.0",
		FlakeRef: "path:/src", FlakeAttr: "packages.x86_64-linux.sourceos-server-iso",
		SourceRepo: "https://github.com/socioprophet/sourceos", SourceRev: "0123456789abcdef0123456789abcdef01234567",
		FlakeLock: lock, BuildID: "b-1", BuilderID: "https://sourceos.dev/builders/local",
		StartedOn: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), FinishedOn: time.Date(2026, 1, 2, 4, 4, 5, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	var p slsa.Provenance
	if err := protojson.Unmarshal(pred, &p); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, d := range p.GetBuildDefinition().GetResolvedDependencies() {
		if d.GetName() != "flake-input:nixpkgs" {
			continue
		}
		found = true
		if d.GetDigest()["gitCommit"] != pin.Rev || d.GetDigest()["narHash"] != pin.NarHash {
			t.Errorf("digest %v, want gitCommit %s and narHash %s", d.GetDigest(), pin.Rev, pin.NarHash)
		}
		if d.GetUri() != "github:NixOS/nixpkgs/"+pin.Rev {
			t.Errorf("uri %q", d.GetUri())
		}
		if got := d.GetAnnotations().AsMap()["lastModified"]; got != float64(pin.LastModified) {
			t.Errorf("lastModified annotation %v, want %d", got, pin.LastModified)
		}
	}
	if !found {
		t.Fatalf("no nixpkgs among the resolved dependencies:\n%s", pred)
	}
}
