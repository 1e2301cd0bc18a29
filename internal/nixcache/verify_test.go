package nixcache_test

import (
	"errors"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// On GCS, a full audit settles every narinfo a push wrote from its proof
// and the listing: it reads no narinfo and no NAR, and still finds a NAR
// replaced, a NAR deleted and a referenced narinfo deleted.
func TestVerifyReadsNothingProofsSettle(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	link := testrig.StartLink(t, testrig.LinkOptions{Buckets: []string{"cache"}})
	k := newKey(t, "audit-1")
	o := gcsOptions(k)
	if _, err := nixcache.Push(tctx(t), o, []string{netboot}); err != nil {
		t.Fatal(err)
	}
	before := link.Stats()
	rep := mustVerify(t, o, false)
	got := link.Stats().Sub(before)
	if rep.Read != 0 || got.Kinds["read"] != 0 || rep.Narinfos != len(testrig.Closure(t, netboot)) {
		t.Fatalf("verify read %d narinfos (%d object reads) of %d: %v", rep.Read, got.Kinds["read"], rep.Narinfos, got.Kinds)
	}
	store, err := blob.Open(tctx(t), "gs://cache/nix-cache")
	if err != nil {
		t.Fatal(err)
	}
	infos := closureInfos(t, netboot)
	v := victims(t, infos, 2)
	replaced := storedNarinfo(t, store, v[0].Path).URL
	plant(t, store, replaced, randomBytes(t, 100))
	deleted := storedNarinfo(t, store, v[1].Path).URL
	if err := store.Delete(tctx(t), deleted); err != nil {
		t.Fatal(err)
	}
	// A path of the system closure that another path refers to.
	var referred string
	for _, pi := range closureInfos(t, system) {
		for _, r := range pi.References {
			if r != pi.Path && r != v[0].Path && r != v[1].Path {
				referred = r
			}
		}
	}
	if err := store.Delete(tctx(t), nixstore.HashPart(referred)+".narinfo"); err != nil {
		t.Fatal(err)
	}
	rep, err = nixcache.Verify(tctx(t), o, false)
	var ve *nixcache.VerifyError
	if !errors.As(err, &ve) || !problemAbout(rep, replaced) || !problemAbout(rep, deleted) || !problemAbout(rep, "reference "+nixstore.HashPart(referred)) {
		t.Fatalf("verify missed a replaced NAR, a deleted NAR or a dangling reference: %v\n%v", err, rep.Problems)
	}
}

// A clean audit with the secret key records a watermark; an incremental
// audit then checks only what roots stored since name and what was
// written since (looked up in batches: requests in proportion to the new
// paths), finds a defect in it, and leaves older paths to the full audit.
func TestIncrementalVerifyChecksWhatIsNew(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	link := testrig.StartLink(t, testrig.LinkOptions{Buckets: []string{"cache"}})
	k := newKey(t, "audit-2")
	o := gcsOptions(k)
	if _, err := nixcache.Push(tctx(t), o, []string{system}); err != nil {
		t.Fatal(err)
	}
	// The store's clock moves a minute on: what was pushed is clearly
	// older than the audit (whose watermark is a lower bound of the
	// store's time, a few seconds early).
	link.GCS.SetClock(func() time.Time { return time.Now().Add(time.Minute) })
	if rep := mustVerify(t, o, false); !rep.Watermark {
		t.Fatalf("a clean audit with the secret key recorded no watermark: %+v", rep)
	}
	s, err := nixcache.Push(tctx(t), o, []string{netboot})
	if err != nil {
		t.Fatal(err)
	}
	before := link.Stats()
	rep, err := nixcache.VerifyIncremental(tctx(t), o)
	got := link.Stats().Sub(before)
	if err != nil || !rep.Incremental || rep.Narinfos != s.Pushed || rep.Read != 0 {
		t.Fatalf("incremental audit after %d new paths: %v %+v", s.Pushed, err, rep)
	}
	if rep.Watermark {
		t.Errorf("an incremental audit moved the watermark: what it did not check (older objects overwritten since) would leave the next one's reach")
	}
	// The roots listing (one request per range), a few reads (roots, the
	// watermark, the clock) and batches: no request per path.
	if got.Kinds["stat"] != 0 || got.Kinds["batch"] > 4 {
		t.Errorf("incremental audit of %d new paths: %d requests %v", s.Pushed, got.Requests, got.Kinds)
	}
	store, err := blob.Open(tctx(t), "gs://cache/nix-cache")
	if err != nil {
		t.Fatal(err)
	}
	newPath, oldPath := newOnly(t, netboot, system), closureInfos(t, system)[0]
	plant(t, store, storedNarinfo(t, store, newPath).URL, randomBytes(t, 100))
	plant(t, store, storedNarinfo(t, store, oldPath.Path).URL, randomBytes(t, 100))
	rep, err = nixcache.VerifyIncremental(tctx(t), o)
	var ve *nixcache.VerifyError
	if !errors.As(err, &ve) || len(rep.Problems) != 1 || !problemAbout(rep, storedNarinfo(t, store, newPath).URL) {
		t.Fatalf("incremental audit after a new path's NAR was replaced: %v\n%v", err, rep.Problems)
	}
	if rep, err := nixcache.Verify(tctx(t), o, false); !errors.As(err, &ve) || len(rep.Problems) != 2 {
		t.Fatalf("full audit: %v\n%v", err, rep.Problems)
	}
}

// newOnly is a path of top's closure that is not in old's and whose NAR
// no other path shares.
func newOnly(t *testing.T, top, old string) string {
	t.Helper()
	inOld := map[string]bool{}
	for _, p := range testrig.Closure(t, old) {
		inOld[p] = true
	}
	for _, pi := range victims(t, closureInfos(t, top), 1) {
		if !inOld[pi.Path] {
			return pi.Path
		}
	}
	for _, p := range testrig.Closure(t, top) {
		if !inOld[p] {
			return p
		}
	}
	t.Fatal("no new path")
	return ""
}
