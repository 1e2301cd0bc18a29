// Package audit checks a Nix binary cache (cache:verify): every narinfo
// is ours and sound, its NAR is the one uploaded, its references resolve;
// deeply, every NAR's bytes match its narinfo.
//
// The full audit lists the cache in parallel ranges, NARs first, into
// compact sets (16-byte fingerprints of each NAR's name, size and MD5;
// the packed hash of each narinfo), so its memory stays a few tens of
// bytes per object. A narinfo whose version 2 push proof verifies against
// the MD5 the listing reports needs no read: the proof vouches for its
// bytes (so for its store path and signature, which we made), for its NAR
// (found in the set with the size and MD5 it names) and for its
// references (checked against the set of narinfos at the end). Only
// narinfos without such a proof (older proofs, other tools, a directory
// store, which keeps no metadata) are read, and every one in a deep
// audit, which downloads the NARs too.
//
// The incremental audit checks only what was written since the last clean
// run: a clean audit made with the cache's secret key records a signed
// watermark (the store's time when it started); the next incremental one
// reads the roots stored since, looks the paths they name up in batches,
// and checks those written since the watermark (their NARs and references
// looked up in batches too), so its cost follows what was pushed since,
// not the cache's size. What it cannot see, objects deleted since or
// paths no root names (a failed build's), the full audit finds.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
)

// Problem is one defect of a cache.
type Problem struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Key + ": " + p.Message }

// Report is the result of an audit.
type Report struct {
	Narinfos int  `json:"narinfos"`
	NARs     int  `json:"nars"`
	Deep     bool `json:"deep"`
	// Incremental: only what was written since Since was checked.
	Incremental bool      `json:"incremental,omitempty"`
	Since       time.Time `json:"since,omitzero"`
	// Read counts the narinfos that had to be read (no proof settled them).
	Read int `json:"read"`
	// Adoptable counts narinfos a previous pipeline wrote with the cache's
	// key (signed, their NAR named by its file hash as nix copy names it,
	// in place with its size) that carry no push proof: sound for Nix,
	// not yet ours for pushes and GC (see Adopt).
	Adoptable int `json:"adoptable,omitempty"`
	// Watermark says a clean run recorded its watermark.
	Watermark bool      `json:"watermark,omitempty"`
	Problems  []Problem `json:"problems"`
}

// Error is returned when an audit found problems.
//
// Adoptable narinfos fail an audit too, though they are no problem: what
// a narinfo's signature covers leaves out its URL, FileHash and FileSize,
// so anyone who can write the bucket can point one of our narinfos, its
// proof stripped, at a NAR of their own named as nix copy names NARs. It
// looks adoptable until cache:adopt checks its NAR against NarHash.
type Error struct{ Problems, Adoptable int }

func (e *Error) Error() string {
	if e.Problems == 0 {
		return fmt.Sprintf("cache verify: no problem, but %d narinfos are not adopted yet: their NARs are unchecked until `mage cache:adopt` checks each one (docs/nix-cache.md)", e.Adoptable)
	}
	return fmt.Sprintf("cache verify: %d problem(s)", e.Problems)
}

