package nixcache

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// Pushes and GC share a cache without locking each other out. GC deletes
// only objects older than its grace period, so whatever a push writes is
// safe; what needs care is what a push relies on without writing it: a
// path it found present (its new narinfos will refer to it) or a NAR it
// found already stored. GC may be deleting exactly those if they belong
// to no root any more. The protocol:
//
//   - GC announces itself before it decides anything: it rewrites
//     gc/epoch (a new generation every run) and keeps gc/running fresh
//     while it runs. It then waits gcSettle before listing the cache, and
//     while it deletes it reads the roots and the narinfos again at least
//     every gcWindow/2, sparing what a new root names and what a new
//     narinfo refers to.
//   - A push checks both objects before it lists the cache. A narinfo
//     that relies on objects the push did not write is published only
//     within gcWindow/2 of a check that found no GC running and the same
//     epoch as before the listing (fast path: GC cannot have decided
//     anything the push has not seen, and will see the narinfo before it
//     decides). Otherwise (slow path) the push records an in-flight root
//     naming those objects, waits gcWindow, and checks that they are
//     still there: a GC that deletes them later sees the root first, one
//     that deleted them earlier is caught by the check, and the path
//     fails instead of being published broken.
//
// Time. Whether gc/running is fresh, whether an object is within the
// grace period and whether a root is younger than KeepDays are judged by
// the store's clock only (storeClock): an object's age is the store's
// time now less the time the store stamped on it (blob.Info.Updated).
// This machine's clock never meets a stored timestamp; it only measures
// how much time passed since the store last told us its time. The other
// durations of the protocol (gcWindow, the settle time) are measured on
// one machine each, so they need no common clock either.
const (
	gcEpochKey   = "gc/epoch"
	gcRunningKey = "gc/running"
	// storeClockKey is the small object a push or a GC writes to learn
	// the store's time (storeClock.sync); whoever needs it rewrites it.
	storeClockKey = "gc/clock"
)

var (
	// gcWindow bounds how long a push may rely on a GC check, and is how
	// long the slow path waits (variables for tests).
	gcWindow = 10 * time.Second
	// gcLeaseTTL is how long gc/running counts after its last refresh.
	gcLeaseTTL = 2 * time.Minute
	// storeClockMargin is taken off every reading of the store's clock:
	// it covers timestamps stored with a coarse granularity (a second or
	// two on some file systems) and the drift of this machine's clock
	// rate between two syncs.
	storeClockMargin = 2 * time.Second
)

// storeClock tells the time by the store's clock. sync writes
// storeClockKey: the Updated time the store stamps on it is the store's
// time at some instant of the write, so no later than the store's time
// when the write returned. From then on
//
//	store now >= stamped + (local now - local time when the write returned)
//
// where the local clock (Options.Now) only measures elapsed time: any
// offset it has from the store cancels (time.Now also carries a monotonic
// reading, so a step of the wall clock does not count either). now
// returns that bound less storeClockMargin, so every age computed from it
// is at most the true age: a lease looks fresher, an object younger, a
// root more recent than they are, and each decision errs on the side of
// keeping. Each write of an object whose stored Info this process gets
// back (observe) may tighten the bound.
type storeClock struct {
	store blob.Store
	local func() time.Time

	syncMu sync.Mutex // one sync at a time
	mu     sync.Mutex
	set    bool
	stamp  time.Time // a time the store stamped...
	at     time.Time // ...no later than its clock read at this local time
}

func newStoreClock(store blob.Store, local func() time.Time) *storeClock {
	return &storeClock{store: store, local: local}
}

