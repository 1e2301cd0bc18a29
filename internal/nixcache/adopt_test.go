package nixcache_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// oldPipelineCache writes a cache the way the old pipeline did: real nix
// copy to a file:// directory, xz-compressed and signed with k, then every
// file copied into the bucket under the prefix, as gsutil rsync does (no
// metadata, no push proofs, no roots).
func oldPipelineCache(t *testing.T, c *gcCache, paths ...string) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "sk")
	if err := writeFile0600(keyFile, c.k.secret); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	args := append([]string{"copy", "--to", "file://" + dir + "?compression=xz&secret-key=" + keyFile}, paths...)
	if out, err := exec.CommandContext(tctx(t), "nix", args...).CombinedOutput(); err != nil {
		t.Fatalf("nix copy: %v\n%s", err, out)
	}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return c.store.Put(tctx(t), filepath.ToSlash(rel), bytes.NewReader(body), blob.PutOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A cache written the old way (nix copy --to file://…?compression=xz with
// the cache's key, then copied into the bucket) is adoptable, not broken:
// cache:verify says so; cache:adopt checks every path deeply and records
// its push proof and a root, uploading no NAR; then pushes find it
// present, cache:gc collects what an expired root kept and nothing the
// adoption root reaches, and real Nix substitutes from it.
func TestAdoptACacheWrittenTheOldWay(t *testing.T) {
	isolateNix(t)
	built := testrig.Build(t, testrig.Attr(t, "sourceos-desktop-netboot"), testrig.Attr(t, "sourceos-edge-iso"))
	old, other := built[0], built[1]
	c := newGCCache(t, "gcs")
	now := time.Now()
	day := 24 * time.Hour
	c.setStoreTime(now.Add(-100 * day))
	oldPipelineCache(t, c, old)
	n := len(testrig.Closure(t, old))

	rep, err := nixcache.Verify(tctx(t), c.options(), false)
	var ve *nixcache.VerifyError
	if !errors.As(err, &ve) || ve.Problems != 0 || rep.Adoptable != n || rep.Narinfos != n || len(rep.Problems) != 0 {
		t.Fatalf("verify of a cache written the old way: %v, %d of %d narinfos adoptable\n%v", err, rep.Adoptable, rep.Narinfos, rep.Problems)
	}
	if _, err := nixcache.GC(tctx(t), c.options()); err == nil || !strings.Contains(err.Error(), "no root") {
		t.Fatalf("gc before the adoption: %v, want a refusal (no root)", err)
	}

	c.setStoreTime(now.Add(-99 * day))
	o := c.options()
	o.Now = c.storeNow
	uploads := c.link.Stats().Kinds["upload"]
	ad, err := nixcache.Adopt(tctx(t), o)
	if err != nil || ad.Adopted != n || len(ad.Roots) != 1 || len(ad.Problems) != 0 {
		t.Fatalf("adopt: %v %s", err, ad.JSON())
	}
	for _, k := range listKeys(t, c.store) {
		if strings.HasPrefix(k, "nar/") && !strings.HasSuffix(k, ".nar.xz") {
			t.Errorf("the adoption wrote NAR %s", k)
		}
	}
	if got := c.link.Stats().Kinds["upload"] - uploads; got != int64(n+1) {
		t.Errorf("the adoption made %d uploads, want %d (each narinfo again, with its proof, and a root)", got, n+1)
	}
	rep = mustVerify(t, c.options(), false)
	if rep.Adoptable != 0 || rep.Read != 0 {
		t.Fatalf("verify after the adoption: %+v, want every narinfo settled by its proof", rep)
	}
	if again, err := nixcache.Adopt(tctx(t), o); err != nil || again.Adopted != 0 || again.Ours != n {
		t.Fatalf("a second adoption: %v %s, want nothing to do", err, again.JSON())
	}

	// A push of the adopted closure finds every path present.
	c.setStoreTime(now.Add(-98 * day))
	po := c.options()
	po.Now, po.Root.Name = c.storeNow, "new"
	s, err := nixcache.Push(tctx(t), po, []string{old})
	if err != nil || s.Present != n || s.UploadedBytes != 0 {
		t.Fatalf("push of the adopted closure: %v %s, want all %d present", err, s.JSON(), n)
	}
	// Another closure whose root expires (the newest of its name: gone
	// by age and count), then GC long after everything.
	c.push("x", "1", now.Add(-97*day), false, other)
	c.push("x", "2", now.Add(-96*day), false, old)
	c.setStoreTime(now)
	o.GC = nixcache.GCOptions{Grace: time.Hour, KeepLast: 1, KeepDays: 45, Settle: time.Millisecond}
	sum, err := nixcache.GC(tctx(t), o)
	if err != nil {
		t.Fatalf("gc: %v", err)
	}
	t.Logf("adopt %s; gc %s", ad.JSON(), sum.JSON())
	if sum.Narinfos.Deleted == 0 {
		t.Errorf("gc deleted no narinfo: %s", sum.JSON())
	}
	for _, p := range testrig.Closure(t, old) {
		if !c.has(nixstore.HashPart(p) + ".narinfo") {
			t.Errorf("gc deleted adopted path %s", p)
		}
	}
	mustVerify(t, c.options(), true)
	if out, err := substitute(t, c.url(), c.k.public, old); err != nil {
		t.Fatalf("nix could not substitute the adopted closure: %v\n%s", err, out)
	}
}

// A narinfo of ours whose proof is stripped and whose URL (not covered by
// its signature) points at planted bytes named as nix copy names NARs
// looks adoptable: cache:verify does not call that clean, and cache:adopt,
// which checks the NAR against NarHash, leaves it alone.
func TestPlantedAdoptableNarinfoIsNotClean(t *testing.T) {
	isolateNix(t)
	_, netboot := fixture(t)
	k := newKey(t, "adopt-plant-1")
	tg := openTarget(t, "gcs", k)
	if _, err := nixcache.Push(tctx(t), tg.o, []string{netboot}); err != nil {
		t.Fatal(err)
	}
	v := victims(t, closureInfos(t, netboot), 1)[0]
	ni := storedNarinfo(t, tg.store, v.Path)
	junk := randomBytes(t, 4096)
	sum := sha256.Sum256(junk)
	c, err := cachefmt.CodecFor(ni.Compression)
	if err != nil {
		t.Fatal(err)
	}
	key := cachefmt.FileKey(sum[:], c, "")
	plant(t, tg.store, key, junk)
	pointAt(ni, key, junk)
	plant(t, tg.store, nixstore.HashPart(v.Path)+".narinfo", []byte(ni.String())) // no metadata: no proof

	rep, err := nixcache.Verify(tctx(t), tg.o, false)
	var ve *nixcache.VerifyError
	if !errors.As(err, &ve) || rep.Adoptable != 1 {
		t.Fatalf("verify with a planted adoptable narinfo: %v %+v, want an error naming it unadopted", err, rep)
	}
	ad, err := nixcache.Adopt(tctx(t), tg.o)
	if err != nil || ad.Adopted != 0 || len(ad.Problems) != 1 || ad.Problems[0].Key != nixstore.HashPart(v.Path)+".narinfo" {
		t.Fatalf("adopt of a planted narinfo: %v %s, want it left alone and listed (the target fails on it)", err, ad.JSON())
	}
	if _, err := nixcache.Verify(tctx(t), tg.o, false); !errors.As(err, &ve) {
		t.Fatalf("verify after the adoption left it alone: %v, want it still not clean", err)
	}
}