// Options configure an audit.
type Options struct {
	Store blob.Store
	// PubKey is the cache's public key.
	PubKey signature.PublicKey
	// SecretKey, when set, signs the watermark a clean run records (and
	// an incremental run starts from).
	SecretKey *signature.SecretKey
	// Deep downloads and checks every NAR (a full audit).
	Deep bool
	// Incremental checks only what was written since the last clean run
	// (a full audit when there is no valid watermark).
	Incremental bool
	// Upstreams serve references the cache does not hold (probed with
	// UpstreamTimeout through HTTPClient).
	Upstreams       []string
	UpstreamTimeout time.Duration
	HTTPClient      *http.Client
	// Jobs bounds the requests in flight (default 256).
	Jobs int
	Log  *slog.Logger
	// Now is this machine's clock; it only measures elapsed time from a
	// reading of the store's clock.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Jobs <= 0 {
		o.Jobs = 256
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = 3 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// deepJobs bounds the NARs decompressed at once by a deep audit, and so
// its memory: each decoder holds up to cachefmt.MaxDecodeWindow.
const deepJobs = 2

// listWorkers bounds the ranges listed at once.
const listWorkers = 8

// Run audits the cache: every narinfo parses, names the store path its
// object name says, carries a signature that verifies with the cache's
// public key, names an existing NAR of the stated FileSize, and every
// reference's narinfo exists (in the cache or, when Upstreams are set,
// upstream). Where the store keeps checksums and metadata (GCS), each
// narinfo's push proof must verify and its NAR must have the size and MD5
// the proof names: a NAR replaced after it was published is found from the
// listing, without downloading it (see cachefmt.ProofKey).
//
// With Deep, each NAR whose narinfo passed those checks is downloaded,
// decompressed and checked against FileHash, NarHash and NarSize; the NAR
// of a narinfo that failed them is reported and not downloaded. A deep
// check reads at most FileSize+1 compressed bytes and decompresses at
// most NarSize+1 (NarSize is signed), at most deepJobs at a time, each
// decoder within cachefmt.MaxDecodeWindow: a decompression bomb costs what
// the path's real NAR would.
//
// The report lists every problem; the error is an *Error if any.
func Run(ctx context.Context, o Options) (Report, error) {
	o = o.withDefaults()
	if o.Store == nil {
		return Report{}, errors.New("cache verify: no store")
	}
	a := &auditor{o: o, store: o.Store, pk: o.PubKey, deep: o.Deep, proving: cachefmt.Proving(o.Store),
		deepSlots: make(chan struct{}, deepJobs)}
	if len(o.Upstreams) > 0 {
		a.ups = cachefmt.ProbeUpstreams(ctx, o.HTTPClient, o.Upstreams, o.UpstreamTimeout, o.Log)
	}
	start, err := a.startTime(ctx)
	if err != nil {
		return Report{}, err
	}
	if o.Incremental && !o.Deep {
		if since, ok := a.readWatermark(ctx); ok {
			// The watermark stays where the last full audit put it: an
			// incremental one checks only what new roots name, so an
			// older object overwritten since must stay within the next
			// incremental run's reach until a full audit has seen it.
			err = a.incremental(ctx, since)
			return a.finish(ctx, time.Time{}, err)
		}
		o.Log.Info("cache verify: no valid watermark; checking the whole cache")
	}
	return a.finish(ctx, start, a.full(ctx))
}

// auditor is one audit run.
type auditor struct {
	o         Options
	store     blob.Store
	pk        signature.PublicKey
	deep      bool
	proving   bool
	deepSlots chan struct{}
	ups       *cachefmt.Upstreams

	mu  sync.Mutex
	rep Report
}

// finish sorts the problems, records the watermark after a clean run and
// returns the report.
func (a *auditor) finish(ctx context.Context, start time.Time, err error) (Report, error) {
	a.mu.Lock()
	rep := a.rep
	a.mu.Unlock()
	rep.Deep = a.deep
	sort.Slice(rep.Problems, func(i, j int) bool { return rep.Problems[i].String() < rep.Problems[j].String() })
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return rep, err
	}
	if n := len(rep.Problems); n > 0 || rep.Adoptable > 0 {
		return rep, &Error{Problems: n, Adoptable: rep.Adoptable}
	}
	if !start.IsZero() {
		if werr := a.writeWatermark(ctx, start); werr != nil {
			a.o.Log.Warn("cache verify: clean, but the watermark could not be recorded", "err", werr)
		} else {
			rep.Watermark = true
		}
	}
	return rep, nil
}

func (a *auditor) problem(key, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rep.Problems = append(a.rep.Problems, Problem{Key: key, Message: msg})
}

func (a *auditor) count(fn func(*Report)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(&a.rep)
}
