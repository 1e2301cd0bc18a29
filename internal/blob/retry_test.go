package blob

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
)

// Clients told the same Retry-After at the same moment do not all come
// back at the same instant: the wait is at least what the server asked
// for, at most half as long again, and spread over that interval.
func TestBackoffSpreadsRetryAfter(t *testing.T) {
	err := &googleapi.Error{Code: 429, Header: http.Header{"Retry-After": {"1"}}}
	r := Retry{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, MaxRetryAfter: 2 * time.Second}
	seen := map[time.Duration]bool{}
	lo, hi := time.Hour, time.Duration(0)
	for range 200 {
		d := r.Backoff(1, err)
		seen[d] = true
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < time.Second || hi > 1500*time.Millisecond {
		t.Fatalf("waits from %s to %s for a Retry-After of 1s, want within [1s, 1.5s]", lo, hi)
	}
	if len(seen) < 100 || hi-lo < 250*time.Millisecond {
		t.Fatalf("200 waits for the same Retry-After: %d distinct, from %s to %s: retries come back together", len(seen), lo, hi)
	}
	if d := r.Backoff(1, nil); d < 5*time.Millisecond || d > 10*time.Millisecond {
		t.Fatalf("first backoff without Retry-After: %s, want 5-10ms", d)
	}
}
