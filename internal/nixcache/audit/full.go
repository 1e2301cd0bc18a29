package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nix-community/go-nix/pkg/narinfo"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
)

// full audits the whole cache: the NARs are listed into a set, then the
// other objects; each narinfo is settled by its proof where it can be
// (no read), read otherwise (by workers fed while the listing runs), and
// the references are checked against the set of narinfos at the end.
func (a *auditor) full(ctx context.Context) error {
	nars := newNARSet()
	n := 0
	var nmu sync.Mutex
	err := cachefmt.ListEach(ctx, a.store, cachefmt.NARRanges(), listWorkers, func(i blob.Info) error {
		nars.add(i)
		nmu.Lock()
		n++
		nmu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache verify: %w", err)
	}
	nars.sort()
	a.count(func(r *Report) { r.NARs = n })

	c := &checker{a: a, nars: nars, names: &nameSet{hashes: make([]cachefmt.Hash, 0, n)}, refs: make([]refCheck, 0, 2*n)}
	reads := make(chan blob.Info, 1024)
	var wg sync.WaitGroup
	for range a.o.Jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range reads {
				c.readAndCheck(ctx, i)
			}
		}()
	}
	sawInfo := false
	var imu sync.Mutex
	err = cachefmt.ListEach(ctx, a.store, cachefmt.OtherRanges(), listWorkers, func(i blob.Info) error {
		switch {
		case i.Key == cachefmt.CacheInfoKey:
			imu.Lock()
			sawInfo = true
			imu.Unlock()
		case cachefmt.IsNarinfoKey(i.Key):
			if !c.settle(i) {
				select {
				case reads <- i:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return nil
	})
	close(reads)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("cache verify: %w", err)
	}
	if !sawInfo {
		a.problem(cachefmt.CacheInfoKey, "missing")
	}
	c.names.sort()
	c.checkRefs(ctx)
	return nil
}

// checker checks narinfos against the sets of a full audit.
type checker struct {
	a     *auditor
	nars  *narSet
	names *nameSet

	mu      sync.Mutex
	refs    []refCheck
	oddRefs []oddRef
}

// oddRef is a reference of a narinfo whose name is no hash part.
type oddRef struct {
	key string
	ref cachefmt.Hash
}

// settle checks a listed narinfo from its push proof alone, if it can:
// a version 2 proof that verifies and records the references, in a
// shallow audit. It returns false when the narinfo must be read.
func (c *checker) settle(i blob.Info) bool {
	a := c.a
	h, ok := cachefmt.ParseHash(cachefmt.HashOfKey(i.Key))
	if !ok {
		return false
	}
	c.names.add(h)
	a.count(func(r *Report) { r.Narinfos++ })
	if !a.proving || a.deep {
		return false
	}
	p, err := cachefmt.CheckProof(a.pk, i)
	if err != nil || !p.RefsKnown {
		return false
	}
	c.checkNAR(i.Key, p.NAR.Key, p.NAR, true)
	c.addRefs(i.Key, p.Refs)
	return true
}

// readAndCheck reads a narinfo and checks it as the body says, with its
// proof where the store keeps them; a deep audit then checks its NAR.
func (c *checker) readAndCheck(ctx context.Context, i blob.Info) {
	a := c.a
	h, named := cachefmt.ParseHash(cachefmt.HashOfKey(i.Key))
	if !named {
		a.count(func(r *Report) { r.Narinfos++ })
	}
	a.count(func(r *Report) { r.Read++ })
	_, ni, err := cachefmt.ReadNarinfo(ctx, a.store, i.Key)
	if err != nil {
		if !errors.Is(err, blob.ErrNotFound) {
			a.problem(i.Key, err.Error())
		} else if named {
			// Deleted since it was listed: nothing to check, and nothing
			// to resolve a reference either.
			c.names.drop(h)
		}
		return
	}
	trusted, proof, noProof := c.checkNarinfo(i, ni)
	narOK := false
	if proof != nil {
		narOK = c.checkNAR(i.Key, ni.URL, *proof, true)
	} else {
		narOK = c.checkNAR(i.Key, ni.URL, cachefmt.NarRef{Size: int64(ni.FileSize)}, false)
	}
	if noProof && trusted && narOK && adoptable(ni) {
		a.count(func(r *Report) { r.Adoptable++ })
	} else if noProof {
		a.problem(i.Key, cachefmt.ErrNoProof.Error())
	}
	c.addRefs(i.Key, cachefmt.RefHashes(ni))
	if narOK && a.deep {
		if !trusted {
			a.problem(i.Key, "NAR "+ni.URL+" not downloaded: its narinfo does not verify")
		} else if err := a.deepCheck(ctx, ni); err != nil {
			a.problem(i.Key, err.Error())
		}
	}
}

// checkNarinfo checks what the narinfo says of itself: its store path and
// its signature (trusted) and, on a proving store, its push proof, whose
// NAR it returns when the proof verifies and names the narinfo's NAR.
// noProof: the store keeps proofs and this narinfo carries none.
func (c *checker) checkNarinfo(i blob.Info, ni *narinfo.NarInfo) (trusted bool, proof *cachefmt.NarRef, noProof bool) {
	a := c.a
	trusted = true
	if cachefmt.NarinfoKey(ni.StorePath) != i.Key {
		a.problem(i.Key, "StorePath "+ni.StorePath+" does not match the object name")
		trusted = false
	}
	if !cachefmt.Verifies(ni, a.pk) {
		a.problem(i.Key, "no signature verifies with "+a.pk.Name)
		trusted = false
	}
	if !a.proving {
		return trusted, nil, false
	}
	// A narinfo without a valid proof may still be sound (written by
	// another tool, or before proofs): a push will replace it, and a deep
	// audit still checks its NAR if its signature verifies.
	pr, err := cachefmt.CheckProof(a.pk, i)
	switch {
	case errors.Is(err, cachefmt.ErrNoProof):
		return trusted, nil, true
	case err != nil:
		a.problem(i.Key, err.Error())
		return trusted, nil, false
	case pr.NAR.Key != ni.URL:
		a.problem(i.Key, "push proof names "+pr.NAR.Key+", the narinfo "+ni.URL)
		return trusted, nil, false
	}
	return trusted, &pr.NAR, false
}

// adoptable says whether ni is how nix copy writes a narinfo: its NAR
// named by its file hash. (A narinfo of ours whose proof was stripped
// names its NAR by the NarHash, and is a problem.)
func adoptable(ni *narinfo.NarInfo) bool {
	c, err := cachefmt.CodecFor(ni.Compression)
	return err == nil && ni.FileHash != nil && ni.URL == cachefmt.FileKey(ni.FileHash.Digest(), c, "")
}

// checkNAR checks the listed NAR of narinfo key: exact, that it is the one
// a proof names (size and MD5); otherwise that it is there with
// nar.Size bytes (0: any). It says whether it is.
func (c *checker) checkNAR(key, url string, nar cachefmt.NarRef, exact bool) bool {
	s := c.nars
	switch {
	case !s.has(url):
		c.a.problem(key, "NAR "+url+" missing")
	case exact && !s.matches(nar):
		c.a.problem(key, fmt.Sprintf("NAR %s is not the one uploaded: the push proof says %d bytes, MD5 %x, and the store lists other ones", url, nar.Size, nar.MD5))
	case !exact && nar.Size != 0 && !s.hasSized(url, nar.Size):
		c.a.problem(key, fmt.Sprintf("NAR %s does not have the %d bytes FileSize says", url, nar.Size))
	default:
		return true
	}
	return false
}

func (c *checker) addRefs(key string, refs []string) {
	owner, ok := cachefmt.ParseHash(cachefmt.HashOfKey(key))
	var add []refCheck
	var odd []oddRef
	for _, r := range refs {
		h, rok := cachefmt.ParseHash(r)
		switch {
		case !rok:
			c.a.problem(key, "reference "+r+" is not a store path")
		case !ok: // a narinfo named otherwise (a problem already)
			odd = append(odd, oddRef{key, h})
		default:
			add = append(add, refCheck{ref: h, owner: owner})
		}
	}
	c.mu.Lock()
	c.refs = append(c.refs, add...)
	c.oddRefs = append(c.oddRefs, odd...)
	c.mu.Unlock()
}

// checkRefs checks every reference against the narinfos listed (or an
// upstream).
func (c *checker) checkRefs(ctx context.Context) {
	for _, r := range c.refs {
		if !c.names.has(r.ref) && !c.a.ups.Has(ctx, r.ref.String()) {
			c.a.problem(r.owner.String()+".narinfo", "reference "+r.ref.String()+" has no narinfo")
		}
	}
	for _, r := range c.oddRefs {
		if !c.names.has(r.ref) && !c.a.ups.Has(ctx, r.ref.String()) {
			c.a.problem(r.key, "reference "+r.ref.String()+" has no narinfo")
		}
	}
}
