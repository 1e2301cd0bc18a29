package checks

import (
	"regexp"
	"strconv"
	"strings"
)

// NixError is a Nix error message reduced to what a report line needs.
type NixError struct {
	Message string
	// File and Line locate the error in the repository, when Nix named a
	// position under the root; File is then relative to the root.
	File string
	Line int
}

var (
	nixErrorLine = regexp.MustCompile(`(?m)^\s*error: *(.*\S)\s*$`)
	nixAtLine    = regexp.MustCompile(`(?m)^\s*at (/[^:\n]+):(\d+):(\d+):?\s*$`)
	nixAtSuffix  = regexp.MustCompile(`(?m),?[ \t]+at (/[^:\n]+):(\d+):(\d+)[ \t]*$`)
)

// ParseNixError reduces the stderr of a failed Nix command: the message is
// the last non-empty "error:" line (Nix 2.8 prints it first and alone; newer
// releases print a trace and then the error), the position the first one
// under root.
func ParseNixError(stderr, root string) NixError {
	var e NixError
	after := stderr
	if ms := nixErrorLine.FindAllStringSubmatchIndex(stderr, -1); len(ms) > 0 {
		last := ms[len(ms)-1]
		e.Message, after = stderr[last[2]:last[3]], stderr[last[0]:]
	} else {
		e.Message = firstLine(stderr)
	}
	if m := nixAtSuffix.FindStringSubmatch(e.Message); m != nil {
		e.Message = strings.TrimSuffix(e.Message, m[0])
	}
	// The error's own position follows it; a trace's positions precede it.
	prefix := strings.TrimSuffix(root, "/") + "/"
	if !e.locate(after, prefix) {
		e.locate(stderr, prefix)
	}
	return e
}

// locate sets the first position under prefix found in text.
func (e *NixError) locate(text, prefix string) bool {
	positions := append(nixAtLine.FindAllStringSubmatch(text, -1), nixAtSuffix.FindAllStringSubmatch(text, -1)...)
	for _, m := range positions {
		if strings.HasPrefix(m[1], prefix) {
			e.File = strings.TrimPrefix(m[1], prefix)
			e.Line, _ = strconv.Atoi(m[2])
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
