package release_test

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

	"github.com/socioprophet/sourceos/internal/app"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/release"
	"github.com/socioprophet/sourceos/internal/sign"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// newApp builds an App from an environment map, as setup() does.
func newApp(t *testing.T, env map[string]string) (*app.App, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	return app.With(cfg, &stdout, &stderr), &stdout, &stderr
}

func TestSignAndVerifyCommands(t *testing.T) {
	k := newKeys(t)
	iso := artifact(t, t.TempDir(), isoName, 4096)
	env := map[string]string{
		"SOURCEOS_SIGN_SECRET_KEY": string(k.pair.SecretKey), "SOURCEOS_SIGN_PUBKEY": k.pub(),
		"VERSION": "1.2.3", "BUILD_ID": "b-7", "SOURCE_REV": "0123456789abcdef0123456789abcdef01234567",
		"SOURCE_REPO": "https://github.com/socioprophet/sourceos", "SOURCEOS_FLAKE": "path:/src",
	}
	a, stdout, stderr := newApp(t, env)
	if err := release.SignCommand(context.Background(), a, iso); err != nil {
		t.Fatal(err)
	}
	var res release.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || !res.Signed || len(res.Artifacts[0].Sidecars) != 6 {
		t.Fatalf("sign output: %v %s", err, stdout)
	}
	if strings.Contains(stderr.String()+stdout.String(), strings.Split(string(k.pair.SecretKey), "\n")[1][:40]) {
		t.Error("key material in output")
	}

	a, stdout, _ = newApp(t, env)
	if err := release.VerifyCommand(context.Background(), a, iso); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if !strings.Contains(stdout.String(), "PASS  trusted comment names this file") || !strings.HasSuffix(stdout.String(), "OK\n") {
		t.Errorf("text report:\n%s", stdout)
	}

	env["SOURCEOS_VERIFY_JSON"] = "1"
	flipByte(t, iso, 10)
	a, stdout, _ = newApp(t, env)
	err := release.VerifyCommand(context.Background(), a, iso)
	if release.ExitCode(err) != release.ExitFailed {
		t.Errorf("tampered: exit %d (%v)", release.ExitCode(err), err)
	}
	var rep release.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.OK {
		t.Errorf("JSON report: %v %s", err, stdout)
	}

	delete(env, "SOURCEOS_SIGN_PUBKEY")
	a, _, _ = newApp(t, env)
	if err := release.VerifyCommand(context.Background(), a, iso); release.ExitCode(err) != release.ExitCannotVerify {
		t.Errorf("no public key: exit %d (%v)", release.ExitCode(err), err)
	}
}

func TestSignCommandNetbootManifest(t *testing.T) {
	k := newKeys(t)
	dir := t.TempDir()
	env := map[string]string{"TARGET": "netboot", "EDITION": "edge", "SOURCEOS_SIGN_SECRET_KEY": string(k.pair.SecretKey)}
	a, _, _ := newApp(t, env)
	paths := netbootSet(t, dir, provenance.BuildInfo{Edition: a.Cfg.Edition, Arch: a.Cfg.Arch, Version: a.Cfg.Version})
	manifest := paths[len(paths)-1]
	if err := release.SignCommand(context.Background(), a, manifest); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if rep, err := verify(t, p, k.pub()); err != nil {
			t.Errorf("%s: %v\n%s", p, err, reportText(rep))
		}
	}

	// A manifest that lists a file outside its directory is not signed.
	escape := strings.Replace(string(readFile(t, manifest)), `"file": "initrd"`, `"file": "../initrd"`, 1)
	writeFile(t, manifest, []byte(escape))
	a, _, _ = newApp(t, env)
	if err := release.SignCommand(context.Background(), a, manifest); err == nil || !strings.Contains(err.Error(), "../initrd") {
		t.Errorf("manifest naming ../initrd: %v", err)
	}
}

func TestSignCommandFailsClosed(t *testing.T) {
	iso := artifact(t, t.TempDir(), isoName, 1024)
	a, _, _ := newApp(t, map[string]string{"SOURCEOS_REQUIRE_SIGNATURE": "1"})
	if err := release.SignCommand(context.Background(), a, iso); !errors.Is(err, release.ErrUnsigned) {
		t.Errorf("required signature: %v", err)
	}
	a, _, _ = newApp(t, map[string]string{"SOURCEOS_SIGN_SECRET_KEY": "not a key"})
	var ke *release.KeyError
	if err := release.SignCommand(context.Background(), a, iso); !errors.As(err, &ke) {
		t.Errorf("bad key: %v", err)
	}
	a, _, _ = newApp(t, map[string]string{"TARGET": "qcow"})
	if err := release.SignCommand(context.Background(), a, iso); err == nil {
		t.Error("unknown TARGET accepted")
	}
}

// keys:sign writes a key pair the minisign CLI uses; the secret goes only
// where asked, 0600, never over an existing file.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "release.key")
	a, stdout, stderr := newApp(t, nil)
	if err := release.KeysCommand(a, secretPath); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(secretPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file: %v %v", st.Mode(), err)
	}
	secret := readFile(t, secretPath)
	line := strings.Split(string(secret), "\n")[1]
	if strings.Contains(stdout.String()+stderr.String(), line[40:80]) {
		t.Error("secret key printed")
	}
	pub, err := sign.ParsePublicKey(string(readFile(t, secretPath+".pub")))
	if err != nil || !strings.Contains(stdout.String(), pub.String()) {
		t.Fatalf("public key: %v\n%s", err, stdout)
	}
	msg := artifact(t, dir, "f", 100)
	mini := testrig.RequireTool(t, "minisign")
	if out, err := exec.Command(mini, "-S", "-W", "-s", secretPath, "-m", msg).CombinedOutput(); err != nil {
		t.Fatalf("CLI signs with our key: %v\n%s", err, out)
	}
	if out, err := exec.Command(mini, "-V", "-m", msg, "-p", secretPath+".pub").CombinedOutput(); err != nil {
		t.Fatalf("CLI verifies with our public key: %v\n%s", err, out)
	}
	if err := release.KeysCommand(a, secretPath); !errors.Is(err, sign.ErrExists) {
		t.Errorf("overwrite: %v", err)
	}

	a, stdout, stderr = newApp(t, nil)
	if err := release.KeysCommand(a, "-"); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.ParseSecretKey(stdout.Bytes(), ""); err != nil {
		t.Errorf("stdout is not a secret key: %v", err)
	}
	if !strings.Contains(stderr.String(), "Public key") {
		t.Errorf("public key not on stderr: %s", stderr)
	}
}
