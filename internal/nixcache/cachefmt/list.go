package cachefmt

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/socioprophet/sourceos/internal/blob"
)

// Bounds partition a cache's namespace into ranges of about equal size:
// one per first character of a narinfo name and one per first character
// of a NAR name below nar/ (everything else, roots/, gc/ and
// nix-cache-info, falls in the ranges of their first letters). Listed at
// once, a cache of up to about 32,000 paths takes one round trip per
// range.
var Bounds = func() []string {
	b := []string{""}
	for _, c := range Nix32Alphabet[1:] {
		if c > 'n' {
			break
		}
		b = append(b, string(c))
	}
	for _, c := range Nix32Alphabet {
		b = append(b, NarPrefix+string(c))
	}
	for _, c := range Nix32Alphabet {
		if c > 'n' {
			b = append(b, string(c))
		}
	}
	return append(b, "")
}()

// Range is [Start, End) of the cache's namespace ("" End: no bound).
type Range struct{ Start, End string }

// Ranges is Bounds as ranges, in order.
func Ranges() []Range {
	out := make([]Range, 0, len(Bounds)-1)
	for i := 0; i+1 < len(Bounds); i++ {
		out = append(out, Range{Bounds[i], Bounds[i+1]})
	}
	return out
}

// NARRange says whether r holds only NAR names.
func (r Range) NARRange() bool {
	return len(r.Start) > len(NarPrefix) && r.Start[:len(NarPrefix)] == NarPrefix
}

// ListWorkers bounds the ranges listed at once.
const ListWorkers = 64

// ErrListBudget stops a listing that went past its budget.
var ErrListBudget = errors.New("listing budget exhausted")

// List lists the whole cache (every range at once on a remote store)
// and calls fn, one call at a time, for each object; budget, when not
// nil, stops the listing once more objects than it allows were seen (it
// may shrink while the listing runs).
func List(ctx context.Context, s blob.Store, budget *atomic.Int64, fn func(blob.Info)) error {
	seen := int64(0)
	return blob.ListRanges(ctx, s, Bounds, ListWorkers, func(i blob.Info) error {
		if seen++; budget != nil && seen > budget.Load() {
			return ErrListBudget
		}
		fn(i)
		return nil
	})
}
