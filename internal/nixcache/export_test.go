package nixcache

import (
	"testing"
	"time"
)

// ObserveLimits calls fn with every concurrency limit that the pushers
// started during the test move to.
func ObserveLimits(t testing.TB, fn func(limit int)) {
	limitObserver.Store(&fn)
	t.Cleanup(func() { limitObserver.Store(nil) })
}

// DumpNAR is dumpNAR, for tests against nix-store --dump and go-nix.
var DumpNAR = dumpNAR

// SetListThreshold sets the closure size from which a push lists the
// cache instead of HEADing each path, for the test.
func SetListThreshold(t testing.TB, n int) {
	old := listThreshold
	listThreshold = n
	t.Cleanup(func() { listThreshold = old })
}

// SetGCWindow sets how long a push may rely on a GC check and how long
// GC waits between refreshes, for the test.
func SetGCWindow(t testing.TB, d time.Duration) {
	old := gcWindow
	gcWindow = d
	t.Cleanup(func() { gcWindow = old })
}

// AfterGCPlan makes GC call fn between its plan and its sweep.
func AfterGCPlan(t testing.TB, fn func()) {
	afterPlan = fn
	t.Cleanup(func() { afterPlan = nil })
}

// BeforeGCDelete makes GC's sweep call fn before it considers deleting
// each key.
func BeforeGCDelete(t testing.TB, fn func(key string)) {
	beforeDelete = fn
	t.Cleanup(func() { beforeDelete = nil })
}

// StoreClockMargin is what every reading of the store's clock is moved
// back by.
var StoreClockMargin = storeClockMargin

// SpoolOf is the spool file the watcher's hook appends to.
func SpoolOf(w *Watcher) string { return w.path }
