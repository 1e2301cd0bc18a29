// Package audit checks a Nix binary cache: every narinfo is ours and
// sound, its NAR is the one uploaded, its references resolve; deeply, every
// NAR's bytes match its narinfo.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// Problem is one defect of a cache.
type Problem struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Key + ": " + p.Message }

// Report is the result of an audit.
type Report struct {
	Narinfos int       `json:"narinfos"`
	NARs     int       `json:"nars"`
	Deep     bool      `json:"deep"`
	Problems []Problem `json:"problems"`
}

// Error is returned when an audit found problems.
type Error struct{ Problems int }

func (e *Error) Error() string { return fmt.Sprintf("cache verify: %d problem(s)", e.Problems) }

// Options configure an audit.
type Options struct {
	Store blob.Store
	// PubKey is the cache's public key.
	PubKey signature.PublicKey
	// Deep downloads and checks every NAR.
	Deep bool
	// Upstreams serve references the cache does not hold (probed with
	// UpstreamTimeout through HTTPClient).
	Upstreams       []string
	UpstreamTimeout time.Duration
	HTTPClient      *http.Client
	// Jobs bounds the requests in flight (default 256).
	Jobs int
	Log  *slog.Logger
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
	return o
}

// Run audits the cache: every narinfo parses, names the store path its
// object name says, carries a signature that verifies with the cache's
// public key, names an existing NAR of the stated FileSize, and every
// reference's narinfo exists (in the cache or, when Upstreams are set,
// upstream). Where the store keeps checksums and metadata (GCS), each
// narinfo's push proof must verify and its NAR must have the size and MD5
// the proof names: a NAR replaced after it was published is found from the
// listing, without downloading it (see cachefmt.ProofKey).
//
// With deep, each NAR whose narinfo passed those checks is downloaded,
// decompressed and checked against FileHash, NarHash and NarSize; the NAR
// of a narinfo that failed them is reported and not downloaded. A deep
// check reads at most FileSize+1 compressed bytes and decompresses at
// most NarSize+1 (NarSize is signed), at most deepJobs at a time, each
// decoder within maxDecodeWindow: a decompression bomb costs what the
// path's real NAR would.
//
// The report lists every problem; the error is an *Error if any.
func Run(ctx context.Context, o Options) (Report, error) {
	o = o.withDefaults()
	if o.Store == nil {
		return Report{}, errors.New("cache verify: no store")
	}
	store := o.Store
	objects := map[string]blob.Info{}
	err := store.List(ctx, "", func(i blob.Info) error { objects[i.Key] = i; return nil })
	if err != nil {
		return Report{}, fmt.Errorf("cache verify: %w", err)
	}
	a := &auditor{o: o, store: store, pk: o.PubKey, deep: o.Deep, objects: objects,
		proving: cachefmt.Proving(store), deepSlots: make(chan struct{}, deepJobs)}
	if len(o.Upstreams) > 0 {
		a.ups = cachefmt.ProbeUpstreams(ctx, o.HTTPClient, o.Upstreams, o.UpstreamTimeout, o.Log)
	}
	return a.run(ctx)
}

// deepJobs bounds the NARs decompressed at once by a deep audit, and so
// its memory: each decoder holds up to maxDecodeWindow.
const deepJobs = 2

type auditor struct {
	o         Options
	store     blob.Store
	pk        signature.PublicKey
	deep      bool
	proving   bool
	objects   map[string]blob.Info
	deepSlots chan struct{}
	ups       *cachefmt.Upstreams
	mu        sync.Mutex
	rep       Report
}

func (a *auditor) run(ctx context.Context) (Report, error) {
	var keys []string
	for k := range a.objects {
		switch {
		case cachefmt.IsNarinfoKey(k):
			keys = append(keys, k)
		case strings.HasPrefix(k, "nar/"):
			a.rep.NARs++
		}
	}
	sort.Strings(keys)
	a.rep.Narinfos, a.rep.Deep = len(keys), a.deep
	if _, ok := a.objects[cachefmt.CacheInfoKey]; !ok {
		a.problem(cachefmt.CacheInfoKey, "missing")
	}
	work.Parallel(ctx, len(keys), max(8, a.o.Jobs), func(i int) {
		if err := a.check(ctx, keys[i]); err != nil {
			a.problem(keys[i], err.Error())
		}
	})
	sort.Slice(a.rep.Problems, func(i, j int) bool { return a.rep.Problems[i].String() < a.rep.Problems[j].String() })
	if err := ctx.Err(); err != nil {
		return a.rep, err
	}
	if n := len(a.rep.Problems); n > 0 {
		return a.rep, &Error{Problems: n}
	}
	return a.rep, nil
}

func (a *auditor) problem(key, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rep.Problems = append(a.rep.Problems, Problem{Key: key, Message: msg})
}

// check audits one narinfo, reporting the first defect of each kind. A
// NAR is downloaded (deep) only when everything else about its narinfo is
// in order.
func (a *auditor) check(ctx context.Context, key string) error {
	_, ni, err := cachefmt.ReadNarinfo(ctx, a.store, key)
	if err != nil {
		return err
	}
	trusted, proof := a.checkNarinfo(key, ni)
	if a.checkNARObject(key, ni, proof) && a.deep {
		if !trusted {
			a.problem(key, "NAR "+ni.URL+" not downloaded: its narinfo does not verify")
		} else if err := a.deepCheck(ctx, ni); err != nil {
			a.problem(key, err.Error())
		}
	}
	for _, r := range ni.References {
		h := nixstore.HashPart(r)
		if _, ok := a.objects[h+".narinfo"]; !ok && !a.ups.Has(ctx, h) {
			a.problem(key, "reference "+r+" has no narinfo")
		}
	}
	return nil
}

