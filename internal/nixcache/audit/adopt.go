package audit

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// A cache written by another pipeline with the cache's key (nix copy to
// a directory, then an upload: narinfos signed by the key, NARs named by
// their file hash, no push proofs, no roots) is sound for Nix but not yet
// ours: pushes would upload its paths again (nothing proves them present)
// and GC would refuse to run (no root) or, once roots exist, collect it.
// Adopt makes it ours without uploading any NAR:
//
//   - every narinfo without a valid push proof is read and checked as a
//     deep audit checks it (its store path, its signature by the cache's
//     key, its NAR downloaded, decompressed and matched against FileHash,
//     NarHash and NarSize), and every reference must resolve;
//   - on a store that keeps proofs, the narinfo is written again, the same
//     bytes, with the push proof of the NAR as the store holds it (size and
//     MD5, the MD5 of the very bytes checked), conditioned on the version
//     read;
//   - a root (or several, of at most RootChunk paths each) names every
//     path adopted and what they refer to: GC keeps them as it keeps any
//     root's closure, as the newest roots of their name, until removed.
//
// A narinfo that does not check out is left alone and reported.

// AdoptOptions configure Adopt.
type AdoptOptions struct {
	Store blob.Store
	// SecretKey signs the proofs and the roots; its public half is what
	// the narinfos must be signed by.
	SecretKey *signature.SecretKey
	// RootName names the roots (default "adopted"); Pin pins them.
	RootName string
	Pin      bool
	// BuildID identifies the adoption in the roots' names.
	BuildID string
	// Jobs bounds the requests in flight (default 32).
	Jobs int
	Now  func() time.Time
}

// AdoptReport is what Adopt did.
type AdoptReport struct {
	// Adopted narinfos (proofs recorded, or, in a directory, checked).
	Adopted int `json:"adopted"`
	// Ours: narinfos that already carried a valid push proof.
	Ours int `json:"ours"`
	// Roots recorded.
	Roots []string `json:"roots"`
	// Problems are the narinfos left alone, and why.
	Problems []Problem `json:"problems"`
}

// RootChunk is the most paths one adoption root names (a root holds at
// most cachefmt.MaxRootSize bytes).
const RootChunk = 150_000

