package push

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// The push side of the GC protocol (see package lease): a narinfo that
// relies on objects the session did not write is published at once only
// on the fast path; otherwise the session records them in an in-flight
// root, waits a window and checks they are still there.

// checkGC is what the store says of GC runs now.
func (p *pusher) checkGC(ctx context.Context) lease.Check {
	return lease.CheckGC(ctx, p.store, p.clock)
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
// path (unless slow), after the slow path otherwise (errRelied if what it
// relies on is gone). On the fast path the narinfo must be written before
// deadline (see publishNode); zero: no deadline.
func (s *Session) guard(ctx context.Context, n *node, slow bool) (deadline time.Time, err error) {
	s.mu.Lock()
	if s.waitRequeued(n) {
		s.mu.Unlock()
		return time.Time{}, errHeld
	}
	r := s.reliedOn(n)
	stale := n.st.existing && n.stBase != s.base()
	s.mu.Unlock()
	r = s.unconfirmed(r)
	if r.empty() {
		return time.Time{}, nil
	}
	// A NAR found stored under a check the session no longer uses (see
	// fresh) takes the slow path: a GC may have deleted it since.
	if !slow && !stale {
		if until, ok := s.fastUntil(ctx); ok {
			return until, nil
		}
	}
	if err := s.protect(ctx, r); err != nil {
		return time.Time{}, err
	}
	missing, err := s.stillThere(ctx, r)
	if err != nil {
		return time.Time{}, err
	}
	if len(missing) == 1 && len(r.nars) == 1 && missing[0] == r.nars[0] {
		return time.Time{}, errNARGone // only the NAR another push had stored: the caller uploads it again
	}
	if len(missing) > 0 {
		return time.Time{}, fmt.Errorf("%w (%s)", errRelied, strings.Join(missing, ", "))
	}
	return time.Time{}, nil
}

// errHeld means a node's reference is being pushed again: the node is
// published once it is (see waitRequeued).
var errHeld = errors.New("held back by a reference pushed again")

// base counts the checks the session has relied on as its base (see
// fresh).
func (s *Session) base() int {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	return s.bases
}

// errNARGone means the NAR a push found already stored (and relied on)
// was deleted by a concurrent GC before it was protected.
var errNARGone = errors.New("the NAR found stored was deleted by a concurrent GC")

// secure protects, while a GC may run, the paths presence found in the
// cache before anything relies on them: it records them in the session's
// in-flight root, waits a window, and looks them up again. A path a GC
// deleted meanwhile is pushed again (its outcome cleared) instead of
// failing the paths that rely on it; the others are confirmed: from then
// on no GC deletes them while the in-flight root lives, and publishing
// what relies on them needs no further wait.
func (s *Session) secure(ctx context.Context, fresh []*node, outcome []Outcome) {
	var found []*node
	var idx []int
	for i, n := range fresh {
		if outcome[i] == Present {
			found = append(found, n)
			idx = append(idx, i)
		}
	}
	if len(found) == 0 || s.fastPath(ctx) {
		return
	}
	r := reliance{}
	for _, n := range found {
		r.paths = append(r.paths, n.pi.Path)
	}
	if err := s.protect(ctx, r); err != nil {
		return // the paths stay found; guard protects them again, or fails them
	}
	look := s.p.batchLookup(ctx, found)
	gone := 0
	work.Parallel(ctx, len(found), 32, func(k int) {
		v := s.p.judge(ctx, found[k].pi, look)
		if v.present {
			return
		}
		outcome[idx[k]], found[k].gen = "", v.gen
		s.gcMu.Lock()
		gone++
		s.gcMu.Unlock()
	})
	s.gcMu.Lock()
	for k, n := range found {
		if outcome[idx[k]] == Present {
			s.confirmed[nixstore.HashPart(n.pi.Path)] = true
		}
	}
	s.gcMu.Unlock()
	if gone > 0 {
		s.p.o.Log.Info("cache push: paths found in the cache were deleted by a concurrent GC before they were protected; pushing them again", "paths", gone)
	}
}

// secureFound puts every path of the session found present and not yet
// confirmed through secure's look-up again: when the session's check no
// longer holds (a GC may have run since), recorded in the in-flight root,
// a window later those still there are confirmed and those gone are
// pushed again (requeue). Nothing relies on a path found under an earlier
// check after this returns without error.
func (s *Session) secureFound(ctx context.Context) error {
	s.mu.Lock()
	var found []*node
	for _, n := range s.nodes {
		if n.found && n.ok {
			found = append(found, n)
		}
	}
	s.mu.Unlock()
	found = s.unconfirmedNodes(found)
	if len(found) == 0 {
		return nil
	}
	r := reliance{}
	for _, n := range found {
		r.paths = append(r.paths, n.pi.Path)
	}
	if err := s.protect(ctx, r); err != nil {
		return err
	}
	look := s.p.batchLookup(ctx, found)
	verdicts := make([]verdict, len(found))
	work.Parallel(ctx, len(found), 32, func(k int) {
		verdicts[k] = s.p.judge(ctx, found[k].pi, look)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	var gone []*node
	var gens []int64
	s.gcMu.Lock()
	for k, n := range found {
		if verdicts[k].present {
			s.confirmed[nixstore.HashPart(n.pi.Path)] = true
		} else {
			gone, gens = append(gone, n), append(gens, verdicts[k].gen)
		}
	}
	s.gcMu.Unlock()
	if len(gone) > 0 {
		s.p.o.Log.Info("cache push: paths found in the cache were deleted by a concurrent GC before they were protected; pushing them again", "paths", len(gone))
		s.requeue(gone, gens)
	}
	return nil
}

// unconfirmedNodes is the nodes of found whose paths secure has not
// confirmed.
func (s *Session) unconfirmedNodes(found []*node) []*node {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var out []*node
	for _, n := range found {
		if !s.confirmed[nixstore.HashPart(n.pi.Path)] {
			out = append(out, n)
		}
	}
	return out
}

// unconfirmed is what r names that secure has not confirmed.
func (s *Session) unconfirmed(r reliance) reliance {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	out := reliance{nars: r.nars}
	for _, p := range r.paths {
		if !s.confirmed[nixstore.HashPart(p)] {
			out.paths = append(out.paths, p)
		}
	}
	return out
}

// fastPath says whether a check within Window/2 found no GC running
// and no GC started since the session listed the cache.
func (s *Session) fastPath(ctx context.Context) bool {
	_, ok := s.fastUntil(ctx)
	return ok
}

// fastUntil is fastPath, with the time until which the check it relies
// on holds: Window/2 after it was made.
func (s *Session) fastUntil(ctx context.Context) (time.Time, bool) {
	first := s.pre.gcState(ctx)
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	if s.gcBase != nil {
		first = *s.gcBase
	}
	if !first.OK {
		return time.Time{}, false
	}
	if s.gcLast.At.IsZero() {
		s.gcLast = first // a check too: relied on as long as any other
	}
	if time.Since(s.gcLast.At) >= s.p.o.Window/2 {
		s.gcLast = s.p.checkGC(ctx)
	}
	last := s.gcLast
	ok := last.OK && !last.Running && !first.Running && last.Epoch == first.Epoch
	return last.At.Add(s.p.o.Window / 2), ok
}

// protect adds r to the session's in-flight root, writes it unless an
// earlier write already holds all of r, and returns Window after the
// first write that held the last of r's objects.
func (s *Session) protect(ctx context.Context, r reliance) error {
	if err := s.record(ctx, r); err != nil {
		return err
	}
	s.gcMu.Lock()
	var latest time.Time
	for _, p := range r.paths {
		latest = later(latest, s.inflight.paths[nixstore.HashPart(p)])
	}
	for _, k := range r.nars {
		latest = later(latest, s.inflight.nars[k])
	}
	s.gcMu.Unlock()
	select {
	case <-time.After(time.Until(latest.Add(s.p.o.Window))):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// record adds r to the session's in-flight root and returns once a write
// holds all of it (writes are shared by the callers that arrive while one
// is under way). It does not wait: upload calls it as soon as it finds a
// NAR already stored, so that the window a push must wait before relying
// on that NAR runs while the rest of the closure uploads, not level by
// level of the closure as its narinfos are published.
func (s *Session) record(ctx context.Context, r reliance) error {
	s.gcMu.Lock()
	pending := false
	for _, p := range r.paths {
		h := nixstore.HashPart(p)
		at, ok := s.inflight.paths[h]
		if !ok {
			s.inflight.paths[h] = time.Time{}
		}
		pending = pending || at.IsZero()
	}
	for _, k := range r.nars {
		at, ok := s.inflight.nars[k]
		if !ok {
			s.inflight.nars[k] = time.Time{}
		}
		pending = pending || at.IsZero()
	}
	s.gcMu.Unlock()
	if !pending {
		return nil
	}
	s.relying.Store(true)
	return s.inflight.rounds.Run(func() error { return s.writeInFlight(ctx) })
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
	// What this write held is protected from now on: a GC re-read of the
	// roots that starts later sees it (see package lease).
	written := time.Now()
	s.gcMu.Lock()
	s.inflight.key = r.Key()
	for _, h := range hashes {
		if s.inflight.paths[h].IsZero() {
			s.inflight.paths[h] = written
		}
	}
	for _, k := range nars {
		if s.inflight.nars[k].IsZero() {
			s.inflight.nars[k] = written
		}
	}
	s.gcMu.Unlock()
	s.p.o.Log.Info("cache push: a GC may be running; recorded what this push relies on", "root", r.Key())
	return nil
}

// stillThere returns what r names that is no longer stored. A look-up
// that fails otherwise is an error: what it was about is not known to be
// there, so nothing may rely on it.
func (s *Session) stillThere(ctx context.Context, r reliance) ([]string, error) {
	keys := append([]string(nil), r.nars...)
	for _, p := range r.paths {
		keys = append(keys, cachefmt.NarinfoKey(p))
	}
	var missing []string
	_, errs := blob.StatMany(ctx, s.p.store, keys, 32)
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, blob.ErrNotFound):
			missing = append(missing, keys[i])
		default:
			return nil, fmt.Errorf("look up %s again: %w", keys[i], err)
		}
	}
	sort.Strings(missing)
	return missing, ctx.Err()
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
	// paths (by hash part) and nars map what the root names to when a
	// write that held it was stored (zero until one was).
	paths  map[string]time.Time
	nars   map[string]time.Time
	key    string
	rounds blob.Group
}
