// Package redact removes secret values from text before it is logged or put
// into an error message.
package redact

import (
	"io"
	"sort"
	"strings"
	"sync"
)

// Mask is what a secret is replaced with.
const Mask = "[REDACTED]"

// minFragment is the shortest secret fragment that is masked on its own.
// Shorter fragments would mask ordinary words.
const minFragment = 8

// Redactor replaces every known secret fragment in a string with Mask.
// The zero value redacts nothing. It is safe for concurrent use.
type Redactor struct {
	mu        sync.RWMutex
	fragments []string
}

// New returns a Redactor for the given secret values.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add registers more secret values. A multi-line value (a minisign key file)
// is registered whole and line by line; a `name:base64` Nix key also by its
// base64 part, so a secret is masked however it is quoted.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		for _, f := range fragments(s) {
			r.fragments = appendUnique(r.fragments, f)
		}
	}
	// Longest first, so a whole value is masked before its parts.
	sort.Slice(r.fragments, func(i, j int) bool { return len(r.fragments[i]) > len(r.fragments[j]) })
}

func fragments(secret string) []string {
	secret = strings.TrimSpace(secret)
	if len(secret) < minFragment {
		return nil
	}
	out := []string{secret}
	for _, line := range strings.Split(secret, "\n") {
		line = strings.TrimSpace(line)
		if len(line) < minFragment || isComment(line) {
			continue
		}
		out = append(out, line)
		if _, after, ok := strings.Cut(line, ":"); ok && len(after) >= minFragment {
			out = append(out, after)
		}
	}
	return out
}

// isComment reports lines of a minisign key file that are public text.
func isComment(line string) bool {
	return strings.HasPrefix(line, "untrusted comment:") || strings.HasPrefix(line, "trusted comment:")
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// String returns s with every secret fragment masked.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, f := range r.fragments {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, Mask)
		}
	}
	return s
}

// Writer wraps w so that everything written through it is redacted. Writes
// are redacted one call at a time: callers write whole lines (loggers do).
func (r *Redactor) Writer(w io.Writer) io.Writer {
	return &writer{r: r, w: w}
}

type writer struct {
	r *Redactor
	w io.Writer
}

func (w *writer) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.r.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
