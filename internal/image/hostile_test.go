package image_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// machineKeys are signing and cache keys that exist on the machine a custom
// build runs on, where an operator or a trusted step keeps them: in files,
// in the environment of another process, in the environment of the process
// that starts the build.
type machineKeys struct {
	files   []string
	needles [][]byte // key material, as written and reversed
}

func plantKeys(t *testing.T) machineKeys {
	t.Helper()
	kp, err := signature.Generate(signature.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cacheSecret, _, err := nixcache.GenerateKey("sourceos-test-1")
	if err != nil {
		t.Fatal(err)
	}
	signLine := strings.Split(strings.TrimSpace(string(kp.SecretKey)), "\n")[1]
	cacheB64 := strings.SplitN(cacheSecret, ":", 2)[1]
	dir := t.TempDir()
	k := machineKeys{files: []string{filepath.Join(dir, "sign.key"), filepath.Join(dir, "cache.key")}}
	writeFile(t, k.files[0], string(kp.SecretKey))
	writeFile(t, k.files[1], cacheSecret+"\n")
	for _, f := range k.files {
		if err := os.Chmod(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The process that starts the build has them (an operator's shell).
	t.Setenv("SOURCEOS_SIGN_SECRET_KEY", string(kp.SecretKey))
	t.Setenv("NIX_CACHE_SECRET_KEY", cacheSecret)
	// So does another process on the machine (a trusted signer, an agent).
	holder := exec.Command("/bin/sleep", "600")
	holder.Env = []string{"SOURCEOS_SIGN_SECRET_KEY=" + string(kp.SecretKey), "NIX_CACHE_SECRET_KEY=" + cacheSecret}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	for _, s := range []string{signLine, cacheB64, signLine[10:40], cacheB64[10:40]} {
		k.needles = append(k.needles, []byte(s), reversed(s))
	}
	return k
}

func reversed(s string) []byte {
	b := []byte(s)
	slices.Reverse(b)
	return b
}

// leak names the first key material found in b.
func (k machineKeys) leak(b []byte) string {
	for _, n := range k.needles {
		if bytes.Contains(b, n) {
			return string(n[:8]) + "…"
		}
	}
	return ""
}

// hostile is a module snippet whose derivations run at build time; extra
// holds more attributes of the attacking derivation (a nonce, so that it is
// built afresh by every run rather than found in the store).
func hostile(script string, extra string) string {
	return fmt.Sprintf(`{ ... }: let
  victim = derivation { name = "victim"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/bin";
    args = [ "-c" "mkdir $out; echo original > $out/data" ]; };
in { loot = derivation { name = "loot"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/bin"; inherit victim;
    args = [ "-c" %q ]; %s }; }`, script, extra)
}

// Module snippets that try to reach the machine's keys from inside the
// build. Every one runs (snippets that define derivations are allowed);
// Nix's sandbox keeps every key out of the build's outputs, its log, the
// error, OUT and the uploaded objects.
func TestHostileSnippetsReachNoKey(t *testing.T) {
	keys := plantKeys(t)
	edge := testrig.Build(t, testrig.Attr(t, "sourceos-edge-system"))[0]
	cases := map[string]struct {
		script string
		fails  bool
	}{
		"read other processes' environment": {script: `for f in /proc/*/environ /proc/self/environ /proc/1/environ; do cat "$f"; echo; done > $out 2>&1; ls /proc >> $out 2>&1; true`},
		"read the key files": {script: fmt.Sprintf(`cat %s %s > $out 2>&1; ls -la %s / /root /tmp >> $out 2>&1; true`,
			keys.files[0], keys.files[1], filepath.Dir(keys.files[0]))},
		"print what it finds and fail":  {script: `cat /proc/*/environ 2>&1 | rev >&2; cat /proc/*/environ >&2; exit 1`, fails: true},
		"write into another store path": {script: `s=/nix; for p in $victim $s/store/*; do chmod -R u+w $p; echo tampered >> $p/data; echo tampered > $p/edition; done 2>$out; echo done >> $out`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := newCustomRig(t)
			r.env["SOURCEOS_ALLOW_MODULE_SNIPPET"] = "1"
			specPath := writeSpec(t, map[string]any{"edition": "edge", "arch": "x86_64", "hostname": "h", "moduleSnippet": hostile(c.script, fmt.Sprintf("nonce = \"%d\";", time.Now().UnixNano()))})
			sum, err := customBuild(t, r.deps(), specPath)
			if c.fails != (err != nil) {
				t.Fatalf("build error = %v, want failure %v\n%s", err, c.fails, r.log.String())
			}
			if err != nil {
				if l := keys.leak([]byte(err.Error())); l != "" {
					t.Errorf("the error carries key material %s", l)
				}
			}
			if l := keys.leak(r.log.Bytes()); l != "" {
				t.Errorf("the build log carries key material %s", l)
			}
			checkTreeClean(t, keys, r.out)
			for _, o := range r.objects() {
				_, body := r.gcs.Get(t, "artifacts", "builds/b-42/"+o)
				if l := keys.leak(body); l != "" {
					t.Errorf("uploaded %s carries key material %s", o, l)
				}
			}
			if sum != nil {
				for _, p := range testrig.Closure(t, sum.Outputs["system"]) {
					checkTreeClean(t, keys, p)
				}
			}
			// The other store paths are as Nix built them.
			paths := []string{edge}
			if sum != nil {
				paths = append(paths, testrig.Closure(t, sum.Outputs["system"])...)
			}
			if out, err := exec.Command("nix-store", append([]string{"--verify-path"}, paths...)...).CombinedOutput(); err != nil {
				t.Errorf("a store path was modified by a build: %v %s", err, out)
			}
		})
	}
}

func checkTreeClean(t *testing.T, keys machineKeys, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if l := keys.leak(b); l != "" {
			t.Errorf("%s carries key material %s", p, l)
		}
		return nil
	})
}
