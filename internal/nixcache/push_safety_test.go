package nixcache_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// hookStore is a store whose writes and look-ups a test can watch and
// break.
type hookStore struct {
	blob.Store
	mu sync.Mutex
	// put is called with every write before it is made.
	put func(key string, body []byte)
	// slow, when it returns more than 0, is how long a write takes before
	// it is made (or its context ends: it is not made).
	slow func(key string) time.Duration
	// wrote is called after every write made.
	wrote func(key string)
	// stat, when it returns an error, answers a look-up instead of the
	// store.
	stat func(key string) error
	// open, when set, wraps what a read returns.
	open func(key string, rc io.ReadCloser) io.ReadCloser
}

func (h *hookStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := h.Store.Open(ctx, key)
	h.mu.Lock()
	fn := h.open
	h.mu.Unlock()
	if err != nil || fn == nil {
		return rc, err
	}
	return fn(key, rc), nil
}

// heldCloser signals when its reader is closed and holds Close until
// released.
type heldCloser struct {
	io.ReadCloser
	closed, release chan struct{}
}

func (c *heldCloser) Close() error {
	close(c.closed)
	<-c.release
	return c.ReadCloser.Close()
}

func (h *hookStore) Put(ctx context.Context, key string, r io.Reader, opt blob.PutOptions) error {
	h.mu.Lock()
	fn, slow, wrote := h.put, h.slow, h.wrote
	h.mu.Unlock()
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if fn != nil {
		fn(key, body)
	}
	if slow != nil {
		if d := slow(key); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := h.Store.Put(ctx, key, bytes.NewReader(body), opt); err != nil {
		return err
	}
	if wrote != nil {
		wrote(key)
	}
	return nil
}

func (h *hookStore) Stat(ctx context.Context, key string) (blob.Info, error) {
	h.mu.Lock()
	fn := h.stat
	h.mu.Unlock()
	if fn != nil {
		if err := fn(key); err != nil {
			return blob.Info{}, err
		}
	}
	return h.Store.Stat(ctx, key)
}

// errInjected is a look-up failure that is not "not found".
var errInjected = errors.New("injected: permission denied")

// When the look-up that checks a NAR found stored is still there fails
// (not "not found": any other error), the push does not take the NAR for
// present: the path fails and no narinfo names a NAR that is not known to
// be there.
func TestPushDoesNotRelyOnAFailedLookUp(t *testing.T) {
	isolateNix(t)
	flake := watchFlake(t)
	top := testrig.Build(t, flake+"#ok")[0]
	c := newGCCache(t, "dir")
	c.push("first", "1", time.Now(), false, top)
	ni := storedNarinfo(t, c.store, top)
	if err := c.store.Delete(tctx(t), cachefmt.NarinfoKey(top)); err != nil {
		t.Fatal(err)
	}
	plant(t, c.store, "gc/running", []byte("gc started\n")) // the slow path
	nixcache.SetGCWindow(t, 200*time.Millisecond)

	// Once the push records the NAR it found stored in its in-flight
	// root, a GC deletes it and look-ups of it fail.
	h := &hookStore{Store: c.store}
	var broken atomic.Bool
	h.put = func(key string, body []byte) {
		if strings.HasPrefix(key, cachefmt.RootsPrefix) && bytes.Contains(body, []byte(ni.URL)) && !broken.Swap(true) {
			if err := c.store.Delete(tctx(t), ni.URL); err != nil {
				t.Error(err)
			}
		}
	}
	h.stat = func(key string) error {
		if broken.Load() && key == ni.URL {
			return errInjected
		}
		return nil
	}
	o := c.options()
	o.Store = h
	o.Root.Name = "again"
	sum, err := nixcache.Push(tctx(t), o, []string{top})
	if !broken.Load() {
		t.Fatalf("the push never recorded %s in its in-flight root (%s)", ni.URL, sum.JSON())
	}
	if err == nil {
		t.Errorf("the push succeeded though the look-up of %s failed (%s)", ni.URL, sum.JSON())
	}
	if c.has(cachefmt.NarinfoKey(top)) {
		t.Errorf("%s was published, naming %s, which is gone", cachefmt.NarinfoKey(top), ni.URL)
	}
}

// gcDeletes does what a GC run that found the paths of infos garbage
// does to them: it announces itself (a new gc/epoch) and deletes their
// narinfos and NARs.
func gcDeletes(t *testing.T, c *gcCache, infos []nixstore.PathInfo) {
	t.Helper()
	plant(t, c.store, "gc/epoch", []byte("a GC ran\n"))
	for _, pi := range infos {
		ni := storedNarinfo(t, c.store, pi.Path)
		for _, k := range []string{cachefmt.NarinfoKey(pi.Path), ni.URL} {
			if err := c.store.Delete(tctx(t), k); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A push whose paths were all in the cache already relies on them only
// through its root. When a GC runs after the push checked and deletes
// them before the root is written, the push looks them up again and
// pushes them again: its root names nothing that is gone.
func TestPushRootNamesNothingAGCDeleted(t *testing.T) {
	isolateNix(t)
	top := testrig.Build(t, watchFlake(t)+"#b")[0]
	infos := closureInfos(t, top)
	c := newGCCache(t, "dir")
	c.push("first", "1", time.Now(), false, top)
	const window = 200 * time.Millisecond
	nixcache.SetGCWindow(t, window)

	o := c.options()
	o.Root.Name = "again"
	s, err := nixcache.Open(tctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abandon()
	s.Add(tctx(t), infos)
	if sum := s.Summary(); sum.Present != len(infos) {
		t.Fatalf("found %d paths present, want %d (%s)", sum.Present, len(infos), sum.JSON())
	}
	gcDeletes(t, c, infos)
	time.Sleep(window) // the push's check no longer holds
	sum, err := s.Close(tctx(t), []string{top})
	if err != nil {
		t.Fatalf("close: %v (%s)", err, sum.JSON())
	}
	for _, pi := range infos {
		if !c.has(cachefmt.NarinfoKey(pi.Path)) {
			t.Errorf("the push recorded its root, but %s, which it names, is gone", pi.Path)
		}
	}
	c.verifiesAndSubstitutes(top)
}

// A session that takes closures as they come and finds, at a later
// closure, that a GC ran since it listed the cache lists it again. The
// paths an earlier closure found present may be among what that GC
// deleted: they are looked up again and pushed again before anything
// of the new closure relies on them.
func TestSessionRelistingLooksUpEarlierPathsAgain(t *testing.T) {
	isolateNix(t)
	flake := watchFlake(t)
	built := testrig.Build(t, flake+"#b", flake+"#ok")
	b, ok := built[0], built[1]
	first := closureInfos(t, b)
	c := newGCCache(t, "dir")
	c.push("first", "1", time.Now(), false, b)
	const window = 200 * time.Millisecond
	nixcache.SetGCWindow(t, window)
	nixcache.SetListThreshold(t, 1) // presence from a listing of the cache

	o := c.options()
	o.Root.Name = "again"
	s, err := nixcache.Open(tctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abandon()
	s.Add(tctx(t), first)
	if sum := s.Summary(); sum.Present != len(first) {
		t.Fatalf("found %d paths present, want %d (%s)", sum.Present, len(first), sum.JSON())
	}
	gcDeletes(t, c, first)
	time.Sleep(window) // the session's check no longer holds
	s.Add(tctx(t), closureInfos(t, ok))
	if err := s.Wait(tctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, pi := range first {
		if !c.has(cachefmt.NarinfoKey(pi.Path)) {
			t.Errorf("%s was published, but %s, which it refers to, is gone", ok, pi.Path)
		}
	}
	sum, err := s.Close(tctx(t), []string{ok})
	if err != nil {
		t.Fatalf("close: %v (%s)", err, sum.JSON())
	}
	c.verifiesAndSubstitutes(ok)
}

// An upload that found its NAR stored under the session's earlier check
// does not rely on it under a later one: a GC that ran between the two
// may have deleted it. The narinfo waits for the NAR to be looked up
// again (and stored again: it is gone).
func TestSessionRelistingLooksUpNARsFoundStoredAgain(t *testing.T) {
	isolateNix(t)
	flake := watchFlake(t)
	built := testrig.Build(t, flake+"#ok", flake+"#chain")
	ok, chain := built[0], built[1]
	c := newGCCache(t, "dir")
	c.push("first", "1", time.Now(), false, ok)
	nar := storedNarinfo(t, c.store, ok).URL
	if err := c.store.Delete(tctx(t), cachefmt.NarinfoKey(ok)); err != nil {
		t.Fatal(err)
	}
	const window = 200 * time.Millisecond
	nixcache.SetGCWindow(t, window)
	nixcache.SetListThreshold(t, 1) // presence from a listing of the cache

	// The upload of ok finds its NAR stored and reads it; it is held there
	// until the session has listed the cache again.
	h := &hookStore{Store: c.store}
	held := &heldCloser{closed: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	h.open = func(key string, rc io.ReadCloser) io.ReadCloser {
		if key != nar {
			return rc
		}
		var out io.ReadCloser = rc
		once.Do(func() { held.ReadCloser = rc; out = held })
		return out
	}
	o := c.options()
	o.Store = h
	o.Root.Name = "again"
	s, err := nixcache.Open(tctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abandon()
	s.Add(tctx(t), closureInfos(t, ok))
	select {
	case <-held.closed:
	case <-time.After(time.Minute):
		t.Fatal("the upload of ok never read the NAR it found stored")
	}
	plant(t, c.store, "gc/epoch", []byte("a GC ran\n"))
	if err := c.store.Delete(tctx(t), nar); err != nil {
		t.Fatal(err)
	}
	time.Sleep(window) // the session's check no longer holds
	s.Add(tctx(t), closureInfos(t, chain))
	close(held.release)
	sum, err := s.Close(tctx(t), []string{ok, chain})
	if err != nil {
		t.Fatalf("close: %v (%s)", err, sum.JSON())
	}
	if !c.has(nar) {
		t.Errorf("%s was published, but %s, which it names, is gone", cachefmt.NarinfoKey(ok), nar)
	}
	mustVerify(t, c.options(), true)
}

// A narinfo published on the fast path lands within half a window of the
// check that found no GC running: a write slower than that (a slow link,
// retries) is abandoned and the path goes through the GC protocol again,
// which now takes the slow path. Here a GC starts and deletes a path found
// present while the narinfo of a path relying on it is being written: the
// narinfo must not land after that.
func TestSlowNarinfoWriteDoesNotOutliveTheGCCheck(t *testing.T) {
	isolateNix(t)
	flake := watchFlake(t)
	ok := testrig.Build(t, flake+"#ok")[0]
	infos := closureInfos(t, ok)
	var b string
	for _, pi := range infos {
		if strings.HasSuffix(pi.Path, "-watch-b") {
			b = pi.Path
		}
	}
	c := newGCCache(t, "dir")
	c.push("first", "1", time.Now(), false, ok)
	okNAR := storedNarinfo(t, c.store, ok).URL
	for _, k := range []string{cachefmt.NarinfoKey(ok), okNAR} {
		if err := c.store.Delete(tctx(t), k); err != nil {
			t.Fatal(err)
		}
	}
	const window = time.Second
	nixcache.SetGCWindow(t, window)

	h := &hookStore{Store: c.store}
	var once sync.Once
	var landed, bGone atomic.Bool
	h.slow = func(key string) time.Duration {
		if key != cachefmt.NarinfoKey(ok) {
			return 0
		}
		d := time.Duration(0)
		once.Do(func() {
			// While the first write of ok's narinfo is on its way, a GC
			// starts and deletes b, which ok refers to.
			plant(t, c.store, "gc/epoch", []byte("a GC ran\n"))
			if err := c.store.Delete(tctx(t), cachefmt.NarinfoKey(b)); err != nil {
				t.Error(err)
			}
			d = 2 * window
		})
		return d
	}
	h.wrote = func(key string) {
		if key == cachefmt.NarinfoKey(ok) {
			landed.Store(true)
			bGone.Store(!c.has(cachefmt.NarinfoKey(b)))
		}
	}
	o := c.options()
	o.Store = h
	o.Root.Name = "again"
	sum, err := nixcache.Push(tctx(t), o, []string{ok})
	t.Logf("push: %v (%s)", err, sum.JSON())
	if landed.Load() && bGone.Load() {
		t.Errorf("%s landed while %s, which it refers to, was gone", cachefmt.NarinfoKey(ok), cachefmt.NarinfoKey(b))
	}
}

// The root of a push whose paths were all in the cache already is what
// keeps them: it lands within half a window of the check that found no GC
// running, or the paths are looked up again first. Here a GC starts and
// deletes them while the root is being written, slowly: the root must not
// land naming them while they are gone.
func TestSlowRootWriteDoesNotOutliveTheGCCheck(t *testing.T) {
	isolateNix(t)
	top := testrig.Build(t, watchFlake(t)+"#b")[0]
	infos := closureInfos(t, top)
	c := newGCCache(t, "dir")
	c.push("first", "1", time.Now(), false, top)
	const window = time.Second
	nixcache.SetGCWindow(t, window)

	h := &hookStore{Store: c.store}
	var once sync.Once
	var landed, gone atomic.Bool
	prefix := cachefmt.RootsPrefix + "again/"
	h.slow = func(key string) time.Duration {
		if !strings.HasPrefix(key, prefix) {
			return 0
		}
		d := time.Duration(0)
		once.Do(func() {
			gcDeletes(t, c, infos)
			d = 2 * window
		})
		return d
	}
	h.wrote = func(key string) {
		if strings.HasPrefix(key, prefix) && !strings.Contains(key, "inflight") {
			landed.Store(true)
			gone.Store(!c.has(cachefmt.NarinfoKey(top)))
		}
	}
	o := c.options()
	o.Store = h
	o.Root.Name = "again"
	sum, err := nixcache.Push(tctx(t), o, []string{top})
	if err != nil {
		t.Fatalf("push: %v (%s)", err, sum.JSON())
	}
	if !landed.Load() {
		t.Fatalf("the push recorded no root (%s)", sum.JSON())
	}
	if gone.Load() {
		t.Errorf("the root landed while %s, which it names, was gone", top)
	}
	c.verifiesAndSubstitutes(top)
}

// A NAR a push finds stored (its create-only upload refused) and that a
// GC deletes before the push inspects it is uploaded again: the path is
// not failed for it.
func TestNARDeletedAfterItWasFoundStoredIsUploadedAgain(t *testing.T) {
	isolateNix(t)
	top := testrig.Build(t, watchFlake(t)+"#ok")[0]
	c := newGCCache(t, "dir")
	c.push("first", "1", time.Now(), false, top)
	nar := storedNarinfo(t, c.store, top).URL
	if err := c.store.Delete(tctx(t), cachefmt.NarinfoKey(top)); err != nil {
		t.Fatal(err)
	}
	h := &hookStore{Store: c.store}
	var once sync.Once
	h.stat = func(key string) error {
		if key == nar {
			once.Do(func() {
				if err := c.store.Delete(tctx(t), nar); err != nil {
					t.Error(err)
				}
			})
		}
		return nil
	}
	o := c.options()
	o.Store = h
	o.Root.Name = "again"
	sum, err := nixcache.Push(tctx(t), o, []string{top})
	if err != nil {
		t.Fatalf("push: %v (%s)", err, sum.JSON())
	}
	if !c.has(nar) {
		t.Errorf("%s was published, but %s, which it names, is gone", cachefmt.NarinfoKey(top), nar)
	}
	mustVerify(t, c.options(), true)
}
