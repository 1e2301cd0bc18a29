package nixcache

import (
	"context"
	"testing"
	"time"
)

// The limiter halves its limit when throttled (at most once a second),
// and raises it by one after as many successes in a row as the limit, up
// to its maximum.
func TestLimiterHalvesOnThrottleAndRecovers(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(16, func() time.Time { return now })
	var seen []int
	l.observe = func(n int) { seen = append(seen, n) }

	l.Throttled()
	if l.Limit() != 8 {
		t.Fatalf("after a throttle: limit %d, want 8", l.Limit())
	}
	l.Throttled() // within the same second: no second cut
	if l.Limit() != 8 {
		t.Fatalf("two throttles in one second cut twice: limit %d", l.Limit())
	}
	for _, want := range []int{4, 2, 1, 1} {
		now = now.Add(time.Second)
		l.Throttled()
		if l.Limit() != want {
			t.Fatalf("limit %d, want %d", l.Limit(), want)
		}
	}
	// Recovery: limit k needs k successes in a row to become k+1.
	succeed := func(n int) {
		for range n {
			if err := l.Acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
			l.Release(true)
		}
	}
	succeed(1)
	if l.Limit() != 2 {
		t.Fatalf("after 1 success at limit 1: %d, want 2", l.Limit())
	}
	succeed(1)
	l.Release(false) // a failure neither raises nor resets the limit...
	l.inUse++        // (balance the unmatched Release)
	l.Throttled()    // ...but a throttle within the second after a cut does not cut again
	succeed(2)
	if l.Limit() != 3 {
		t.Fatalf("limit %d, want 3", l.Limit())
	}
	succeed(3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 + 100)
	if l.Limit() != 16 {
		t.Fatalf("limit %d after a long success streak, want the maximum 16", l.Limit())
	}
	want := []int{8, 4, 2, 1, 2, 3}
	for i, w := range want {
		if i >= len(seen) || seen[i] != w {
			t.Fatalf("limits observed %v, want them to start %v", seen, want)
		}
	}
}

// Acquire blocks at the limit, wakes when a slot frees, and gives up when
// its context ends.
func TestLimiterAcquireBlocksAtLimit(t *testing.T) {
	l := newLimiter(2, time.Now)
	ctx := context.Background()
	for range 2 {
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error, 1)
	go func() { got <- l.Acquire(ctx) }()
	select {
	case err := <-got:
		t.Fatalf("third Acquire at limit 2 returned %v without waiting", err)
	case <-time.After(50 * time.Millisecond):
	}
	l.Release(true)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire did not wake when a slot was released")
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.Acquire(short); err == nil {
		t.Fatal("Acquire at the limit succeeded")
	}
}
