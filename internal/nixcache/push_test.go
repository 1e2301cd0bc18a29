package nixcache_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestPushToGCSRealNixSubstitutes(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	g := testrig.StartGCS(t, "cache")
	k := newKey(t, "test-cache-1")
	o := gcsOptions(k)

	s, err := nixcache.Push(tctx(t), o, []string{system})
	if err != nil {
		t.Fatal(err)
	}
	n := len(testrig.Closure(t, system))
	if s.Pushed != n || s.Failed != 0 || s.NarBytes == 0 || s.UploadedBytes == 0 {
		t.Fatalf("summary %s, want %d pushed", s.JSON(), n)
	}
	// A second push of an overlapping closure only uploads the new paths.
	s2, err := nixcache.Push(tctx(t), o, []string{netboot})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Present != n || s2.Pushed != len(testrig.Closure(t, netboot))-n {
		t.Fatalf("second push %s", s2.JSON())
	}
	rep := mustVerify(t, o, true)
	if rep.Narinfos != len(testrig.Closure(t, netboot)) {
		t.Fatalf("verify saw %d narinfos", rep.Narinfos)
	}
	code, body := g.Get(t, "cache", "nix-cache/nix-cache-info")
	if code != 200 || !strings.Contains(string(body), "StoreDir: /nix/store") {
		t.Fatalf("nix-cache-info: %d %q", code, body)
	}

	checkProofRefs(t, o, publicKey(t, k))

	url := g.URL("cache", "nix-cache")
	if out, err := substitute(t, url, k.public, netboot); err != nil {
		t.Fatalf("nix could not substitute from %s: %v\n%s", url, err, out)
	}
	other := newKey(t, "test-cache-1") // same name, different key
	if out, err := substitute(t, url, other.public, netboot); err == nil {
		t.Fatalf("nix substituted with an untrusted key:\n%s", out)
	} else if !strings.Contains(out, "not signed by any of the keys") {
		t.Fatalf("refused for another reason: %s", out)
	}
}

