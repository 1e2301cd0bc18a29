package boottest

import (
	"bytes"
	"io"
	"sync"
)

// lineWriter writes every line it receives to w with a prefix and keeps the
// last max lines for the failure report.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
	tail   []string
	max    int
}

func newLineWriter(w io.Writer, prefix string, max int) *lineWriter {
	return &lineWriter{w: w, prefix: []byte(prefix), max: max}
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if err := l.line(l.buf[:i]); err != nil {
			return 0, err
		}
		l.buf = l.buf[i+1:]
	}
}

func (l *lineWriter) line(s []byte) error {
	l.tail = append(l.tail, string(s))
	if over := len(l.tail) - l.max; over > 0 {
		l.tail = append(l.tail[:0], l.tail[over:]...)
	}
	_, err := l.w.Write(append(append(append([]byte{}, l.prefix...), s...), '\n'))
	return err
}

// Flush writes a trailing partial line.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		_ = l.line(l.buf)
		l.buf = nil
	}
}

// Tail returns the last lines written.
func (l *lineWriter) Tail() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.tail...)
}
