package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
	"github.com/socioprophet/sourceos/internal/strictjson"
)

// WatermarkKey is where a clean audit records the store's time it
// started at, signed by the cache's key.
const WatermarkKey = cachefmt.AuditPrefix + "watermark.json"

// watermark is the object at WatermarkKey.
type watermark struct {
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	Sig     string    `json:"sig"`
}

// fingerprint is what the cache key signs: prefixed so that it stands for
// no narinfo, proof or root.
func (w watermark) fingerprint() string {
	return fmt.Sprintf("sourceos-cache-audit;%d;%s", w.Version, w.Time.UTC().Format(time.RFC3339Nano))
}

// startTime reads the store's clock when a clean run could record a
// watermark (the secret key is known): everything stored before it is
// what this run checks. Zero otherwise.
func (a *auditor) startTime(ctx context.Context) (time.Time, error) {
	if a.o.SecretKey == nil {
		return time.Time{}, nil
	}
	t, err := lease.NewClock(a.store, a.o.Now).Now(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("cache verify: %w", err)
	}
	return t, nil
}

// writeWatermark records that everything stored before start checked
// clean.
func (a *auditor) writeWatermark(ctx context.Context, start time.Time) error {
	w := watermark{Version: 1, Time: start.UTC()}
	sig, err := a.o.SecretKey.Sign(nil, w.fingerprint())
	if err != nil {
		return err
	}
	w.Sig = sig.String()
	body, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return a.store.Put(ctx, WatermarkKey, bytes.NewReader(body), blob.PutOptions{ContentType: "application/json", SizeHint: int64(len(body))})
}

// readWatermark returns the time of the last clean run, if its watermark
// verifies with the cache's key.
func (a *auditor) readWatermark(ctx context.Context) (time.Time, bool) {
	rc, err := a.store.Open(ctx, WatermarkKey)
	if err != nil {
		return time.Time{}, false
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return time.Time{}, false
	}
	var w watermark
	if err := strictjson.Unmarshal(b, &w); err != nil || w.Version != 1 || w.Time.IsZero() {
		return time.Time{}, false
	}
	sig, err := signature.ParseSignature(w.Sig)
	if err != nil || !a.pk.Verify(w.fingerprint(), sig) {
		a.o.Log.Warn("cache verify: the watermark does not verify with the cache's key; ignoring it", "key", WatermarkKey)
		return time.Time{}, false
	}
	return w.Time, true
}

// incremental checks the narinfos written since since that the roots
// stored since name: looked up in batches, each settled by its proof
// (its NAR looked up in batches, its references too, unless a path of
// those roots) or read.
func (a *auditor) incremental(ctx context.Context, since time.Time) error {
	a.count(func(r *Report) { r.Incremental, r.Since = true, since })
	hashes, err := a.newRootClosures(ctx, since)
	if err != nil {
		return err
	}
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = h + ".narinfo"
	}
	infos, errs := blob.StatMany(ctx, a.store, keys, a.o.Jobs)
	present := map[string]bool{}
	var fresh []blob.Info
	for i, err := range errs {
		switch {
		case errors.Is(err, blob.ErrNotFound):
			a.problem(keys[i], "missing, though a root stored since the last clean audit names it")
		case err != nil:
			return fmt.Errorf("cache verify: %w", err)
		default:
			present[hashes[i]] = true
			if !infos[i].Updated.Before(since) {
				fresh = append(fresh, infos[i])
			}
		}
	}
	a.count(func(r *Report) { r.Narinfos = len(fresh) })
	return a.checkFresh(ctx, fresh, present)
}

// maxNewRoots bounds the roots an incremental audit reads (each up to
// cachefmt.MaxRootSize): past it, the full audit is the one to run.
const maxNewRoots = 10_000

