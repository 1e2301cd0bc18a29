package gc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
)

// sweeper deletes what the mark left doomed. Every delete is sent within
// half a window of the start of a refresh that found nothing new keeping
// it (a delete request is given until three quarters of the window after
// that start, retries included); a refresh re-reads the roots and the
// lease only (see refresh).
type sweeper struct {
	g *collector
	m *marks

	mu sync.Mutex // m, while deletes run

	rmu       sync.Mutex // one refresh at a time
	refreshed time.Time  // start of the last refresh (this machine's clock)
	futile    int        // refreshes in a row after which nothing could be sent

	emu sync.Mutex
	err error
}

// maxFutile is how many refreshes in a row may each take half a window
// (leaving no time to delete) before GC gives up rather than re-reading
// the roots forever.
const maxFutile = 3

// sweep deletes narinfos in reference order, then NARs range by range,
// then expired roots.
func (sw *sweeper) sweep(ctx context.Context) error {
	t0 := time.Now()
	if err := sw.narinfos(ctx); err != nil {
		return err
	}
	sw.g.opt.Log.Info("cache gc: narinfos swept", "deleted", sw.g.summary().Narinfos.Deleted, "seconds", time.Since(t0).Seconds())
	t0 = time.Now()
	if err := sw.firstErr(); err != nil {
		// A narinfo that could not be deleted may name any NAR: keep them
		// all this run.
		return err
	}
	if err := sw.nars(ctx, false); err != nil {
		return err
	}
	sw.g.opt.Log.Info("cache gc: NARs swept", "deleted", sw.g.summary().NARs.Deleted, "seconds", time.Since(t0).Seconds())
	if err := sw.roots(ctx); err != nil {
		return err
	}
	return sw.firstErr()
}

// plan prints what a sweep would delete (a dry run) and counts it.
func (sw *sweeper) plan(ctx context.Context) error {
	t := sw.m.cands
	w := sw.g.opt.Plan
	var keys []int32
	for i := range int32(t.len()) {
		if t.doomed(i) {
			keys = append(keys, i)
		}
	}
	for _, i := range keys {
		fmt.Fprintf(w, "delete narinfo %s %d\n", t.key(i), t.size[i])
		sw.freed(t.key(i), int64(t.size[i]))
	}
	for _, o := range sw.m.odd {
		if !sw.g.young(o) {
			fmt.Fprintf(w, "delete narinfo %s %d\n", o.Key, o.Size)
			sw.freed(o.Key, o.Size)
		}
	}
	if err := sw.nars(ctx, true); err != nil {
		return err
	}
	for _, r := range sw.m.expired {
		fmt.Fprintf(w, "delete root %s %d\n", r.Key, r.Size)
		sw.freed(r.Key, r.Size)
	}
	sw.settleNarinfos()
	return nil
}

// freed counts one deleted object.
func (sw *sweeper) freed(key string, size int64) {
	sw.g.count(func(s *Summary) {
		s.FreedObjects++
		s.FreedBytes += size
		switch {
		case cachefmt.IsNarinfoKey(key):
			s.Narinfos.Deleted++
		case cachefmt.IsNARKey(key):
			s.NARs.Deleted++
		default:
			s.Roots.Deleted++
		}
	})
}

func (sw *sweeper) fail(err error) {
	sw.emu.Lock()
	defer sw.emu.Unlock()
	if sw.err == nil {
		sw.err = err
	}
}

func (sw *sweeper) firstErr() error {
	sw.emu.Lock()
	defer sw.emu.Unlock()
	return sw.err
}

// narinfos deletes the doomed narinfos wave by wave (see order), odd
// narinfo names with the first wave.
func (sw *sweeper) narinfos(ctx context.Context) error {
	t := sw.m.cands
	sw.mu.Lock()
	o := t.order()
	wave := o.first()
	sw.mu.Unlock()
	var odd []blob.Info
	for _, i := range sw.m.odd {
		if !sw.g.young(i) {
			odd = append(odd, i)
		}
	}
	if err := sw.deleteObjects(ctx, odd, nil); err != nil {
		return err
	}
	for len(wave) > 0 {
		items := make([]blob.Info, len(wave))
		for k, i := range wave {
			items[k] = blob.Info{Key: t.key(i), Generation: t.gen[i], Size: int64(t.size[i])}
		}
		if err := sw.deleteObjects(ctx, items, func(k int, err error) { sw.narinfoDone(ctx, wave[k], err) }); err != nil {
			return err
		}
		sw.mu.Lock()
		wave = o.next(wave)
		sw.mu.Unlock()
	}
	sw.settleNarinfos()
	return nil
}

