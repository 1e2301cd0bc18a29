package nixcache_test

import (
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// gcCache is a cache for a GC test: a GCS stand-in behind a link or a
// directory, either with a clock of its own that the test sets (the
// store stamps every object it writes with it).
type gcCache struct {
	t      *testing.T
	kind   string
	dir    string
	link   *testrig.Link
	store  blob.Store
	k      keyPair
	offset atomic.Int64 // the store's clock less this machine's (ns)
}

func newGCCache(t *testing.T, kind string) *gcCache {
	c := &gcCache{t: t, kind: kind, k: newKey(t, "gc-1")}
	var err error
	switch kind {
	case "gcs":
		c.link = testrig.StartLink(t, testrig.LinkOptions{Buckets: []string{"cache"}})
		c.link.GCS.SetClock(c.storeNow)
		c.store, err = blob.Open(tctx(t), "gs://cache/nix-cache")
	default:
		c.dir = t.TempDir()
		c.store, err = blob.Open(tctx(t), c.dir, blob.WithClock(c.storeNow))
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// storeNow is the store's clock.
func (c *gcCache) storeNow() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// setStoreTime sets the store's clock to t; it runs on from there.
func (c *gcCache) setStoreTime(t time.Time) { c.offset.Store(int64(time.Until(t))) }

func (c *gcCache) options() nixcache.Options {
	if c.kind == "gcs" {
		return gcsOptions(c.k)
	}
	o := dirOptions(c.dir, c.k)
	o.Store = c.store // the directory with the store's clock
	return o
}

func (c *gcCache) url() string {
	if c.kind == "gcs" {
		return c.link.URL("cache", "nix-cache")
	}
	return "file://" + c.dir
}

// push pushes paths with a root of name and id at store time at, from a
// machine whose clock agrees with the store's.
func (c *gcCache) push(name, id string, at time.Time, pin bool, paths ...string) {
	c.t.Helper()
	c.setStoreTime(at)
	o := c.options()
	o.Root = nixcache.RootOptions{Name: name, BuildID: id, Pin: pin}
	o.Now = c.storeNow
	if _, err := nixcache.Push(tctx(c.t), o, paths); err != nil {
		c.t.Fatalf("push %s: %v", name, err)
	}
}

// verifiesAndSubstitutes checks that the cache verifies deeply and that
// real Nix substitutes paths from it.
func (c *gcCache) verifiesAndSubstitutes(paths ...string) {
	c.t.Helper()
	mustVerify(c.t, c.options(), true)
	if out, err := substitute(c.t, c.url(), c.k.public, paths...); err != nil {
		c.t.Fatalf("nix could not substitute %v: %v\n%s", paths, err, out)
	}
}

// plantAt stores an object at store time at.
func (c *gcCache) plantAt(key string, body []byte, at time.Time) {
	c.t.Helper()
	c.setStoreTime(at)
	plant(c.t, c.store, key, body)
}

// cacheKeys lists the objects of s but those under gc/ (where a GC, a
// dry run too, writes to read the store's clock).
func cacheKeys(t testing.TB, s blob.Store) []string {
	var out []string
	for _, k := range listKeys(t, s) {
		if !strings.HasPrefix(k, "gc/") {
			out = append(out, k)
		}
	}
	return out
}

func (c *gcCache) has(key string) bool {
	_, err := c.store.Stat(tctx(c.t), key)
	return err == nil
}

// gc runs a GC at store time now, from a machine whose clock agrees with
// the store's.
func (c *gcCache) gc(now time.Time, dryRun bool) (nixcache.GCSummary, string) {
	c.t.Helper()
	c.setStoreTime(now)
	o := c.options()
	o.Now = c.storeNow
	var plan strings.Builder
	o.GC = nixcache.GCOptions{Grace: time.Hour, DryRun: dryRun, Plan: &plan, Settle: time.Millisecond}
	sum, err := nixcache.GC(tctx(c.t), o)
	if err != nil {
		c.t.Fatalf("gc: %v (%s)", err, sum.JSON())
	}
	return sum, plan.String()
}

// GC keeps the newest roots of each name, pinned roots and what young
// objects need, deletes the rest (narinfo, then NAR, then the root), and
// leaves a cache that verifies and that real Nix substitutes from.
// Planted roots neither keep anything nor push a real root out.
func TestGCKeepsWhatRootsKeep(t *testing.T) {
	isolateNix(t)
	built := testrig.Build(t, testrig.Attr(t, "sourceos-server-iso"), testrig.Attr(t, "sourceos-server-system"),
		testrig.Attr(t, "sourceos-server-netboot"), testrig.Attr(t, "sourceos-edge-iso"),
		testrig.Attr(t, "sourceos-desktop-iso"), testrig.Attr(t, "sourceos-edge-system"))
	sIso, sSys, sNet, eIso, dIso, eSys := built[0], built[1], built[2], built[3], built[4], built[5]
	for _, kind := range []string{"gcs", "dir"} {
		t.Run(kind, func(t *testing.T) {
			c := newGCCache(t, kind)
			now := time.Now()
			day := 24 * time.Hour
			c.push("s", "1", now.Add(-90*day), false, sIso) // the oldest of four: expires
			c.push("s", "2", now.Add(-80*day), false, sSys)
			c.push("s", "3", now.Add(-70*day), false, sNet)
			c.push("s", "4", now.Add(-60*day), false, eIso)
			c.push("rel", "r1", now.Add(-100*day), true, dIso) // pinned
			for _, id := range []string{"r2", "r3", "r4"} {
				c.push("rel", id, now.Add(-50*day), false, eSys)
			}
			gcNow := now.Add(2 * time.Hour) // everything pushed is older than the hour of grace
			// Planted: a future root of "s" that is not JSON, one signed by
			// another key that would keep the server ISO, an old orphan NAR
			// and a young one.
			c.plantAt("roots/s/29990101T000000Z-evil.json", []byte("{not json"), now)
			other := newKey(t, "gc-1")
			c.plantAt(forgedRoot(t, other, "s", sIso), forgedRootBody(t, other, "s", sIso), now)
			orphan, youngOrphan := "nar/"+strings.Repeat("0", 52)+".nar.zst", "nar/"+strings.Repeat("1", 52)+".nar.zst"
			c.plantAt(orphan, []byte("orphan"), now)
			c.plantAt(youngOrphan, []byte("young"), gcNow.Add(-time.Minute))
			isoNarinfo := nixstore.HashPart(sIso) + ".narinfo"
			before := len(cacheKeys(t, c.store))

			dry, plan := c.gc(gcNow, true)

			if !dry.DryRun || len(cacheKeys(t, c.store)) != before {
				t.Fatalf("a dry run deleted something: %s", dry.JSON())
			}
			for _, want := range []string{"delete narinfo " + isoNarinfo, "delete nar " + orphan, "delete root roots/s/"} {
				if !strings.Contains(plan, want) {
					t.Errorf("plan lacks %q:\n%s", want, plan)
				}
			}

			sum, _ := c.gc(gcNow, false)
			t.Logf("gc: %s", sum.JSON())
			if sum.Narinfos.Deleted != 1 || sum.NARs.Deleted != 2 || sum.Roots.Deleted != 1 || sum.Roots.Ignored != 2 || sum.FreedBytes == 0 {
				t.Errorf("summary %s, want the server ISO's narinfo, its NAR and the old orphan, one root, two ignored", sum.JSON())
			}
			if c.has(isoNarinfo) || c.has(orphan) || !c.has(youngOrphan) {
				t.Errorf("after gc: ISO narinfo %v, old orphan %v, young orphan %v", c.has(isoNarinfo), c.has(orphan), c.has(youngOrphan))
			}
			mustVerify(t, c.options(), true)
			if out, err := substitute(t, c.url(), c.k.public, sSys, sNet, eIso, dIso, eSys); err != nil {
				t.Fatalf("nix could not substitute the kept closures: %v\n%s", err, out)
			}
			if again, _ := c.gc(gcNow, false); again.FreedObjects != 0 {
				t.Errorf("a second gc deleted more: %s", again.JSON())
			}
		})
	}
}

// forgedRoot names a root of name that keeps path, signed by k.
func forgedRoot(t *testing.T, k keyPair, name, path string) string {
	var r nixcache.Root
	if err := json.Unmarshal(forgedRootBody(t, k, name, path), &r); err != nil {
		t.Fatal(err)
	}
	return r.Key()
}

func forgedRootBody(t *testing.T, k keyPair, name, path string) []byte {
	t.Helper()
	dir := t.TempDir()
	o := dirOptions(dir, k)
	o.Root = nixcache.RootOptions{Name: name, BuildID: "forged"}
	o.Now = func() time.Time { return time.Date(2999, 6, 1, 0, 0, 0, 0, time.UTC) }
	if _, err := nixcache.Push(tctx(t), o, []string{path}); err != nil {
		t.Fatal(err)
	}
	s, _ := blob.OpenDir(dir)
	for _, key := range listKeys(t, s) {
		if strings.HasPrefix(key, "roots/") {
			return readObject(t, s, key)
		}
	}
	t.Fatal("no root written")
	return nil
}

// GC deletes nothing where it cannot tell what to keep: no root at all
// (a cache pushed before roots existed) or none verifying (the wrong
// public key).
func TestGCRefusesWithoutRoots(t *testing.T) {
	isolateNix(t)
	system, _ := fixture(t)
	dir := t.TempDir()
	k := newKey(t, "gc-1")
	o := dirOptions(dir, k)
	if _, err := nixcache.Push(tctx(t), o, []string{system}); err != nil {
		t.Fatal(err)
	}
	s, _ := blob.OpenDir(dir)
	for _, key := range listKeys(t, s) {
		if strings.HasPrefix(key, "roots/") {
			if err := s.Delete(tctx(t), key); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := len(listKeys(t, s))
	o.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	o.GC = nixcache.GCOptions{Settle: time.Millisecond}
	if _, err := nixcache.GC(tctx(t), o); err == nil || !strings.Contains(err.Error(), "no root") {
		t.Fatalf("gc without roots: %v", err)
	}
	if _, err := nixcache.Push(tctx(t), dirOptions(dir, k), []string{system}); err != nil {
		t.Fatal(err)
	}
	wrong := newKey(t, "gc-1")
	o.PubKey = wrong.public
	if _, err := nixcache.GC(tctx(t), o); err == nil {
		t.Fatal("gc with the wrong public key ran")
	}
	if after := len(listKeys(t, s)); after != before+1 {
		t.Fatalf("a refused gc changed the cache: %d objects, want %d", after, before+1)
	}
}

// A push that relies on old, unrooted paths while a GC runs records an
// in-flight root first: GC spares them, and the cache stays whole.
func TestGCSparesWhatAConcurrentPushReliesOn(t *testing.T) {
	isolateNix(t)
	built := testrig.Build(t, testrig.Attr(t, "sourceos-server-system"), testrig.Attr(t, "sourceos-server-netboot"),
		testrig.Attr(t, "sourceos-edge-iso"))
	sys, net, eIso := built[0], built[1], built[2]
	nixcache.SetGCWindow(t, 300*time.Millisecond)
	c := newGCCache(t, "gcs")
	now := time.Now()
	day := 24 * time.Hour
	c.push("old", "1", now.Add(-100*day), false, sys) // unrooted once the next three exist
	for _, id := range []string{"2", "3", "4"} {
		c.push("old", id, now.Add(-90*day), false, eIso)
	}
	c.setStoreTime(now.Add(2 * time.Hour)) // everything pushed is older than the hour of grace
	o := c.options()
	o.GC = nixcache.GCOptions{Grace: time.Hour, Settle: time.Second}
	done := make(chan error, 1)
	var gcSum nixcache.GCSummary
	go func() {
		var err error
		gcSum, err = nixcache.GC(tctx(t), o)
		done <- err
	}()
	for !c.has("gc/running") {
		time.Sleep(5 * time.Millisecond)
	}
	var log strings.Builder
	po := c.options()
	po.Log = newTestLogger(&log)
	po.Root.Name = "new"
	s, err := nixcache.Push(tctx(t), po, []string{net}) // relies on sys, found present
	if err != nil {
		t.Fatalf("push during gc: %v (%s)", err, s.JSON())
	}
	if err := <-done; err != nil {
		t.Fatalf("gc: %v", err)
	}
	t.Logf("push %s; gc %s", s.JSON(), gcSum.JSON())
	if !strings.Contains(log.String(), "relies on") {
		t.Errorf("the push did not record what it relies on:\n%s", log.String())
	}
	if !c.has(nixstore.HashPart(sys) + ".narinfo") {
		t.Fatal("gc deleted a path a concurrent push relied on")
	}
	mustVerify(t, c.options(), true)
	if out, err := substitute(t, c.url(), c.k.public, net); err != nil {
		t.Fatalf("nix could not substitute: %v\n%s", err, out)
	}
}

// A second GC does not start while one runs.
func TestGCRefusesWhileAnotherRuns(t *testing.T) {
	isolateNix(t)
	system, _ := fixture(t)
	c := newGCCache(t, "dir")
	c.push("x", "1", time.Now(), false, system)
	plant(t, c.store, "gc/running", []byte("gc started\n"))
	o := c.options()
	o.GC.Settle = time.Millisecond
	if _, err := nixcache.GC(tctx(t), o); !errors.Is(err, nixcache.ErrGCRunning) {
		t.Fatalf("gc while another runs: %v", err)
	}
}

// What a root or a narinfo that appears after GC made its plan needs is
// spared: GC lists again before it deletes.
func TestGCSparesWhatAppearsAfterItsPlan(t *testing.T) {
	isolateNix(t)
	built := testrig.Build(t, testrig.Attr(t, "sourceos-server-system"), testrig.Attr(t, "sourceos-server-netboot"),
		testrig.Attr(t, "sourceos-edge-iso"))
	sys, net, eIso := built[0], built[1], built[2]
	c := newGCCache(t, "gcs")
	now := time.Now()
	day := 24 * time.Hour
	c.push("old", "1", now.Add(-100*day), false, sys)
	for _, id := range []string{"2", "3", "4"} {
		c.push("old", id, now.Add(-90*day), false, eIso)
	}
	c.setStoreTime(now.Add(2 * time.Hour))
	o := c.options()
	o.GC = nixcache.GCOptions{Grace: time.Hour, Settle: time.Millisecond}
	nixcache.SetGCWindow(t, 200*time.Millisecond)
	planned := false
	nixcache.AfterGCPlan(t, func() {
		planned = true
		po := c.options()
		po.Root.Name = "new"
		if _, err := nixcache.Push(tctx(t), po, []string{net}); err != nil {
			t.Errorf("push between plan and sweep: %v", err)
		}
	})
	sum, err := nixcache.GC(tctx(t), o)
	if err != nil || !planned {
		t.Fatalf("gc: %v (planned %v)", err, planned)
	}
	if sum.Spared == 0 || !c.has(nixstore.HashPart(sys)+".narinfo") {
		t.Fatalf("gc %s deleted what a root written after its plan keeps", sum.JSON())
	}
	mustVerify(t, c.options(), true)
}

// A GC killed at any moment leaves a cache that verifies (no narinfo
// without its NAR or its references), and the next run finishes the job.
func TestKilledGCResumes(t *testing.T) {
	isolateNix(t)
	var attrs []string
	for _, e := range []string{"server", "edge", "desktop"} {
		for _, k := range []string{"iso", "system", "netboot"} {
			attrs = append(attrs, testrig.Attr(t, "sourceos-"+e+"-"+k))
		}
	}
	built := testrig.Build(t, attrs...)
	c := newGCCache(t, "gcs")
	now := time.Now()
	day := 24 * time.Hour
	for i, p := range built[:6] { // the server and edge closures: expire
		c.push("k", fmt.Sprint(i), now.Add(-time.Duration(100-i)*day), false, p)
	}
	for i, p := range built[6:] { // the desktop ones: the newest three
		c.push("k", fmt.Sprint(10+i), now.Add(-time.Duration(50-i)*day), false, p)
	}
	c.link.SetLatency(30 * time.Millisecond)
	c.setStoreTime(now.Add(2 * time.Hour))
	spec := childSpec{Bucket: "cache", Secret: c.k.secret, PubKey: c.k.public, GC: true, GCWorkers: 1, GCLease: time.Second}
	before := len(listKeys(t, c.store))
	ch := startChild(t, childPush(t, spec, "STORAGE_EMULATOR_HOST="+c.link.Host))
	// Kill it once a random number of objects is gone (it adds gc/running
	// and gc/epoch first).
	target := before + 2 - (1 + mrand.IntN(18))
	for len(listKeys(t, c.store)) > target {
		select {
		case <-ch.exited:
			t.Fatalf("gc finished before it was killed:\n%s", ch.out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	ch.kill(t)
	after := len(listKeys(t, c.store))
	rep, err := nixcache.Verify(tctx(t), c.options(), true)
	if err != nil {
		t.Fatalf("after a killed gc (%d of %d objects left): %v\n%v", after, before, err, rep.Problems)
	}
	time.Sleep(time.Second + nixcache.StoreClockMargin) // the killed GC's lease lapses, by the store's clock
	c.link.SetLatency(0)
	cmd := childPush(t, spec, "STORAGE_EMULATOR_HOST="+c.link.Host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gc after a kill: %v\n%s", err, out)
	}
	t.Logf("killed at %d of %d objects; then %s", after, before, strings.TrimSpace(string(out)))
	mustVerify(t, c.options(), true)
	for _, p := range built[:6] {
		if nixstore.HashPart(p) != nixstore.HashPart(built[6]) && c.has(nixstore.HashPart(p)+".narinfo") && !shared(t, p, built[6:]) {
			t.Errorf("%s survived the resumed gc", p)
		}
	}
	if out, err := substitute(t, c.url(), c.k.public, built[6:]...); err != nil {
		t.Fatalf("nix could not substitute the kept closures: %v\n%s", err, out)
	}
}

// shared says whether p is in the closure of any of tops.
func shared(t *testing.T, p string, tops []string) bool {
	for _, q := range testrig.Closure(t, tops...) {
		if q == p {
			return true
		}
	}
	return false
}
