package cachefmt

import (
	"context"
	"errors"
	"sync"
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

// NARRanges partition the NAR names (every key below nar/, and nothing
// else): one range per first character of the name, and one for names
// that start otherwise.
func NARRanges() []Range {
	out := []Range{{NarPrefix, NarPrefix + "0"}}
	for i, c := range Nix32Alphabet {
		end := NarPrefix[:len(NarPrefix)-1] + "0" // "nar0": just past every "nar/…"
		if i+1 < len(Nix32Alphabet) {
			end = NarPrefix + string(Nix32Alphabet[i+1])
		}
		out = append(out, Range{NarPrefix + string(c), end})
	}
	return out
}

// OtherRanges partition every key that is not below nar/: narinfos (one
// range per first character), roots, gc/ and nix-cache-info.
func OtherRanges() []Range {
	var out []Range
	prev := ""
	for _, c := range Nix32Alphabet[1:] {
		if c == 'p' { // "n" … "p" holds nar/: split around it
			out = append(out, Range{prev, NarPrefix}, Range{"nar0", "p"})
			prev = "p"
			continue
		}
		out = append(out, Range{prev, string(c)})
		prev = string(c)
	}
	return append(out, Range{prev, ""})
}

// RootRanges partition the roots (every key below roots/): one range per
// first character of a root name, and one for the rest.
func RootRanges() []Range {
	const chars = "0123456789abcdefghijklmnopqrstuvwxyz"
	out := []Range{{RootsPrefix, RootsPrefix + "0"}}
	for i, c := range chars {
		end := "roots0" // just past every "roots/…"
		if i+1 < len(chars) {
			end = RootsPrefix + string(chars[i+1])
		}
		out = append(out, Range{RootsPrefix + string(c), end})
	}
	return out
}

// probePage is what one listing request returns at most.
const probePage = 1000

// errMore stops a probe that found a full page: more may follow.
var errMore = errors.New("more than a page")

// listSmall lists the span of ranges in one page, calling fn, if that
// is all there is; done is false (and fn not called) otherwise.
func listSmall(ctx context.Context, s blob.Store, ranges []Range, fn func(blob.Info) error) (done bool, err error) {
	lo, hi := ranges[0].Start, ranges[0].End
	for _, r := range ranges[1:] {
		lo = min(lo, r.Start)
		if hi != "" && (r.End == "" || r.End > hi) {
			hi = r.End
		}
	}
	var got []blob.Info
	err = s.ListRange(ctx, lo, hi, func(i blob.Info) error {
		if got = append(got, i); len(got) >= probePage {
			return errMore
		}
		return nil
	})
	switch {
	case errors.Is(err, errMore):
		return false, nil
	case err != nil:
		return false, err
	}
	for _, i := range got {
		if err := fn(i); err != nil {
			return true, err
		}
	}
	return true, nil
}

// contains says whether key lies in r.
func (r Range) contains(key string) bool { return key >= r.Start && (r.End == "" || key < r.End) }

// ListEach lists ranges, up to workers at once, calling fn for each
// object from the goroutine of its range: fn must be safe for concurrent
// use, and the work it does (decoding, checking) spreads over the CPUs. A
// directory is walked once, not once per range. On a remote store the
// span of the ranges is first listed alone, up to one page: a small cache
// (or few roots) costs one request, not one per range. An error from fn
// stops every range and is returned.
func ListEach(ctx context.Context, s blob.Store, ranges []Range, workers int, fn func(blob.Info) error) error {
	in := func(i blob.Info) error {
		for _, r := range ranges {
			if r.contains(i.Key) {
				return fn(i)
			}
		}
		return nil
	}
	if _, ok := s.(*blob.Dir); ok {
		return s.ListRange(ctx, "", "", in)
	}
	if done, err := listSmall(ctx, s, ranges, in); done || err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(1, workers))
	var wg sync.WaitGroup
	errs := make([]error, len(ranges))
	for i, r := range ranges {
		wg.Add(1)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Done()
			continue
		}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = s.ListRange(ctx, r.Start, r.End, func(info blob.Info) error {
				if err := fn(info); err != nil {
					cancel(err)
					return err
				}
				return nil
			})
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}
