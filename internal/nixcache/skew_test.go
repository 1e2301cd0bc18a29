package nixcache_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// The tests below put the clock of the machine that pushes or collects
// off the store's: the store (the GCS stand-in, or a directory stamping
// objects with a clock of its own) runs skew behind this machine's clock,
// which the pusher and GC read (Options.Now, and time.Now). A skew of
// +5m is a machine five minutes ahead of the store; -5m, behind.
var skews = []time.Duration{5 * time.Minute, -5 * time.Minute}

// skewBy makes this machine's clock skew ahead of the store's from now on.
func (c *gcCache) skewBy(skew time.Duration) { c.setStoreTime(time.Now().Add(-skew)) }

// A pusher whose clock is five minutes off the store's, either way,
// racing a GC that is deleting a path the push relies on, loses nothing:
// afterwards the cache verifies and real Nix substitutes the pushed
// closure, and still does after a GC run KeepDays less two minutes later
// by the store's clock. A pusher ahead of the store would take GC's fresh
// gc/running for stale and publish relying on the path without
// protection; one behind would name its root older than it is, and a GC
// judging the name would collect it before KeepDays.
func TestSkewedPusherRacingGCLosesNothing(t *testing.T) {
	isolateNix(t)
	built := testrig.Build(t, testrig.Attr(t, "sourceos-server-system"), testrig.Attr(t, "sourceos-server-netboot"),
		testrig.Attr(t, "sourceos-edge-iso"))
	sys, net, eIso := built[0], built[1], built[2]
	// Long enough that a push without protection completes within the
	// half window during which GC deletes without listing again.
	nixcache.SetGCWindow(t, 4*time.Second)
	const keepDays = 45
	day := 24 * time.Hour
	for _, skew := range skews {
		t.Run(skew.String(), func(t *testing.T) {
			c := newGCCache(t, "gcs")
			now := time.Now()
			c.push("old", "1", now.Add(-100*day), false, sys) // unrooted once the next three exist
			for _, id := range []string{"2", "3", "4"} {
				c.push("old", id, now.Add(-90*day), false, eIso)
			}
			c.skewBy(skew)
			o := c.options()
			o.Now = c.storeNow // this GC's clock agrees with the store's
			o.GC = nixcache.GCOptions{Grace: time.Hour, KeepDays: keepDays, Settle: 10 * time.Millisecond}
			sysKey := nixstore.HashPart(sys) + ".narinfo"
			var once sync.Once
			var pushErr error
			// The push runs when the sweep, having listed the cache, is about
			// to delete the narinfo of sys, which the push finds present.
			nixcache.BeforeGCDelete(t, func(key string) {
				if key != sysKey {
					return
				}
				once.Do(func() {
					po := c.options() // this machine's clock: skew off the store's
					po.Root.Name = "new"
					var s nixcache.Summary
					s, pushErr = nixcache.Push(tctx(t), po, []string{net})
					t.Logf("push during the sweep: %s", s.JSON())
				})
			})
			sum, err := nixcache.GC(tctx(t), o)
			if err != nil {
				t.Fatalf("gc: %v (%s)", err, sum.JSON())
			}
			t.Logf("gc: %s", sum.JSON())
			if pushErr != nil {
				t.Fatalf("push during gc: %v", pushErr)
			}
			if !c.has(sysKey) {
				t.Error("gc deleted a path a concurrent push relied on")
			}
			mustVerify(t, c.options(), true)

			// A newer root of the same name, then a GC keeping only the newest
			// root of each name by count, KeepDays less two minutes after the
			// push's root was stored: its root is kept by age.
			stored := rootsNamed(t, c.store, "new")
			if len(stored) != 1 {
				t.Fatalf("roots of the push: %v, want one", stored)
			}
			po := c.options()
			po.Root.Name = "new"
			if _, err := nixcache.Push(tctx(t), po, []string{eIso}); err != nil {
				t.Fatal(err)
			}
			c.setStoreTime(stored[0].Updated.Add(keepDays*day - 2*time.Minute))
			o.GC = nixcache.GCOptions{Grace: time.Hour, KeepDays: keepDays, KeepLast: 1, Settle: time.Millisecond}
			sum, err = nixcache.GC(tctx(t), o)
			if err != nil {
				t.Fatalf("second gc: %v (%s)", err, sum.JSON())
			}
			t.Logf("second gc: %s", sum.JSON())
			if !c.has(stored[0].Key) {
				t.Errorf("gc collected root %s, younger than %d days by the store's clock", stored[0].Key, keepDays)
			}
			mustVerify(t, c.options(), true)
			if out, err := substitute(t, c.url(), c.k.public, net); err != nil {
				t.Fatalf("nix could not substitute the pushed closure: %v\n%s", err, out)
			}
		})
	}
}

