package gc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
)

// sweep deletes what p plans: narinfos in waves (a narinfo only once no
// narinfo left refers to it), then NARs, then expired roots. Before each
// delete, what it relies on is at most sw.g.opt.Window/2 old: the roots and
// narinfos are listed again (refresh) whenever that much time passed, and
// whatever a new root or a new narinfo needs is spared.
func (g *collector) sweep(ctx context.Context, p *plan) error {
	sw := &sweeper{g: g, p: p}
	if err := sw.refresh(ctx); err != nil {
		return err
	}
	for _, wave := range p.waves() {
		if err := sw.run(ctx, wave, sw.deleteNarinfo); err != nil {
			return err
		}
	}
	if err := sw.run(ctx, p.nars, sw.deleteNAR); err != nil {
		return err
	}
	if err := sw.run(ctx, p.roots, sw.deleteRoot); err != nil {
		return err
	}
	return sw.err
}

type sweeper struct {
	g         *collector
	p         *plan
	refreshed time.Time
	mu        sync.Mutex // the plan, while deletes run
	emu       sync.Mutex
	err       error
}

// run deletes keys, refreshing the plan whenever it is sw.g.opt.Window/2 old;
// del is called from several goroutines.
func (sw *sweeper) run(ctx context.Context, keys []string, del func(context.Context, string)) error {
	for len(keys) > 0 {
		if time.Since(sw.refreshed) >= sw.g.opt.Window/2 {
			if err := sw.refresh(ctx); err != nil {
				return err
			}
		}
		deadline := sw.refreshed.Add(sw.g.opt.Window / 2)
		left := make([]bool, len(keys))
		work.Parallel(ctx, len(keys), sw.g.opt.Workers, func(i int) {
			if sw.g.opt.BeforeDelete != nil {
				sw.g.opt.BeforeDelete(keys[i])
			}
			if time.Now().After(deadline) {
				left[i] = true // for after the next refresh
				return
			}
			del(ctx, keys[i])
		})
		if err := ctx.Err(); err != nil {
			return err
		}
		var rest []string
		for i, l := range left {
			if l {
				rest = append(rest, keys[i])
			}
		}
		if len(rest) == len(keys) {
			sw.refreshed = time.Time{} // the window ran out before any delete
		}
		keys = rest
	}
	return nil
}

// refresh lists the cache again and spares what changed or appeared: a
// rewritten or new narinfo (and what it refers to), a new root.
func (sw *sweeper) refresh(ctx context.Context) error {
	sw.refreshed = time.Now()
	g, p := sw.g, sw.p
	var changed []*entry
	var roots []cachefmt.RootRef
	err := cachefmt.List(ctx, g.store, nil, func(i blob.Info) {
		old, ok := p.objects[i.Key]
		if ok && old.info.Generation == i.Generation {
			return
		}
		switch {
		case cachefmt.IsNarinfoKey(i.Key):
			e := &entry{info: i}
			p.objects[i.Key] = e
			changed = append(changed, e)
		case strings.HasPrefix(i.Key, cachefmt.RootsPrefix) && !p.seenRoot[i.Key]:
			p.seenRoot[i.Key] = true
			if ref, ok := cachefmt.ParseRootKey(i); ok {
				roots = append(roots, ref)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("cache gc: %w", err)
	}
	g.readAll(ctx, changed)
	var hashes []string
	for _, e := range changed {
		hashes = append(hashes, cachefmt.HashOfKey(e.info.Key))
	}
	for _, ref := range roots {
		r, err := cachefmt.ReadRoot(ctx, g.store, ref, g.pk)
		if err != nil {
			continue
		}
		p.merge(r)
		hashes = append(hashes, r.Closure...)
	}
	p.spare(hashes)
	return ctx.Err()
}

func (sw *sweeper) fail(err error) {
	sw.emu.Lock()
	defer sw.emu.Unlock()
	if sw.err == nil {
		sw.err = err
	}
}

// deleteNarinfo deletes a narinfo unless it is now kept; one that
// changed since it was listed is spared, with what it refers to.
func (sw *sweeper) deleteNarinfo(ctx context.Context, key string) {
	h := cachefmt.HashOfKey(key)
	sw.mu.Lock()
	kept, e := sw.p.keep[h], sw.p.objects[key]
	sw.mu.Unlock()
	if kept {
		sw.spared()
		return
	}
	if errors.Is(sw.deleteIf(ctx, e), blob.ErrChanged) {
		sw.mu.Lock()
		sw.p.spare([]string{h})
		sw.mu.Unlock()
	}
}

// deleteNAR deletes a NAR unless a kept narinfo names it now.
func (sw *sweeper) deleteNAR(ctx context.Context, key string) {
	sw.mu.Lock()
	kept, e := sw.p.keepNARs[key], sw.p.objects[key]
	sw.mu.Unlock()
	if kept {
		sw.spared()
		return
	}
	sw.deleteIf(ctx, e)
}

func (sw *sweeper) deleteRoot(ctx context.Context, key string) {
	sw.mu.Lock()
	e := sw.p.objects[key]
	sw.mu.Unlock()
	sw.deleteIf(ctx, e)
}

// deleteIf deletes the version of e that was listed and counts it.
func (sw *sweeper) deleteIf(ctx context.Context, e *entry) error {
	err := sw.g.store.DeleteIf(ctx, e.info.Key, e.info.Generation)
	g := sw.g
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case err == nil:
		g.sum.FreedObjects++
		g.sum.FreedBytes += e.info.Size
		switch {
		case cachefmt.IsNarinfoKey(e.info.Key):
			g.sum.Narinfos.Deleted++
		case strings.HasPrefix(e.info.Key, "nar/"):
			g.sum.NARs.Deleted++
		default:
			g.sum.Roots.Deleted++
		}
	case errors.Is(err, blob.ErrChanged):
		g.sum.Spared++
	case errors.Is(err, blob.ErrNotFound):
	default:
		sw.fail(err)
	}
	return err
}

func (sw *sweeper) spared() {
	sw.g.mu.Lock()
	sw.g.sum.Spared++
	sw.g.mu.Unlock()
}

// waves orders the narinfos to delete so that each comes after every
// narinfo to delete that refers to it; references in a cycle (which Nix
// never makes; a planted narinfo might) go last.
func (p *plan) waves() [][]string {
	doomed := map[string]bool{}
	for _, k := range p.narinfos {
		doomed[cachefmt.HashOfKey(k)] = true
	}
	referrers := map[string]int{}
	for _, k := range p.narinfos {
		h := cachefmt.HashOfKey(k)
		for _, r := range p.objects[k].refs {
			if r != h && doomed[r] {
				referrers[r]++
			}
		}
	}
	var waves [][]string
	var wave []string
	for _, k := range p.narinfos {
		if referrers[cachefmt.HashOfKey(k)] == 0 {
			wave = append(wave, k)
		}
	}
	placed := map[string]bool{}
	for len(wave) > 0 {
		waves = append(waves, wave)
		var next []string
		for _, k := range wave {
			placed[k] = true
			h := cachefmt.HashOfKey(k)
			for _, r := range p.objects[k].refs {
				if r == h || !doomed[r] {
					continue
				}
				if referrers[r]--; referrers[r] == 0 {
					next = append(next, r+".narinfo")
				}
			}
		}
		wave = next
	}
	var rest []string
	for _, k := range p.narinfos {
		if !placed[k] {
			rest = append(rest, k)
		}
	}
	if len(rest) > 0 {
		waves = append(waves, rest)
	}
	return waves
}
