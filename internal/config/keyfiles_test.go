package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/socioprophet/sourceos/internal/config"
)

// A value given as <NAME>_FILE loads as the same value given in the
// environment: a password file ends in a line break that is not part of
// the password.
func TestSecretFileLoadsTheSameValue(t *testing.T) {
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := config.Load(envOf(map[string]string{"SOURCEOS_SIGN_PASSWORD_FILE": p}), config.ReadSecretFile)
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := config.Load(envOf(map[string]string{"SOURCEOS_SIGN_PASSWORD": "hunter2"}), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.SignPassword.Reveal() != fromEnv.SignPassword.Reveal() {
		t.Errorf("from the file %q, from the environment %q", fromFile.SignPassword.Reveal(), fromEnv.SignPassword.Reveal())
	}
}

// A secret file this user owns that group or others can read is refused,
// as ssh refuses such a private key; an oversized one too.
func TestReadSecretFileRefusesOpenFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		mode os.FileMode
		ok   bool
	}{{"private", 0o600, true}, {"owner read only", 0o400, true}, {"group", 0o640, false}, {"world", 0o604, false}, {"everyone", 0o644, false}} {
		_, err := config.ReadSecretFile(write(tc.name, tc.mode, "k"))
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, config.ErrSecretFileOpen)) {
			t.Errorf("%s (%04o): err = %v", tc.name, tc.mode, err)
		}
	}
	if _, err := config.ReadSecretFile(write("big", 0o600, strings.Repeat("k", config.MaxSecretFile+1))); err == nil {
		t.Error("an oversized secret file was read")
	}
	// Through FromEnv's path: Load names the variable.
	_, err := config.Load(envOf(map[string]string{"NIX_CACHE_SECRET_KEY_FILE": write("open", 0o644, "c:k")}), config.ReadSecretFile)
	if err == nil || !strings.Contains(err.Error(), "NIX_CACHE_SECRET_KEY_FILE") || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("err = %v", err)
	}
	if os.Getuid() == 0 { // a file another user owns: its owner decided who reads it
		p := write("theirs", 0o644, "k")
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := config.ReadSecretFile(p); err != nil {
			t.Errorf("another user's file: %v", err)
		}
	}
}

