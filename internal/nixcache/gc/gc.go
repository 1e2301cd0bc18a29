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
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
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

	Policy
}

// Policy is what a GC run keeps and how it runs: what the configuration
// sets (cache:gc's variables), as opposed to the run's store, key and hooks.
type Policy struct {
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
	// MemoryLimit is the soft limit of the Go heap while the run lasts
	// (debug.SetMemoryLimit; default 200 MiB, negative: none): what GC
	// holds (about 60 bytes a narinfo no root keeps) stays well under
	// it up to millions of objects, and the runtime collects garbage
	// before the heap doubles past it.
	MemoryLimit int64
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
	if g.MemoryLimit == 0 {
		g.MemoryLimit = 200 << 20
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
	Other int `json:"other"`
	// Objects counts the objects listed.
	Objects      int64   `json:"objects"`
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
// time the store stamped on the object (see lease.Clock). Everything else
// is deleted: narinfos first, each only after every narinfo that refers
// to it, then NARs, then the roots that are no longer kept; each delete is
// conditioned on the version GC listed, so an object rewritten meanwhile
// stays. A GC killed at any point leaves a consistent cache, and the next
// run finishes the job.
//
// It runs as a streaming mark and sweep. The mark reads the kept roots
// (their closures are the live set) and lists every object but the NARs
// once, holding every narinfo no root keeps in a compact table (hash,
// generation, references: about 40 bytes and 8 per reference, see table),
// the references coming from the listing's push proofs (or, for narinfos
// written before proofs recorded them, from the narinfo). The sweep
// deletes the table's narinfos in reference order, then lists the NARs
// one range at a time and deletes those nothing kept names, then the
// expired roots. While it deletes it re-reads only what can change the
// plan: the roots (a new root, or a push's in-flight root, spares what it
// names) and its own lease. See package lease for how GC and pushes
// running at the same time stay out of each other's way.
func Run(ctx context.Context, o Options) (Summary, error) {
	opt := o.withDefaults()
	start := opt.Now()
	if opt.Store == nil {
		return Summary{}, errors.New("cache gc: no store")
	}
	if opt.MemoryLimit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(opt.MemoryLimit))
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
	// lease is this run's gc/running (see announce).
	lease *leaseHolder

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
	now, err := g.clock.Now(ctx)
	if err != nil {
		return g.sum, fmt.Errorf("cache gc: %w", err)
	}
	g.now = now
	t0 := time.Now()
	m, err := g.mark(ctx)
	if err != nil {
		return g.summary(), err
	}
	g.opt.Log.Info("cache gc: marked", "objects_listed", m.objects, "narinfos", m.narinfos, "kept_paths", len(m.keep),
		"kept_nars", len(m.keepNARs), "candidates", m.cands.len(), "seconds", time.Since(t0).Seconds())
	if g.opt.AfterPlan != nil {
		g.opt.AfterPlan()
	}
	sw := &sweeper{g: g, m: m}
	if g.opt.DryRun {
		err = sw.plan(ctx)
	} else {
		err = sw.sweep(ctx)
	}
	sum := g.summary()
	if err == nil && !g.opt.DryRun {
		if werr := lease.WriteStats(ctx, g.store, lease.Stats{Objects: sum.Objects - int64(sum.FreedObjects)}); werr != nil {
			g.opt.Log.Warn("cache gc: could not record the object count pushes size their presence check by", "err", werr)
		}
	}
	return sum, err
}

func (g *collector) summary() Summary {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sum
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

// errNoRoots: GC found nothing it may trust to say what to keep, so it
// deletes nothing.
var errNoRoots = errors.New("cache gc: no root to keep anything by")

// maxRoots bounds the roots GC considers; past it GC refuses to run
// (deleting nothing) rather than risk its memory.
const maxRoots = 100_000

// leaseHolder keeps this run's gc/running fresh and remembers the
// generation it last wrote, so that the sweep can tell that the lease is
// still its own.
type leaseHolder struct {
	mu  sync.Mutex
	gen int64
	at  time.Time // this machine's time when the last refresh that took was sent
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
	g.lease = &leaseHolder{}
	mark := func(key string) error {
		var stored blob.Info
		if key == lease.RunningKey {
			g.lease.mu.Lock()
			defer g.lease.mu.Unlock()
		}
		sent := time.Now()
		err := g.store.Put(ctx, key, strings.NewReader(body), blob.PutOptions{ContentType: "text/plain", Stored: &stored})
		if err == nil {
			g.clock.Observe(stored.Updated)
			if key == lease.RunningKey {
				g.lease.gen, g.lease.at = stored.Generation, sent
			}
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

// stillOurs says whether gc/running is still the version this run wrote
// last (another GC has not taken the cache over after a stall of ours),
// and fresh enough for what follows: the store stamped the last refresh
// no earlier than it was sent, and a push counts gc/running for lease.TTL
// after that stamp (whatever this run's LeaseTTL), so deletes sent within Window of this check (see
// sweeper.deleteBatch) end while every push still sees a GC running. A
// run whose refreshes stalled or failed for lease.TTL less Window stops.
func (g *collector) stillOurs(ctx context.Context) error {
	if g.lease == nil {
		return nil
	}
	g.lease.mu.Lock()
	defer g.lease.mu.Unlock()
	if since := time.Since(g.lease.at); since > lease.TTL-g.opt.Window {
		return fmt.Errorf("cache gc: %s was last refreshed %s ago, so a push may count it lapsed (after %s); stopping", lease.RunningKey,
			since.Round(time.Millisecond), lease.TTL)
	}
	info, err := g.store.Stat(ctx, lease.RunningKey)
	switch {
	case err != nil:
		return fmt.Errorf("cache gc: read %s: %w", lease.RunningKey, err)
	case info.Generation != g.lease.gen:
		return fmt.Errorf("%w: %s is no longer this run's (another GC took the cache over); stopping", ErrRunning, lease.RunningKey)
	}
	return nil
}

// JSON is the one-line summary printed at the end of a GC.
func (s Summary) JSON() string {
	b, _ := json.Marshal(s) // numbers and strings always marshal
	return string(b)
}
