package nixcache_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// A push of a closure that GC is deleting as garbage, made while the sweep
// runs through a cache of tens of thousands of objects, loses nothing:
// what GC deleted before the push protected it is pushed again, what it
// had not is spared; afterwards the cache verifies, the expired garbage is
// gone and real Nix substitutes both the live closure and the pushed one.
// The protocol's window is short, so the sweep re-reads the roots many
// times (and only the roots: a re-listing of the cache would not fit in
// half a window).
func TestPushRacingGCSweepLosesNothing(t *testing.T) {
	isolateNix(t)
	built := testrig.Build(t, testrig.Attr(t, "sourceos-desktop-netboot"), testrig.Attr(t, "sourceos-server-system"))
	live, raced := built[0], built[1]
	nixcache.SetGCWindow(t, time.Second)
	c := newGCCache(t, "gcs")
	now := time.Now()
	day := 24 * time.Hour
	c.push("live", "old", now.Add(-100*day), false, raced) // expired: its paths are garbage
	c.push("live", "new", now.Add(-2*day), false, live)
	garbage := seedGarbage(t, c.link, "cache", "nix-cache", c.k, 16000, testrig.Closure(t, live), now.Add(-90*day))
	c.setStoreTime(now)
	c.link.SetLatency(10 * time.Millisecond)

	var once sync.Once
	var pushErr error
	var pushed nixcache.Summary
	done := make(chan struct{})
	nixcache.BeforeGCDelete(t, func(string) {
		once.Do(func() {
			go func() {
				defer close(done)
				o := c.options()
				o.Root.Name = "race"
				pushed, pushErr = nixcache.Push(tctx(t), o, []string{raced})
			}()
		})
	})
	o := c.options()
	o.GC = nixcache.GCOptions{Grace: time.Hour, KeepLast: 1, KeepDays: 45, Settle: 10 * time.Millisecond}
	sum, err := nixcache.GC(tctx(t), o)
	<-done
	t.Logf("gc: %s; push during the sweep: %s", sum.JSON(), pushed.JSON())
	if err != nil || pushErr != nil {
		t.Fatalf("gc: %v; push during the sweep: %v", err, pushErr)
	}
	if want := garbage - garbage/4001; sum.FreedObjects < want {
		t.Errorf("gc freed %d objects, want at least the %d seeded ones but their roots", sum.FreedObjects, want)
	}
	c.link.SetLatency(0)
	mustVerify(t, c.options(), false)
	if out, err := substitute(t, c.url(), c.k.public, live, raced); err != nil {
		t.Fatalf("nix could not substitute the live and the raced closures: %v\n%s", err, out)
	}
}

// A push adds what it comes to rely on to its in-flight root, rewriting
// the same object. A GC that read the root before it was rewritten reads
// it again: the NAR the rewrite names is spared, though the narinfo that
// named it was garbage and is deleted.
func TestGCReReadsARewrittenInFlightRoot(t *testing.T) {
	c, raced, now := expiredBesideLive(t, "gcs")
	_, ni, err := cachefmt.ReadNarinfo(tctx(t), c.store, cachefmt.NarinfoKey(raced))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := signature.LoadSecretKey(c.k.secret)
	if err != nil {
		t.Fatal(err)
	}
	root := &cachefmt.Root{Version: cachefmt.RootVersion, Name: "race", BuildID: "push-1", Time: now.UTC().Truncate(time.Second), InFlight: true}
	write := func() {
		if err := root.Sign(sk); err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(root)
		if err != nil {
			t.Fatal(err)
		}
		plant(t, c.store, root.Key(), body)
	}
	c.setStoreTime(now)
	write() // what the push relied on first: nothing GC would delete

	var once sync.Once
	nixcache.BeforeGCDelete(t, func(key string) {
		once.Do(func() {
			root.NARs = []string{ni.URL} // then a NAR it found stored
			write()
		})
	})
	o := c.options()
	o.GC = nixcache.GCOptions{Grace: time.Hour, KeepLast: 1, KeepDays: 45, Settle: time.Millisecond}
	sum, err := nixcache.GC(tctx(t), o)
	if err != nil {
		t.Fatalf("gc: %v", err)
	}
	if c.has(cachefmt.NarinfoKey(raced)) {
		t.Errorf("the garbage narinfo %s was kept", cachefmt.NarinfoKey(raced))
	}
	if !c.has(ni.URL) {
		t.Errorf("gc deleted %s, which the rewritten in-flight root names (%s)", ni.URL, sum.JSON())
	}
}