// settleNarinfos counts the narinfos kept.
func (sw *sweeper) settleNarinfos() {
	sw.g.count(func(s *Summary) { s.Narinfos.Kept = int(sw.m.narinfos) - s.Narinfos.Deleted })
}

// narinfoDone records the outcome of deleting candidate i: deleted (or
// gone), or kept with what it refers to: changed since it was listed (the
// new version is what someone needs: spared, with its NAR and references),
// spared by a refresh before it was sent, or failed (held this run).
func (sw *sweeper) narinfoDone(ctx context.Context, i int32, err error) {
	t := sw.m.cands
	switch {
	case err == nil, errors.Is(err, blob.ErrNotFound):
		sw.mu.Lock()
		t.flag[i] |= fDeleted
		sw.mu.Unlock()
	case errors.Is(err, errSpared):
	case errors.Is(err, blob.ErrChanged):
		sw.g.count(func(s *Summary) { s.Spared++ })
		sw.mu.Lock()
		spared := t.spare([]int32{i})
		sw.mu.Unlock()
		sw.keepChanged(ctx, t.key(i))
		_ = sw.keepNARsOf(ctx, spared) // a failure fails the run
	default:
		sw.fail(err)
		sw.mu.Lock()
		t.hold(i)
		sw.mu.Unlock()
	}
}

// keepChanged keeps what the current version of a narinfo that changed
// while GC ran names: its NAR and its references.
// What cannot be learnt for a failure of the store fails the run (no NAR
// is deleted then).
func (sw *sweeper) keepChanged(ctx context.Context, key string) {
	info, err := sw.g.store.Stat(ctx, key)
	if err != nil {
		if cachefmt.Unreadable(err) {
			sw.fail(fmt.Errorf("cache gc: look up %s: %w", key, err))
		}
		return
	}
	var nar string
	var refs []string
	if p, perr := cachefmt.CheckProof(sw.g.pk, info); perr == nil && p.RefsKnown {
		nar, refs = p.NAR.Key, p.Refs
	} else if _, ni, rerr := cachefmt.ReadNarinfo(ctx, sw.g.store, key); rerr == nil && cachefmt.Verifies(ni, sw.g.pk) {
		nar, refs = ni.URL, cachefmt.RefHashes(ni)
	} else if cachefmt.Unreadable(rerr) {
		sw.fail(fmt.Errorf("cache gc: read %s: %w", key, rerr))
		return
	}
	var idx []int32
	sw.mu.Lock()
	if nar != "" {
		sw.m.keepNARs[nar] = struct{}{}
	}
	for _, r := range refs {
		if h, ok := cachefmt.ParseHash(r); ok {
			if i := sw.m.cands.find(h); i >= 0 {
				idx = append(idx, i)
			}
		}
	}
	spared := sw.m.cands.spare(idx)
	sw.mu.Unlock()
	_ = sw.keepNARsOf(ctx, spared) // a failure fails the run
}

// keepNARsOf keeps the NARs of newly spared candidates (looked up
// without holding sw.mu). A look-up the store failed fails the run: the
// candidate stays spared, but its NAR is not known, so no NAR may be
// deleted any more.
func (sw *sweeper) keepNARsOf(ctx context.Context, spared []int32) error {
	sw.mu.Lock()
	keys, idx := sw.m.narsWanted(spared)
	sw.mu.Unlock()
	nars, err := sw.g.narsOf(ctx, keys)
	sw.mu.Lock()
	for k, nar := range nars {
		if nar != "" {
			sw.m.keepNARs[nar] = struct{}{}
			sw.m.cands.flag[idx[k]] |= fNARKept
		}
	}
	sw.mu.Unlock()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		sw.fail(err)
	}
	return err
}