// checkProofRefs checks that the push proof of every narinfo of the cache
// records its references (so the listing alone gives the graph), as the
// narinfo lists them.
func checkProofRefs(t *testing.T, o nixcache.Options, pk signature.PublicKey) {
	t.Helper()
	s, err := blob.Open(tctx(t), "gs://"+o.Bucket+"/"+o.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = s.List(tctx(t), "", func(i blob.Info) error {
		if !strings.HasSuffix(i.Key, ".narinfo") {
			return nil
		}
		n++
		p, err := cachefmt.CheckProof(pk, i)
		ni, perr := nixcache.ParseNarInfo(readObject(t, s, i.Key))
		if err != nil || perr != nil || !p.RefsKnown {
			t.Errorf("%s: proof %+v, %v; narinfo %v", i.Key, p, err, perr)
			return nil
		}
		want := cachefmt.RefHashes(ni)
		sort.Strings(want)
		if strings.Join(p.Refs, " ") != strings.Join(want, " ") {
			t.Errorf("%s: the proof records references %v, the narinfo %v", i.Key, p.Refs, want)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("listed %d narinfos: %v", n, err)
	}
}

func TestPushToDirRealNixSubstitutes(t *testing.T) {
	isolateNix(t)
	_, netboot := fixture(t)
	dir := t.TempDir()
	k := newKey(t, "dir-cache-1")
	for _, comp := range []string{"zstd", "xz", "none"} {
		t.Run(comp, func(t *testing.T) {
			o := dirOptions(filepath.Join(dir, comp), k)
			o.Compression = comp
			if _, err := nixcache.Push(tctx(t), o, []string{netboot}); err != nil {
				t.Fatal(err)
			}
			mustVerify(t, o, true)
			url := "file://" + o.Dir
			if out, err := substitute(t, url, k.public, netboot); err != nil {
				t.Fatalf("nix could not substitute from %s: %v\n%s", url, err, out)
			}
			if out, err := substitute(t, url, newKey(t, "dir-cache-1").public, netboot); err == nil {
				t.Fatalf("nix substituted with an untrusted key:\n%s", out)
			}
		})
	}
}

// Our narinfo must say what `nix copy --to file://` says for the same path
// and key, except where the NAR lives and its compressed hash and size.
func TestNarinfoMatchesNixCopy(t *testing.T) {
	isolateNix(t)
	system, _ := fixture(t)
	k := newKey(t, "match-1")
	keyFile := filepath.Join(t.TempDir(), "sk")
	if err := os.WriteFile(keyFile, []byte(k.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	theirs := t.TempDir()
	out, err := exec.CommandContext(tctx(t), "nix", "copy", "--to", "file://"+theirs+"?compression=zstd&secret-key="+keyFile, system).CombinedOutput()
	if err != nil {
		t.Fatalf("nix copy: %v\n%s", err, out)
	}
	ours := t.TempDir()
	if _, err := nixcache.Push(tctx(t), dirOptions(ours, k), []string{system}); err != nil {
		t.Fatal(err)
	}
	for _, p := range testrig.Closure(t, system) {
		name := nixstore.HashPart(p) + ".narinfo"
		a, b := readNarinfo(t, filepath.Join(theirs, name)), readNarinfo(t, filepath.Join(ours, name))
		for _, ni := range []*narinfo.NarInfo{a, b} {
			ni.URL, ni.FileHash, ni.FileSize = "", nil, 0
		}
		if a.String() != b.String() {
			t.Errorf("%s differs:\nnix copy:\n%s\nours:\n%s", name, a, b)
		}
	}
}

func readNarinfo(t *testing.T, file string) *narinfo.NarInfo {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ni, err := nixcache.ParseNarInfo(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return ni
}

func TestPushUnconfigured(t *testing.T) {
	k := newKey(t, "x-1")
	cases := map[string]struct {
		o    nixcache.Options
		want string
	}{
		"no destination": {nixcache.Options{SecretKey: config.NewSecret(k.secret)}, "NIX_CACHE_BUCKET or NIX_CACHE_DIR"},
		"no key":         {nixcache.Options{Dir: t.TempDir()}, "NIX_CACHE_SECRET_KEY"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := nixcache.Push(tctx(t), c.o, []string{"/nix/store/x"})
			if !errors.Is(err, nixcache.ErrNotConfigured) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Push: %v, want a not-configured error naming %s", err, c.want)
			}
			if s, err := nixcache.PushBestEffort(tctx(t), c.o, []string{"/nix/store/x"}); err != nil || s.Pushed != 0 {
				t.Fatalf("PushBestEffort unconfigured: %v", err)
			}
			c.o.Strict = true
			if _, err := nixcache.PushBestEffort(tctx(t), c.o, []string{"/nix/store/x"}); !errors.Is(err, nixcache.ErrNotConfigured) {
				t.Fatalf("strict PushBestEffort unconfigured: %v", err)
			}
		})
	}
}

func TestPushBadKeyDoesNotLeakIt(t *testing.T) {
	secret := "mykey:not-base64-SECRETSECRET"
	o := nixcache.Options{Dir: t.TempDir(), SecretKey: config.NewSecret(secret)}
	_, err := nixcache.PushPaths(tctx(t), o, nil)
	if err == nil || strings.Contains(err.Error(), "SECRETSECRET") {
		t.Fatalf("bad key error: %v", err)
	}
}

func TestPushBestEffortSwallowsFailuresUnlessStrict(t *testing.T) {
	testrig.Nix(t)
	k := newKey(t, "x-1")
	o := dirOptions(t.TempDir(), k)
	bad := []string{"/nix/store/00000000000000000000000000000000-missing"}
	if _, err := nixcache.PushBestEffort(tctx(t), o, bad); err != nil {
		t.Fatalf("best effort returned %v", err)
	}
	o.Strict = true
	if _, err := nixcache.PushBestEffort(tctx(t), o, bad); err == nil {
		t.Fatal("strict best effort swallowed the failure")
	}
}

// A path whose bytes differ from the store's record is not published.
func TestPushRefusesNarHashMismatch(t *testing.T) {
	testrig.Nix(t)
	system, _ := fixture(t)
	infos, err := nixstore.Query(tctx(t), gcsOptions(keyPair{}).Runner, system)
	if err != nil {
		t.Fatal(err)
	}
	leaf := infos[0]
	leaf.NarHash = "sha256:0000000000000000000000000000000000000000000000000000"
	dir := t.TempDir()
	_, err = nixcache.PushPaths(tctx(t), dirOptions(dir, newKey(t, "x-1")), []nixstore.PathInfo{leaf})
	var pe *nixcache.PushError
	if !errors.As(err, &pe) || pe.Failed != 1 || !strings.Contains(pe.Errors[0], "differs from the store") {
		t.Fatalf("push of a mismatching path: %v", err)
	}
	s, _ := blob.OpenDir(dir)
	if keys := listKeys(t, s); len(keys) != 1 || keys[0] != "nix-cache-info" {
		t.Fatalf("a mismatching path left objects: %v", keys)
	}
}

// A large closure decides presence with one listing of the cache; the
// result is the same as with one HEAD per path.
func TestPushPresenceByListing(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	testrig.StartGCS(t, "cache")
	nixcache.SetListThreshold(t, 1)
	o := gcsOptions(newKey(t, "list-1"))
	if _, err := nixcache.Push(tctx(t), o, []string{system}); err != nil {
		t.Fatal(err)
	}
	s, err := nixcache.Push(tctx(t), o, []string{netboot})
	if err != nil {
		t.Fatal(err)
	}
	n := len(testrig.Closure(t, system))
	if s.Present != n || s.Pushed != len(testrig.Closure(t, netboot))-n {
		t.Fatalf("push after a listing: %s, want %d present", s.JSON(), n)
	}
	mustVerify(t, o, true)
}

// In a cache GC recorded as larger than the listing budget, a push lists
// nothing: it looks the closure's narinfos and their NARs up in batches,
// with the same result as a listing.
func TestPushSkipsTheListingOfALargeCache(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	link := testrig.StartLink(t, testrig.LinkOptions{Buckets: []string{"cache"}})
	nixcache.SetListThreshold(t, 1)
	o := gcsOptions(newKey(t, "large-1"))
	if _, err := nixcache.Push(tctx(t), o, []string{system}); err != nil {
		t.Fatal(err)
	}
	store, err := blob.Open(tctx(t), "gs://cache/nix-cache")
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.WriteStats(tctx(t), store, lease.Stats{Objects: 1_000_000}); err != nil {
		t.Fatal(err)
	}
	before := link.Stats()
	s, err := nixcache.Push(tctx(t), o, []string{netboot})
	got := link.Stats().Sub(before)
	if err != nil {
		t.Fatal(err)
	}
	n := len(testrig.Closure(t, system))
	if s.Present != n || s.Pushed != len(testrig.Closure(t, netboot))-n {
		t.Fatalf("push into a large cache: %s, want %d present", s.JSON(), n)
	}
	// Metadata look-ups: gc/epoch, gc/running and gc/stats before, and the
	// GC check before publishing relies on present paths.
	if got.Kinds["list"] != 0 || got.Kinds["batch"] < 2 || got.Kinds["stat"] > 5 {
		t.Fatalf("push into a cache of a million objects: %v requests %v, want no listing, batched look-ups", got.Requests, got.Kinds)
	}
	mustVerify(t, o, true)
}