// Adopt adopts the narinfos of a cache written with the cache's key but
// without push proofs (see above).
func Adopt(ctx context.Context, o AdoptOptions) (AdoptReport, error) {
	if o.Store == nil || o.SecretKey == nil {
		return AdoptReport{}, errors.New("cache adopt: needs the store and the secret key")
	}
	if o.RootName == "" {
		o.RootName = "adopted"
	}
	if o.Jobs <= 0 {
		o.Jobs = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BuildID == "" {
		o.BuildID = "adopt-" + o.Now().UTC().Format("20060102T150405Z")
	}
	ad := &adopter{o: o, pk: o.SecretKey.ToPublicKey(), proving: cachefmt.Proving(o.Store),
		a: &auditor{o: Options{Store: o.Store}.withDefaults(), store: o.Store, pk: o.SecretKey.ToPublicKey(),
			deepSlots: make(chan struct{}, deepJobs)}}
	return ad.run(ctx)
}

type adopter struct {
	o       AdoptOptions
	pk      signature.PublicKey
	proving bool
	a       *auditor // its deep check

	mu    sync.Mutex
	rep   AdoptReport
	names map[string]bool     // hash parts of every narinfo listed
	refs  map[string][]string // adopted (and ours): hash part -> references
	paths map[string]string   // adopted: hash part -> store path
}

func (ad *adopter) problem(key, msg string) {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	ad.rep.Problems = append(ad.rep.Problems, Problem{Key: key, Message: msg})
}

func (ad *adopter) run(ctx context.Context) (AdoptReport, error) {
	ad.names, ad.refs, ad.paths = map[string]bool{}, map[string][]string{}, map[string]string{}
	var todo, oursNoRefs []blob.Info
	err := cachefmt.ListEach(ctx, ad.o.Store, cachefmt.OtherRanges(), listWorkers, func(i blob.Info) error {
		if !cachefmt.IsNarinfoKey(i.Key) {
			return nil
		}
		h := cachefmt.HashOfKey(i.Key)
		var p cachefmt.Proof
		err := cachefmt.ErrNoProof
		if ad.proving {
			p, err = cachefmt.CheckProof(ad.pk, i)
		}
		ad.mu.Lock()
		defer ad.mu.Unlock()
		ad.names[h] = true
		switch {
		case err == nil && p.RefsKnown:
			ad.rep.Ours++
			ad.refs[h] = p.Refs
		case err == nil: // an older proof: ours, its references in the narinfo
			ad.rep.Ours++
			oursNoRefs = append(oursNoRefs, i)
		default:
			todo = append(todo, i)
		}
		return nil
	})
	if err != nil {
		return ad.rep, fmt.Errorf("cache adopt: %w", err)
	}
	work.Parallel(ctx, len(oursNoRefs), ad.o.Jobs, func(k int) {
		if _, ni, err := cachefmt.ReadNarinfo(ctx, ad.o.Store, oursNoRefs[k].Key); err == nil {
			ad.mu.Lock()
			ad.refs[cachefmt.HashOfKey(oursNoRefs[k].Key)] = cachefmt.RefHashes(ni)
			ad.mu.Unlock()
		}
	})
	sort.Slice(todo, func(i, j int) bool { return todo[i].Key < todo[j].Key })
	good := make([]*checked, len(todo))
	work.Parallel(ctx, len(todo), ad.o.Jobs, func(k int) { good[k] = ad.check(ctx, todo[k]) })
	if err := ctx.Err(); err != nil {
		return ad.rep, err
	}
	ad.dropUnresolved(todo, good)
	work.Parallel(ctx, len(todo), ad.o.Jobs, func(k int) {
		if c := good[k]; c != nil {
			ad.prove(ctx, todo[k], c)
		}
	})
	if err := ctx.Err(); err != nil {
		return ad.rep, err
	}
	if err := ad.recordRoots(ctx); err != nil {
		return ad.rep, err
	}
	sort.Slice(ad.rep.Problems, func(i, j int) bool { return ad.rep.Problems[i].String() < ad.rep.Problems[j].String() })
	return ad.rep, nil
}

// checked is a narinfo that checked out, with the NAR object as checked.
type checked struct {
	ni  *narinfo.NarInfo
	nar blob.Info
}

// check reads a narinfo without a valid proof and checks it deeply: the
// NAR's bytes are downloaded once, checked against the narinfo and, on a
// store that keeps checksums, against the MD5 the store lists (so the
// proof written names the very bytes checked). nil when it does not check
// out (reported).
func (ad *adopter) check(ctx context.Context, i blob.Info) *checked {
	_, ni, err := cachefmt.ReadNarinfo(ctx, ad.o.Store, i.Key)
	switch {
	case err != nil:
		ad.problem(i.Key, err.Error())
		return nil
	case cachefmt.NarinfoKey(ni.StorePath) != i.Key:
		ad.problem(i.Key, "StorePath "+ni.StorePath+" does not match the object name")
		return nil
	case !cachefmt.Verifies(ni, ad.pk):
		ad.problem(i.Key, "no signature verifies with "+ad.pk.Name+": not adopted")
		return nil
	}
	nar, err := ad.o.Store.Stat(ctx, ni.URL)
	if err != nil {
		ad.problem(i.Key, "NAR "+ni.URL+": "+err.Error())
		return nil
	}
	sum := md5.New()
	if err := ad.a.deepCheckTo(ctx, ni, sum); err != nil {
		ad.problem(i.Key, err.Error())
		return nil
	}
	if ad.proving && !bytes.Equal(sum.Sum(nil), nar.MD5) {
		ad.problem(i.Key, "NAR "+ni.URL+" changed while being checked: not adopted")
		return nil
	}
	return &checked{ni: ni, nar: nar}
}

// dropUnresolved drops (and reports) the checked narinfos whose
// references do not all resolve, transitively: adopting one would give a
// root a closure Nix cannot substitute.
func (ad *adopter) dropUnresolved(todo []blob.Info, good []*checked) {
	refs := map[string][]string{}
	for k, c := range good {
		if c != nil {
			refs[cachefmt.HashOfKey(todo[k].Key)] = cachefmt.RefHashes(c.ni)
		}
	}
	for changed := true; changed; {
		changed = false
		for k, c := range good {
			if c == nil {
				continue
			}
			h := cachefmt.HashOfKey(todo[k].Key)
			for _, r := range refs[h] {
				_, adoptable := refs[r]
				_, ours := ad.refs[r]
				if r != h && !adoptable && !ours {
					ad.problem(todo[k].Key, "reference "+r+" has no narinfo that is ours or adoptable: not adopted")
					good[k] = nil
					delete(refs, h)
					changed = true
					break
				}
			}
		}
	}
}

// prove records a checked narinfo's push proof (the same bytes written
// again with it, if the store still holds the version read and the NAR
// as checked), or, on a store without proofs, just counts it.
func (ad *adopter) prove(ctx context.Context, i blob.Info, c *checked) {
	ni := c.ni
	h := cachefmt.HashOfKey(i.Key)
	refs := cachefmt.RefHashes(ni)
	if ad.proving {
		if err := ad.writeProof(ctx, i, c, refs); err != nil {
			ad.problem(i.Key, "not adopted: "+err.Error())
			return
		}
	}
	ad.mu.Lock()
	defer ad.mu.Unlock()
	ad.rep.Adopted++
	ad.refs[h] = refs
	ad.paths[h] = ni.StorePath
}

// writeProof writes narinfo i again, the same bytes, with its proof of
// the NAR as checked; only if it is still the version read.
func (ad *adopter) writeProof(ctx context.Context, i blob.Info, c *checked, refs []string) error {
	body, ni, err := cachefmt.ReadNarinfo(ctx, ad.o.Store, i.Key)
	if err != nil || ni.String() != c.ni.String() {
		return errors.New("changed while being adopted")
	}
	meta, err := cachefmt.MakeProof(*ad.o.SecretKey, i.Key, body, cachefmt.NarRef{Key: c.ni.URL, Size: c.nar.Size, MD5: c.nar.MD5}, refs)
	if err != nil {
		return err
	}
	return ad.o.Store.Put(ctx, i.Key, bytes.NewReader(body), blob.PutOptions{ContentType: cachefmt.NarinfoType,
		IfGeneration: i.Generation, Metadata: meta, SizeHint: int64(len(body))})
}

// recordRoots writes the roots naming the adopted paths and the closure
// they refer to, RootChunk paths a root at most.
func (ad *adopter) recordRoots(ctx context.Context) error {
	if len(ad.paths) == 0 {
		return nil
	}
	closure := map[string]bool{}
	var stack []string
	for h := range ad.paths {
		stack = append(stack, h)
	}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if closure[h] {
			continue
		}
		closure[h] = true
		stack = append(stack, ad.refs[h]...)
	}
	hashes := make([]string, 0, len(closure))
	for h := range closure {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	tops := ad.tops()
	now := ad.o.Now().UTC().Truncate(time.Second)
	for part := 0; part*RootChunk < len(hashes); part++ {
		chunk := hashes[part*RootChunk : min(len(hashes), (part+1)*RootChunk)]
		name := ad.o.RootName
		if len(hashes) > RootChunk {
			name = cachefmt.RootName(ad.o.RootName, fmt.Sprint(part))
		}
		var paths []string
		in := map[string]bool{}
		for _, h := range chunk {
			in[h] = true
		}
		for _, p := range tops {
			if in[nixstore.HashPart(p)] {
				paths = append(paths, p)
			}
		}
		r := &cachefmt.Root{Version: cachefmt.RootVersion, Name: name, BuildID: ad.o.BuildID, Time: now, Pinned: ad.o.Pin,
			Paths: paths, Closure: chunk}
		if err := r.Sign(*ad.o.SecretKey); err != nil {
			return err
		}
		body, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := ad.o.Store.Put(ctx, r.Key(), bytes.NewReader(body), blob.PutOptions{ContentType: "application/json", SizeHint: int64(len(body))}); err != nil {
			return fmt.Errorf("cache adopt: record root %s: %w", r.Key(), err)
		}
		ad.rep.Roots = append(ad.rep.Roots, r.Key())
	}
	return nil
}

// tops is the adopted store paths that no adopted path refers to.
func (ad *adopter) tops() []string {
	referred := map[string]bool{}
	for h := range ad.paths {
		for _, r := range ad.refs[h] {
			if r != h {
				referred[r] = true
			}
		}
	}
	var out []string
	for h, p := range ad.paths {
		if !referred[h] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// JSON is the one-line summary of an adoption.
func (r AdoptReport) JSON() string {
	b, _ := json.Marshal(r) // numbers and strings always marshal
	return string(b)
}