// sync writes storeClockKey and takes the store's time from it.
func (c *storeClock) sync(ctx context.Context) error {
	var stored blob.Info
	body := "written to read the store's clock; see internal/nixcache/lease.go\n"
	err := c.store.Put(ctx, storeClockKey, strings.NewReader(body),
		blob.PutOptions{ContentType: "text/plain", SizeHint: int64(len(body)), Stored: &stored})
	if err != nil {
		return fmt.Errorf("read the store's clock (write %s): %w", storeClockKey, err)
	}
	if stored.Updated.IsZero() {
		return fmt.Errorf("read the store's clock: %s has no time", c.store.URL(storeClockKey))
	}
	c.observe(stored.Updated)
	return nil
}

// observe records stamped, the store's time during a write that has just
// returned, if it gives a later bound than what is known.
func (c *storeClock) observe(stamped time.Time) {
	if stamped.IsZero() {
		return
	}
	at := c.local()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.set || stamped.Sub(c.stamp) > at.Sub(c.at) {
		c.set, c.stamp, c.at = true, stamped, at
	}
}

// ensure syncs unless the store's time was read already (callers that
// arrive during a sync wait for it).
func (c *storeClock) ensure(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.mu.Lock()
	set := c.set
	c.mu.Unlock()
	if set {
		return nil
	}
	return c.sync(ctx)
}

// now is a time the store's clock has certainly passed (reading it first
// if it never was).
func (c *storeClock) now(ctx context.Context) (time.Time, error) {
	if err := c.ensure(ctx); err != nil {
		return time.Time{}, err
	}
	local := c.local()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stamp.Add(local.Sub(c.at) - storeClockMargin), nil
}

// age is how long ago the store stamped t, at most.
func (c *storeClock) age(ctx context.Context, t time.Time) (time.Duration, error) {
	now, err := c.now(ctx)
	if err != nil {
		return 0, err
	}
	return now.Sub(t), nil
}

// gcCheck is what a push learnt of GC runs at a moment.
type gcCheck struct {
	at      time.Time
	ok      bool  // both objects were looked up
	epoch   int64 // generation of gc/epoch; 0: never ran
	running bool
}

// checkGC looks gc/epoch and gc/running up. gc/running counts while the
// store's clock says it was refreshed less than gcLeaseTTL ago; reading
// that clock costs a write, made only when gc/running exists.
func (p *pusher) checkGC(ctx context.Context) gcCheck {
	c := gcCheck{at: time.Now(), ok: true} // at: for elapsed time on this machine only
	var epoch, running blob.Info
	var epochErr, runningErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); epoch, epochErr = p.store.Stat(ctx, gcEpochKey) }()
	go func() { defer wg.Done(); running, runningErr = p.store.Stat(ctx, gcRunningKey) }()
	wg.Wait()
	for _, err := range []error{epochErr, runningErr} {
		if err != nil && !errors.Is(err, blob.ErrNotFound) {
			c.ok = false
		}
	}
	if epochErr == nil {
		c.epoch = epoch.Generation
	}
	if runningErr == nil {
		age, err := p.clock.age(ctx, running.Updated)
		c.ok = c.ok && err == nil
		c.running = err != nil || age < gcLeaseTTL
	}
	return c
}

// errRelied means a path relied on objects that a concurrent GC deleted.
var errRelied = errors.New("relies on objects a concurrent GC deleted; push again")

// reliance is what a narinfo relies on that its session did not write.
type reliance struct {
	paths []string // store paths found present
	nars  []string // NAR objects found stored
}

func (r reliance) empty() bool { return len(r.paths) == 0 && len(r.nars) == 0 }

// reliedOn is what publishing n relies on. Called with s.mu held.
func (s *Session) reliedOn(n *node) reliance {
	var r reliance
	for _, ref := range n.pi.References {
		if d, ok := s.nodes[ref]; ok && ref != n.pi.Path && d.found {
			r.paths = append(r.paths, ref)
		}
	}
	if n.st.existing {
		r.nars = append(r.nars, n.st.URL)
	}
	return r
}