// A push that finds its NARs already stored while a GC may run relies on
// them only a window after recording them in its in-flight root; it
// records each as soon as it finds it, and its uploads stop waiting for
// the narinfos below them, so the windows run together, not one after
// another as the narinfos of a chain of 30 paths are published in
// reference order (30 windows; 6 with uploads held to four levels ahead
// of the narinfos). Nothing is lost: the cache
// verifies and real Nix substitutes the chain.
func TestPushWaitsOneWindowForNARsFoundStored(t *testing.T) {
	isolateNix(t)
	top := testrig.Build(t, watchFlake(t)+"#chain")[0]
	c := newGCCache(t, "gcs")
	now := time.Now()
	c.push("first", "1", now, false, top)
	// What a GC midway through its sweep leaves: the narinfos deleted,
	// the NARs not yet, and its lease held.
	deleted := 0
	for _, k := range listKeys(t, c.store) {
		if cachefmt.IsNarinfoKey(k) {
			if err := c.store.Delete(tctx(t), k); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	if deleted < 30 {
		t.Fatalf("the chain has %d paths, want at least 30", deleted)
	}
	plant(t, c.store, "gc/running", []byte("gc started\n"))
	const window = time.Second
	nixcache.SetGCWindow(t, window)
	o := c.options()
	o.Root.Name = "again"
	start := time.Now()
	sum, err := nixcache.Push(tctx(t), o, []string{top})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	t.Logf("push of %d paths whose NARs were stored, a GC running, %s window: %s (%s)", deleted, window, took.Round(time.Millisecond), sum.JSON())
	if sum.Pushed != deleted {
		t.Errorf("pushed %d paths, want %d", sum.Pushed, deleted)
	}
	if took < window {
		t.Errorf("the push took %s: it did not wait a window before relying on NARs it found stored", took)
	}
	if took > 4*window {
		t.Errorf("the push took %s: more than 4 windows for a chain of %d (a window a level is %d)", took, deleted, deleted)
	}
	if err := c.store.Delete(tctx(t), "gc/running"); err != nil {
		t.Fatal(err)
	}
	c.verifiesAndSubstitutes(top)
}

// expiredBesideLive is a cache of kind holding a live closure under a
// recent root and raced under an expired one of the same name (its paths
// garbage), and the time it was made.
func expiredBesideLive(t *testing.T, kind string) (c *gcCache, raced string, now time.Time) {
	t.Helper()
	isolateNix(t)
	built := testrig.Build(t, testrig.Attr(t, "sourceos-server-system"), testrig.Attr(t, "sourceos-edge-system"))
	live := built[0]
	raced = built[1]
	c = newGCCache(t, kind)
	now = time.Now()
	day := 24 * time.Hour
	c.push("live", "old", now.Add(-100*day), false, raced)
	c.push("live", "new", now.Add(-2*day), false, live)
	return c, raced, now
}

// failingOpen is a store whose reads of one key fail (the store's
// failure, not a missing object).
type failingOpen struct {
	blob.Store
	key string
}

func (f failingOpen) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if key == f.key {
		return nil, errors.New("injected: the store did not answer")
	}
	return f.Store.Open(ctx, key)
}

// A young narinfo whose references GC must read (a directory keeps no
// push proofs) and cannot, for a failure of the store, stops GC: deleting
// on would take the references a push just published it with.
func TestGCStopsWhenAYoungNarinfoCannotBeRead(t *testing.T) {
	c, raced, now := expiredBesideLive(t, "dir")
	top := nixstore.HashPart(raced) + ".narinfo"
	c.plantAt(top, readObject(t, c.store, top), now) // young again: a push just published it
	before := listKeys(t, c.store)
	c.setStoreTime(now)
	o := c.options()
	o.Store = failingOpen{Store: c.store, key: top}
	o.GC = nixcache.GCOptions{Grace: time.Hour, KeepLast: 1, KeepDays: 45, Settle: time.Millisecond}
	if sum, err := nixcache.GC(tctx(t), o); err == nil {
		t.Fatalf("gc went on without the references of %s: %s", top, sum.JSON())
	}
	if after := listKeys(t, c.store); len(after) < len(before) {
		t.Errorf("gc deleted %d objects though it could not read a young narinfo", len(before)-len(after))
	}
}

// A GC whose lease refreshes stalled (a paused machine, failing writes)
// long enough that a push may count gc/running lapsed, and so publish on
// the fast path relying on garbage, deletes nothing more.
func TestGCStopsWhenItsLeaseMayHaveLapsed(t *testing.T) {
	c, _, now := expiredBesideLive(t, "dir")
	before := listKeys(t, c.store)
	c.setStoreTime(now)
	// A window that leaves 200 ms between a refresh of the lease and the
	// point where deleting on would outlast it; the stall is longer.
	nixcache.SetGCWindow(t, lease.TTL-200*time.Millisecond)
	var once sync.Once
	nixcache.BeforeGCDelete(t, func(string) { once.Do(func() { time.Sleep(500 * time.Millisecond) }) })
	o := c.options()
	o.GC = nixcache.GCOptions{Grace: time.Hour, KeepLast: 1, KeepDays: 45, Settle: time.Millisecond}
	sum, err := nixcache.GC(tctx(t), o)
	if err == nil || !strings.Contains(err.Error(), "lapsed") {
		t.Fatalf("gc after its lease stalled: %v (%s), want it to stop", err, sum.JSON())
	}
	if after := listKeys(t, c.store); len(after) < len(before) {
		t.Errorf("gc deleted %d objects after its lease may have lapsed", len(before)-len(after))
	}
}
