// Package lease is how pushes and GC share a cache without locking each
// other out: the objects GC announces itself with, the store's clock that
// every age is judged by, and what a push checks before it relies on
// objects it did not write.
package lease

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
)

// The protocol. GC deletes only objects older than its grace period, so
// whatever a push writes is safe; what needs care is what a push relies
// on without writing it: a path it found present (its new narinfos and
// its root will name it) or a NAR it found already stored. GC may be
// deleting exactly those if they belong to no root any more. The
// protocol:
//
//   - GC announces itself before it decides anything: it rewrites
//     gc/epoch (a new generation every run) and keeps gc/running fresh
//     while it runs. It then waits twice Window before its mark reads the
//     roots and lists the cache, and while it sweeps it sends a delete only
//     within Window/2 of the start of a re-read of the roots (and of its
//     own lease) that found nothing new keeping it, giving the request
//     until 3/4 Window after that start: a new root, or a push's in-flight
//     root, spares what it names and what that refers to.
//   - A push checks both objects before it looks the cache up. A narinfo
//     that relies on objects the push did not write is published only
//     within Window/2 of a check that found no GC running and the same
//     epoch as before the look-ups (fast path: GC cannot have decided
//     anything the push has not seen, and will see the narinfo before it
//     decides). Otherwise (slow path) the push records an in-flight root
//     naming those objects (rewriting it as it finds more; GC re-reads a
//     root whose generation changed), waits until Window after the first
//     write that held them, and looks them up again: a GC
//     re-read that started after the root was stored spares them; a delete
//     based on an earlier re-read took effect before the push looked
//     again (sent within Window/2 of that re-read, cut off at 3/4 Window),
//     so the push sees the object gone and pushes it again instead of
//     relying on it.
//
// Time. Whether gc/running is fresh, whether an object is within the
// grace period and whether a root is younger than KeepDays are judged by
// the store's clock only (Clock): an object's age is the store's
// time now less the time the store stamped on it (blob.Info.Updated).
// This machine's clock never meets a stored timestamp; it only measures
// how much time passed since the store last told us its time. The other
// durations of the protocol (Window, the settle time) are measured on
// one machine each, so they need no common clock either.
const (
	// EpochKey is rewritten by every GC run as it starts.
	EpochKey = "gc/epoch"
	// RunningKey is kept fresh by a GC while it runs.
	RunningKey = "gc/running"
	// ClockKey is the small object a push or a GC writes to learn the
	// store's time (Clock.Sync); whoever needs it rewrites it.
	ClockKey = "gc/clock"
	// Prefix holds the objects of this protocol.
	Prefix = "gc/"
)

const (
	// Window bounds how long a push may rely on a GC check, and is how
	// long the slow path waits; GC settles for twice as long after it
	// announces itself and re-reads the roots at least every half window.
	// Pushes and GC must agree on it (tests shorten it on both sides).
	Window = 10 * time.Second
	// TTL is how long gc/running counts after its last refresh.
	TTL = 2 * time.Minute
	// ClockMargin is taken off every reading of the store's clock: it
	// covers timestamps stored with a coarse granularity (a second or two
	// on some file systems) and the drift of this machine's clock rate
	// between two syncs.
	ClockMargin = 2 * time.Second
)

// Clock tells the time by the store's clock. sync writes
// ClockKey: the Updated time the store stamps on it is the store's
// time at some instant of the write, so no later than the store's time
// when the write returned. From then on
//
//	store now >= stamped + (local now - local time when the write returned)
//
// where the local clock (Options.Now) only measures elapsed time: any
// offset it has from the store cancels (time.Now also carries a monotonic
// reading, so a step of the wall clock does not count either). now
// returns that bound less ClockMargin, so every age computed from it
// is at most the true age: a lease looks fresher, an object younger, a
// root more recent than they are, and each decision errs on the side of
// keeping. Each write of an object whose stored Info this process gets
// back (observe) may tighten the bound.
type Clock struct {
	store blob.Store
	local func() time.Time

	syncMu sync.Mutex // one sync at a time
	mu     sync.Mutex
	set    bool
	stamp  time.Time // a time the store stamped...
	at     time.Time // ...no later than its clock read at this local time
}

// NewClock reads the clock of store, measuring elapsed time with local.
func NewClock(store blob.Store, local func() time.Time) *Clock {
	return &Clock{store: store, local: local}
}

// Sync writes ClockKey and takes the store's time from it.
func (c *Clock) Sync(ctx context.Context) error {
	var stored blob.Info
	body := "written to read the store's clock; see internal/nixcache/lease\n"
	err := c.store.Put(ctx, ClockKey, strings.NewReader(body),
		blob.PutOptions{ContentType: "text/plain", SizeHint: int64(len(body)), Stored: &stored})
	if err != nil {
		return fmt.Errorf("read the store's clock (write %s): %w", ClockKey, err)
	}
	if stored.Updated.IsZero() {
		return fmt.Errorf("read the store's clock: %s has no time", c.store.URL(ClockKey))
	}
	c.Observe(stored.Updated)
	return nil
}

// Observe records stamped, the store's time during a write that has just
// returned, if it gives a later bound than what is known.
func (c *Clock) Observe(stamped time.Time) {
	if stamped.IsZero() {
		return
	}
	at := c.local()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.set || stamped.Sub(c.stamp) > at.Sub(c.at) {
		c.set, c.stamp, c.at = true, stamped, at
	}
}

// ensure syncs unless the store's time was read already (callers that
// arrive during a sync wait for it).
func (c *Clock) ensure(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.mu.Lock()
	set := c.set
	c.mu.Unlock()
	if set {
		return nil
	}
	return c.Sync(ctx)
}

// Now is a time the store's clock has certainly passed (reading it first
// if it never was).
func (c *Clock) Now(ctx context.Context) (time.Time, error) {
	if err := c.ensure(ctx); err != nil {
		return time.Time{}, err
	}
	local := c.local()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stamp.Add(local.Sub(c.at) - ClockMargin), nil
}

// Age is how long ago the store stamped t, at most.
func (c *Clock) Age(ctx context.Context, t time.Time) (time.Duration, error) {
	now, err := c.Now(ctx)
	if err != nil {
		return 0, err
	}
	return now.Sub(t), nil
}

// Check is what a push learnt of GC runs at a moment.
type Check struct {
	At      time.Time // this machine's clock, for elapsed time only
	OK      bool      // both objects were looked up
	Epoch   int64     // generation of gc/epoch; 0: never ran
	Running bool
}

// CheckGC looks gc/epoch and gc/running up. gc/running counts while the
// store's clock says it was refreshed less than TTL ago; reading that
// clock costs a write, made only when gc/running exists.
func CheckGC(ctx context.Context, store blob.Store, clock *Clock) Check {
	c := Check{At: time.Now(), OK: true}
	var epoch, running blob.Info
	var epochErr, runningErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); epoch, epochErr = store.Stat(ctx, EpochKey) }()
	go func() { defer wg.Done(); running, runningErr = store.Stat(ctx, RunningKey) }()
	wg.Wait()
	for _, err := range []error{epochErr, runningErr} {
		if err != nil && !errors.Is(err, blob.ErrNotFound) {
			c.OK = false
		}
	}
	if epochErr == nil {
		c.Epoch = epoch.Generation
	}
	if runningErr == nil {
		age, err := clock.Age(ctx, running.Updated)
		c.OK = c.OK && err == nil
		c.Running = err != nil || age < TTL
	}
	return c
}
