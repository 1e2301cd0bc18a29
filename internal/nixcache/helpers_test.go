package nixcache_test

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// keyPair is a cache key pair made for one test.
type keyPair struct{ secret, public string }

func newKey(t testing.TB, name string) keyPair {
	t.Helper()
	sk, pk, err := nixcache.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{sk, pk}
}

// fixture builds the offline fixture flake's desktop system and netboot
// (overlapping closures) with real Nix.
func fixture(t testing.TB) (system, netboot string) {
	t.Helper()
	p := testrig.Build(t, testrig.Attr(t, "sourceos-desktop-system"), testrig.Attr(t, "sourceos-desktop-netboot"))
	return p[0], p[1]
}

// isolateNix keeps Nix's narinfo look-up cache of this test to itself, so a
// port reused by another test cannot serve a stale answer.
func isolateNix(t testing.TB) {
	t.Helper()
	testrig.Nix(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
}

func gcsOptions(k keyPair) nixcache.Options {
	return nixcache.Options{Bucket: "cache", Prefix: "nix-cache", SecretKey: config.NewSecret(k.secret),
		PubKey: k.public, Runner: &execx.Exec{}, Jobs: 4}
}

func dirOptions(dir string, k keyPair) nixcache.Options {
	return nixcache.Options{Dir: dir, SecretKey: config.NewSecret(k.secret), PubKey: k.public, Runner: &execx.Exec{}, Jobs: 4}
}

// substitute asks real Nix to realise paths into an empty scratch store
// from the cache at url, trusting only pubKey.
func substitute(t testing.TB, url, pubKey string, paths ...string) (string, error) {
	t.Helper()
	store := filepath.Join(t.TempDir(), "scratch")
	args := append([]string{"--store", store, "-r"}, paths...)
	args = append(args, "--option", "substituters", url, "--option", "trusted-public-keys", pubKey,
		"--option", "narinfo-cache-negative-ttl", "0")
	cmd := exec.CommandContext(tctx(t), "nix-store", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), err
	}
	for _, p := range paths {
		for _, q := range testrig.Closure(t, p) {
			if _, err := os.Lstat(filepath.Join(store, q)); err != nil {
				t.Fatalf("scratch store lacks %s after substitution: %v\n%s", q, err, out)
			}
		}
	}
	return string(out), nil
}

// mustVerify audits the cache and fails the test on any problem.
func mustVerify(t testing.TB, o nixcache.Options, deep bool) nixcache.Report {
	t.Helper()
	rep, err := nixcache.Verify(tctx(t), o, deep)
	if err != nil {
		t.Fatalf("verify: %v\n%v", err, rep.Problems)
	}
	return rep
}

func listKeys(t testing.TB, s blob.Store) []string {
	t.Helper()
	var keys []string
	if err := s.List(tctx(t), "", func(i blob.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return keys
}

func countSuffix(keys []string, suffix string) int {
	n := 0
	for _, k := range keys {
		if strings.HasSuffix(k, suffix) {
			n++
		}
	}
	return n
}

func writeFile0600(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// publicKey parses k's public half.
func publicKey(t testing.TB, k keyPair) signature.PublicKey {
	t.Helper()
	pk, err := signature.ParsePublicKey(k.public)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// newTestLogger logs text lines to w.
func newTestLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
