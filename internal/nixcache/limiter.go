package nixcache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// limitObserver, when set (by tests), is told every new limit of every
// limiter made afterwards.
var limitObserver atomic.Pointer[func(limit int)]

// limiter bounds concurrency adaptively (AIMD): it halves the limit when
// the store throttles (at most once a second) and raises it by one after
// as many consecutive successes as the current limit, up to max.
type limiter struct {
	mu      sync.Mutex
	limit   int
	max     int
	inUse   int
	streak  int
	lastCut time.Time
	now     func() time.Time
	changed chan struct{}
	cuts    int
	observe func(limit int)
}

func newLimiter(max int, now func() time.Time) *limiter {
	l := &limiter{limit: max, max: max, now: now, changed: make(chan struct{}), observe: func(int) {}}
	if fn := limitObserver.Load(); fn != nil {
		l.observe = *fn
	}
	return l
}

// Acquire waits for a slot.
func (l *limiter) Acquire(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.inUse < l.limit {
			l.inUse++
			l.mu.Unlock()
			return nil
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Release frees a slot; ok says whether the work succeeded.
func (l *limiter) Release(ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inUse--
	if ok {
		l.streak++
		if l.streak >= l.limit && l.limit < l.max {
			l.limit++
			l.streak = 0
			l.observe(l.limit)
		}
	}
	l.wake()
}

// Throttled implements blob.Throttle.
func (l *limiter) Throttled() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streak = 0
	if now := l.now(); now.Sub(l.lastCut) >= time.Second {
		l.lastCut = now
		l.cuts++
		if cut := max(1, l.limit/2); cut != l.limit {
			l.limit = cut
			l.observe(cut)
		}
	}
}

// Limit is the current limit.
func (l *limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

func (l *limiter) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}
