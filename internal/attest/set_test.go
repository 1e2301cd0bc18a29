package attest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
)

// cfgOf loads a configuration from an environment map, as a target does.
func cfgOf(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// signCmd is `mage sign artifact` with env, printing what sign printed.
func signCmd(t *testing.T, env map[string]string, artifact string) (*attest.Result, error) {
	t.Helper()
	o, err := attest.FilesFromConfig(cfgOf(t, env), testrig.RepoCatalog(t), artifact, attesttest.Clock(), nil)
	if err != nil {
		return nil, err
	}
	return attest.Files(context.Background(), o)
}

// verifyCmd is `mage verify artifact` with env; it returns what it printed.
func verifyCmd(t *testing.T, env map[string]string, artifact string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := verify.Run(context.Background(), verify.FromConfig(cfgOf(t, env), artifact, &out))
	return out.String(), err
}

func TestSignAndVerifyFromConfig(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
	env := map[string]string{
		"SOURCEOS_SIGN_SECRET_KEY": string(k.Pair.SecretKey), "SOURCEOS_SIGN_PUBKEY": k.Pub(),
		"VERSION": "1.2.3", "BUILD_ID": "b-7", "SOURCE_REV": "0123456789abcdef0123456789abcdef01234567",
		"SOURCE_REPO": "https://github.com/socioprophet/sourceos", "SOURCEOS_FLAKE": "path:/src",
	}
	res, err := signCmd(t, env, iso)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Signed || len(res.Artifacts[0].Sidecars) != 6 {
		t.Fatalf("sign result: %+v", res)
	}

	out, err := verifyCmd(t, env, iso)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "PASS  trusted comment names this file") || !strings.HasSuffix(out, "OK\n") {
		t.Errorf("text report:\n%s", out)
	}

	env["SOURCEOS_VERIFY_JSON"] = "1"
	attesttest.FlipByte(t, iso, 10)
	out, err = verifyCmd(t, env, iso)
	if verify.ExitCode(err) != verify.ExitFailed {
		t.Errorf("tampered: exit %d (%v)", verify.ExitCode(err), err)
	}
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.OK {
		t.Errorf("JSON report: %v %s", err, out)
	}

	delete(env, "SOURCEOS_SIGN_PUBKEY")
	if _, err := verifyCmd(t, env, iso); verify.ExitCode(err) != verify.ExitCannotVerify {
		t.Errorf("no public key: exit %d (%v)", verify.ExitCode(err), err)
	}
}

func TestSignNetbootManifest(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	env := map[string]string{"TARGET": "netboot", "EDITION": "edge", "SOURCEOS_SIGN_SECRET_KEY": string(k.Pair.SecretKey)}
	cfg := cfgOf(t, env)
	paths := attesttest.NetbootSet(t, dir, provenance.BuildInfo{Edition: cfg.Edition, Arch: cfg.Arch, Version: cfg.Version})
	manifest := paths[len(paths)-1]
	if _, err := signCmd(t, env, manifest); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if rep, err := attesttest.Verify(t, p, k.Pub()); err != nil {
			t.Errorf("%s: %v\n%s", p, err, attesttest.ReportText(rep))
		}
	}

	// A manifest that lists a file outside its directory is not signed.
	escape := strings.Replace(string(attesttest.ReadFile(t, manifest)), `"file": "initrd"`, `"file": "../initrd"`, 1)
	attesttest.WriteFile(t, manifest, []byte(escape))
	if _, err := signCmd(t, env, manifest); err == nil || !strings.Contains(err.Error(), "../initrd") {
		t.Errorf("manifest naming ../initrd: %v", err)
	}
}

