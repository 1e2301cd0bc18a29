package push

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Outcome is what happened to one path.
type Outcome string

const (
	Pushed   Outcome = "pushed"
	Present  Outcome = "present"
	Upstream Outcome = "upstream"
	Failed   Outcome = "failed"
)

// Progress receives events of a push. Implementations must be safe for
// concurrent use; core code never touches the terminal itself.
type Progress interface {
	// Start announces how many paths and NAR bytes the push considers.
	Start(paths int, narBytes int64)
	// Bytes reports NAR bytes serialised since the last call.
	Bytes(n int64)
	// Path reports the outcome of one path.
	Path(storePath string, o Outcome, err error)
	// Done is called once with the summary.
	Done(Summary)
}

type nopProgress struct{}

func (nopProgress) Start(int, int64)            {}
func (nopProgress) Bytes(int64)                 {}
func (nopProgress) Path(string, Outcome, error) {}
func (nopProgress) Done(Summary)                {}

// Summary is the result of a push.
type Summary struct {
	Pushed        int     `json:"pushed"`
	Present       int     `json:"present"`
	Upstream      int     `json:"upstream"`
	Failed        int     `json:"failed"`
	NarBytes      int64   `json:"nar_bytes"`
	UploadedBytes int64   `json:"uploaded_bytes"`
	Seconds       float64 `json:"seconds"`
	// Errors lists the failures, one per failed path.
	Errors []string `json:"errors,omitempty"`
	// SpoolErrors (cache:watch) counts the lines of the hook's spool that
	// were skipped as longer than any store path.
	SpoolErrors int `json:"spool_errors,omitempty"`
}

// JSON is the one-line summary printed at the end of a push.
func (s Summary) JSON() string {
	b, _ := json.Marshal(s) // a struct of numbers and strings always marshals
	return string(b)
}

// Reporter is a Progress writing to w: a bar redrawn in place on a
// terminal, otherwise one line every Interval.
type Reporter struct {
	W        io.Writer
	Terminal bool
	Interval time.Duration
	Now      func() time.Time

	mu                  sync.Mutex
	paths, done, failed int
	total, bytes        int64
	start, last         time.Time
}

func (r *Reporter) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Start implements Progress.
func (r *Reporter) Start(paths int, narBytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths, r.total, r.start, r.last = paths, narBytes, r.now(), r.now()
	fmt.Fprintf(r.W, "cache push: %d paths to upload, %s of NAR\n", paths, mib(narBytes))
}

// Bytes implements Progress.
func (r *Reporter) Bytes(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bytes += n
	r.maybeDraw()
}

// Path implements Progress.
func (r *Reporter) Path(p string, o Outcome, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done++
	if o == Failed {
		r.failed++
		fmt.Fprintf(r.W, "cache push: %s failed: %v\n", p, err)
	}
	r.maybeDraw()
}

// Done implements Progress.
func (r *Reporter) Done(s Summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Terminal {
		fmt.Fprintln(r.W)
	}
}

func (r *Reporter) maybeDraw() {
	interval := r.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if r.Terminal {
		interval = 200 * time.Millisecond
	}
	now := r.now()
	if now.Sub(r.last) < interval {
		return
	}
	r.last = now
	secs := now.Sub(r.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(r.bytes) / secs / (1 << 20)
	}
	line := fmt.Sprintf("cache push: %d/%d paths, %s/%s, %.1f MiB/s, %d failed",
		r.done, r.paths, mib(r.bytes), mib(r.total), rate, r.failed)
	if r.Terminal {
		fmt.Fprintf(r.W, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(r.W, line)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
