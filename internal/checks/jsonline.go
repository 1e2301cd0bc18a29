package checks

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// PointerLine returns the 1-based line where the value at a JSON pointer
// (RFC 6901) starts in data: for an object member, the line of its key. It
// returns 1 for the empty pointer and 0 when the pointer is not in data.
func PointerLine(data []byte, ptr string) int {
	if ptr == "" {
		return 1
	}
	target := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, s := range target {
		target[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
	}
	w := &jsonWalker{dec: json.NewDecoder(bytes.NewReader(data)), data: data, target: target}
	line, _ := w.value(nil)
	return line
}

type jsonWalker struct {
	dec    *json.Decoder
	data   []byte
	target []string
}

func (w *jsonWalker) line() int { return lineAt(w.data, int(w.dec.InputOffset())) }

// value reads one value at path; it stops with the line once the target is met.
func (w *jsonWalker) value(path []string) (int, bool) {
	tok, err := w.dec.Token()
	if err != nil {
		return 0, true
	}
	if slices.Equal(path, w.target) {
		return w.line(), true
	}
	switch tok {
	case json.Delim('{'):
		return w.object(path)
	case json.Delim('['):
		return w.array(path)
	}
	return 0, false
}

func (w *jsonWalker) object(path []string) (int, bool) {
	for w.dec.More() {
		key, err := w.dec.Token()
		if err != nil {
			return 0, true
		}
		k, _ := key.(string)
		sub := append(slices.Clone(path), k)
		if slices.Equal(sub, w.target) {
			return w.line(), true
		}
		if line, done := w.value(sub); done {
			return line, true
		}
	}
	_, _ = w.dec.Token()
	return 0, false
}

func (w *jsonWalker) array(path []string) (int, bool) {
	for i := 0; w.dec.More(); i++ {
		if line, done := w.value(append(slices.Clone(path), strconv.Itoa(i))); done {
			return line, true
		}
	}
	_, _ = w.dec.Token()
	return 0, false
}

// lineAt is the 1-based line of a byte offset.
func lineAt(data []byte, off int) int {
	off = min(max(off, 0), len(data))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}
