package nixcache

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/socioprophet/sourceos/internal/blob"
)

// nix32Alphabet is the alphabet of the hash part of store paths, and so
// of narinfo names (and, by our naming, of NAR names).
const nix32Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// cacheBounds partition a cache's namespace into ranges of about equal
// size: one per first character of a narinfo name and one per first
// character of a NAR name below nar/. Listed at once, a cache of up to
// about 32,000 paths takes one round trip per range.
var cacheBounds = func() []string {
	b := []string{""}
	for _, c := range nix32Alphabet[1:] {
		if c > 'n' {
			break
		}
		b = append(b, string(c))
	}
	for _, c := range nix32Alphabet {
		b = append(b, "nar/"+string(c))
	}
	for _, c := range nix32Alphabet {
		if c > 'n' {
			b = append(b, string(c))
		}
	}
	return append(b, "")
}()

// listWorkers bounds the ranges listed at once.
const listWorkers = 64

// errListBudget stops a listing that went past its budget.
var errListBudget = errors.New("listing budget exhausted")

// listCache lists the whole cache (every range at once on a remote store)
// and calls fn, one call at a time, for each object; budget, when not
// nil, stops the listing once more objects than it allows were seen (it
// may shrink while the listing runs).
func listCache(ctx context.Context, s blob.Store, budget *atomic.Int64, fn func(blob.Info)) error {
	seen := int64(0)
	return blob.ListRanges(ctx, s, cacheBounds, listWorkers, func(i blob.Info) error {
		if seen++; budget != nil && seen > budget.Load() {
			return errListBudget
		}
		fn(i)
		return nil
	})
}

func isNarinfoKey(key string) bool {
	return strings.HasSuffix(key, ".narinfo") && !strings.Contains(key, "/")
}
