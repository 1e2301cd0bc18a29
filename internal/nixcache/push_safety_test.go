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
	// stat, when it returns an error, answers a look-up instead of the
	// store.
	stat func(key string) error
}

func (h *hookStore) Put(ctx context.Context, key string, r io.Reader, opt blob.PutOptions) error {
	h.mu.Lock()
	fn := h.put
	h.mu.Unlock()
	if fn == nil {
		return h.Store.Put(ctx, key, r, opt)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	fn(key, body)
	return h.Store.Put(ctx, key, bytes.NewReader(body), opt)
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
	mustVerify(t, c.options(), true)
	if out, err := substitute(t, c.url(), c.k.public, top); err != nil {
		t.Fatalf("nix could not substitute %s: %v\n%s", top, err, out)
	}
}
