package blob

import (
	"context"
	"errors"
	"sync"
)

// MaxBatch is the most calls one batch request carries (GCS's limit).
const MaxBatch = 100

// Cond names one version of an object: Key at generation Gen.
type Cond struct {
	Key string
	Gen int64
}

// Batcher is a store that sends many small requests as one: GCS's batch
// requests, up to MaxBatch calls each. The error of a whole batch says the
// store cannot batch (ErrNoBatch: the caller asks one object at a time)
// or the request failed after its retries.
type Batcher interface {
	// StatBatch describes up to MaxBatch keys, as Stat would each.
	StatBatch(ctx context.Context, keys []string) ([]Info, []error, error)
	// DeleteIfBatch deletes up to MaxBatch objects, each as DeleteIf
	// would.
	DeleteIfBatch(ctx context.Context, objs []Cond) ([]error, error)
}

// ErrNoBatch means a store cannot send batch requests (the server does
// not take them, or no client could be made for them).
var ErrNoBatch = errors.New("blob: batch requests unavailable")

// StatMany describes keys as Stat would each: infos[i] and errs[i] are
// keys[i]'s. A Batcher gets MaxBatch keys per request, up to workers
// requests at once; other stores (or a Batcher that cannot batch) are
// asked one key at a time, workers at once.
func StatMany(ctx context.Context, s Store, keys []string, workers int) ([]Info, []error) {
	infos, errs := make([]Info, len(keys)), undone(len(keys))
	b, _ := s.(Batcher)
	chunks(ctx, len(keys), b != nil, workers, func(lo, hi int, batched bool) bool {
		if batched {
			in, es, err := b.StatBatch(ctx, keys[lo:hi])
			if errors.Is(err, ErrNoBatch) {
				return false
			}
			for i := lo; i < hi; i++ {
				if err != nil {
					errs[i] = err
				} else {
					infos[i], errs[i] = in[i-lo], es[i-lo]
				}
			}
			return true
		}
		infos[lo], errs[lo] = s.Stat(ctx, keys[lo])
		return true
	})
	return infos, settle(ctx, errs)
}

// DeleteManyIf deletes each object only at its generation, as DeleteIf
// would, batched like StatMany; errs[i] is objs[i]'s.
func DeleteManyIf(ctx context.Context, s Store, objs []Cond, workers int) []error {
	errs := undone(len(objs))
	b, _ := s.(Batcher)
	chunks(ctx, len(objs), b != nil, workers, func(lo, hi int, batched bool) bool {
		if batched {
			es, err := b.DeleteIfBatch(ctx, objs[lo:hi])
			if errors.Is(err, ErrNoBatch) {
				return false
			}
			for i := lo; i < hi; i++ {
				if err != nil {
					errs[i] = err
				} else {
					errs[i] = es[i-lo]
				}
			}
			return true
		}
		errs[lo] = s.DeleteIf(ctx, objs[lo].Key, objs[lo].Gen)
		return true
	})
	return settle(ctx, errs)
}

// errUndone marks an item not asked about yet.
var errUndone = errors.New("blob: not asked")

func undone(n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = errUndone
	}
	return errs
}

// settle gives the items never asked about (the context ended) its error.
func settle(ctx context.Context, errs []error) []error {
	for i, err := range errs {
		if err == errUndone {
			errs[i] = context.Cause(ctx)
			if errs[i] == nil {
				errs[i] = context.Canceled
			}
		}
	}
	return errs
}

// chunks calls do for [lo, hi) ranges of n items, workers at once:
// batches of MaxBatch while batching works (do returns false when the
// store cannot batch: from then on single items), else single items.
func chunks(ctx context.Context, n int, batch bool, workers int, do func(lo, hi int, batched bool) bool) {
	type job struct{ lo, hi int }
	var mu sync.Mutex
	batching := batch
	next := make(chan job)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				mu.Lock()
				b := batching
				mu.Unlock()
				if b && do(j.lo, j.hi, true) {
					continue
				}
				mu.Lock()
				batching = false
				mu.Unlock()
				for i := j.lo; i < j.hi && ctx.Err() == nil; i++ {
					do(i, i+1, false)
				}
			}
		}()
	}
	size := 1
	if batch {
		size = MaxBatch
	}
	for lo := 0; lo < n && ctx.Err() == nil; lo += size {
		next <- job{lo, min(n, lo+size)}
	}
	close(next)
	wg.Wait()
}
