package nixcache

import (
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/nixcache/lease"
	"github.com/socioprophet/sourceos/internal/nixcache/nardump"
	"github.com/socioprophet/sourceos/internal/nixcache/watch"
)

// ObserveLimits calls fn with every concurrency limit that the pushers
// started during the test move to.
func ObserveLimits(t testing.TB, fn func(limit int)) {
	testObserveLimit = fn
	t.Cleanup(func() { testObserveLimit = nil })
}

// DumpNAR is nardump.Dump, for tests against nix-store --dump and go-nix.
var DumpNAR = nardump.Dump

// SetListThreshold sets the closure size from which a push lists the
// cache instead of HEADing each path, for the test.
func SetListThreshold(t testing.TB, n int) {
	old := testListThreshold
	testListThreshold = n
	t.Cleanup(func() { testListThreshold = old })
}

// SetGCWindow sets how long a push may rely on a GC check and how long
// GC waits between refreshes, for the test.
func SetGCWindow(t testing.TB, d time.Duration) {
	old := testWindow
	testWindow = d
	t.Cleanup(func() { testWindow = old })
}

// AfterGCPlan makes GC call fn between its plan and its sweep.
func AfterGCPlan(t testing.TB, fn func()) {
	testAfterPlan = fn
	t.Cleanup(func() { testAfterPlan = nil })
}

// BeforeGCDelete makes GC's sweep call fn before it considers deleting
// each key.
func BeforeGCDelete(t testing.TB, fn func(key string)) {
	testBeforeDelete = fn
	t.Cleanup(func() { testBeforeDelete = nil })
}

// StoreClockMargin is what every reading of the store's clock is moved
// back by.
const StoreClockMargin = lease.ClockMargin

// SpoolOf is the spool file the watcher's hook appends to.
func SpoolOf(w *Watcher) string { return (*watch.Watcher)(w).Spool() }