// nars lists the NARs one range at a time and deletes (or, for a dry run,
// prints) those older than the grace period that nothing kept names. The
// listing hands batches to deleters as it goes: neither waits for the
// other, and what is held is a few batches per range.
func (sw *sweeper) nars(ctx context.Context, dry bool) error {
	var mu sync.Mutex
	listed := 0
	batches := make(chan []blob.Info, sw.batchWorkers())
	var wg sync.WaitGroup
	for range sw.batchWorkers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if dry {
					for _, i := range b {
						fmt.Fprintf(sw.g.opt.Plan, "delete nar %s %d\n", i.Key, i.Size)
						sw.freed(i.Key, i.Size)
					}
					continue
				}
				_ = sw.deleteObjects(ctx, b, nil)
			}
		}()
	}
	err := parallelRanges(ctx, cachefmt.NARRanges(), listWorkers, func(r cachefmt.Range) error {
		var batch []blob.Info
		send := func() error {
			if len(batch) > 0 {
				select {
				case batches <- batch:
				case <-ctx.Done():
					return ctx.Err()
				}
				batch = nil
			}
			return nil
		}
		err := sw.g.store.ListRange(ctx, r.Start, r.End, func(i blob.Info) error {
			sw.mu.Lock()
			_, kept := sw.m.keepNARs[i.Key]
			sw.mu.Unlock()
			mu.Lock()
			listed++
			mu.Unlock()
			if kept || sw.g.young(i) {
				return nil
			}
			if batch = append(batch, i); len(batch) == blob.MaxBatch {
				return send()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return send()
	})
	close(batches)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("cache gc: %w", err)
	}
	sw.g.count(func(s *Summary) {
		s.Objects = sw.m.objects + int64(listed)
		s.NARs.Kept = listed - s.NARs.Deleted
	})
	return nil
}

// roots deletes the expired roots.
func (sw *sweeper) roots(ctx context.Context) error {
	return sw.deleteObjects(ctx, sw.m.expired, nil)
}

// errSpared: a refresh found that something kept needs the object.
var errSpared = errors.New("spared")

// batchWorkers is how many delete batches are in flight at once.
func (sw *sweeper) batchWorkers() int { return max(1, sw.g.opt.Workers/8) }

// deleteObjects deletes items, each at its listed generation, batch by
// batch (up to batchWorkers at once), each sent only while the last
// refresh is fresh; done, when set, gets each item's outcome (errSpared
// for one a refresh spared).
func (sw *sweeper) deleteObjects(ctx context.Context, items []blob.Info, done func(k int, err error)) error {
	n := (len(items) + blob.MaxBatch - 1) / blob.MaxBatch
	work.Parallel(ctx, n, sw.batchWorkers(), func(b int) {
		lo, hi := b*blob.MaxBatch, min(len(items), (b+1)*blob.MaxBatch)
		errs := sw.deleteBatch(ctx, items[lo:hi])
		for k, err := range errs {
			if done != nil {
				done(lo+k, err)
			} else if err != nil && !errors.Is(err, errSpared) && !errors.Is(err, blob.ErrNotFound) {
				if errors.Is(err, blob.ErrChanged) {
					sw.g.count(func(s *Summary) { s.Spared++ })
				} else {
					sw.fail(err)
				}
			}
		}
	})
	return ctx.Err()
}

// deleteBatch deletes one batch: it runs the test hook for each key,
// makes sure the roots were re-read less than half a window ago (and
// drops what a new root keeps), and sends the batch with until three
// quarters of the window after that refresh; what could not be sent in
// time waits for the next refresh.
func (sw *sweeper) deleteBatch(ctx context.Context, items []blob.Info) []error {
	errs := make([]error, len(items))
	if h := sw.g.opt.BeforeDelete; h != nil {
		for _, i := range items {
			h(i.Key)
		}
	}
	todo := make([]int, len(items))
	for k := range todo {
		todo[k] = k
	}
	window := sw.g.opt.Window
	for len(todo) > 0 {
		start, err := sw.fresh(ctx)
		if err != nil {
			for _, k := range todo {
				errs[k] = err
			}
			return errs
		}
		if err := sw.firstErr(); err != nil {
			// Something kept may be unknown (a look-up failed): delete
			// nothing more.
			for _, k := range todo {
				errs[k] = err
			}
			return errs
		}
		var send []int
		sw.mu.Lock()
		for _, k := range todo {
			if sw.kept(items[k]) {
				errs[k] = errSpared
				sw.g.count(func(s *Summary) { s.Spared++ })
			} else {
				send = append(send, k)
			}
		}
		sw.mu.Unlock()
		if time.Now().After(start.Add(window / 2)) {
			continue // the refresh itself took too long: another one
		}
		conds := make([]blob.Cond, len(send))
		for j, k := range send {
			conds[j] = blob.Cond{Key: items[k].Key, Gen: items[k].Generation}
		}
		dctx, cancel := context.WithDeadline(ctx, start.Add(window*3/4))
		res := blob.DeleteManyIf(dctx, sw.g.store, conds, 8)
		late := dctx.Err() != nil && ctx.Err() == nil
		cancel()
		todo = todo[:0]
		for j, k := range send {
			switch {
			case late && res[j] != nil && !errors.Is(res[j], blob.ErrNotFound) && !errors.Is(res[j], blob.ErrChanged):
				todo = append(todo, k) // not answered in time: again after a refresh
			case res[j] == nil:
				errs[k] = nil
				sw.freed(items[k].Key, items[k].Size)
			default:
				errs[k] = res[j]
			}
		}
		if len(todo) > 0 {
			sw.rmu.Lock()
			sw.refreshed = time.Time{}
			sw.rmu.Unlock()
		}
	}
	return errs
}

// kept says whether a refresh made item one to keep. sw.mu is held.
func (sw *sweeper) kept(i blob.Info) bool {
	switch {
	case cachefmt.IsNarinfoKey(i.Key):
		h, ok := cachefmt.ParseHash(cachefmt.HashOfKey(i.Key))
		if !ok {
			return false
		}
		if _, k := sw.m.keep[h]; k {
			return true
		}
		j := sw.m.cands.find(h)
		return j >= 0 && sw.m.cands.flag[j]&(fSpared|fHeld) != 0
	case cachefmt.IsNARKey(i.Key):
		_, k := sw.m.keepNARs[i.Key]
		return k
	}
	return false
}

// fresh returns the start of a refresh less than half a window ago,
// refreshing when the last one is older.
func (sw *sweeper) fresh(ctx context.Context) (time.Time, error) {
	sw.rmu.Lock()
	defer sw.rmu.Unlock()
	if !sw.refreshed.IsZero() && time.Since(sw.refreshed) < sw.g.opt.Window/2 {
		return sw.refreshed, nil
	}
	for {
		start := time.Now()
		if err := sw.refresh(ctx); err != nil {
			return time.Time{}, err
		}
		if time.Since(start) < sw.g.opt.Window/2 {
			sw.refreshed, sw.futile = start, 0
			return start, nil
		}
		if sw.futile++; sw.futile >= maxFutile {
			return time.Time{}, fmt.Errorf("cache gc: re-reading the roots took %s, %d times in a row, leaving no time to delete within half the protocol's window (%s); stopping",
				time.Since(start).Round(time.Millisecond), sw.futile, sw.g.opt.Window/2)
		}
	}
}

// refresh re-reads what can change the plan: the lease (still ours) and
// the roots. A root not seen before, or rewritten since (a push adds to
// its in-flight root what it comes to rely on, under the same name), is
// read, and what it names is spared, with what that refers to and the
// NARs of it all. A root that cannot be read fails the refresh (and is
// read again by the next): nothing is deleted on a plan that missed it.
func (sw *sweeper) refresh(ctx context.Context) error {
	g := sw.g
	if err := g.stillOurs(ctx); err != nil {
		return err
	}
	var mu sync.Mutex
	var fresh []cachefmt.RootRef
	count := 0
	err := cachefmt.ListEach(ctx, g.store, cachefmt.RootRanges(), listWorkers, func(i blob.Info) error {
		mu.Lock()
		count++
		n := count
		mu.Unlock()
		if n > maxRoots {
			return fmt.Errorf("more than %d objects under %s; stopping", maxRoots, cachefmt.RootsPrefix)
		}
		sw.mu.Lock()
		gen, seen := sw.m.seenRoot[i.Key]
		sw.mu.Unlock()
		if seen && gen == i.Generation {
			return nil
		}
		i.Metadata = nil
		if ref, ok := cachefmt.ParseRootKey(i); ok {
			mu.Lock()
			fresh = append(fresh, ref)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache gc: %w", err)
	}
	roots := make([]*cachefmt.Root, len(fresh))
	errs := make([]error, len(fresh))
	work.Parallel(ctx, len(fresh), 16, func(k int) {
		roots[k], errs[k] = cachefmt.ReadRoot(ctx, g.store, fresh[k], g.pk)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	var idx []int32
	var readErr error
	sw.mu.Lock()
	for k, r := range roots {
		if errs[k] != nil && !ignorable(errs[k]) {
			readErr = cmp.Or(readErr, fmt.Errorf("cache gc: re-read %s: %w", fresh[k].Info.Key, errs[k]))
			continue
		}
		sw.m.seenRoot[fresh[k].Info.Key] = fresh[k].Info.Generation
		if r == nil {
			continue
		}
		sw.m.merge(r)
		for _, h := range r.Closure {
			if ph, ok := cachefmt.ParseHash(h); ok {
				if i := sw.m.cands.find(ph); i >= 0 {
					idx = append(idx, i)
				}
			}
		}
	}
	spared := sw.m.cands.spare(idx)
	sw.mu.Unlock()
	if err := sw.keepNARsOf(ctx, spared); err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	return ctx.Err()
}

// parallelRanges runs fn for each range, up to workers at once; the first
// error stops the rest.
func parallelRanges(ctx context.Context, ranges []cachefmt.Range, workers int, fn func(cachefmt.Range) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work.Parallel(ctx, len(ranges), workers, func(i int) {
		if err := fn(ranges[i]); err != nil {
			cancel(err)
		}
	})
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}