// guard returns once n's narinfo may be published: at once on the fast
// path, after the slow path otherwise (errRelied if what it relies on
// is gone).
func (s *Session) guard(ctx context.Context, n *node) error {
	s.mu.Lock()
	r := s.reliedOn(n)
	s.mu.Unlock()
	if r.empty() || s.fastPath(ctx) {
		return nil
	}
	if err := s.protect(ctx, r); err != nil {
		return err
	}
	return s.stillThere(ctx, r)
}

// fastPath says whether a check within gcWindow/2 found no GC running
// and no GC started since the session listed the cache.
func (s *Session) fastPath(ctx context.Context) bool {
	first := s.pre.gcState(ctx)
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	if s.gcBase != nil {
		first = *s.gcBase
	}
	if !first.ok {
		return false
	}
	if s.gcLast.at.IsZero() || time.Since(s.gcLast.at) >= gcWindow/2 {
		s.gcLast = s.p.checkGC(ctx)
	}
	last := s.gcLast
	return last.ok && !last.running && !first.running && last.epoch == first.epoch
}

// protect adds r to the session's in-flight root, writes it, and returns
// gcWindow after a write that includes r (writes are shared by the
// callers that arrive while one is under way).
func (s *Session) protect(ctx context.Context, r reliance) error {
	s.gcMu.Lock()
	for _, p := range r.paths {
		s.inflight.paths[nixstore.HashPart(p)] = true
	}
	for _, k := range r.nars {
		s.inflight.nars[k] = true
	}
	s.gcMu.Unlock()
	return s.inflight.rounds.Run(func() error {
		if err := s.writeInFlight(ctx); err != nil {
			return err
		}
		select {
		case <-time.After(gcWindow):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// writeInFlight writes the session's in-flight root with everything it
// relies on so far.
func (s *Session) writeInFlight(ctx context.Context) error {
	s.gcMu.Lock()
	hashes := make([]string, 0, len(s.inflight.paths))
	for h := range s.inflight.paths {
		hashes = append(hashes, h)
	}
	nars := make([]string, 0, len(s.inflight.nars))
	for k := range s.inflight.nars {
		nars = append(nars, k)
	}
	s.gcMu.Unlock()
	sort.Strings(nars)
	r := s.newRoot(nil, hashes)
	r.Time, r.InFlight, r.Pinned, r.NARs = s.start.UTC().Truncate(time.Second), true, false, nars
	if err := writeRoot(ctx, s.p, r); err != nil {
		return fmt.Errorf("record in-flight root: %w", err)
	}
	s.gcMu.Lock()
	s.inflight.key = r.Key()
	s.gcMu.Unlock()
	s.p.o.Log.Info("cache push: a GC may be running; recorded what this push relies on", "root", r.Key())
	return nil
}

// stillThere checks that what r names is still stored.
func (s *Session) stillThere(ctx context.Context, r reliance) error {
	keys := append([]string(nil), r.nars...)
	for _, p := range r.paths {
		keys = append(keys, narinfoKey(p))
	}
	var missing []string
	var mu sync.Mutex
	parallel(ctx, len(keys), 32, func(i int) {
		if _, err := s.p.store.Stat(ctx, keys[i]); errors.Is(err, blob.ErrNotFound) {
			mu.Lock()
			missing = append(missing, keys[i])
			mu.Unlock()
		}
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w (%s)", errRelied, strings.Join(missing, ", "))
	}
	return ctx.Err()
}

// dropInFlight removes the session's in-flight root once its final root
// is recorded.
func (s *Session) dropInFlight(ctx context.Context) error {
	s.gcMu.Lock()
	key := s.inflight.key
	s.gcMu.Unlock()
	if key == "" {
		return nil
	}
	if err := s.p.store.Delete(ctx, key); err != nil {
		return fmt.Errorf("cache push: remove in-flight root: %w", err)
	}
	return nil
}

// inFlight is the session's in-flight root being kept.
type inFlight struct {
	paths  map[string]bool
	nars   map[string]bool
	key    string
	rounds blob.Group
}
