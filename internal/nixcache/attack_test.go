package nixcache_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// These tests play an attacker who can write to the cache's bucket or
// directory before or after a push: objects planted under the names a push
// uses must neither count as present nor end up behind a signed narinfo.

// target is one cache under attack.
type target struct {
	o     nixcache.Options
	store blob.Store
	url   string // where Nix substitutes from
}

// targetKinds are the cache kinds every attack runs against.
var targetKinds = []string{"dir", "gcs"}

func openTarget(t *testing.T, kind string, k keyPair) target {
	t.Helper()
	switch kind {
	case "dir":
		o := dirOptions(filepath.Join(t.TempDir(), "cache"), k)
		s, err := blob.OpenDir(o.Dir)
		if err != nil {
			t.Fatal(err)
		}
		return target{o: o, store: s, url: "file://" + o.Dir}
	case "gcs":
		g := testrig.StartGCS(t, "cache")
		o := gcsOptions(k)
		s, err := blob.Open(tctx(t), "gs://cache/"+o.Prefix)
		if err != nil {
			t.Fatal(err)
		}
		return target{o: o, store: s, url: g.URL("cache", o.Prefix)}
	}
	t.Fatalf("unknown target kind %q", kind)
	return target{}
}

// reference pushes infos to a scratch directory cache with key k and
// returns the narinfo of every path: what an honest push writes.
func reference(t *testing.T, k keyPair, infos []nixstore.PathInfo) map[string]*narinfo.NarInfo {
	t.Helper()
	o := dirOptions(t.TempDir(), k)
	if _, err := nixcache.PushPaths(tctx(t), o, infos); err != nil {
		t.Fatal(err)
	}
	out := map[string]*narinfo.NarInfo{}
	for _, pi := range infos {
		out[pi.Path] = readNarinfo(t, filepath.Join(o.Dir, nixstore.HashPart(pi.Path)+".narinfo"))
	}
	return out
}

