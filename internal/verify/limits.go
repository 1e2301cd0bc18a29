package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
)

// Limits bound how long VerifyURL waits on a server, so that one that
// answers slowly, or not at all, cannot hold it: a zero field takes its
// default from internal/config.
type Limits struct {
	// Total is the deadline of the whole verification, every download
	// included (SOURCEOS_VERIFY_TIMEOUT).
	Total time.Duration
	// Header bounds the wait from a request to its response's headers:
	// name look-up, connect, TLS and redirects included
	// (SOURCEOS_VERIFY_HEADER_TIMEOUT).
	Header time.Duration
	// Idle is the longest a download may receive nothing
	// (SOURCEOS_VERIFY_IDLE_TIMEOUT).
	Idle time.Duration
	// MinRate is the rate, in bytes a second, a download must average
	// over each RateWindow (SOURCEOS_VERIFY_MIN_RATE): a slow start
	// passes, a drip is cut at the end of its first window.
	MinRate    int64
	RateWindow time.Duration
}

// limitsFromConfig are the limits the configuration sets.
func limitsFromConfig(cfg *config.Config) Limits {
	return Limits{Total: cfg.VerifyTimeout, Header: cfg.VerifyHeaderTimeout, Idle: cfg.VerifyIdleTimeout,
		MinRate: int64(cfg.VerifyMinRate) << 10, RateWindow: config.VerifyRateWindow}
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	fill := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	fill(&l.Total, config.DefaultVerifyTimeout)
	fill(&l.Header, config.DefaultVerifyHeaderTimeout)
	fill(&l.Idle, config.DefaultVerifyIdleTimeout)
	fill(&l.RateWindow, config.VerifyRateWindow)
	if l.MinRate <= 0 {
		l.MinRate = config.DefaultVerifyMinRate << 10
	}
	return l
}

// Limit names one of Limits in a TimeoutError.
type Limit string

// The limits a download can hit.
const (
	LimitTotal   Limit = "overall deadline"
	LimitHeader  Limit = "header timeout"
	LimitIdle    Limit = "idle timeout"
	LimitMinRate Limit = "minimum rate"
)

// limitVars are the variables that set each limit, named in errors.
var limitVars = map[Limit]string{
	LimitTotal: "SOURCEOS_VERIFY_TIMEOUT", LimitHeader: "SOURCEOS_VERIFY_HEADER_TIMEOUT",
	LimitIdle: "SOURCEOS_VERIFY_IDLE_TIMEOUT", LimitMinRate: "SOURCEOS_VERIFY_MIN_RATE",
}

// TimeoutError means a download was cut short by one of Limits: the
// verification could not be carried out (exit 2).
type TimeoutError struct {
	Limit  Limit
	Detail string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s: %s (%s)", e.Limit, e.Detail, limitVars[e.Limit])
}

// Timeout reports true, as net.Error does for a timeout.
func (e *TimeoutError) Timeout() bool { return true }

// withDeadline bounds ctx by the overall deadline.
func (l Limits) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, l.Total, &TimeoutError{Limit: LimitTotal, Detail: "not done within " + l.Total.String()})
}

// timeoutOf is the TimeoutError that ended ctx, nil when none did.
func timeoutOf(ctx context.Context) *TimeoutError {
	var te *TimeoutError
	if ctx.Err() != nil && errors.As(context.Cause(ctx), &te) {
		return te
	}
	return nil
}

// limited opens objects of a remote within Limits.
type limited struct {
	src    remote
	limits Limits
}

// open opens name, waiting at most the header timeout for it, and returns
// its body watched by the idle timeout and the minimum rate. Closing the
// body ends the request.
func (l limited) open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(l.limits.Header, func() {
		cancel(&TimeoutError{Limit: LimitHeader, Detail: "no response within " + l.limits.Header.String()})
	})
	body, size, err := l.src.open(ctx, name)
	timer.Stop()
	if err != nil {
		if te := timeoutOf(ctx); te != nil {
			err = fmt.Errorf("fetch %s: %w", name, te)
		}
		cancel(nil)
		return nil, 0, err
	}
	return watch(ctx, body, cancel, l.limits), size, nil
}

// watchdog ends a download (by cancelling its request) that receives
// nothing for the idle timeout, or less than the minimum rate over a
// window; Read then returns the TimeoutError.
type watchdog struct {
	body       io.ReadCloser
	ctx        context.Context
	cancel     context.CancelCauseFunc
	limits     Limits
	got, mark  atomic.Int64 // bytes received; at the start of this window
	idle, rate *time.Timer
}

func watch(ctx context.Context, body io.ReadCloser, cancel context.CancelCauseFunc, l Limits) *watchdog {
	w := &watchdog{body: body, ctx: ctx, cancel: cancel, limits: l}
	w.idle = time.AfterFunc(l.Idle, func() {
		cancel(&TimeoutError{Limit: LimitIdle, Detail: "nothing received for " + l.Idle.String()})
	})
	w.rate = time.AfterFunc(l.RateWindow, w.checkRate)
	return w
}

func (w *watchdog) Read(b []byte) (int, error) {
	n, err := w.body.Read(b)
	if n > 0 {
		w.got.Add(int64(n))
		w.idle.Reset(w.limits.Idle)
	}
	if err != nil && err != io.EOF {
		if te := timeoutOf(w.ctx); te != nil {
			err = te
		}
	}
	return n, err
}

// checkRate ends the download when the window that just ended received
// less than the minimum rate asks, else starts the next window.
func (w *watchdog) checkRate() {
	got := w.got.Load()
	in := got - w.mark.Swap(got)
	if want := int64(float64(w.limits.MinRate) * w.limits.RateWindow.Seconds()); in < want {
		w.cancel(&TimeoutError{Limit: LimitMinRate, Detail: fmt.Sprintf("%d bytes in %s, under %s", in, w.limits.RateWindow, rate(w.limits.MinRate))})
		return
	}
	w.rate.Reset(w.limits.RateWindow)
}

func (w *watchdog) Close() error {
	w.idle.Stop()
	w.rate.Stop()
	err := w.body.Close()
	w.cancel(nil)
	return err
}

// rate prints bytes a second, in KiB when whole.
func rate(n int64) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB/s", n>>10)
	}
	return fmt.Sprintf("%d bytes/s", n)
}
