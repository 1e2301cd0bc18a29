// Package gc collects a Nix binary cache: it keeps what recent, numerous
// enough and pinned roots reach, and what is younger than the grace period,
// and deletes the rest, sharing the cache with pushes (package lease).
package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// Options configure a GC run.
type Options struct {
	// Store is the cache.
	Store blob.Store
	// PubKey is the cache's public key: only roots, narinfos and push
	// proofs it verifies say what to keep.
	PubKey signature.PublicKey
	Log    *slog.Logger
	// Now is this machine's clock; it only measures elapsed time from a
	// reading of the store's clock (lease.Clock).
	Now func() time.Time
	// Window is the GC protocol's window (default lease.Window).
	Window time.Duration
	// AfterPlan and BeforeDelete, when set (tests), run between the plan
	// and the sweep, and before the sweep considers deleting a key.
	AfterPlan    func()
	BeforeDelete func(key string)

	// KeepLast: the newest this many roots of each name are kept
	// (default 3).
	KeepLast int
	// KeepDays: every root younger than this (by the store's clock, from
	// when the store wrote it) is kept (default 45, more than the 30 days
	// Nix clients cache narinfo look-ups).
	KeepDays int
	// Grace: no object younger than this (by the store's clock) is
	// deleted (default 24 hours).
	Grace time.Duration
	// DryRun writes the plan to Plan and deletes nothing.
	DryRun bool
	// Plan receives one line per object to delete (default: discarded).
	Plan io.Writer
	// Settle is how long GC waits between announcing itself and listing
	// the cache (default 2 × Window; see package lease).
	Settle time.Duration
	// Workers bounds the requests in flight (default 128).
	Workers int
	// LeaseTTL is how long this GC's gc/running counts after each refresh
	// (default lease.TTL, which pushes assume): a GC killed without
	// removing it holds the cache that long.
	LeaseTTL time.Duration
}