// closureInfos queries the closure of root with real Nix.
func closureInfos(t *testing.T, root string) []nixstore.PathInfo {
	t.Helper()
	infos, err := nixstore.Query(tctx(t), gcsOptions(keyPair{}).Runner, root)
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

// victims picks n paths of infos whose NAR no other path shares, largest
// first, so that each planted object concerns exactly one path.
func victims(t *testing.T, infos []nixstore.PathInfo, n int) []nixstore.PathInfo {
	t.Helper()
	count := map[string]int{}
	for _, pi := range infos {
		count[pi.NarHash]++
	}
	var out []nixstore.PathInfo
	for _, pi := range infos {
		if count[pi.NarHash] == 1 {
			out = append(out, pi)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NarSize > out[j].NarSize })
	if len(out) < n {
		t.Fatalf("the fixture closure has %d paths with a NAR of their own, want %d", len(out), n)
	}
	return out[:n]
}

// narHashKey is the object name a push gives pi's zstd NAR.
func narHashKey(t *testing.T, pi nixstore.PathInfo) string {
	t.Helper()
	h, err := nixhash.ParseAny(pi.NarHash, nil)
	if err != nil {
		t.Fatal(err)
	}
	return "nar/" + h.Format(nixhash.NixBase32, false) + ".nar.zst"
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// plant writes body under key as an attacker would: overwriting whatever is
// there.
func plant(t *testing.T, s blob.Store, key string, body []byte) {
	t.Helper()
	if err := s.Put(tctx(t), key, bytes.NewReader(body), blob.PutOptions{}); err != nil {
		t.Fatalf("plant %s: %v", key, err)
	}
}

func readObject(t testing.TB, s blob.Store, key string) []byte {
	t.Helper()
	rc, err := s.Open(tctx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func storedNarinfo(t *testing.T, s blob.Store, storePath string) *narinfo.NarInfo {
	t.Helper()
	ni, err := nixcache.ParseNarInfo(readObject(t, s, nixstore.HashPart(storePath)+".narinfo"))
	if err != nil {
		t.Fatal(err)
	}
	return ni
}

// resign replaces ni's signatures by one made with secret.
func resign(t *testing.T, ni *narinfo.NarInfo, secret string) {
	t.Helper()
	sk, err := signature.LoadSecretKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sk.Sign(nil, ni.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	ni.Signatures = []signature.Signature{sig}
}

// cleanAndSubstitutable checks what every attack test ends with: a deep
// audit finds nothing and real Nix substitutes the whole closure.
func cleanAndSubstitutable(t *testing.T, tg target, k keyPair, root string) {
	t.Helper()
	mustVerify(t, tg.o, true)
	if out, err := substitute(t, tg.url, k.public, root); err != nil {
		t.Fatalf("nix could not substitute from %s: %v\n%s", tg.url, err, out)
	}
}

// A NAR object planted under the name the push would use, with the size of
// ours or another size, is neither trusted nor overwritten: the push
// uploads its own bytes under another name and points the narinfo there.
func TestPushRoutesAroundSquattedNARs(t *testing.T) {
	isolateNix(t)
	_, netboot := fixture(t)
	infos := closureInfos(t, netboot)
	k := newKey(t, "squat-1")
	ref := reference(t, k, infos)
	v := victims(t, infos, 2)
	for _, kind := range targetKinds {
		t.Run(kind, func(t *testing.T) {
			isolateNix(t)
			tg := openTarget(t, kind, k)
			planted := map[string][]byte{
				narHashKey(t, v[0]): randomBytes(t, int(ref[v[0].Path].FileSize)),    // same size
				narHashKey(t, v[1]): randomBytes(t, int(ref[v[1].Path].FileSize)+77), // another size
			}
			for key, body := range planted {
				plant(t, tg.store, key, body)
			}
			s, err := nixcache.Push(tctx(t), tg.o, []string{netboot})
			if err != nil {
				t.Fatalf("push over squatted NARs: %v (%s)", err, s.JSON())
			}
			for _, pi := range v {
				if ni := storedNarinfo(t, tg.store, pi.Path); ni.URL == narHashKey(t, pi) {
					t.Errorf("%s: the narinfo points at the squatted %s", pi.Path, ni.URL)
				}
			}
			for key, body := range planted {
				if !bytes.Equal(readObject(t, tg.store, key), body) {
					t.Errorf("%s: the planted object was overwritten (a create-only store never overwrites)", key)
				}
			}
			cleanAndSubstitutable(t, tg, k, netboot)
		})
	}
}

// plantedNarinfos are narinfos an attacker writes under the names of four
// closure paths, before any push; each must be replaced.
func plantedNarinfos(t *testing.T, k keyPair, ref map[string]*narinfo.NarInfo, v []nixstore.PathInfo) map[string][]byte {
	t.Helper()
	unsigned := *ref[v[0].Path]
	unsigned.Signatures = nil
	otherKey := *ref[v[1].Path]
	resign(t, &otherKey, newKey(t, k.public[:strings.Index(k.public, ":")]).secret) // same name, other key
	wrongPath := *ref[v[3].Path]                                                    // ours, for another path
	return map[string][]byte{
		nixstore.HashPart(v[0].Path) + ".narinfo": []byte(unsigned.String()),
		nixstore.HashPart(v[1].Path) + ".narinfo": []byte(otherKey.String()),
		nixstore.HashPart(v[2].Path) + ".narinfo": []byte(wrongPath.String()),
		nixstore.HashPart(v[3].Path) + ".narinfo": []byte("StorePath: garbage\n"),
	}
}

// Narinfos planted before the first push (unsigned, signed by another key
// of the same name, ours but for another path, unparseable) do not count
// as present: the push replaces them.
func TestPushReplacesPlantedNarinfos(t *testing.T) {
	isolateNix(t)
	_, netboot := fixture(t)
	infos := closureInfos(t, netboot)
	k := newKey(t, "plant-1")
	ref := reference(t, k, infos)
	v := victims(t, infos, 4)
	for _, kind := range targetKinds {
		t.Run(kind, func(t *testing.T) {
			isolateNix(t)
			tg := openTarget(t, kind, k)
			for key, body := range plantedNarinfos(t, k, ref, v) {
				plant(t, tg.store, key, body)
			}
			s, err := nixcache.Push(tctx(t), tg.o, []string{netboot})
			if err != nil {
				t.Fatalf("push over planted narinfos: %v (%s)", err, s.JSON())
			}
			if s.Present != 0 {
				t.Errorf("planted narinfos counted as present: %s", s.JSON())
			}
			cleanAndSubstitutable(t, tg, k, netboot)
		})
	}
}

// On a bucket, a narinfo of ours replayed with its URL pointing at planted
// bytes (its signature still verifies: URL and FileSize are not signed)
// does not count as present either.
func TestPushReplacesRedirectedNarinfo(t *testing.T) {
	isolateNix(t)
	_, netboot := fixture(t)
	infos := closureInfos(t, netboot)
	k := newKey(t, "redirect-1")
	ref := reference(t, k, infos)
	v := victims(t, infos, 1)[0]
	tg := openTarget(t, "gcs", k)
	junk := randomBytes(t, 4096)
	plant(t, tg.store, "nar/planted.nar.zst", junk)
	redirected := *ref[v.Path]
	pointAt(&redirected, "nar/planted.nar.zst", junk)
	plant(t, tg.store, nixstore.HashPart(v.Path)+".narinfo", []byte(redirected.String()))
	if _, err := nixcache.Push(tctx(t), tg.o, []string{netboot}); err != nil {
		t.Fatal(err)
	}
	if ni := storedNarinfo(t, tg.store, v.Path); ni.URL == "nar/planted.nar.zst" {
		t.Fatalf("the redirected narinfo was kept")
	}
	cleanAndSubstitutable(t, tg, k, netboot)
}

// A NAR replaced in the bucket after it was published (same size, other
// bytes) is found by cache:verify without downloading it, and the next push
// repairs the path.
func TestVerifyFindsAndPushRepairsReplacedNAR(t *testing.T) {
	isolateNix(t)
	_, netboot := fixture(t)
	infos := closureInfos(t, netboot)
	k := newKey(t, "swap-1")
	v := victims(t, infos, 1)[0]
	tg := openTarget(t, "gcs", k)
	if _, err := nixcache.Push(tctx(t), tg.o, []string{netboot}); err != nil {
		t.Fatal(err)
	}
	ni := storedNarinfo(t, tg.store, v.Path)
	plant(t, tg.store, ni.URL, randomBytes(t, int(ni.FileSize)))
	rep, err := nixcache.Verify(tctx(t), tg.o, false)
	var ve *nixcache.VerifyError
	if !errors.As(err, &ve) || !problemAbout(rep, ni.URL) {
		t.Fatalf("a shallow verify missed the replaced %s: %v %v", ni.URL, err, rep.Problems)
	}
	s, err := nixcache.Push(tctx(t), tg.o, []string{netboot})
	if err != nil {
		t.Fatal(err)
	}
	if s.Pushed != 1 {
		t.Errorf("repair push %s, want the one broken path pushed", s.JSON())
	}
	cleanAndSubstitutable(t, tg, k, netboot)
}

func problemAbout(rep nixcache.Report, s string) bool {
	for _, p := range rep.Problems {
		if strings.Contains(p.String(), s) {
			return true
		}
	}
	return false
}

// Honest pushers of the same closure that find the same planted objects
// all succeed and leave a clean cache, whoever replaces what first.
func TestConcurrentPushersOverPlantedObjects(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	infos := closureInfos(t, netboot)
	k := newKey(t, "race-plant-1")
	ref := reference(t, k, infos)
	v := victims(t, infos, 6)
	for _, kind := range targetKinds {
		t.Run(kind, func(t *testing.T) {
			isolateNix(t)
			tg := openTarget(t, kind, k)
			for key, body := range plantedNarinfos(t, k, ref, v[:4]) {
				plant(t, tg.store, key, body)
			}
			plant(t, tg.store, narHashKey(t, v[4]), randomBytes(t, int(ref[v[4].Path].FileSize)))
			plant(t, tg.store, narHashKey(t, v[5]), randomBytes(t, 99))
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i, paths := range [][]string{{netboot}, {netboot}, {system, netboot}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = nixcache.Push(tctx(t), tg.o, paths)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("pusher %d: %v", i, err)
				}
			}
			cleanAndSubstitutable(t, tg, k, netboot)
		})
	}
}

// A push into a directory removes the temporary files that writers killed
// mid-upload left behind (older than blob.StaleTempAge) and keeps younger
// ones, which may belong to a concurrent writer.
func TestPushSweepsStaleTemps(t *testing.T) {
	isolateNix(t)
	_, netboot := fixture(t)
	k := newKey(t, "sweep-1")
	tg := openTarget(t, "dir", k)
	stale := filepath.Join(tg.o.Dir, "nar", ".tmp-0abc.nar.zst-123")
	fresh := filepath.Join(tg.o.Dir, ".tmp-0abc.narinfo-456")
	for _, p := range []string{stale, fresh} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-blob.StaleTempAge - time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := nixcache.Push(tctx(t), tg.o, []string{netboot}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale temporary file is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the fresh temporary file was removed: %v", err)
	}
	mustVerify(t, tg.o, true)
}

// In a directory, narinfos that nix copy wrote with our key are provably
// ours (our signature over the path's fingerprint, their NAR in place):
// a push counts them as present and uploads nothing.
func TestPushKeepsNixCopyNarinfosSignedByUs(t *testing.T) {
	isolateNix(t)
	system, _ := fixture(t)
	k := newKey(t, "copy-1")
	keyFile := filepath.Join(t.TempDir(), "sk")
	if err := os.WriteFile(keyFile, []byte(k.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := openTarget(t, "dir", k)
	out, err := exec.CommandContext(tctx(t), "nix", "copy", "--to", "file://"+tg.o.Dir+"?compression=zstd&secret-key="+keyFile, system).CombinedOutput()
	if err != nil {
		t.Fatalf("nix copy: %v\n%s", err, out)
	}
	s, err := nixcache.Push(tctx(t), tg.o, []string{system})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(testrig.Closure(t, system)); s.Present != n || s.Pushed != 0 {
		t.Fatalf("push over nix copy's narinfos: %s, want %d present", s.JSON(), n)
	}
	cleanAndSubstitutable(t, tg, k, system)
}

// On a bucket, narinfos without a push proof (written before proofs, or by
// another tool, with our key) are published again with one; their NARs,
// found intact under their names, are not uploaded again.
func TestPushAddsProofsToNarinfosWithout(t *testing.T) {
	isolateNix(t)
	_, netboot := fixture(t)
	k := newKey(t, "upgrade-1")
	tg := openTarget(t, "gcs", k)
	if _, err := nixcache.Push(tctx(t), tg.o, []string{netboot}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, key := range listKeys(t, tg.store) {
		if strings.HasSuffix(key, ".narinfo") {
			plant(t, tg.store, key, readObject(t, tg.store, key)) // same bytes, no metadata
			n++
		}
	}
	if _, err := nixcache.Verify(tctx(t), tg.o, false); err == nil {
		t.Fatal("verify accepted narinfos without push proofs")
	}
	s, err := nixcache.Push(tctx(t), tg.o, []string{netboot})
	if err != nil {
		t.Fatal(err)
	}
	if s.Pushed != n || s.UploadedBytes != 0 {
		t.Fatalf("push over proofless narinfos: %s, want %d republished and no NAR uploaded", s.JSON(), n)
	}
	if s, err = nixcache.Push(tctx(t), tg.o, []string{netboot}); err != nil || s.Present != n {
		t.Fatalf("push after the upgrade: %v %s, want all %d present", err, s.JSON(), n)
	}
	cleanAndSubstitutable(t, tg, k, netboot)
}
