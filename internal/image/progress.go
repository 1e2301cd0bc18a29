package image

import (
	"fmt"
	"io"
	"time"
)

// progressReader reports how far a long read has come, at most once per
// interval, as one line each (readable in CI logs).
type progressReader struct {
	r        io.Reader
	w        io.Writer
	name     string
	total    int64
	done     int64
	start    time.Time
	last     time.Time
	interval time.Duration
	now      func() time.Time
}

func newProgressReader(r io.Reader, w io.Writer, name string, total int64, now func() time.Time) *progressReader {
	t := now()
	return &progressReader{r: r, w: w, name: name, total: total, start: t, last: t, interval: 5 * time.Second, now: now}
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if t := p.now(); t.Sub(p.last) >= p.interval {
		p.last = t
		fmt.Fprintf(p.w, "    %s: %s\n", p.name, progressLine(p.done, p.total, t.Sub(p.start)))
	}
	return n, err
}

// progressLine is "512.0 MiB / 2.0 GiB (25%), 80.0 MiB/s".
func progressLine(done, total int64, elapsed time.Duration) string {
	pct := 0.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	rate := uint64(0)
	if s := elapsed.Seconds(); s > 0 {
		rate = uint64(float64(done) / s)
	}
	return fmt.Sprintf("%s / %s (%.0f%%), %s/s", humanBytes(uint64(done)), humanBytes(uint64(total)), pct, humanBytes(rate))
}
