package attest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/provenance/provenancetest"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
)

// signLogged is `mage sign artifact` with env, with real Nix for
// STORE_PATHS; it returns what was logged.
func signLogged(t *testing.T, env map[string]string, artifact string) string {
	t.Helper()
	var log bytes.Buffer
	o, err := attest.FilesFromConfig(cfgOf(t, env), testrig.RepoCatalog(t), artifact, attesttest.Clock(), slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	o.Run = &execx.Exec{}
	if _, err := attest.Files(context.Background(), o); err != nil {
		t.Fatalf("sign: %v\n%s", err, log.String())
	}
	return log.String()
}

// `mage sign` with STORE_PATHS (a store path and an installable of the
// fixture flake, built with real Nix) writes the SBOM the build writes:
// valid CycloneDX 1.6, one component per path of the runtime closure, and
// listed in the signed predicate, so the artifact verifies. Without
// STORE_PATHS it says, once, that no SBOM was written.
func TestSignWithStorePathsWritesSBOM(t *testing.T) {
	testrig.Nix(t)
	isoOut := testrig.Build(t, testrig.Attr(t, "sourceos-desktop-iso"))[0]
	system := testrig.Attr(t, "sourceos-desktop-system")
	systemOut := testrig.Build(t, system)[0]
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	iso := filepath.Join(dir, attesttest.ISOName)
	attesttest.WriteFile(t, iso, attesttest.ReadFile(t, filepath.Join(isoOut, "iso", "sourceos-desktop-x86_64.iso")))
	env := map[string]string{"SOURCEOS_SIGN_SECRET_KEY": string(k.Pair.SecretKey), "SOURCEOS_FLAKE": "path:/src",
		"STORE_PATHS": isoOut + " " + system}

	log := signLogged(t, env, iso)
	sbom := attesttest.ReadFile(t, iso+".sbom.json")
	if err := provenancetest.ValidateCycloneDX(t, sbom); err != nil {
		t.Fatalf("SBOM does not validate against CycloneDX 1.6: %v", err)
	}
	closure := testrig.Closure(t, isoOut, systemOut)
	var doc struct {
		Components []struct {
			BOMRef string `json:"bom-ref"`
		} `json:"components"`
	}
	if err := json.Unmarshal(sbom, &doc); err != nil {
		t.Fatal(err)
	}
	refs := map[string]int{}
	for _, c := range doc.Components {
		refs[c.BOMRef]++
	}
	if len(doc.Components) != len(closure) || len(closure) < 6 {
		t.Errorf("%d components for a closure of %d paths", len(doc.Components), len(closure))
	}
	for _, p := range closure {
		if refs[p] != 1 {
			t.Errorf("closure path %s is %d components", p, refs[p])
		}
	}
	if strings.Contains(log, "no SBOM") {
		t.Errorf("said no SBOM although one was written:\n%s", log)
	}
	if rep, err := attesttest.Verify(t, iso, k.Pub()); err != nil || attesttest.Status(rep, verify.CheckSBOM) != verify.Pass {
		t.Errorf("verify: %v\n%s", err, attesttest.ReportText(rep))
	}

	delete(env, "STORE_PATHS")
	log = signLogged(t, env, iso)
	if n := strings.Count(log, "no SBOM written"); n != 1 {
		t.Errorf("said %d times that no SBOM was written:\n%s", n, log)
	}
	if _, err := os.Stat(iso + ".sbom.json"); !os.IsNotExist(err) {
		t.Errorf("an SBOM is left from the earlier run: %v", err)
	}
}

// A store path Nix does not have fails signing before anything is written.
func TestSignWithUnknownStorePathFails(t *testing.T) {
	testrig.Nix(t)
	dir := t.TempDir()
	iso := attesttest.Artifact(t, dir, attesttest.ISOName, 4096)
	env := map[string]string{"SOURCEOS_FLAKE": "path:/src", "STORE_PATHS": "/nix/store/00000000000000000000000000000000-missing"}
	o, err := attest.FilesFromConfig(cfgOf(t, env), testrig.RepoCatalog(t), iso, attesttest.Clock(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Run = &execx.Exec{}
	if _, err := attest.Files(context.Background(), o); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("sign with an unknown store path: %v", err)
	}
	if got := attesttest.ListDir(t, dir); len(got) != 1 {
		t.Errorf("wrote %v", got)
	}
}
