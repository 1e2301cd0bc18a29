package nixcache

import "testing"

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
