package lease

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
)

// The store's clock as a push or GC reads it does not depend on the local
// clock it is given (Options.Now): ages come out the same, at most the
// true age and less than it by no more than the margin and the time the
// test takes, whatever the local clock's offset.
func TestStoreClockIgnoresTheLocalClock(t *testing.T) {
	ctx := context.Background()
	storeNow := func() time.Time { return time.Now().Add(-3 * time.Hour) } // not this machine's clock
	s, err := blob.Open(ctx, t.TempDir(), blob.WithClock(storeNow))
	if err != nil {
		t.Fatal(err)
	}
	stamped := storeNow().Add(-time.Minute) // what the store stamped a minute ago
	for _, skew := range []time.Duration{0, 5 * time.Minute, -5 * time.Minute, 30 * 24 * time.Hour} {
		c := NewClock(s, func() time.Time { return time.Now().Add(skew) })
		age, err := c.Age(ctx, stamped)
		if err != nil {
			t.Fatal(err)
		}
		if age > time.Minute || age < time.Minute-ClockMargin-time.Second {
			t.Errorf("local clock %s off: age %s, want just under a minute (margin %s)", skew, age, ClockMargin)
		}
	}
}

// A write stamped later than the store's time the clock knows tightens it;
// an earlier one (a write that took long to return) does not loosen it.
func TestStoreClockKeepsTheLatestBound(t *testing.T) {
	c := NewClock(nil, time.Now)
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Observe(base)
	c.Observe(base.Add(-time.Hour))
	now, err := c.Now(context.Background())
	if err != nil || now.Before(base.Add(-ClockMargin)) || now.After(base.Add(time.Second)) {
		t.Fatalf("after an earlier stamp: %s, %v; want about %s", now, err, base)
	}
	c.Observe(base.Add(time.Hour))
	if now, _ := c.Now(context.Background()); now.Before(base.Add(time.Hour - ClockMargin)) {
		t.Fatalf("after a later stamp: %s, want about %s", now, base.Add(time.Hour))
	}
}

// Where the store's clock cannot be read (the probe write fails), a push
// counts gc/running as held: it takes the protected path.
func TestCheckGCCountsAnUnjudgedLeaseAsRunning(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := blob.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, RunningKey, strings.NewReader("gc started\n"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	store := failingPuts{s}
	if c := CheckGC(ctx, store, NewClock(store, time.Now)); !c.Running || c.OK {
		t.Fatalf("check %+v, want running and not ok", c)
	}
}

type failingPuts struct{ blob.Store }

func (failingPuts) Put(context.Context, string, io.Reader, blob.PutOptions) error {
	return errors.New("permission denied")
}