// newRootClosures is the union of the closures of the roots (not in
// flight) stored since since.
func (a *auditor) newRootClosures(ctx context.Context, since time.Time) ([]string, error) {
	var mu sync.Mutex
	var refs []cachefmt.RootRef
	err := cachefmt.ListEach(ctx, a.store, cachefmt.RootRanges(), listWorkers, func(i blob.Info) error {
		i.Metadata = nil
		if ref, ok := cachefmt.ParseRootKey(i); ok && !ref.InFlight && !i.Updated.Before(since) {
			mu.Lock()
			defer mu.Unlock()
			if len(refs) >= maxNewRoots {
				return fmt.Errorf("more than %d roots stored since the watermark: run the full cache:verify", maxNewRoots)
			}
			refs = append(refs, ref)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache verify: %w", err)
	}
	union := map[string]bool{}
	work.Parallel(ctx, len(refs), 16, func(i int) {
		r, err := cachefmt.ReadRoot(ctx, a.store, refs[i], a.pk)
		if err != nil {
			if !errors.Is(err, blob.ErrNotFound) {
				a.problem(refs[i].Info.Key, err.Error())
			}
			return
		}
		mu.Lock()
		for _, h := range r.Closure {
			union[h] = true
		}
		mu.Unlock()
	})
	out := make([]string, 0, len(union))
	for h := range union {
		out = append(out, h)
	}
	sort.Strings(out)
	return out, ctx.Err()
}

// checkFresh checks narinfos written since the watermark: a version 2
// proof settles one (its NAR and its references then looked up in
// batches); one without is read and checked as the full audit does.
func (a *auditor) checkFresh(ctx context.Context, fresh []blob.Info, present map[string]bool) error {
	type settled struct {
		key  string
		nar  cachefmt.NarRef
		refs []string
	}
	var byProof []settled
	var read []blob.Info
	for _, i := range fresh {
		if a.proving {
			if p, err := cachefmt.CheckProof(a.pk, i); err == nil && p.RefsKnown {
				byProof = append(byProof, settled{i.Key, p.NAR, p.Refs})
				continue
			}
		}
		read = append(read, i)
	}
	// NARs: the ones proofs name, looked up in batches.
	narKeys := make([]string, len(byProof))
	for i, s := range byProof {
		narKeys[i] = s.nar.Key
	}
	narInfos, narErrs := blob.StatMany(ctx, a.store, narKeys, a.o.Jobs)
	for i, s := range byProof {
		switch {
		case errors.Is(narErrs[i], blob.ErrNotFound):
			a.problem(s.key, "NAR "+s.nar.Key+" missing")
		case narErrs[i] != nil:
			return fmt.Errorf("cache verify: %w", narErrs[i])
		case !s.nar.Matches(narInfos[i]):
			a.problem(s.key, fmt.Sprintf("NAR %s is not the one uploaded: the store reports %d bytes, MD5 %x; the push proof says %d bytes, MD5 %x",
				s.nar.Key, narInfos[i].Size, narInfos[i].MD5, s.nar.Size, s.nar.MD5))
		}
	}
	a.count(func(r *Report) { r.NARs = len(byProof) })
	// References outside the roots' paths, looked up in batches.
	owners := map[string][]string{}
	for _, s := range byProof {
		for _, r := range s.refs {
			if !present[r] {
				owners[r] = append(owners[r], s.key)
			}
		}
	}
	// The narinfos without a settling proof are read, as a full audit
	// reads them (their references found among the roots' paths or
	// looked up with the others).
	c := &checker{a: a, nars: nil, names: &nameSet{}}
	var rmu sync.Mutex
	work.Parallel(ctx, len(read), a.o.Jobs, func(k int) {
		a.count(func(r *Report) { r.Read++ })
		_, ni, err := cachefmt.ReadNarinfo(ctx, a.store, read[k].Key)
		if err != nil {
			a.problem(read[k].Key, err.Error())
			return
		}
		trusted, proof, noProof := c.checkNarinfo(read[k], ni)
		narOK := a.checkNARByLookup(ctx, read[k].Key, ni, proof)
		if noProof && !(trusted && narOK && adoptable(ni)) {
			a.problem(read[k].Key, cachefmt.ErrNoProof.Error())
		} else if noProof {
			a.count(func(r *Report) { r.Adoptable++ })
		}
		rmu.Lock()
		for _, r := range cachefmt.RefHashes(ni) {
			if !present[r] {
				owners[r] = append(owners[r], read[k].Key)
			}
		}
		rmu.Unlock()
	})
	refs := make([]string, 0, len(owners))
	for r := range owners {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	keys := make([]string, len(refs))
	for i, r := range refs {
		keys[i] = r + ".narinfo"
	}
	_, errs := blob.StatMany(ctx, a.store, keys, a.o.Jobs)
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, blob.ErrNotFound):
			if !a.ups.Has(ctx, refs[i]) {
				for _, o := range owners[refs[i]] {
					a.problem(o, "reference "+refs[i]+" has no narinfo")
				}
			}
		default:
			return fmt.Errorf("cache verify: %w", err)
		}
	}
	return ctx.Err()
}

// checkNARByLookup checks the NAR a read narinfo names by looking it up:
// there, the one its proof names (size and MD5) or of its FileSize.
func (a *auditor) checkNARByLookup(ctx context.Context, key string, ni *narinfo.NarInfo, proof *cachefmt.NarRef) bool {
	info, err := a.store.Stat(ctx, ni.URL)
	switch {
	case err != nil:
		a.problem(key, "NAR "+ni.URL+" missing")
	case proof != nil && !proof.Matches(info):
		a.problem(key, fmt.Sprintf("NAR %s is not the one uploaded: the store reports %d bytes, MD5 %x; the push proof says %d bytes, MD5 %x",
			ni.URL, info.Size, info.MD5, proof.Size, proof.MD5))
	case ni.FileSize != 0 && uint64(info.Size) != ni.FileSize:
		a.problem(key, fmt.Sprintf("NAR %s has %d bytes, FileSize says %d", ni.URL, info.Size, ni.FileSize))
	default:
		return true
	}
	return false
}