// checkNarinfo checks what the narinfo says of itself: its store path and
// its signature (ok) and, on a proving store, its push proof, whose NAR it
// returns when the proof verifies.
func (a *auditor) checkNarinfo(key string, ni *narinfo.NarInfo) (ok bool, proof *cachefmt.NarRef) {
	ok = true
	if nixstore.HashPart(ni.StorePath)+".narinfo" != key {
		a.problem(key, "StorePath "+ni.StorePath+" does not match the object name")
		ok = false
	}
	if !cachefmt.Verifies(ni, a.pk) {
		a.problem(key, "no signature verifies with "+a.pk.Name)
		ok = false
	}
	if !a.proving {
		return ok, nil
	}
	// A narinfo without a valid proof may still be sound (written by
	// another tool, or before proofs): a push will replace it, and a deep
	// audit still checks its NAR if its signature verifies.
	pr, err := cachefmt.CheckProof(a.pk, a.objects[key])
	switch {
	case err != nil:
		a.problem(key, err.Error())
		return ok, nil
	case pr.NAR.Key != ni.URL:
		a.problem(key, "push proof names "+pr.NAR.Key+", the narinfo "+ni.URL)
		return ok, nil
	}
	return ok, &pr.NAR
}

// checkNARObject checks the listed NAR object against the narinfo and
// against the size and MD5 that the narinfo's push proof, if any, names.
// It says whether the object is worth downloading.
func (a *auditor) checkNARObject(key string, ni *narinfo.NarInfo, proof *cachefmt.NarRef) bool {
	info, ok := a.objects[ni.URL]
	switch {
	case !ok:
		a.problem(key, "NAR "+ni.URL+" missing")
		return false
	case ni.FileSize != 0 && uint64(info.Size) != ni.FileSize:
		a.problem(key, fmt.Sprintf("NAR %s has %d bytes, FileSize says %d", ni.URL, info.Size, ni.FileSize))
		return false
	}
	if proof != nil && !proof.Matches(info) {
		a.problem(key, fmt.Sprintf("NAR %s is not the one uploaded: the store reports %d bytes, MD5 %x; the push proof says %d bytes, MD5 %x",
			ni.URL, info.Size, info.MD5, proof.Size, proof.MD5))
		return false
	}
	return true
}

// deepCheck runs checkNAR in one of the deepJobs slots.
func (a *auditor) deepCheck(ctx context.Context, ni *narinfo.NarInfo) error {
	select {
	case a.deepSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.deepSlots }()
	return a.checkNAR(ctx, ni, a.objects[ni.URL].Size)
}

// checkNAR downloads, decompresses and hashes one NAR, reading at most
// one byte more than size (the listed size, which checkNARObject matched
// with FileSize) and decompressing at most one byte more than NarSize.
func (a *auditor) checkNAR(ctx context.Context, ni *narinfo.NarInfo, size int64) error {
	c, err := cachefmt.CodecFor(ni.Compression)
	if err != nil {
		return fmt.Errorf("NAR %s not checked: %w", ni.URL, err)
	}
	rc, err := a.store.Open(ctx, ni.URL)
	if err != nil {
		return err
	}
	defer rc.Close()
	compressed := &counter{}
	fileHash := sha256.New()
	file := io.TeeReader(io.LimitReader(rc, size+1), io.MultiWriter(fileHash, compressed))
	dr, err := c.NewReader(file)
	if err != nil {
		return fmt.Errorf("NAR %s does not decompress: %w", ni.URL, cachefmt.DecodeError(err))
	}
	defer dr.Close()
	narHash := sha256.New()
	n, err := io.Copy(narHash, io.LimitReader(dr, int64(ni.NarSize)+1))
	switch {
	case err != nil:
		return fmt.Errorf("NAR %s does not decompress: %w", ni.URL, cachefmt.DecodeError(err))
	case uint64(n) > ni.NarSize:
		return fmt.Errorf("NAR %s decompresses past its NarSize (%d bytes); stopped there", ni.URL, ni.NarSize)
	case uint64(n) != ni.NarSize || !bytes.Equal(narHash.Sum(nil), ni.NarHash.Digest()):
		return fmt.Errorf("NAR %s: content does not match NarHash/NarSize", ni.URL)
	}
	if _, err := io.Copy(io.Discard, file); err != nil { // what the decoder left, for FileHash
		return fmt.Errorf("NAR %s: %w", ni.URL, err)
	}
	if int64(compressed.n) > size {
		return fmt.Errorf("NAR %s is longer than its %d bytes listed; stopped there", ni.URL, size)
	}
	if ni.FileHash != nil && !bytes.Equal(fileHash.Sum(nil), ni.FileHash.Digest()) {
		return fmt.Errorf("NAR %s: FileHash mismatch", ni.URL)
	}
	return nil
}

// counter counts bytes written.
type counter struct{ n uint64 }

func (c *counter) Write(b []byte) (int, error) {
	c.n += uint64(len(b))
	return len(b), nil
}