// rootsNamed lists the stored roots of name.
func rootsNamed(t testing.TB, s blob.Store, name string) []blob.Info {
	t.Helper()
	var out []blob.Info
	err := s.List(tctx(t), "roots/"+name+"/", func(i blob.Info) error { out = append(out, i); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A GC whose clock is five minutes off the store's, either way, deletes
// nothing younger than its grace period by the store's clock, keeps every
// root younger than KeepDays by the store's clock with its closure, honours
// another GC's lease while the store's clock says it is fresh and no
// longer, and still deletes what is old enough.
func TestSkewedGCJudgesAgesByTheStoresClock(t *testing.T) {
	isolateNix(t)
	built := testrig.Build(t, testrig.Attr(t, "sourceos-server-iso"), testrig.Attr(t, "sourceos-edge-iso"),
		testrig.Attr(t, "sourceos-desktop-system"), testrig.Attr(t, "sourceos-server-netboot"))
	expiring, edge, newest, rootless := built[0], built[1], built[2], built[3]
	const keepDays = 45
	grace, day := time.Hour, 24*time.Hour
	for _, kind := range []string{"gcs", "dir"} {
		for _, skew := range skews {
			t.Run(kind+"/"+skew.String(), func(t *testing.T) {
				c := newGCCache(t, kind)
				// The store's time at the GC, less the few seconds this setup
				// takes; margins of two minutes are well within the skew.
				s := time.Now().Add(-skew)
				c.push("r", "expiring", s.Add(-keepDays*day-10*time.Minute), false, expiring)
				c.push("r", "edge", s.Add(-keepDays*day+2*time.Minute), false, edge)
				c.push("r", "newest", s.Add(-day), false, newest)
				c.pushRootless(s.Add(-grace+2*time.Minute), rootless)
				youngOrphan, oldOrphan := "nar/"+strings.Repeat("1", 52)+".nar.zst", "nar/"+strings.Repeat("0", 52)+".nar.zst"
				c.plantAt(youngOrphan, []byte("young"), s.Add(-grace+2*time.Minute))
				c.plantAt(oldOrphan, []byte("old"), s.Add(-grace-10*time.Minute))

				o := c.options() // Now: this machine's clock, skew off the store's
				o.GC = nixcache.GCOptions{Grace: grace, KeepDays: keepDays, KeepLast: 1, Settle: time.Millisecond}
				c.skewBy(skew)
				before := map[string]blob.Info{}
				if err := c.store.List(tctx(t), "", func(i blob.Info) error { before[i.Key] = i; return nil }); err != nil {
					t.Fatal(err)
				}
				at := c.storeNow()
				sum, err := nixcache.GC(tctx(t), o)
				if err != nil {
					t.Fatalf("gc: %v (%s)", err, sum.JSON())
				}
				t.Logf("gc: %s", sum.JSON())
				for key, i := range before {
					age := at.Sub(i.Updated)
					switch {
					case c.has(key):
					case age < grace:
						t.Errorf("gc deleted %s, %s old by the store's clock (grace %s)", key, age.Round(time.Second), grace)
					case strings.HasPrefix(key, "roots/") && age < keepDays*day:
						t.Errorf("gc deleted root %s, younger than %d days by the store's clock", key, keepDays)
					}
				}
				if c.has(oldOrphan) || c.has(nixstore.HashPart(expiring)+".narinfo") || len(rootsNamed(t, c.store, "r")) != 2 {
					t.Errorf("gc kept what is old enough to go: %s", sum.JSON())
				}

				c.plantAt("gc/running", []byte("gc started\n"), time.Now().Add(-skew-time.Minute))
				c.skewBy(skew)
				if sum, err := nixcache.GC(tctx(t), o); !errors.Is(err, nixcache.ErrGCRunning) {
					t.Errorf("gc ran while another's lease was a minute old by the store's clock: %v (%s)", err, sum.JSON())
				}
				c.plantAt("gc/running", []byte("gc started\n"), time.Now().Add(-skew-3*time.Minute))
				c.skewBy(skew)
				if sum, err := nixcache.GC(tctx(t), o); err != nil {
					t.Errorf("gc with another's lease lapsed by the store's clock: %v (%s)", err, sum.JSON())
				}
				mustVerify(t, c.options(), true)
				if out, err := substitute(t, c.url(), c.k.public, edge, newest, rootless); err != nil {
					t.Fatalf("nix could not substitute what young roots and objects keep: %v\n%s", err, out)
				}
			})
		}
	}
}

// pushRootless pushes the closures of paths at store time at without
// recording a root (what a failed build leaves for the grace period).
func (c *gcCache) pushRootless(at time.Time, paths ...string) {
	c.t.Helper()
	c.setStoreTime(at)
	o := c.options()
	o.Now = c.storeNow
	infos, err := nixstore.Query(tctx(c.t), &execx.Exec{}, paths...)
	if err != nil {
		c.t.Fatal(err)
	}
	s, err := nixcache.Open(tctx(c.t), o)
	if err != nil {
		c.t.Fatal(err)
	}
	s.Add(tctx(c.t), infos)
	if sum, err := s.Finish(tctx(c.t)); err != nil {
		c.t.Fatalf("rootless push: %v (%s)", err, sum.JSON())
	}
}
