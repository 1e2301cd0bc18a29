package push

import (
	"context"
	"sync"
	"time"
)

// limiter bounds the requests in flight, and the memory they hold, and
// follows the link it talks over:
//
//   - it starts low (initialLimit) and doubles the limit after every
//     window of as many successes as the limit (slow start), until it
//     reaches max or sees the first sign of congestion; from then on a
//     window of successes raises it by one;
//   - congestion is queueing: the recent latency of small requests
//     (Latency, an average over the last few) exceeding twice the
//     shortest one seen lately (plus latencySlack). More requests would
//     only wait in a queue (a full link, a busy server), so the limit
//     drops by a quarter, at most once per settle interval;
//   - throttling (Throttled: 408, 429, 503, retried failures) halves it,
//     at most once a second.
//
// On a remote store with tens of milliseconds per request, the limit
// climbs to where the link's bandwidth or the server's queue stops
// absorbing more requests; on a local directory it stays near what the
// CPU can serve. Independently of the limit, the bytes that requests in
// flight may hold (upload buffers, encoders) stay within budget.
type limiter struct {
	mu      sync.Mutex
	limit   int
	max     int
	inUse   int
	streak  int  // successes since the limit last changed
	growing bool // slow start
	now     func() time.Time
	changed chan struct{}
	observe func(limit int)

	lastCut  time.Time // last halving on throttling
	cuts     int
	lastEase time.Time // last quarter off on queueing

	// Latency probes: base is the shortest seen in the previous or the
	// current epoch (latencyEpoch long), avg an exponential average.
	base, epochMin, prevMin time.Duration
	epochStart              time.Time
	avg                     time.Duration
	samples                 int

	budget, held int64
}

const (
	initialLimit  = 64
	latencyEpoch  = 5 * time.Second
	latencySlack  = time.Millisecond
	minSamples    = 8
	defaultBudget = 64 << 20
)

// newLimiter makes a limiter of at most max requests; observe, when not
// nil, is told every new limit.
func newLimiter(max int, now func() time.Time, observe func(limit int)) *limiter {
	l := &limiter{limit: min(initialLimit, max), max: max, growing: true, now: now,
		changed: make(chan struct{}), observe: func(int) {}, budget: defaultBudget}
	if observe != nil {
		l.observe = observe
	}
	return l
}

// Acquire waits for a slot.
func (l *limiter) Acquire(ctx context.Context) error { return l.AcquireBytes(ctx, 0) }

// AcquireBytes waits for a slot and for n bytes of the budget (a request
// larger than the whole budget waits until nothing else holds any).
func (l *limiter) AcquireBytes(ctx context.Context, n int64) error {
	for {
		l.mu.Lock()
		if l.inUse < l.limit && (l.held == 0 || l.held+n <= l.budget) {
			l.inUse++
			l.held += n
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
func (l *limiter) Release(ok bool) { l.ReleaseBytes(ok, 0) }

// ReleaseBytes frees a slot and n bytes of the budget.
func (l *limiter) ReleaseBytes(ok bool, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inUse--
	l.held -= n
	if ok {
		l.grow()
	}
	l.wake()
}

// grow counts a success and raises the limit after a window of them.
func (l *limiter) grow() {
	l.streak++
	if l.streak < l.limit || l.limit >= l.max {
		return
	}
	l.streak = 0
	if l.congested() {
		return
	}
	next := l.limit + 1
	if l.growing {
		next = 2 * l.limit
	}
	l.set(min(l.max, next))
}

// Latency records the duration of a small request (one whose time is
// mostly the round trip, not its bytes).
func (l *limiter) Latency(d time.Duration) {
	if d <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.epochStart) >= latencyEpoch {
		l.prevMin, l.epochMin, l.epochStart = l.epochMin, 0, now
	}
	if l.epochMin == 0 || d < l.epochMin {
		l.epochMin = d
	}
	l.base = l.epochMin
	if l.prevMin > 0 && l.prevMin < l.base {
		l.base = l.prevMin
	}
	if l.avg == 0 {
		l.avg = d
	} else {
		l.avg = (7*l.avg + d) / 8
	}
	l.samples++
	if l.congested() && now.Sub(l.lastEase) >= max(4*l.avg, 100*time.Millisecond) {
		l.lastEase = now
		l.growing = false
		l.streak = 0
		l.set(max(1, l.limit*3/4))
	}
}

// congested says whether recent requests queue.
func (l *limiter) congested() bool {
	return l.samples >= minSamples && l.avg > 2*l.base+latencySlack
}

// Throttled implements blob.Throttle.
func (l *limiter) Throttled() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streak = 0
	l.growing = false
	if now := l.now(); now.Sub(l.lastCut) >= time.Second {
		l.lastCut = now
		l.cuts++
		l.set(max(1, l.limit/2))
	}
}

func (l *limiter) set(limit int) {
	if limit != l.limit {
		l.limit = limit
		l.observe(limit)
		l.wake()
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
