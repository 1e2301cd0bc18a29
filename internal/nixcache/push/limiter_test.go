package push

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The limiter starts low and doubles its limit after each window of as
// many successes as the limit, up to its maximum; a throttle halves it (at
// most once a second) and ends the doubling: from then on a window of
// successes raises it by one.
func TestLimiterSlowStartThenThrottle(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(8*initialLimit, func() time.Time { return now }, nil)
	var seen []int
	l.observe = func(n int) { seen = append(seen, n) }
	succeed := func(n int) {
		t.Helper()
		for range n {
			if err := l.Acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
			l.Release(true)
		}
	}
	if l.Limit() != initialLimit {
		t.Fatalf("starts at %d, want %d", l.Limit(), initialLimit)
	}
	const s = initialLimit
	succeed(s + 2*s + 4*s)
	if l.Limit() != 8*s {
		t.Fatalf("after three windows: %d, want %d (doubling from %d)", l.Limit(), 8*s, s)
	}
	succeed(20 * s)
	if l.Limit() != 8*s {
		t.Fatalf("grew past its maximum: %d", l.Limit())
	}
	l.Throttled()
	l.Throttled() // within the same second: no second cut
	if l.Limit() != 4*s {
		t.Fatalf("after throttles in one second: %d, want %d", l.Limit(), 4*s)
	}
	now = now.Add(time.Second)
	l.Throttled()
	if l.Limit() != 2*s {
		t.Fatalf("after a throttle a second later: %d, want %d", l.Limit(), 2*s)
	}
	l.Release(false) // a failure neither raises nor resets the limit
	l.inUse++        // (balance the unmatched Release)
	succeed(2 * s)
	if l.Limit() != 2*s+1 {
		t.Fatalf("a window after throttling: %d, want %d (one more, no doubling)", l.Limit(), 2*s+1)
	}
	want := []int{2 * s, 4 * s, 8 * s, 4 * s, 2 * s, 2*s + 1}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("limits observed %v, want %v", seen, want)
	}
}

// When small requests start taking much longer than the shortest seen,
// they queue: the limit drops by a quarter (at most once per settle
// interval) and stops growing while the queueing lasts.
func TestLimiterBacksOffWhenRequestsQueue(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(256, func() time.Time { return now }, nil)
	l.limit = 64
	for range 20 {
		l.Latency(50 * time.Millisecond)
		now = now.Add(10 * time.Millisecond)
	}
	if l.Limit() != 64 || l.congested() {
		t.Fatalf("steady round trips: limit %d, congested %v", l.Limit(), l.congested())
	}
	for range 10 {
		l.Latency(200 * time.Millisecond)
	}
	if l.Limit() != 48 {
		t.Fatalf("queueing requests: limit %d, want 48", l.Limit())
	}
	for range 10 { // the same instant: no second cut
		l.Latency(200 * time.Millisecond)
	}
	if l.Limit() != 48 {
		t.Fatalf("cut twice within the settle interval: %d", l.Limit())
	}
	for range 48 {
		_ = l.Acquire(context.Background())
		l.Release(true)
	}
	if l.Limit() != 48 {
		t.Fatalf("grew while requests queue: %d", l.Limit())
	}
	now = now.Add(time.Second)
	l.Latency(200 * time.Millisecond)
	if l.Limit() != 36 {
		t.Fatalf("still queueing a second later: %d, want 36", l.Limit())
	}
	for range 40 { // the queue empties
		l.Latency(50 * time.Millisecond)
	}
	for range 36 {
		_ = l.Acquire(context.Background())
		l.Release(true)
	}
	if l.Limit() != 37 {
		t.Fatalf("after the queue emptied: %d, want 37", l.Limit())
	}
}

// The byte budget holds back a request that would exceed it, but never
// one that has the budget to itself.
func TestLimiterByteBudget(t *testing.T) {
	l := newLimiter(16, time.Now, nil)
	l.budget = 100
	ctx := context.Background()
	if err := l.AcquireBytes(ctx, 60); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.AcquireBytes(short, 60); err == nil {
		t.Fatal("a request past the budget was admitted")
	}
	if err := l.AcquireBytes(ctx, 40); err != nil {
		t.Fatal(err)
	}
	l.ReleaseBytes(true, 60)
	l.ReleaseBytes(true, 40)
	if err := l.AcquireBytes(ctx, 1000); err != nil {
		t.Fatalf("a request larger than the budget, alone: %v", err)
	}
}

// Acquire blocks at the limit, wakes when a slot frees, and gives up when
// its context ends.
func TestLimiterAcquireBlocksAtLimit(t *testing.T) {
	l := newLimiter(2, time.Now, nil)
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