func TestSignFailsClosed(t *testing.T) {
	iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 1024)
	if _, err := signCmd(t, map[string]string{"SOURCEOS_REQUIRE_SIGNATURE": "1"}, iso); !errors.Is(err, attest.ErrUnsigned) {
		t.Errorf("required signature: %v", err)
	}
	var ke *attest.KeyError
	if _, err := signCmd(t, map[string]string{"SOURCEOS_SIGN_SECRET_KEY": "not a key"}, iso); !errors.As(err, &ke) {
		t.Errorf("bad key: %v", err)
	}
	// A file the catalog does not name is signed as EDITION, TARGET and
	// ARCH say, and only as an artifact the catalog has.
	other := attesttest.Artifact(t, t.TempDir(), "renamed.img", 1024)
	if _, err := signCmd(t, map[string]string{"EDITION": "desktop", "TARGET": "qcow"}, other); err == nil || !strings.Contains(err.Error(), "no qcow artifact") {
		t.Errorf("unknown TARGET: %v", err)
	}
	// A custom build's file is never signed as a release.
	custom := attesttest.Artifact(t, t.TempDir(), "sourceos-custom-desktop-x86_64-u1-b1.iso", 1024)
	if _, err := signCmd(t, map[string]string{}, custom); !errors.Is(err, attest.ErrCustomName) {
		t.Errorf("custom name: %v", err)
	}
}

// keys:minisign writes a key pair the minisign CLI uses; the secret goes only
// where asked, 0600, never over an existing file.
func TestNewKey(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "attest.key")
	var stdout, stderr bytes.Buffer
	keyOpts := func(path string) attest.KeyOptions {
		return attest.KeyOptions{SecretPath: path, Stdout: &stdout, Stderr: &stderr}
	}
	if err := attest.NewKey(keyOpts(secretPath)); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(secretPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file: %v %v", st.Mode(), err)
	}
	secret := attesttest.ReadFile(t, secretPath)
	line := strings.Split(string(secret), "\n")[1]
	if strings.Contains(stdout.String()+stderr.String(), line[40:80]) {
		t.Error("secret key printed")
	}
	pub, err := signature.ParsePublicKey(string(attesttest.ReadFile(t, secretPath+".pub")))
	if err != nil || !strings.Contains(stdout.String(), pub.String()) {
		t.Fatalf("public key: %v\n%s", err, stdout.String())
	}
	msg := attesttest.Artifact(t, dir, "f", 100)
	mini := testrig.RequireTool(t, "minisign")
	if out, err := exec.Command(mini, "-S", "-W", "-s", secretPath, "-m", msg).CombinedOutput(); err != nil {
		t.Fatalf("CLI signs with our key: %v\n%s", err, out)
	}
	if out, err := exec.Command(mini, "-V", "-m", msg, "-p", secretPath+".pub").CombinedOutput(); err != nil {
		t.Fatalf("CLI verifies with our public key: %v\n%s", err, out)
	}
	if err := attest.NewKey(keyOpts(secretPath)); !errors.Is(err, signature.ErrExists) {
		t.Errorf("overwrite: %v", err)
	}
	// The PEM file and the printed PEM are the same key; keys:pem prints
	// it again from the minisign form.
	pemFile := attesttest.ReadFile(t, secretPath+".pub.pem")
	if k, err := signature.ParsePEM(pemFile); err != nil || !k.Equal(pub.Key) || !strings.Contains(stdout.String(), string(pemFile)) {
		t.Errorf("PEM public key: %v\n%s", err, stdout.String())
	}
	var pemOut bytes.Buffer
	if err := attest.PEM(attest.PEMOptions{PublicKey: secretPath + ".pub", Stdout: &pemOut}); err != nil || !bytes.Equal(pemOut.Bytes(), pemFile) {
		t.Errorf("keys:pem: %v\n%s", err, pemOut.String())
	}

	stdout.Reset()
	stderr.Reset()
	if err := attest.NewKey(keyOpts("-")); err != nil {
		t.Fatal(err)
	}
	if _, err := signature.ParseSecretKey(stdout.Bytes(), ""); err != nil {
		t.Errorf("stdout is not a secret key: %v", err)
	}
	if !strings.Contains(stderr.String(), "Public key") {
		t.Errorf("public key not on stderr: %s", stderr.String())
	}
}