func (g Options) withDefaults() Options {
	if g.Log == nil {
		g.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if g.Now == nil {
		g.Now = time.Now
	}
	if g.Window <= 0 {
		g.Window = lease.Window
	}
	if g.KeepLast <= 0 {
		g.KeepLast = 3
	}
	if g.KeepDays <= 0 {
		g.KeepDays = 45
	}
	if g.Grace <= 0 {
		g.Grace = 24 * time.Hour
	}
	if g.Plan == nil {
		g.Plan = io.Discard
	}
	if g.Settle <= 0 {
		g.Settle = 2 * g.Window
	}
	if g.Workers <= 0 {
		g.Workers = 128
	}
	if g.LeaseTTL <= 0 {
		g.LeaseTTL = lease.TTL
	}
	return g
}

// Summary is what a GC found and did.
type Summary struct {
	DryRun bool `json:"dry_run,omitempty"`
	// Roots kept (by age, count, pin or in flight), deleted, and ignored
	// (not parseable, not verifying, or not stored under their name).
	Roots struct {
		Kept    int `json:"kept"`
		Deleted int `json:"deleted"`
		Ignored int `json:"ignored"`
	} `json:"roots"`
	Narinfos struct {
		Kept    int `json:"kept"`
		Deleted int `json:"deleted"`
	} `json:"narinfos"`
	NARs struct {
		Kept    int `json:"kept"`
		Deleted int `json:"deleted"`
	} `json:"nars"`
	// Spared counts planned deletions dropped because the object changed
	// or something new came to need it while GC ran.
	Spared int `json:"spared"`
	// Other counts objects GC does not manage (left alone).
	Other        int     `json:"other"`
	FreedObjects int     `json:"freed_objects"`
	FreedBytes   int64   `json:"freed_bytes"`
	Seconds      float64 `json:"seconds"`
}

// ErrRunning means another GC holds the cache.
var ErrRunning = errors.New("another cache GC is running")

// Run deletes what no root keeps. It keeps the closures of the newest
// KeepLast roots of each name, of every root younger than KeepDays, of
// pinned roots, and of in-flight roots younger than Grace; the NARs their
// narinfos name; and every object younger than Grace, with what young
// narinfos refer to. Ages are the store's: the store's clock now less the
// time the store stamped on the object (see lease.Clock). Everything else is deleted: narinfos first, each
// only after every narinfo that refers to it, then NARs, then the roots
// that are no longer kept; each delete is conditioned on the version GC
// inspected, so an object rewritten meanwhile stays. A GC killed at any
// point leaves a consistent cache, and the next run finishes the job.
// See package lease for how GC and pushes running at the same time stay out of
// each other's way.
func Run(ctx context.Context, o Options) (Summary, error) {
	opt := o.withDefaults()
	start := opt.Now()
	if opt.Store == nil {
		return Summary{}, errors.New("cache gc: no store")
	}
	g := &collector{opt: opt, store: opt.Store, pk: opt.PubKey, proving: cachefmt.Proving(opt.Store), clock: lease.NewClock(opt.Store, opt.Now)}
	sum, err := g.run(ctx)
	sum.DryRun = opt.DryRun
	sum.Seconds = opt.Now().Sub(start).Seconds()
	return sum, err
}

type collector struct {
	opt     Options
	store   blob.Store
	pk      signature.PublicKey
	proving bool
	clock   *lease.Clock
	// now is the store's time when the plan was made (a lower bound):
	// the plan's ages are measured from it.
	now time.Time

	mu  sync.Mutex
	sum Summary
}

func (g *collector) run(ctx context.Context) (Summary, error) {
	if err := g.preflight(ctx); err != nil {
		return g.sum, err
	}
	// Every age GC judges is by the store's clock (a dry run too, which
	// writes nothing else).
	if err := g.clock.Sync(ctx); err != nil {
		return g.sum, fmt.Errorf("cache gc: %w", err)
	}
	if !g.opt.DryRun {
		stop, err := g.announce(ctx)
		if err != nil {
			return g.sum, err
		}
		defer stop()
		if err := work.Sleep(ctx, g.opt.Settle); err != nil {
			return g.sum, err
		}
	}
	p, err := g.plan(ctx)
	if err != nil {
		return g.sum, err
	}
	if g.opt.AfterPlan != nil {
		g.opt.AfterPlan()
	}
	if g.opt.DryRun {
		p.print(g.opt.Plan)
		g.sum.Narinfos.Deleted, g.sum.NARs.Deleted, g.sum.Roots.Deleted = len(p.narinfos), len(p.nars), len(p.roots)
		g.sum.FreedObjects, g.sum.FreedBytes = p.size()
		return g.sum, nil
	}
	return g.sum, g.sweep(ctx, p)
}

// preflight refuses, before GC announces itself, a cache where no root
// verifies: then nothing says what to keep.
func (g *collector) preflight(ctx context.Context) error {
	var refs []cachefmt.RootRef
	err := g.store.List(ctx, cachefmt.RootsPrefix, func(i blob.Info) error {
		if ref, ok := cachefmt.ParseRootKey(i); ok && !ref.InFlight && len(refs) < maxRoots {
			refs = append(refs, ref)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache gc: %w", err)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Time.After(refs[j].Time) })
	for i, ref := range refs {
		if i == 100 {
			break
		}
		if _, err := cachefmt.ReadRoot(ctx, g.store, ref, g.pk); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: %d roots under %s, none of the newest verifies with %s (a cache pushed before roots existed, or the wrong NIX_CACHE_PUBKEY); push the closures to keep first",
		errNoRoots, len(refs), cachefmt.RootsPrefix, g.pk.Name)
}

// announce marks the cache as being collected (gc/running, kept fresh
// until stop) and starts a new GC epoch (gc/epoch). Another GC's
// gc/running counts while the store's clock says it is younger than the
// lease; each refresh of ours also re-reads the store's clock.
func (g *collector) announce(ctx context.Context) (stop func(), err error) {
	if info, err := g.store.Stat(ctx, lease.RunningKey); err == nil {
		age, err := g.clock.Age(ctx, info.Updated)
		if err != nil {
			return nil, fmt.Errorf("cache gc: %w", err)
		}
		if age < g.opt.LeaseTTL {
			return nil, fmt.Errorf("%w (%s was refreshed %s ago by the store's clock; it counts for %s after its last refresh)", ErrRunning, lease.RunningKey,
				max(age, 0).Round(time.Second), g.opt.LeaseTTL)
		}
	}
	body := fmt.Sprintf("gc started %s (this machine's clock)\n", g.opt.Now().UTC().Format(time.RFC3339))
	mark := func(key string) error {
		var stored blob.Info
		err := g.store.Put(ctx, key, strings.NewReader(body), blob.PutOptions{ContentType: "text/plain", Stored: &stored})
		if err == nil {
			g.clock.Observe(stored.Updated)
		}
		return err
	}
	if err := mark(lease.RunningKey); err != nil {
		return nil, fmt.Errorf("cache gc: %w", err)
	}
	if err := mark(lease.EpochKey); err != nil {
		return nil, fmt.Errorf("cache gc: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for work.Sleep(rctx, g.opt.LeaseTTL/4) == nil {
			_ = mark(lease.RunningKey)
		}
	}()
	return func() {
		cancel()
		<-done
		_ = g.store.Delete(context.WithoutCancel(ctx), lease.RunningKey)
	}, nil
}

// entry is what GC holds of one listed object.
type entry struct {
	info blob.Info
	// For a narinfo, once read: its references' hash parts and NAR.
	refs []string
	url  string
	read bool
}

// plan is what a GC is about to delete, and what it keeps.
type plan struct {
	objects  map[string]*entry // every object listed
	keep     map[string]bool   // hash parts kept
	keepNARs map[string]bool   // NAR keys kept
	spared   map[string]bool   // hash parts whose references are kept too
	seenRoot map[string]bool   // root keys considered
	narinfos []string          // narinfo keys to delete
	nars     []string          // NAR keys to delete
	roots    []string          // root keys to delete
}

func (p *plan) size() (objects int, bytes int64) {
	for _, list := range [][]string{p.narinfos, p.nars, p.roots} {
		for _, k := range list {
			if e, ok := p.objects[k]; ok {
				objects++
				bytes += e.info.Size
			}
		}
	}
	return objects, bytes
}

func (p *plan) print(w io.Writer) {
	for _, list := range []struct {
		kind string
		keys []string
	}{{"narinfo", p.narinfos}, {"nar", p.nars}, {"root", p.roots}} {
		for _, k := range list.keys {
			fmt.Fprintf(w, "delete %s %s %d\n", list.kind, k, p.objects[k].info.Size)
		}
	}
}

// plan lists the cache, reads the roots and decides.
func (g *collector) plan(ctx context.Context) (*plan, error) {
	now, err := g.clock.Now(ctx)
	if err != nil {
		return nil, fmt.Errorf("cache gc: %w", err)
	}
	g.now = now
	p := &plan{objects: map[string]*entry{}, keep: map[string]bool{}, keepNARs: map[string]bool{},
		spared: map[string]bool{}, seenRoot: map[string]bool{}}
	if err := g.list(ctx, p); err != nil {
		return nil, err
	}
	expired, err := g.roots(ctx, p)
	if err != nil {
		return nil, err
	}
	p.roots = expired
	if err := g.narinfos(ctx, p); err != nil {
		return nil, err
	}
	g.nars(p)
	return p, nil
}

// maxObjects bounds a cache GC will hold in memory (about 500 bytes per
// object).
const maxObjects = 2_000_000

func (g *collector) list(ctx context.Context, p *plan) error {
	n := 0
	err := cachefmt.List(ctx, g.store, nil, func(i blob.Info) {
		if n++; n > maxObjects {
			return
		}
		p.objects[i.Key] = &entry{info: i}
	})
	if err != nil {
		return fmt.Errorf("cache gc: %w", err)
	}
	if n > maxObjects {
		return fmt.Errorf("cache gc: the cache holds more than %d objects; refusing to plan in memory", maxObjects)
	}
	return nil
}

// maxRoots bounds the roots GC considers; past it GC refuses to run
// (deleting nothing) rather than risk its memory.
const maxRoots = 100_000

// roots decides which roots are kept and merges what they keep into
// p.keep and p.keepNARs; it returns the keys of the roots to delete.
func (g *collector) roots(ctx context.Context, p *plan) ([]string, error) {
	byName := map[string][]cachefmt.RootRef{}
	count := 0
	for k, e := range p.objects {
		if !strings.HasPrefix(k, cachefmt.RootsPrefix) {
			continue
		}
		if count++; count > maxRoots {
			return nil, fmt.Errorf("cache gc: more than %d objects under %s; refusing to run", maxRoots, cachefmt.RootsPrefix)
		}
		ref, ok := cachefmt.ParseRootKey(e.info)
		if !ok {
			g.sum.Other++
			continue
		}
		p.seenRoot[k] = true
		byName[ref.Name] = append(byName[ref.Name], ref)
	}
	var expired []string
	for _, refs := range byName {
		exp, err := g.nameRoots(ctx, p, refs)
		if err != nil {
			return nil, err
		}
		expired = append(expired, exp...)
	}
	if g.sum.Roots.Kept == 0 {
		return nil, fmt.Errorf("%w: %d objects under %s, none verifies with %s (a cache pushed before roots existed, or the wrong NIX_CACHE_PUBKEY); push the closures to keep first", errNoRoots, count, cachefmt.RootsPrefix, g.pk.Name)
	}
	sort.Strings(expired)
	return expired, nil
}

// errNoRoots: GC found nothing it may trust to say what to keep, so it
// deletes nothing.
var errNoRoots = errors.New("cache gc: no root to keep anything by")

// nameRoots settles the roots of one name: in-flight roots live while
// young, pinned and recent ones are kept, and so are the newest KeepLast
// that verify; the others expire. A root that does not verify is ignored
// (neither kept nor counted) and left in place.
//
// A root's age is the store's (how long ago the store stamped it), never
// the time it names: that is the pushing machine's clock, which may be
// off. The time it names (signed) only orders the roots of a name for
// KeepLast, so a root copied again later does not displace newer ones.
func (g *collector) nameRoots(ctx context.Context, p *plan, refs []cachefmt.RootRef) ([]string, error) {
	sort.Slice(refs, func(i, j int) bool { return refs[i].Time.After(refs[j].Time) })
	keepDays := time.Duration(g.opt.KeepDays) * 24 * time.Hour
	var expired []string
	counted := 0
	for _, ref := range refs {
		age := g.now.Sub(ref.Info.Updated)
		var keep bool
		switch {
		case ref.InFlight:
			keep = age < g.opt.Grace
		default:
			keep = ref.Pinned || age < keepDays || counted < g.opt.KeepLast
		}
		if !keep {
			if ref.InFlight || age >= g.opt.Grace {
				expired = append(expired, ref.Info.Key)
			}
			continue
		}
		r, err := cachefmt.ReadRoot(ctx, g.store, ref, g.pk)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			g.opt.Log.Warn("cache gc: ignoring a root", "root", ref.Info.Key, "err", err)
			g.sum.Roots.Ignored++
			continue
		}
		if !ref.InFlight {
			counted++
		}
		g.sum.Roots.Kept++
		p.merge(r)
	}
	return expired, nil
}

// merge adds what r keeps.
func (p *plan) merge(r *cachefmt.Root) {
	for _, h := range r.Closure {
		p.keep[h] = true
	}
	for _, k := range r.NARs {
		p.keepNARs[k] = true
	}
}

// young says whether an object is within the grace period.
func (g *collector) young(e *entry) bool { return g.now.Sub(e.info.Updated) < g.opt.Grace }

// narinfos decides which narinfos go: those no root keeps, older than
// the grace period, and not referred to (transitively) by a young one.
// It reads the narinfos it needs the references or NAR of.
func (g *collector) narinfos(ctx context.Context, p *plan) error {
	var toRead []*entry
	for k, e := range p.objects {
		if !cachefmt.IsNarinfoKey(k) {
			continue
		}
		if p.keep[cachefmt.HashOfKey(k)] && g.urlFromProof(e) {
			continue
		}
		toRead = append(toRead, e)
	}
	g.readAll(ctx, toRead)
	if err := ctx.Err(); err != nil {
		return err
	}
	var young []string
	for k, e := range p.objects {
		if cachefmt.IsNarinfoKey(k) && g.young(e) {
			young = append(young, cachefmt.HashOfKey(k))
		}
	}
	p.spare(young)
	for k := range p.objects {
		if cachefmt.IsNarinfoKey(k) && !p.keep[cachefmt.HashOfKey(k)] {
			p.narinfos = append(p.narinfos, k)
		}
	}
	sort.Strings(p.narinfos)
	return nil
}

// urlFromProof fills in the NAR of a narinfo from its push proof; false
// when the store keeps none or the proof does not verify.
func (g *collector) urlFromProof(e *entry) bool {
	if !g.proving {
		return false
	}
	proof, err := cachefmt.CheckProof(g.pk, e.info)
	if err != nil {
		return false
	}
	e.url, e.read = proof.NAR.Key, true
	return true
}

// readAll reads narinfos for their references and NAR (bounded, parsed
// strictly). Only a narinfo signed by the cache's key is followed: one
// planted by anyone who can write the bucket keeps nothing alive and holds
// no memory.
func (g *collector) readAll(ctx context.Context, entries []*entry) {
	work.Parallel(ctx, len(entries), g.opt.Workers, func(i int) {
		e := entries[i]
		_, ni, err := cachefmt.ReadNarinfo(ctx, g.store, e.info.Key)
		e.read = true
		if err != nil || !cachefmt.Verifies(ni, g.pk) {
			return
		}
		e.url = ni.URL
		for _, r := range ni.References {
			e.refs = append(e.refs, nixstore.HashPart(r))
		}
	})
}

// spare keeps the paths of hashes and, transitively, what their narinfos
// refer to, with the NARs they name.
func (p *plan) spare(hashes []string) {
	stack := append([]string(nil), hashes...)
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p.spared[h] {
			continue
		}
		p.spared[h] = true
		p.keep[h] = true
		e, ok := p.objects[h+".narinfo"]
		if !ok {
			continue
		}
		if e.url != "" {
			p.keepNARs[e.url] = true
		}
		for _, r := range e.refs {
			if !p.spared[r] {
				stack = append(stack, r)
			}
		}
	}
}

// nars decides which NARs go: those that no kept narinfo names, that no
// in-flight root keeps, and that are older than the grace period.
func (g *collector) nars(p *plan) {
	for k, e := range p.objects {
		if cachefmt.IsNarinfoKey(k) && p.keep[cachefmt.HashOfKey(k)] && e.url != "" {
			p.keepNARs[e.url] = true
		}
	}
	for k, e := range p.objects {
		if strings.HasPrefix(k, "nar/") && !p.keepNARs[k] && !g.young(e) {
			p.nars = append(p.nars, k)
		}
	}
	sort.Strings(p.nars)
	for k := range p.objects {
		switch {
		case cachefmt.IsNarinfoKey(k):
			if p.keep[cachefmt.HashOfKey(k)] {
				g.sum.Narinfos.Kept++
			}
		case strings.HasPrefix(k, "nar/"):
			if p.keepNARs[k] || g.young(p.objects[k]) {
				g.sum.NARs.Kept++
			}
		case k == cachefmt.CacheInfoKey, strings.HasPrefix(k, cachefmt.RootsPrefix), strings.HasPrefix(k, lease.Prefix):
		default:
			g.sum.Other++
		}
	}
}

// JSON is the one-line summary printed at the end of a GC.
func (s Summary) JSON() string {
	b, _ := json.Marshal(s) // numbers and strings always marshal
	return string(b)
}
