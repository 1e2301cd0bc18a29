package nixcache_test

import (
	"sync"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// A push of a closure that GC is deleting as garbage, made while the sweep
// runs through a cache of tens of thousands of objects, loses nothing:
// what GC deleted before the push protected it is pushed again, what it
// had not is spared; afterwards the cache verifies, the expired garbage is
// gone and real Nix substitutes both the live closure and the pushed one.
// The protocol's window is short, so the sweep re-reads the roots many
// times (and only the roots: a re-listing of the cache would not fit in
// half a window).
func TestPushRacingGCSweepLosesNothing(t *testing.T) {
	isolateNix(t)
	built := testrig.Build(t, testrig.Attr(t, "sourceos-desktop-netboot"), testrig.Attr(t, "sourceos-server-system"))
	live, raced := built[0], built[1]
	nixcache.SetGCWindow(t, time.Second)
	c := newGCCache(t, "gcs")
	now := time.Now()
	day := 24 * time.Hour
	c.push("live", "old", now.Add(-100*day), false, raced) // expired: its paths are garbage
	c.push("live", "new", now.Add(-2*day), false, live)
	garbage := seedGarbage(t, c.link, "cache", "nix-cache", c.k, 16000, testrig.Closure(t, live), now.Add(-90*day))
	c.setStoreTime(now)
	c.link.SetLatency(10 * time.Millisecond)

	var once sync.Once
	var pushErr error
	var pushed nixcache.Summary
	done := make(chan struct{})
	nixcache.BeforeGCDelete(t, func(string) {
		once.Do(func() {
			go func() {
				defer close(done)
				o := c.options()
				o.Root.Name = "race"
				pushed, pushErr = nixcache.Push(tctx(t), o, []string{raced})
			}()
		})
	})
	o := c.options()
	o.GC = nixcache.GCOptions{Grace: time.Hour, KeepLast: 1, KeepDays: 45, Settle: 10 * time.Millisecond}
	sum, err := nixcache.GC(tctx(t), o)
	<-done
	t.Logf("gc: %s; push during the sweep: %s", sum.JSON(), pushed.JSON())
	if err != nil || pushErr != nil {
		t.Fatalf("gc: %v; push during the sweep: %v", err, pushErr)
	}
	if want := garbage - garbage/4001; sum.FreedObjects < want {
		t.Errorf("gc freed %d objects, want at least the %d seeded ones but their roots", sum.FreedObjects, want)
	}
	c.link.SetLatency(0)
	mustVerify(t, c.options(), false)
	if out, err := substitute(t, c.url(), c.k.public, live, raced); err != nil {
		t.Fatalf("nix could not substitute the live and the raced closures: %v\n%s", err, out)
	}
}
