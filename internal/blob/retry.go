package blob

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
)

// Retry tunes how transient failures (HTTP 408, 429 and 5xx, dropped
// connections) are retried. Zero fields take defaults.
type Retry struct {
	// MaxAttempts per request (default 12).
	MaxAttempts int
	// Initial and Max bound the jittered exponential backoff (default
	// 100ms and 15s).
	Initial, Max time.Duration
	// MaxRetryAfter caps how long a server's Retry-After is honoured
	// (default 60s).
	MaxRetryAfter time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 12
	}
	if r.Initial <= 0 {
		r.Initial = 100 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 15 * time.Second
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = 60 * time.Second
	}
	return r
}

// Throttle is told about every response that asks the client to slow down
// (408, 429, 503) and every retried failure, so callers can lower their
// concurrency.
type Throttle interface{ Throttled() }

// WithRetry sets the retry policy of remote stores.
func WithRetry(r Retry) Option { return func(o *options) { o.retry = r } }

// WithThrottle registers t to be told when the remote store throttles.
func WithThrottle(t Throttle) Option { return func(o *options) { o.throttle = t } }

// shouldRetry decides whether err is transient; before a retry it waits
// for the server's Retry-After, if any, and tells the throttle.
func (g *GCS) shouldRetry(ctx context.Context, err error) bool {
	if !Transient(err) {
		return false
	}
	if g.opt.throttle != nil {
		g.opt.throttle.Throttled()
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		if d := retryAfter(ge.Header, time.Now()); d > 0 {
			sleep(ctx, spread(min(d, g.opt.retry.MaxRetryAfter)))
		}
	}
	return ctx.Err() == nil
}

// Transient reports whether err is worth retrying: HTTP 408, 429, 5xx,
// dropped or reset connections.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if storage.ShouldRetry(err) {
		return true
	}
	var te *transientError
	if errors.As(err, &te) {
		return true
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code == 408 || ge.Code == 429 || ge.Code >= 500
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	s := err.Error()
	for _, frag := range []string{"connection reset", "broken pipe", "unexpected EOF", "server closed", "http2: stream closed", "timeout awaiting response headers"} {
		if strings.Contains(s, frag) {
			return true
		}
	}
	return false
}

// RetryAfter is how long the server that answered err asked the client
// to wait before trying again (0: it did not say).
func RetryAfter(err error) time.Duration {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return retryAfter(ge.Header, time.Now())
	}
	return 0
}

// Backoff is how long to wait before attempt (1 for the first retry):
// jittered exponential between Initial and Max, or what the server asked
// for (up to MaxRetryAfter), spread, if that is longer.
func (r Retry) Backoff(attempt int, err error) time.Duration {
	r = r.withDefaults()
	d := r.Initial << min(attempt-1, 20)
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	if ra := min(RetryAfter(err), r.MaxRetryAfter); ra > d {
		d = spread(ra)
	}
	return d
}

// spread lengthens a wait the server asked for by up to half of it, at
// random: clients told the same Retry-After at the same moment would
// otherwise all come back at the same instant, into the same overload.
func spread(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Attempts is how many times a request is tried at most.
func (r Retry) Attempts() int { return r.withDefaults().MaxAttempts }

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// sleepCtx waits d, or until ctx ends (its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	sleep(ctx, d)
	return ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
