package execx

import (
	"bytes"
	"io"
	"sync"
)

// PrefixWriter writes every line it receives to w with a prefix, so a
// command's long log stays readable among the pipeline's own lines, and
// keeps the last lines for a failure report.
type PrefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
	tail   []string
	max    int
}

// MaxLine is the longest line a PrefixWriter holds; a longer one is written
// in pieces (a command's output, a build log of user code, is not to fill
// memory).
const MaxLine = 64 << 10

// NewPrefixWriter returns a PrefixWriter to w that keeps the last tail
// lines (none when tail is 0).
func NewPrefixWriter(w io.Writer, prefix string, tail int) *PrefixWriter {
	return &PrefixWriter{w: w, prefix: []byte(prefix), max: tail}
}

// Write implements io.Writer; a partial line waits for its end.
func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 && len(p.buf) > MaxLine {
			i = MaxLine // a line without end is cut, not held whole
		}
		if i < 0 {
			return len(b), nil
		}
		if err := p.line(p.buf[:i]); err != nil {
			return 0, err
		}
		if i < len(p.buf) && p.buf[i] == '\n' {
			i++
		}
		p.buf = p.buf[i:]
	}
}

func (p *PrefixWriter) line(l []byte) error {
	if p.max > 0 {
		p.tail = append(p.tail, string(l))
		if over := len(p.tail) - p.max; over > 0 {
			p.tail = append(p.tail[:0], p.tail[over:]...)
		}
	}
	_, err := p.w.Write(append(append(append([]byte{}, p.prefix...), l...), '\n'))
	return err
}

// Flush writes a trailing partial line.
func (p *PrefixWriter) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) == 0 {
		return nil
	}
	err := p.line(p.buf)
	p.buf = nil
	return err
}

// Tail returns the last lines written.
func (p *PrefixWriter) Tail() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tail...)
}
