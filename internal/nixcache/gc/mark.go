package gc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
)

// marks is what the mark phase decided: the hash parts kept roots reach
// and the NARs kept (in proportion to the live set), and the candidates
// (compact, see table).
type marks struct {
	keep     map[cachefmt.Hash]struct{}
	keepNARs map[string]struct{}
	seenRoot map[string]int64 // the generation of each root object read or judged
	expired  []blob.Info      // roots to delete
	cands    *table
	// odd are narinfo-named objects that name no store path: deleted
	// when old, like any narinfo no root keeps.
	odd []blob.Info
	// narinfos and objects count what the mark listing saw.
	narinfos, objects int64
}

// listWorkers bounds the ranges GC lists at once: enough for the link's
// bandwidth and the CPUs decoding, few enough that the pages in flight
// (a thousand decoded objects each) stay small.
const listWorkers = 8

// mark reads the roots and lists every object but the NARs: what the kept
// roots' closures name is kept (with the NARs their narinfos name), every
// other narinfo becomes a candidate, and what young narinfos refer to,
// transitively, is spared.
func (g *collector) mark(ctx context.Context) (*marks, error) {
	// The count the last GC recorded sizes the table (about half the
	// objects are narinfos).
	hint := 0
	if s, ok := lease.ReadStats(ctx, g.store); ok {
		// Anyone who can write the bucket can write gc/stats: the hint
		// is capped (at 2M narinfos, about 90 MB), the table grows past it.
		hint = int(min(s.Objects/2+s.Objects/16, maxHint))
	}
	m := &marks{keep: map[cachefmt.Hash]struct{}{}, keepNARs: map[string]struct{}{}, seenRoot: map[string]int64{}, cands: newTable(hint)}
	if err := g.markRoots(ctx, m); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var needNAR []blob.Info // kept narinfos whose NAR only the narinfo names
	var needRead []int32    // candidates whose references only the narinfo gives
	var readInfo []blob.Info
	err := cachefmt.ListEach(ctx, g.store, cachefmt.OtherRanges(), listWorkers, func(i blob.Info) error {
		if !cachefmt.IsNarinfoKey(i.Key) {
			mu.Lock()
			m.objects++
			mu.Unlock()
			if i.Key != cachefmt.CacheInfoKey && !strings.HasPrefix(i.Key, cachefmt.RootsPrefix) && !strings.HasPrefix(i.Key, lease.Prefix) &&
				!strings.HasPrefix(i.Key, cachefmt.AuditPrefix) {
				g.count(func(s *Summary) { s.Other++ })
			}
			return nil
		}
		h, ok := cachefmt.ParseHash(cachefmt.HashOfKey(i.Key))
		young := g.young(i)
		// The proof is checked outside the lock: listing goroutines spread
		// the signature checks over the CPUs.
		var proof cachefmt.Proof
		var perr error = cachefmt.ErrNoProof
		if ok && g.proving {
			proof, perr = cachefmt.CheckProof(g.pk, i)
		}
		i.Metadata = nil // read: what is kept of an object is its name, size and generation
		mu.Lock()
		defer mu.Unlock()
		m.objects++
		m.narinfos++
		_, kept := m.keep[h]
		switch {
		case !ok:
			m.odd = append(m.odd, i)
		case kept && perr == nil:
			m.keepNARs[proof.NAR.Key] = struct{}{}
		case kept:
			needNAR = append(needNAR, i)
		default:
			idx := m.cands.add(h, i, young, proof.Refs, perr == nil && proof.RefsKnown)
			if perr == nil && young {
				m.keepNARs[proof.NAR.Key] = struct{}{}
				m.cands.flag[idx] |= fNARKept
			}
			if perr != nil || !proof.RefsKnown {
				needRead = append(needRead, idx)
				readInfo = append(readInfo, i)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache gc: %w", err)
	}
	if err := g.readKept(ctx, m, needNAR); err != nil {
		return nil, err
	}
	if err := g.readCandidates(ctx, m, needRead, readInfo); err != nil {
		return nil, err
	}
	m.cands.finish()
	var young []int32
	for i := range int32(m.cands.len()) {
		if m.cands.flag[i]&fYoung != 0 {
			young = append(young, i)
		}
	}
	spared := m.cands.spare(young)
	keys, idx := m.narsWanted(spared)
	nars, err := g.narsOf(ctx, keys)
	if err != nil {
		return nil, err
	}
	for k, nar := range nars {
		if nar != "" {
			m.keepNARs[nar] = struct{}{}
			m.cands.flag[idx[k]] |= fNARKept
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// maxHint bounds the candidate table's first size.
const maxHint = 1 << 21

// young says whether an object is within the grace period.
func (g *collector) young(i blob.Info) bool { return g.now.Sub(i.Updated) < g.opt.Grace }

// readKept learns the NAR of kept narinfos that carry no valid proof by
// reading them (only one signed by the cache's key names a NAR to keep).
func (g *collector) readKept(ctx context.Context, m *marks, infos []blob.Info) error {
	nars, err := g.readNARs(ctx, infos)
	for _, nar := range nars {
		if nar != "" {
			m.keepNARs[nar] = struct{}{}
		}
	}
	return err
}

// readNARs reads narinfos for the NAR each names ("" for one gone, one
// that does not verify with the cache's key, or one stored under another
// name). A narinfo the store could not give is an error: what it names
// would otherwise be deleted.
func (g *collector) readNARs(ctx context.Context, infos []blob.Info) ([]string, error) {
	out := make([]string, len(infos))
	errs := make([]error, len(infos))
	work.Parallel(ctx, len(infos), g.opt.Workers, func(k int) {
		_, ni, err := cachefmt.ReadNarinfo(ctx, g.store, infos[k].Key)
		switch {
		case cachefmt.Unreadable(err):
			errs[k] = fmt.Errorf("cache gc: read %s: %w", infos[k].Key, err)
		case err == nil && cachefmt.Verifies(ni, g.pk) && cachefmt.NarinfoKey(ni.StorePath) == infos[k].Key:
			out[k] = ni.URL
		}
	})
	if err := ctx.Err(); err != nil {
		return out, err
	}
	return out, errors.Join(errs...)
}

// readCandidates reads the narinfos whose proofs do not give their
// references (caches written before proofs recorded them, narinfos of
// another tool): only one signed by the cache's key is followed, so a
// planted one keeps nothing alive.
func (g *collector) readCandidates(ctx context.Context, m *marks, idx []int32, infos []blob.Info) error {
	var mu sync.Mutex
	errs := make([]error, len(idx))
	work.Parallel(ctx, len(idx), g.opt.Workers, func(k int) {
		_, ni, err := cachefmt.ReadNarinfo(ctx, g.store, infos[k].Key)
		if cachefmt.Unreadable(err) {
			// A young one's references would go unprotected.
			errs[k] = fmt.Errorf("cache gc: read %s: %w", infos[k].Key, err)
			return
		}
		if err != nil || !cachefmt.Verifies(ni, g.pk) || cachefmt.NarinfoKey(ni.StorePath) != infos[k].Key {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		m.cands.setRefs(idx[k], cachefmt.RefHashes(ni))
		if m.cands.flag[idx[k]]&fYoung != 0 {
			m.keepNARs[ni.URL] = struct{}{}
			m.cands.flag[idx[k]] |= fNARKept
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// narsWanted is the narinfo keys of the spared candidates whose NAR is
// not known to be kept yet, with their indexes.
func (m *marks) narsWanted(spared []int32) (keys []string, idx []int32) {
	for _, i := range spared {
		if m.cands.flag[i]&fNARKept == 0 {
			keys = append(keys, m.cands.key(i))
			idx = append(idx, i)
		}
	}
	return keys, idx
}

// narsOf looks narinfos up (batched) for the NAR each names, from its
// proof or, without one, by reading it; "" for one gone or not ours. The
// table holds no NAR names: spared candidates are few. A look-up the
// store failed is an error: the NAR of a spared narinfo would otherwise
// be deleted.
func (g *collector) narsOf(ctx context.Context, keys []string) ([]string, error) {
	out := make([]string, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	infos, errs := blob.StatMany(ctx, g.store, keys, g.opt.Workers)
	var read []blob.Info
	var at []int
	var failed []error
	for k, err := range errs {
		if errors.Is(err, blob.ErrNotFound) {
			continue // gone: nothing to keep
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("cache gc: look up %s: %w", keys[k], err))
			continue
		}
		if g.proving {
			if p, perr := cachefmt.CheckProof(g.pk, infos[k]); perr == nil {
				out[k] = p.NAR.Key
				continue
			}
		}
		read = append(read, infos[k])
		at = append(at, k)
	}
	nars, err := g.readNARs(ctx, read)
	for j, nar := range nars {
		out[at[j]] = nar
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	return out, errors.Join(append(failed, err)...)
}

// markRoots lists the roots, decides which are kept (see nameRoots) and
// merges what the kept ones name into m.
func (g *collector) markRoots(ctx context.Context, m *marks) error {
	refs, err := g.listRoots(ctx, m)
	if err != nil {
		return err
	}
	byName := map[string][]cachefmt.RootRef{}
	for _, ref := range refs {
		byName[ref.Name] = append(byName[ref.Name], ref)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var mu sync.Mutex
	var firstErr error
	work.Parallel(ctx, len(names), 16, func(k int) {
		kept, expired, err := g.nameRoots(ctx, byName[names[k]])
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		m.expired = append(m.expired, expired...)
		for _, r := range kept {
			m.merge(r)
		}
	})
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if g.sum.Roots.Kept == 0 {
		return fmt.Errorf("%w: %d objects under %s, none verifies with %s (a cache pushed before roots existed, or the wrong NIX_CACHE_PUBKEY); push the closures to keep first", errNoRoots, len(refs), cachefmt.RootsPrefix, g.pk.Name)
	}
	sort.Slice(m.expired, func(i, j int) bool { return m.expired[i].Key < m.expired[j].Key })
	return nil
}

// listRoots lists the objects under roots/ and returns those named as
// roots (counting the others as objects GC does not manage).
func (g *collector) listRoots(ctx context.Context, m *marks) ([]cachefmt.RootRef, error) {
	var mu sync.Mutex
	var refs []cachefmt.RootRef
	count := 0
	err := cachefmt.ListEach(ctx, g.store, cachefmt.RootRanges(), listWorkers, func(i blob.Info) error {
		mu.Lock()
		defer mu.Unlock()
		if count++; count > maxRoots {
			return fmt.Errorf("cache gc: more than %d objects under %s; refusing to run", maxRoots, cachefmt.RootsPrefix)
		}
		m.seenRoot[i.Key] = i.Generation
		i.Metadata = nil
		ref, ok := cachefmt.ParseRootKey(i)
		if !ok {
			g.count(func(s *Summary) { s.Other++ })
			return nil
		}
		refs = append(refs, ref)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache gc: %w", err)
	}
	return refs, nil
}

// merge adds what r keeps.
func (m *marks) merge(r *cachefmt.Root) {
	for _, h := range r.Closure {
		if ph, ok := cachefmt.ParseHash(h); ok {
			m.keep[ph] = struct{}{}
		}
	}
	for _, k := range r.NARs {
		m.keepNARs[k] = struct{}{}
	}
}

// nameRoots settles the roots of one name: in-flight roots live while
// young, pinned and recent ones are kept, and so are the newest KeepLast
// that verify; the others expire. A root that does not verify is ignored
// (neither kept nor counted) and left in place. The roots kept whatever
// their rank are read at once; then, newest first, as many more as
// KeepLast still wants.
//
// A root's age is the store's (how long ago the store stamped it), never
// the time it names: that is the pushing machine's clock, which may be
// off. The time it names (signed) only orders the roots of a name for
// KeepLast, so a root copied again later does not displace newer ones.
func (g *collector) nameRoots(ctx context.Context, refs []cachefmt.RootRef) (kept []*cachefmt.Root, expired []blob.Info, err error) {
	sort.Slice(refs, func(i, j int) bool { return refs[i].Time.After(refs[j].Time) })
	keepDays := time.Duration(g.opt.KeepDays) * 24 * time.Hour
	sure := make([]bool, len(refs)) // kept whatever its rank
	for i, ref := range refs {
		age := g.now.Sub(ref.Info.Updated)
		sure[i] = (ref.InFlight && age < g.opt.Grace) || (!ref.InFlight && (ref.Pinned || age < keepDays))
	}
	read := make([]*cachefmt.Root, len(refs))
	readErr := make([]error, len(refs))
	work.Parallel(ctx, len(refs), 16, func(i int) {
		if sure[i] {
			read[i], readErr[i] = cachefmt.ReadRoot(ctx, g.store, refs[i], g.pk)
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	counted := 0
	for i, ref := range refs {
		age := g.now.Sub(ref.Info.Updated)
		if !sure[i] && (ref.InFlight || counted >= g.opt.KeepLast) {
			if ref.InFlight || age >= g.opt.Grace {
				expired = append(expired, ref.Info)
			}
			continue
		}
		if !sure[i] {
			read[i], readErr[i] = cachefmt.ReadRoot(ctx, g.store, ref, g.pk)
		}
		if readErr[i] != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if !ignorable(readErr[i]) {
				return nil, nil, fmt.Errorf("cache gc: read %s: %w", ref.Info.Key, readErr[i])
			}
			g.opt.Log.Warn("cache gc: ignoring a root", "root", ref.Info.Key, "err", readErr[i])
			g.count(func(s *Summary) { s.Roots.Ignored++ })
			continue
		}
		if !ref.InFlight {
			counted++
		}
		g.count(func(s *Summary) { s.Roots.Kept++ })
		kept = append(kept, read[i])
	}
	return kept, expired, nil
}

// ignorable says whether a root that could not be used may be ignored:
// it is not a valid root (planted, or made with another key), or it was
// deleted since it was listed. Any other failure (the store's) must stop
// GC: ignoring a root would delete what it keeps.
func ignorable(err error) bool {
	return errors.Is(err, cachefmt.ErrInvalidRoot) || errors.Is(err, blob.ErrNotFound)
}

// count updates the summary.
func (g *collector) count(fn func(*Summary)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fn(&g.sum)
}