// keys:files and keys:removeFiles: every secret goes into a private file,
// the <NAME>_FILE assignments load the same values, and removal leaves
// nothing behind but an operator's own key file.
func TestKeyFilesRoundTrip(t *testing.T) {
	env := map[string]string{
		"SOURCEOS_SIGN_SECRET_KEY": "untrusted comment: k\nRWQsecretkeybytes\n",
		"SOURCEOS_SIGN_PASSWORD":   "hunter2",
		"NIX_CACHE_SECRET_KEY":     "cache-1:c2VjcmV0",
	}
	c, err := config.Load(envOf(env), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	assigns, err := c.WriteKeyFiles(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(assigns) != 3 {
		t.Fatalf("assignments %q", assigns)
	}
	fileEnv := map[string]string{}
	var dir string
	for _, a := range assigns {
		k, p, _ := strings.Cut(a, "=")
		fileEnv[k] = p
		dir = filepath.Dir(p)
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", p, st.Mode(), err)
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 || filepath.Dir(dir) != parent {
		t.Fatalf("directory %s: %v %v", dir, st.Mode(), err)
	}
	back, err := config.Load(envOf(fileEnv), config.ReadSecretFile)
	if err != nil {
		t.Fatal(err)
	}
	if back.SignPassword.Reveal() != "hunter2" || back.CacheSecretKey.Reveal() != env["NIX_CACHE_SECRET_KEY"] ||
		back.SignSecretKey.Reveal() != strings.TrimRight(env["SOURCEOS_SIGN_SECRET_KEY"], "\n") {
		t.Error("the files do not load the values they were written from")
	}

	ghEnv := filepath.Join(t.TempDir(), "github_env")
	if err := os.WriteFile(ghEnv, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := config.AppendEnvFile(ghEnv, assigns); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(t.TempDir(), "SOURCEOS_SIGN_PASSWORD")
	if err := os.WriteFile(own, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileEnv["GITHUB_ENV"] = ghEnv
	removed, err := config.RemoveKeyFiles(envOf(fileEnv))
	if err != nil || len(removed) != 3 {
		t.Fatalf("removed %q, err %v", removed, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
	b, _ := os.ReadFile(ghEnv)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, name := range []string{"NIX_CACHE_SECRET_KEY_FILE=", "SOURCEOS_SIGN_PASSWORD_FILE=", "SOURCEOS_SIGN_SECRET_KEY_FILE="} {
		if !slices.Contains(lines, name) {
			t.Errorf("GITHUB_ENV does not empty %s for later steps:\n%s", name, b)
		}
	}
	// Again: nothing left to do. An operator's own key file is never removed.
	if removed, err := config.RemoveKeyFiles(envOf(map[string]string{"SOURCEOS_SIGN_PASSWORD_FILE": own})); err != nil || len(removed) != 0 {
		t.Errorf("removed %q, err %v", removed, err)
	}
	if _, err := os.Stat(own); err != nil {
		t.Errorf("the operator's key file: %v", err)
	}
	// No secret: no directory.
	none, _ := config.Load(envOf(nil), noFiles)
	if a, err := none.WriteKeyFiles(parent); err != nil || len(a) != 0 {
		t.Errorf("no secrets: %q %v", a, err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("left in the parent: %v", entries)
	}
}

// The walk up the process tree finds a secret of the environment in the
// environment of each ancestor that holds it, names them, and passes over
// ancestors it cannot read; a secret from a file is never looked for.
func TestCheckAncestors(t *testing.T) {
	const key = "cache-1:c2VjcmV0"
	proc := fstest.MapFS{
		// 40 (mage) <- 30 (magefile) <- 20 (go) <- 10 (bash) <- 1 (init)
		"30/stat":    {Data: []byte("30 (magefile) S 20 30 1 0")},
		"30/environ": {Data: []byte("HOME=/h\x00NIX_CACHE_SECRET_KEY=" + key + "\x00")},
		"20/stat":    {Data: []byte("20 (go) S 10 20 1 0")},
		"20/environ": {Data: []byte("NIX_CACHE_SECRET_KEY=" + key + "\x00PATH=/bin")},
		"10/stat":    {Data: []byte("10 (we(i)rd) name) S 1 10 1 0")},
		"10/environ": {Data: []byte("NIX_CACHE_SECRET_KEY=other\x00NIX_CACHE_SECRET_KEY=" + key + "x")},
		"1/stat":     {Data: []byte("1 (init) S 0 1 1 0")},
		// 1/environ unreadable (root's)
	}
	c, err := config.Load(envOf(map[string]string{"NIX_CACHE_SECRET_KEY": key}), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckAncestorsIn(proc, 30)
	var exp *config.ExposedError
	if !errors.As(err, &exp) {
		t.Fatalf("err = %v", err)
	}
	want := []config.Exposure{{Name: "NIX_CACHE_SECRET_KEY", PID: 30, Command: "magefile"}, {Name: "NIX_CACHE_SECRET_KEY", PID: 20, Command: "go"}}
	if !slices.Equal(exp.Exposures, want) {
		t.Errorf("exposures %+v, want %+v", exp.Exposures, want)
	}
	msg := err.Error()
	for _, s := range []string{"magefile (pid 30)", "go (pid 20)", "NIX_CACHE_SECRET_KEY_FILE"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message %q lacks %q", msg, s)
		}
	}
	if strings.Contains(msg, key) {
		t.Error("the message holds the key")
	}
	// A parent that never held it (a shell that exported it) is no exposure.
	if err := c.CheckAncestorsIn(proc, 10); err != nil {
		t.Errorf("from 10: %v", err)
	}
	// The same value from a file: nothing to look for.
	p := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(p, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := config.Load(envOf(map[string]string{"NIX_CACHE_SECRET_KEY_FILE": p}), config.ReadSecretFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := fromFile.CheckAncestorsIn(proc, 30); err != nil {
		t.Errorf("secret from a file: %v", err)
	}
	// A loop in a broken /proc ends.
	loop := fstest.MapFS{"5/stat": {Data: []byte("5 (a) S 6")}, "6/stat": {Data: []byte("6 (b) S 5")}}
	if err := c.CheckAncestorsIn(loop, 5); err != nil {
		t.Errorf("loop: %v", err)
	}
}
